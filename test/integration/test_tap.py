"""
Tests for L{freno.tap}'s wiring: the service tree on the real reactor, real
C{twistd freno} processes, and checks answered from a real MariaDB (a
sandbox the tests start).
"""

import json
import os
import signal
import subprocess
import sys
import time

from twisted.application.service import IService
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase
from treq import get as treq_get, content as treq_content

from freno.sandbox.nodes import REPO_ROOT, free_port
from freno.tap import Options, build_service
from test.support import SharedSandboxMixin, single_node_config, write_config


class ServiceTreeTests(TestCase):
    """
    L{build_service} builds a service tree that starts and stops cleanly in
    the test reactor (no dirty reactor).
    """

    @inlineCallbacks
    def test_start_serve_stop(self):
        """
        The tree starts, serves /lb-check and /leader-check, measures the
        reactor's lag (C{/debug/vars} has C{reactor.lag.*}), serves the
        status page's state, and stops; it probes with the native driver,
        the default.
        """
        port = free_port()
        options = Options()
        options.parseOptions(["--config", write_config(self, single_node_config(self, port))])
        top = build_service(reactor, options["freno-config"], interface="127.0.0.1")
        self.assertTrue(IService.providedBy(top))
        self.assertEqual(
            sorted(s.name for s in top), ["consensus", "dashboard", "http", "probe", "reactor-lag"]
        )
        from freno.probe.wire.source import NativeMetricSource

        self.assertIsInstance(top.getServiceNamed("probe")._source, NativeMetricSource)
        top.startService()
        try:
            response = yield treq_get(f"http://127.0.0.1:{port}/lb-check", persistent=False)
            self.assertEqual(response.code, 200)
            self.assertEqual(json.loads((yield treq_content(response))),
                             {"StatusCode": 200, "Message": "OK"})
            deadline = time.monotonic() + 10
            while True:
                response = yield treq_get(f"http://127.0.0.1:{port}/leader-check", persistent=False)
                yield treq_content(response)
                if response.code == 200 or time.monotonic() > deadline:
                    break
                yield deferLater(reactor, 0.05, lambda: None)
            self.assertEqual(response.code, 200)
            deadline = time.monotonic() + 10
            while True:
                response = yield treq_get(f"http://127.0.0.1:{port}/debug/vars", persistent=False)
                variables = json.loads((yield treq_content(response)))
                if "reactor.lag.count" in variables or time.monotonic() > deadline:
                    break
                yield deferLater(reactor, 0.05, lambda: None)
            self.assertIn("reactor.lag.count", variables)
            response = yield treq_get(f"http://127.0.0.1:{port}/dashboard/state.json", persistent=False)
            state = json.loads((yield treq_content(response)))
            self.assertEqual((response.code, state["is_leader"]), (200, True))
        finally:
            yield top.stopService()


class TwistdProcessTests(SynchronousTestCase):
    """
    The real C{twistd freno} command.
    """

    def twistd(self, *args, timeout=30):
        env = dict(os.environ, PYTHONPATH=REPO_ROOT)
        return subprocess.run(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile=", *args],
            env=env, capture_output=True, text=True, timeout=timeout, cwd=self.mktemp_dir(),
        )

    def mktemp_dir(self):
        path = self.mktemp()
        os.makedirs(path)
        return path

    def test_help(self):
        """
        C{twistd freno --help} documents the flags and exits 0.
        """
        result = self.twistd("freno", "--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--force-leadership", result.stdout)

    def test_bad_config_no_traceback(self):
        """
        A bad configuration: exit status 1, one line, no traceback.
        """
        path = write_config(self, {"ListenPort": "x"})
        result = self.twistd("freno", "--config", os.path.abspath(path))
        self.assertEqual(result.returncode, 1)
        self.assertNotIn("Traceback", result.stderr + result.stdout)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertIn("ListenPort", result.stderr)

    def test_missing_config(self):
        """
        A missing file is named in the one-line error.
        """
        result = self.twistd("freno", "--config", "/nonexistent/freno.json")
        self.assertEqual(result.returncode, 1)
        self.assertIn("/nonexistent/freno.json", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_busy_http_port_fails_start(self):
        """
        A node whose HTTP port is taken exits with status 1 and one line
        naming the port, instead of running without HTTP.
        """
        import socket

        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = os.path.abspath(write_config(self, single_node_config(self, port)))
        result = self.twistd("freno", "--config", path)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        output = result.stdout + result.stderr
        self.assertIn(f"cannot listen on HTTP port *:{port}", output)
        self.assertNotIn("Traceback", output)

    def test_sigterm_stops_cleanly(self):
        """
        SIGTERM stops a running node within 2 seconds, without a traceback.
        """
        port = free_port()
        path = os.path.abspath(write_config(self, single_node_config(self, port)))
        log = os.path.abspath(self.mktemp())
        env = dict(os.environ, PYTHONPATH=REPO_ROOT)
        process = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile=", f"--logfile={log}", "freno", "--config", path, "--verbose"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait()))
        from freno.sandbox.nodes import http_get, wait_for
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/lb-check")[0] == 200, 20,
                 what="twistd freno to serve")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(5)
        elapsed = time.monotonic() - started
        # twistd re-raises the stopping signal on itself once shut down.
        self.assertIn(process.returncode, (0, -signal.SIGTERM))
        self.assertLess(elapsed, 2.0)
        with open(log) as f:
            text = f.read()
        self.assertNotIn("Traceback", text)
        self.assertIn("Main loop terminated", text)


class WiredCheckTests(SharedSandboxMixin, TestCase):
    """
    The whole tree, in the test reactor, probing a sandbox primary of our
    own (read-only: C{select 0}) with each probe driver, answers /check 200.
    """

    sandbox_kwargs = {"replicas": 0}

    @inlineCallbacks
    def check_answers_200(self, driver):
        from twisted.internet.task import deferLater

        port = free_port()
        config = single_node_config(self, port)
        config["Stores"]["MySQL"].update(
            {"User": "root", "MetricQuery": "select 0", "ProbeDriver": driver}
        )
        config["Stores"]["MySQL"]["Clusters"]["main"]["StaticHostsSettings"]["Hosts"] = [
            self.sandbox.primary.hostport
        ]
        options = Options()
        options.parseOptions(["--config", write_config(self, config)])
        top = build_service(reactor, options["freno-config"], interface="127.0.0.1")
        top.startService()
        try:
            deadline = time.monotonic() + 15
            while True:
                response = yield treq_get(
                    f"http://127.0.0.1:{port}/check/app/mysql/main", persistent=False
                )
                body = json.loads((yield treq_content(response)))
                if response.code == 200 or time.monotonic() > deadline:
                    break
                yield deferLater(reactor, 0.05, lambda: None)
            self.assertEqual((response.code, body["Value"], body["Threshold"]), (200, 0, 1))
        finally:
            yield top.stopService()

    def test_pymysql_driver(self):
        """
        The adbapi + PyMySQL source.
        """
        return self.check_answers_200("pymysql")

    def test_native_driver(self):
        """
        The pure-Twisted protocol source (the default).
        """
        return self.check_answers_200("native")
