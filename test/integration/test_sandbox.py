"""
Tests for L{freno.sandbox.mysql} and L{freno.sandbox.heartbeat} with real
C{mariadbd} processes on loopback: replication, faults, lifecycle and the
command line. Every wait is a poll with a deadline, and every fault is undone
with C{addCleanup}.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pymysql
from twisted.trial.unittest import SynchronousTestCase

from test.support import SharedSandboxMixin
from freno.sandbox import datadir, processes
from freno.sandbox.mysql import LAG_QUERY, MySQLSandbox, SandboxError
from test.skips import binary_or_skip, missing_binary

#: Every test here runs C{mariadbd}.
skip = missing_binary("mariadbd")


def processes_mentioning(text: str) -> list:
    """
    The pids of live processes whose command line contains C{text}.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmdline and processes.is_alive(int(entry)):
            found.append(int(entry))
    return found


def poll(predicate, timeout, what):
    """
    L{processes.wait_for} with a short interval, for tests.
    """
    return processes.wait_for(predicate, timeout, interval=0.05, what=what)


def rows(sandbox, server, sql, args=()):
    """
    C{sandbox.query(server, sql, args)}, or L{None} while the server refuses
    it (a replica that has not replicated the table yet answers error 1146;
    one just started may not accept connections yet): for polling.
    """
    try:
        return sandbox.query(server, sql, args)
    except (pymysql.MySQLError, SandboxError):
        return None


def lag_or_inf(sandbox, server):
    """
    C{sandbox.lag(server)}, or infinity while it cannot be read: for polling.
    """
    try:
        return sandbox.lag(server)
    except (pymysql.MySQLError, SandboxError):
        return float("inf")


