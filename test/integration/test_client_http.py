"""
The blocking client's transport (L{freno.client.http.HTTPTransport}) over
real loopback sockets: fake nodes served by the standard library's HTTP
server in a thread on ephemeral ports. Keep-alive reuse, timeouts, a server
that closes idle connections, a refused port; C{freno.client} imported by a
Python without site-packages; the C{freno-cli} console script; the treq
flavour on the real reactor.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase

from freno.client import FrenoClient
from freno.client.fake import FakeFreno, FakeGroupState
from freno.client.http import HTTPTransport, TransportError
from freno.client.tx import TxFrenoClient
from freno.sandbox.processes import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FakeServer:
    """
    A L{FakeFreno} behind C{http.server} on 127.0.0.1 (HTTP/1.1, keep-alive),
    counting connections; C{delay} holds every answer that long; C{close}
    makes it close each connection after answering without saying so.
    """

    def __init__(self, node: FakeFreno) -> None:
        self.node = node
        self.connections = 0
        self.delay = 0.0
        self.close = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                server.connections += 1
                super().setup()

            def log_message(self, *args):
                pass

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if server.delay:
                    time.sleep(server.delay)
                response = server.node.handle(self.command, self.path, dict(self.headers), body)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
                if server.close:
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_DELETE = answer

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # A client that gave up (the timeout tests) leaves a broken
                # pipe; anything else is printed as socketserver does.
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class TransportTests(SynchronousTestCase):
    """
    L{HTTPTransport} and L{FrenoClient} on real sockets.
    """

    def setUp(self):
        self.state = FakeGroupState(time.time)
        self.state.leader = "a"
        self.state.clusters["main"] = (0.5, 1.0)
        self.servers = []
        for name in ("a", "b"):
            server = FakeServer(FakeFreno(name, self.state))
            self.addCleanup(server.stop)
            self.servers.append(server)
        self.transport = HTTPTransport()
        self.addCleanup(self.transport.close)

    def test_keep_alive(self):
        """
        Fifty checks use one connection.
        """
        client = FrenoClient(self.servers[0].url, transport=self.transport)
        for _ in range(50):
            self.assertTrue(client.check("app", "main").allowed)
        self.assertEqual(self.servers[0].connections, 1)

    def test_server_closes_idle_connections(self):
        """
        A server that drops connections after answering (or a restart)
        costs a reconnect, never a failed request.
        """
        self.servers[0].close = True
        client = FrenoClient(self.servers[0].url, transport=self.transport)
        for _ in range(10):
            self.assertTrue(client.check("app", "main").allowed)
            time.sleep(0.01)
        self.assertEqual(self.servers[0].connections, 10)

    def test_timeout(self):
        """
        A node that does not answer in time is given up after the timeout,
        and the next one answers.
        """
        self.servers[0].delay = 2.0
        self.state.leader = "b"
        client = FrenoClient([s.url for s in self.servers], timeout=0.3, transport=self.transport)
        started = time.monotonic()
        result = client.check("app", "main")
        self.assertLess(time.monotonic() - started, 1.5)
        self.assertEqual(result.node, self.servers[1].url)
        error = self.assertRaises(
            TransportError, self.transport.request, self.servers[0].url, "GET", "/lb-check", {}, None, 0.3
        )
        self.assertEqual(str(error), "timed out after 0.3s")

    def test_refused(self):
        """
        A port nobody listens on is passed over; with nothing else, the check
        fails closed saying so.
        """
        dead = f"http://127.0.0.1:{free_port()}"
        client = FrenoClient([dead, self.servers[0].url], transport=self.transport)
        self.assertEqual(client.check("app", "main").node, self.servers[0].url)
        result = FrenoClient(dead, transport=self.transport).check("app", "main")
        self.assertEqual((result.allowed, result.status), (False, 0))
        self.assertIn("connection refused", result.reason)

    def test_rest_body(self):
        """
        A POST with a JSON body and a DELETE go through.
        """
        client = FrenoClient(self.servers[0].url, api="rest", transport=self.transport)
        self.assertEqual(client.throttle("app", ttl="90s").body["throttle"]["app"], "app")
        self.assertEqual(client.unthrottle("app").removed, True)
        self.assertEqual(self.servers[0].connections, 1)

    def test_threads(self):
        """
        One client shared by threads: every check answers.
        """
        client = FrenoClient(self.servers[0].url, transport=self.transport)
        results = []

        def work():
            for _ in range(20):
                results.append(client.check("app", "main").allowed)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(results, [True] * 80)
        self.assertLessEqual(self.servers[0].connections, 4)

    def test_prefix(self):
        """
        A base URL's path is a prefix of every request (a proxy mounting
        freno under a path).
        """
        client = FrenoClient(self.servers[0].url + "/freno/", transport=self.transport)
        client.check("app", "main")
        self.assertEqual(self.servers[0].node.requests[-1][1], "/freno/check/app/mysql/main")


class TxTransportTests(TestCase):
    """
    L{TxFrenoClient.from_reactor} on the real reactor and real sockets.
    """

    timeout = 60

    @inlineCallbacks
    def test_check_and_reuse(self):
        """
        A refused port is passed over; twenty checks share one connection;
        L{TxFrenoClient.close} closes it.
        """
        from twisted.internet import reactor

        state = FakeGroupState(time.time)
        state.leader = "a"
        state.clusters["main"] = (0.5, 1.0)
        server = FakeServer(FakeFreno("a", state))
        self.addCleanup(server.stop)
        client = TxFrenoClient.from_reactor(reactor, [f"http://127.0.0.1:{free_port()}", server.url], timeout=2)
        for _ in range(20):
            result = yield client.check("app", "main")
            self.assertEqual((result.allowed, result.node, result.data_age_ms), (True, server.url, 40))
        self.assertEqual(server.connections, 1)
        yield client.close()


class PackagingTests(SynchronousTestCase):
    """
    What C{pip install .} gives a user.
    """

    def test_standard_library_only(self):
        """
        A Python without site-packages imports C{freno.client} and its CLI,
        and nothing outside the standard library gets loaded.
        """
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "import freno.client, freno.client.cli, freno.client.fake;"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
            " ('twisted', 'treq', 'attr', 'zope', 'klein', 'pymysql', 'hypothesis'));"
            "print(bad); sys.exit(1 if bad else 0)"
        )
        done = subprocess.run([sys.executable, "-S", "-c", code, ROOT], capture_output=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)

    def test_console_script(self):
        """
        C{freno-cli} is installed next to the interpreter (C{pip install .})
        and answers C{--help}; a check of a dead node exits 2.
        """
        script = os.path.join(os.path.dirname(sys.executable), "freno-cli")
        self.assertTrue(os.path.exists(script), f"{script} missing: run make deps (pip install -e .)")
        done = subprocess.run([script, "--help"], capture_output=True, timeout=60)
        self.assertEqual(done.returncode, 0)
        self.assertIn(b"freno-cli", done.stdout)
        env = dict(os.environ, FRENO_URL=f"127.0.0.1:{free_port()}")
        done = subprocess.run([script, "check", "app", "main"], capture_output=True, timeout=60, env=env)
        self.assertEqual(done.returncode, 2)
        self.assertIn(b"connection refused", done.stdout)

    def test_run_missing_program(self):
        """
        C{freno-cli run} of a program that does not exist exits 127, as a
        shell does.
        """
        state = FakeGroupState(time.time)
        state.leader = "a"
        state.clusters["main"] = (0.1, 1.0)
        server = FakeServer(FakeFreno("a", state))
        self.addCleanup(server.stop)
        done = subprocess.run(
            [sys.executable, "-m", "freno.client.cli", "run", "--app", "a", "--cluster", "main", "--url",
             server.url, "--", os.path.join(self.mktemp(), "missing")],
            capture_output=True, timeout=60, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
        )
        self.assertEqual(done.returncode, 127, done.stderr)
