"""
Tests for L{freno.sandbox.mysql}'s arguments, L{freno.sandbox.processes}'s
helpers and L{freno.sandbox.cluster}'s store configurations, without starting a
server (L{freno.sandbox.datadir}, which runs
C{mariadbd}, is tested in L{test.integration.test_sandbox}).
"""

from __future__ import annotations

import io
import os
import sys

from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import HEARTBEAT_QUERY
from freno.sandbox import cluster, heartbeat, processes
from freno.sandbox.mysql import MySQLSandbox, SandboxError
from freno.sandbox.server import Server


def poll(predicate, timeout, what):
    """
    L{processes.wait_for} with a short interval, for tests.
    """
    return processes.wait_for(predicate, timeout, interval=0.05, what=what)


class SandboxArgumentTests(SynchronousTestCase):
    """
    Bad arguments and missing binaries fail clearly and change nothing.
    """

    def test_bad_arguments(self):
        """
        Out-of-range constructor arguments raise L{ValueError} naming the
        argument.
        """
        for kwargs, name in [
            (dict(replicas=-1), "replicas"),
            (dict(replicas="2"), "replicas"),
            (dict(replicas=True), "replicas"),
            (dict(heartbeat_interval=0), "heartbeat_interval"),
            (dict(heartbeat_interval=float("nan")), "heartbeat_interval"),
            (dict(heartbeat_interval=float("inf")), "heartbeat_interval"),
            (dict(start_timeout=-1), "start_timeout"),
        ]:
            error = self.assertRaises(ValueError, MySQLSandbox, **kwargs)
            self.assertIn(name, str(error))

    def test_stop_before_start(self):
        """
        L{MySQLSandbox.stop} on a sandbox never started does nothing.
        """
        sandbox = MySQLSandbox()
        sandbox.stop()
        sandbox.stop()
        self.assertIsNone(sandbox.root)

    def test_missing_mariadb(self):
        """
        Without C{mariadbd}, L{MySQLSandbox.start} raises L{SandboxError}
        saying which package to install, and creates no directory.
        """
        self.patch(processes, "find_binary", lambda name: None)
        base = self.mktemp()
        sandbox = MySQLSandbox(base_dir=base)
        error = self.assertRaises(SandboxError, sandbox.start)
        self.assertIn("mariadbd not found", str(error))
        self.assertIn("apt-get install mariadb-server", str(error))
        self.assertFalse(os.path.exists(base))
        self.assertEqual(sandbox.pids, [])

    def test_heartbeat_rejects_bad_interval(self):
        """
        The heartbeat writer's command line refuses a non-positive interval.
        """
        self.patch(sys, "stderr", io.StringIO())
        self.assertRaises(SystemExit, heartbeat.main, ["--port", "1", "--interval", "0"])


class ProcessHelperTests(SynchronousTestCase):
    """
    L{processes} helpers.
    """

    def test_wait_for_deadline(self):
        """
        L{processes.wait_for} returns the predicate's true value, or raises
        L{TimeoutError} naming what it waited for.
        """
        self.assertEqual(processes.wait_for(lambda: 7, 1), 7)
        error = self.assertRaises(
            TimeoutError, processes.wait_for, lambda: 0, 0.05, 0.01, "godot"
        )
        self.assertIn("godot", str(error))

    def test_ephemeral_range(self):
        """
        L{processes.ephemeral_range} reads the kernel's two numbers, and
        assumes Linux's default when the file is missing or garbled.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("32768\t60999\n")
        self.assertEqual(processes.ephemeral_range(path), (32768, 60999))
        with open(path, "w") as f:
            f.write("garbage")
        self.assertEqual(processes.ephemeral_range(path), processes.DEFAULT_EPHEMERAL_RANGE)
        self.assertEqual(processes.ephemeral_range(path + ".missing"), processes.DEFAULT_EPHEMERAL_RANGE)

    def test_process_state(self):
        """
        L{processes.process_state} reads our own state and returns L{None}
        for a pid that does not exist.
        """
        self.assertIn(processes.process_state(os.getpid()), ("R", "S"))
        self.assertTrue(processes.is_alive(os.getpid()))
        self.assertIsNone(processes.process_state(2**22 + 1))
        self.assertFalse(processes.is_alive(2**22 + 1))


class StoreTests(SynchronousTestCase):
    """
    L{cluster.store_for} and L{cluster.constant_store}: the C{Stores.MySQL}
    configurations that tests and benchmarks point freno nodes at.
    """

    def sandbox(self, replicas):
        sandbox = MySQLSandbox(replicas=replicas)
        sandbox.primary = Server("primary", "127.0.0.1", 4000, "/d/p", "/s/p", None, 1)
        sandbox.replicas = [
            Server(f"replica{i}", "127.0.0.1", 4000 + i, f"/d/{i}", f"/s/{i}", None, 1 + i)
            for i in range(1, replicas + 1)
        ]
        return sandbox

    def test_constant_store(self):
        """
        The constant store probes the replicas, or the primary of a sandbox
        without replicas, as the probe user with C{select 0}; never a server
        the sandbox did not start.
        """
        for replicas, hosts in ((0, ["127.0.0.1:4000"]), (2, ["127.0.0.1:4001", "127.0.0.1:4002"])):
            store = cluster.constant_store(self.sandbox(replicas))
            self.assertEqual(
                (store["User"], store["Password"], store["MetricQuery"]),
                (MySQLSandbox.user, MySQLSandbox.password, "select 0"),
            )
            self.assertEqual(store["Clusters"]["main"]["StaticHostsSettings"]["Hosts"], hosts)

    def test_store_for(self):
        """
        The lag store probes the replicas with freno's heartbeat query.
        """
        store = cluster.store_for(self.sandbox(2), threshold=0.5)
        self.assertEqual((store["MetricQuery"], store["ThrottleThreshold"]), (HEARTBEAT_QUERY, 0.5))
        self.assertEqual(
            store["Clusters"]["main"]["StaticHostsSettings"]["Hosts"], ["127.0.0.1:4001", "127.0.0.1:4002"]
        )