class ReplicationSandboxTests(SharedSandboxMixin, SynchronousTestCase):
    """
    SLOW integration tests: a primary and two replicas, shared by the tests.
    """

    sandbox_kwargs = dict(replicas=2)

    def restore(self, index):
        """
        Undo any fault on replica C{index} and wait until it caught up.
        """
        sandbox = self.sandbox
        if sandbox.replicas[index].pid is None:
            sandbox.start_replica(index)
        sandbox.thaw(index)
        sandbox.remove_lag(index)
        sandbox.wait_caught_up([index], timeout=15)

    def test_topology(self):
        """
        Each server is its own process on its own loopback port with its own
        server id and datadir, in UTC, and none is on 3306.
        """
        servers = [self.sandbox.primary] + self.sandbox.replicas
        self.assertEqual(len({s.port for s in servers}), 3)
        self.assertEqual(len({s.pid for s in servers}), 3)
        self.assertEqual(len({s.datadir for s in servers}), 3)
        self.assertNotIn(3306, [s.port for s in servers])
        for server in servers:
            self.assertEqual(server.host, "127.0.0.1")
            self.assertTrue(processes.is_alive(server.pid))
            rows = self.sandbox.query(server, "select @@server_id, @@time_zone, @@port")
            self.assertEqual(rows, [(server.server_id, "+00:00", server.port)])

    def test_replication_flows(self):
        """
        A row written on the primary appears on each replica.
        """
        sandbox = self.sandbox
        token = uuid.uuid4().hex
        sandbox.query(sandbox.primary, "create database if not exists sandbox_test")
        sandbox.query(
            sandbox.primary,
            "create table if not exists sandbox_test.t (v varchar(40) primary key)",
        )
        self.addCleanup(sandbox.query, sandbox.primary, "drop database sandbox_test")
        sandbox.query(sandbox.primary, "insert into sandbox_test.t values (%s)", (token,))
        for replica in sandbox.replicas:
            poll(
                lambda: rows(sandbox, replica, "select v from sandbox_test.t where v = %s", (token,)),
                10,
                f"row on {replica.name}",
            )

    def test_probe_user(self):
        """
        The probe user can run the lag query and C{SHOW SLAVE STATUS} on a
        replica.
        """
        replica = self.sandbox.replicas[0]
        connection = self.sandbox.connect(
            replica, 5, user=MySQLSandbox.user, password=MySQLSandbox.password
        )
        self.addCleanup(connection.close)
        with connection.cursor() as cursor:
            cursor.execute(LAG_QUERY)
            (lag,) = cursor.fetchone()
            cursor.execute("show slave status")
            self.assertEqual(cursor.rowcount, 1)
            cursor.execute("show processlist")
        self.assertLess(float(lag), 1.0)

    def test_sub_second_lag(self):
        """
        freno's lag query gives a sub-second, non-negative lag on every
        replica.
        """
        for _ in range(5):
            for replica in self.sandbox.replicas:
                lag = self.sandbox.lag(replica)
                self.assertTrue(-0.05 <= lag < 1.0, f"{replica.name} lag {lag}")
            time.sleep(0.1)

    def test_growing_lag(self):
        """
        C{inject_lag(index)} makes that replica's lag grow past 1.5 s while
        the other stays sub-second; C{remove_lag} brings it back under 1 s.
        """
        sandbox = self.sandbox
        self.addCleanup(self.restore, 0)
        sandbox.inject_lag(0)
        poll(lambda: sandbox.lag(sandbox.replicas[0]) > 1.5, 5, "lag > 1.5s")
        self.assertLess(sandbox.lag(sandbox.replicas[1]), 1.0)
        sandbox.remove_lag(0)
        poll(lambda: sandbox.lag(sandbox.replicas[0]) < 1.0, 5, "lag < 1s")

    def test_steady_lag(self):
        """
        C{inject_lag(index, 2)} holds that replica's lag near 2 s.
        """
        sandbox = self.sandbox
        replica = sandbox.replicas[1]
        self.addCleanup(self.restore, 1)
        sandbox.inject_lag(1, 2)
        poll(lambda: sandbox.lag(replica) >= 1.5, 5, "lag >= 1.5s")
        samples = []
        for _ in range(20):
            samples.append(sandbox.lag(replica))
            time.sleep(0.1)
        # MASTER_DELAY works in whole seconds: a saw-tooth about one second
        # wide, within about a second of the delay, that does not grow.
        self.assertTrue(all(0.9 <= s <= 3.2 for s in samples), samples)
        mean = sum(samples) / len(samples)
        self.assertTrue(1.2 <= mean <= 2.8, samples)
        sandbox.remove_lag(1)
        poll(lambda: sandbox.lag(replica) < 1.0, 5, "lag < 1s")

    def test_bad_fault_arguments(self):
        """
        Bad lag values and replica indexes raise clear errors and change
        nothing.
        """
        sandbox = self.sandbox
        for seconds in (-1, float("nan"), float("inf"), "2"):
            self.assertRaises(ValueError, sandbox.inject_lag, 0, seconds)
        for index in (2, -1, "0"):
            self.assertRaises(IndexError, sandbox.inject_lag, index)
            self.assertRaises(IndexError, sandbox.freeze, index)
        self.assertRaises(SandboxError, sandbox.start_replica, 0)
        self.assertLess(sandbox.lag(sandbox.replicas[0]), 1.0)

    def test_freeze(self):
        """
        A frozen replica makes a query with C{read_timeout=1} time out within
        about a second, and a new connection too; after C{thaw} it answers
        again.
        """
        sandbox = self.sandbox
        replica = sandbox.replicas[0]
        connection = sandbox.connect(replica, 1)
        self.addCleanup(connection.close)
        self.addCleanup(self.restore, 0)
        sandbox.freeze(0)
        self.assertEqual(processes.process_state(replica.pid), "T")
        started = time.monotonic()
        with connection.cursor() as cursor:
            self.assertRaises(pymysql.err.OperationalError, cursor.execute, LAG_QUERY)
        self.assertTrue(0.8 <= time.monotonic() - started <= 2.5)
        started = time.monotonic()
        self.assertRaises(pymysql.err.OperationalError, sandbox.query, replica, "select 1", timeout=1)
        self.assertLess(time.monotonic() - started, 2.5)
        sandbox.thaw(0)
        poll(lambda: sandbox.query(replica, "select 1", timeout=1) == [(1,)], 5, "thawed replica")

    def test_stop_and_start_replica(self):
        """
        C{stop_replica} ends that replica's process (connections are
        refused); C{start_replica} brings it back on the same port, and it
        catches up with what the primary wrote meanwhile.
        """
        sandbox = self.sandbox
        replica = sandbox.replicas[1]
        old_pid, port = replica.pid, replica.port
        self.addCleanup(self.restore, 1)
        sandbox.stop_replica(1)
        self.assertIsNone(replica.pid)
        self.assertFalse(processes.is_alive(old_pid))
        self.assertRaises(pymysql.err.OperationalError, sandbox.query, replica, "select 1", timeout=1)
        sandbox.stop_replica(1)  # idempotent

        token = uuid.uuid4().hex
        sandbox.query(sandbox.primary, "create database if not exists sandbox_test2")
        self.addCleanup(sandbox.query, sandbox.primary, "drop database sandbox_test2")
        sandbox.query(sandbox.primary, "create table sandbox_test2.t (v varchar(40))")
        sandbox.query(sandbox.primary, "insert into sandbox_test2.t values (%s)", (token,))

        sandbox.start_replica(1)
        self.assertNotEqual(replica.pid, old_pid)
        self.assertEqual(replica.port, port)
        poll(
            lambda: rows(sandbox, replica, "select v from sandbox_test2.t") == [(token,)],
            10,
            "row on restarted replica",
        )
        poll(lambda: lag_or_inf(sandbox, replica) < 1.0, 10, "restarted replica caught up")


class SandboxLifecycleTests(SynchronousTestCase):
    """
    SLOW integration tests: starting and stopping whole sandboxes.
    """

    def assertNothingLeft(self, sandbox, pids, root):
        """
        None of C{pids} lives, no process mentions C{root}, C{root} is gone.
        """
        for pid in pids:
            self.assertFalse(processes.is_alive(pid), f"pid {pid} still alive")
        self.assertEqual(processes_mentioning(root), [])
        self.assertFalse(os.path.exists(root))
        self.assertEqual(sandbox.pids, [])

    def test_stop_leaves_nothing(self):
        """
        After C{stop()} (also a second one) no process it started lives and its
        directories are gone, including a frozen replica.
        """
        base = os.path.abspath(self.mktemp())
        sandbox = MySQLSandbox(base_dir=base, replicas=1)
        self.addCleanup(sandbox.stop)
        with sandbox:
            root = sandbox.root
            self.assertTrue(root.startswith(base))
            pids = sandbox.pids
            self.assertEqual(len(pids), 3)  # primary, replica, heartbeat
            self.assertIn(sandbox.heartbeat_pid, pids)
            self.assertLess(sandbox.lag(sandbox.replicas[0]), 1.0)
            sandbox.freeze(0)
        self.assertNothingLeft(sandbox, pids, root)
        self.assertFalse(os.path.exists(base))
        sandbox.stop()

    def test_failed_start_cleans_up(self):
        """
        A server that cannot start gives a L{SandboxError} with the tail of its
        error log, and the half-started sandbox leaves nothing behind.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        sandbox = MySQLSandbox(base_dir=base, replicas=1, mariadbd_args=["--no-such-option"])
        self.addCleanup(sandbox.stop)
        error = self.assertRaises(SandboxError, sandbox.start)
        self.assertIn("no-such-option", str(error))
        self.assertIn("exited with status", str(error))
        self.assertEqual(os.listdir(base), [])
        self.assertEqual(processes_mentioning(base), [])
        self.assertIsNone(sandbox.root)

    def test_port_taken(self):
        """
        When the port picked for a server is taken before it binds, the
        sandbox picks another and starts anyway.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        taken_port = taken.getsockname()[1]
        ports = [taken_port]
        real_free_port = processes.free_port
        self.patch(processes, "free_port", lambda: ports.pop() if ports else real_free_port())
        sandbox = MySQLSandbox(replicas=0)
        self.addCleanup(sandbox.stop)
        sandbox.start()
        self.assertNotEqual(sandbox.primary.port, taken_port)
        poll(lambda: sandbox.lag(sandbox.primary) < 1.0, 5, "heartbeat on the primary")
        root = sandbox.root
        pids = sandbox.pids
        sandbox.stop()
        self.assertNothingLeft(sandbox, pids, root)


class CommandLineTests(SynchronousTestCase):
    """
    SLOW: C{python -m freno.sandbox.mysql}.
    """

    def run_cli(self, *args):
        """
        Start the command line in a child process; return it and the path of
        its output.
        """
        output = os.path.abspath(self.mktemp())
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        with open(output, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "freno.sandbox.mysql", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        self.addCleanup(processes.stop_process, proc, signal.SIGKILL, 5)
        return proc, output

    def test_runs_until_sigterm(self):
        """
        It prints the ports and the lag query of each replica, and SIGTERM
        stops it and everything it started.
        """
        proc, output = self.run_cli("--replicas", "1")

        def text():
            with open(output) as f:
                return f.read()

        poll(lambda: "Ctrl-C stops it." in text() or proc.poll() is not None, 30, "sandbox up")
        self.assertIn("Ctrl-C stops it.", text())
        self.assertIn(LAG_QUERY, text())
        line = [l for l in text().splitlines() if l.strip().startswith("replica1")][0]
        port = int(line.split()[1].split(":")[1])
        root = text().splitlines()[0].rsplit("(", 1)[1].rstrip(")")
        self.assertTrue(os.path.isdir(root))
        pids = processes_mentioning(root)
        self.assertEqual(len(pids), 2)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)
        self.assertIn("MySQL sandbox stopped.", text())
        self.assertFalse(os.path.exists(root))
        self.assertEqual(processes_mentioning(root), [])
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0)

    def test_bad_arguments(self):
        """
        A bad argument gives a one-line usage error and exit status 2.
        """
        proc, output = self.run_cli("--replicas", "-1")
        self.assertEqual(proc.wait(30), 2)
        with open(output) as f:
            self.assertIn("replicas must be an integer >= 0", f.read())


class FreePortTests(SynchronousTestCase):
    """
    L{processes.free_port} on real loopback sockets.
    """

    def test_below_the_ephemeral_range_never_twice(self):
        """
        Ports are picked below the kernel's ephemeral range (where no
        outgoing connection takes them), are free, and are not handed out
        twice by one process.
        """
        low, _ = processes.ephemeral_range()
        ports = [processes.free_port() for _ in range(200)]
        self.assertEqual(len(set(ports)), len(ports))
        for port in ports:
            self.assertGreaterEqual(port, processes.PORT_FLOOR)
            self.assertLess(port, low)
        with socket.socket() as s:
            s.bind(("127.0.0.1", ports[-1]))

    def test_a_taken_port_is_skipped(self):
        """
        A port something listens on is never picked.
        """
        low, _ = processes.ephemeral_range()
        listeners = []
        for port in range(processes.PORT_FLOOR, processes.PORT_FLOOR + 50):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            s.listen(1)
            listeners.append(s)
            self.addCleanup(s.close)
        self.patch(processes, "ephemeral_range", lambda: (processes.PORT_FLOOR + 1000, 60999))
        taken = {s.getsockname()[1] for s in listeners}
        picked = {processes.free_port() for _ in range(100)}
        self.assertFalse(picked & taken)

    def test_no_room_below_the_range(self):
        """
        Where the ephemeral range starts near the floor, the kernel's choice
        is used, still never twice.
        """
        self.patch(processes, "ephemeral_range", lambda: (1024, 65535))
        ports = [processes.free_port() for _ in range(20)]
        self.assertEqual(len(set(ports)), 20)


class DatadirTests(SynchronousTestCase):
    """
    SLOW: L{datadir.make_datadir} with and without the short bootstrap
    (real C{mariadbd} and C{mariadb-install-db} runs).
    """

    def make(self, install_db):
        """
        Make a datadir under a fresh test directory; return its path.
        """
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        path = os.path.join(base, "data")
        datadir.make_datadir(
            binary_or_skip("mariadbd"),
            install_db,
            path,
            os.path.join(base, "install.log"),
            60,
        )
        return path

    def test_short_bootstrap(self):
        """
        The short bootstrap makes the grant tables and leaves out the help
        tables' data and the C{sys} schema.
        """
        path = self.make(None)
        self.assertTrue(os.path.exists(os.path.join(path, "mysql", "user.frm")))
        self.assertFalse(os.path.exists(os.path.join(path, "sys")))

    def test_fallback_to_install_db(self):
        """
        Without the bootstrap scripts, L{datadir.make_datadir} runs
        C{mariadb-install-db}; without that too, it raises
        L{datadir.DatadirError}.
        """
        self.patch(datadir, "SCRIPT_DIRS", ("/nonexistent",))
        path = self.make(binary_or_skip("mariadb-install-db"))
        self.assertTrue(os.path.exists(os.path.join(path, "sys")))
        self.assertRaises(datadir.DatadirError, self.make, None)
