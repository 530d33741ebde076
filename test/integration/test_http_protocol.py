"""
Tests for L{freno.http.protocol}: the raw status line of every status the
service sends, on the check resource and on the Klein API, and the request
head limits (414, 431), over real sockets (127.0.0.1, a free port, trial's
reactor).
"""

from __future__ import annotations

import json
import re

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.http import RESPONSES

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings
from freno.consensus.interface import ConsensusError
from freno.consensus.local import LocalConsensus
from freno.http.fast_check import FastCheckChannel
from freno.http.protocol import (
    MAX_HEADER_BYTES,
    MAX_REQUEST_LINE,
    PHRASES,
    FrenoChannel,
    FrenoRequest,
    reason_phrase,
)
from freno.http.site import build_site
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.metrics.registry import Registry


class _Raw(Protocol):
    """
    Writes C{data} and collects everything until the server closes.
    """

    def __init__(self, data: bytes, done: defer.Deferred) -> None:
        self.data = data
        self.done = done
        self.received = b""

    def connectionMade(self):
        self.transport.write(self.data)

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.done.callback(self.received)


class PhraseTests(SynchronousTestCase):
    """
    L{reason_phrase} and L{FrenoRequest}.
    """

    def test_standard_phrases(self):
        """
        The codes Twisted's table lacks get their standard phrase.
        """
        self.assertEqual(reason_phrase(429), b"Too Many Requests")
        self.assertEqual(reason_phrase(431), b"Request Header Fields Too Large")
        self.assertEqual(reason_phrase(414), b"URI Too Long")
        self.assertEqual(reason_phrase(417), b"Expectation Failed")
        self.assertEqual(reason_phrase(418), b"I'm a Teapot")
        self.assertEqual(reason_phrase(299), b"Unknown Status")

    def test_twisted_table_untouched(self):
        """
        Twisted's global table is not changed.
        """
        self.assertNotIn(429, RESPONSES)

    def test_every_sent_code_has_a_phrase(self):
        """
        Every status the service sends is in L{PHRASES}.
        """
        for code in (200, 301, 307, 400, 404, 405, 414, 417, 429, 431, 500):
            self.assertIn(code, PHRASES)


class SocketTests(TestCase):
    """
    The whole site on a real port.
    """

    def setUp(self):
        clusters = {
            "main": ClusterSettings(name="main", throttle_threshold=1.0),
            "empty": ClusterSettings(name="empty", throttle_threshold=1.0),
        }
        self.metrics = AggregatedMetrics(reactor, {"main": 1.0, "empty": 1.0}, 3600.0)
        self.set_value(0.5)
        self.consensus = LocalConsensus(reactor)
        self.site = build_site(
            clock=reactor,
            config=Config(mysql=MySQLStoreSettings(clusters=clusters)),
            consensus=self.consensus,
            metrics=self.metrics,
            registry=Registry(),
            hostname="",
        )
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    def set_value(self, value):
        self.metrics.set("main", ClusterMetric(value, None, reactor.seconds()))

    def send(self, data: bytes) -> defer.Deferred:
        """
        Send raw bytes on a new connection; fire with all the server sent
        before closing.
        """
        done: defer.Deferred = defer.Deferred()
        factory = ClientFactory()
        factory.protocol = lambda: _Raw(data, done)
        connector = reactor.connectTCP("127.0.0.1", self.port.getHost().port, factory)
        timeout = reactor.callLater(10, connector.disconnect)
        done.addBoth(lambda r: (timeout.cancel() if timeout.active() else None, r)[1])
        return done

    def request(self, method: bytes, path: bytes, headers: bytes = b"") -> defer.Deferred:
        return self.send(
            b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (method, path, headers)
        )

    @defer.inlineCallbacks
    def status_line(self, method: bytes, path: bytes, headers: bytes = b""):
        data = yield self.request(method, path, headers)
        return data.partition(b"\r\n")[0]

    @defer.inlineCallbacks
    def test_status_lines(self):
        """
        Each status sent, by the check resource and by the API, carries its
        standard reason phrase.
        """
        cases = [
            # the check resource
            (b"GET", b"/check/a/mysql/main", b"200 OK"),
            (b"GET", b"/check/a/mysql/main/", b"301 Moved Permanently"),
            (b"HEAD", b"/check/a/mysql/main/", b"307 Temporary Redirect"),
            (b"GET", b"/check-read/a/mysql/main/abc", b"400 Bad Request"),
            (b"HEAD", b"/check/a/mysql/nosuch", b"404 Not Found"),
            (b"POST", b"/check/a/mysql/main", b"405 Method Not Allowed"),
            (b"HEAD", b"/check/abusing-app/mysql/main", b"417 Expectation Failed"),
            (b"HEAD", b"/check-read/a/mysql/main/0.1", b"429 Too Many Requests"),
            (b"GET", b"/check-read/a/mysql/main/0.1", b"429 Too Many Requests"),
            (b"HEAD", b"/check/a/mysql/empty", b"500 Internal Server Error"),
            # the Klein API
            (b"GET", b"/lb-check", b"200 OK"),
            (b"GET", b"/LB-CHECK", b"301 Moved Permanently"),
            (b"HEAD", b"/LB-CHECK", b"307 Temporary Redirect"),
            (b"GET", b"/throttle-app/a/ttl/x", b"400 Bad Request"),
            (b"GET", b"/nosuch", b"404 Not Found"),
            (b"POST", b"/lb-check", b"405 Method Not Allowed"),
            (b"GET", b"/hostname", b"500 Internal Server Error"),
        ]
        for method, path, expected in cases:
            line = yield self.status_line(method, path)
            self.assertEqual(line, b"HTTP/1.1 " + expected, (method, path))

    @defer.inlineCallbacks
    def test_api_consensus_error_phrase(self):
        """
        A failed command's 500 carries its phrase too.
        """
        self.consensus.reject_commands = ConsensusError("not leader")
        line = yield self.status_line(b"GET", b"/throttle-app/a")
        self.assertEqual(line, b"HTTP/1.1 500 Internal Server Error")

    @defer.inlineCallbacks
    def test_request_line_limit(self):
        """
        A request line of L{MAX_REQUEST_LINE} bytes is served; one byte more
        is 414 with a JSON body naming the limit (none for HEAD); far more
        (no line end in sight) is 414 too. The site keeps serving.
        """
        prefix = b"GET /check/"
        suffix = b"/mysql/main HTTP/1.1"
        app = b"a" * (MAX_REQUEST_LINE - len(prefix) - len(suffix))
        data = yield self.request(b"GET", b"/check/" + app + b"/mysql/main")
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:100])

        data = yield self.request(b"GET", b"/check/" + app + b"a/mysql/main")
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 414 URI Too Long\r\n"), head)
        self.assertEqual(
            json.loads(body),
            {"StatusCode": 414, "Message": f"request line longer than {MAX_REQUEST_LINE} bytes"},
        )
        self.assertIn(b"Content-Length: %d" % len(body), head)

        data = yield self.request(b"HEAD", b"/check/" + app + b"a/mysql/main")
        self.assertEqual(
            data, b"HTTP/1.1 414 URI Too Long\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )

        data = yield self.send(b"GET /check/" + b"x" * (4 * MAX_REQUEST_LINE))
        self.assertTrue(data.startswith(b"HTTP/1.1 414 URI Too Long\r\n"), data[:100])

        line = yield self.status_line(b"GET", b"/check/a/mysql/main")
        self.assertEqual(line, b"HTTP/1.1 200 OK")

    @defer.inlineCallbacks
    def test_long_names_over_a_socket(self):
        """
        A name of 8,000 characters goes through every kind of route over a
        real connection.
        """
        name = b"n" * 8000
        for method, path, expected in [
            (b"HEAD", b"/check/" + name + b"/mysql/main", b"200 OK"),
            (b"GET", b"/throttle-app/" + name + b"/ttl/5", b"200 OK"),
            (b"HEAD", b"/check/" + name + b"/mysql/main", b"417 Expectation Failed"),
            (b"GET", b"/unthrottle-app/" + name, b"200 OK"),
            (b"GET", b"/skip-host/" + name, b"200 OK"),
            (b"GET", b"/recover-host/" + name, b"200 OK"),
        ]:
            line = yield self.status_line(method, path)
            self.assertEqual(line, b"HTTP/1.1 " + expected, (method, path[:20]))
        data = yield self.request(b"GET", b"/recent-apps")
        self.assertIn(name + b"/127.0.0.1", data)

    @defer.inlineCallbacks
    def test_header_limit(self):
        """
        Headers up to L{MAX_HEADER_BYTES} in all are served; more, or one
        header line longer than L{MAX_REQUEST_LINE}, is 431.
        """
        line = b"X-Pad: " + b"p" * 1000 + b"\r\n"
        fits = line * ((MAX_HEADER_BYTES - 200) // len(line))
        status = yield self.status_line(b"GET", b"/check/a/mysql/main", fits)
        self.assertEqual(status, b"HTTP/1.1 200 OK")

        data = yield self.request(b"GET", b"/check/a/mysql/main", fits + line * 2)
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), head)
        self.assertEqual(json.loads(body)["StatusCode"], 431)
        self.assertIn(str(MAX_HEADER_BYTES), json.loads(body)["Message"])

        long_header = b"X-Long: " + b"l" * MAX_REQUEST_LINE + b"\r\n"
        status = yield self.status_line(b"HEAD", b"/check/a/mysql/main", long_header)
        self.assertEqual(status, b"HTTP/1.1 431 Request Header Fields Too Large")

    @defer.inlineCallbacks
    def test_twisted_bad_request_kept(self):
        """
        A malformed request line is still Twisted's 400 Bad Request.
        """
        data = yield self.send(b"garbage\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), data)

    @defer.inlineCallbacks
    def test_fast_and_plain_alike(self):
        """
        Over a real socket, the fast check channel (the default) and the
        plain channel write the same bytes for pipelined checks with an API
        request among them, the C{Date} and data-age values aside.
        """
        stream = (
            b"GET /check/a/mysql/main HTTP/1.1\r\n\r\n"
            b"HEAD /check-read/a/mysql/main/0.1?p=low HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /lb-check HTTP/1.1\r\n\r\n"
            b"GET /check/a/mysql/main HTTP/1.1\r\nConnection: close\r\n\r\n"
        )
        self.assertIsInstance(self.site.buildProtocol(None), FastCheckChannel)
        fast = yield self.send(stream)
        self.site.protocol = FrenoChannel
        plain = yield self.send(stream)
        clean = re.compile(rb"(Date|X-Freno-Data-Age-Ms): [^\r]*\r\n")
        self.assertEqual(clean.sub(b"", fast), clean.sub(b"", plain))
        self.assertEqual(fast.count(b"HTTP/1.1 200 OK\r\n"), 3)

    def test_site_classes(self):
        """
        The site builds L{FrenoChannel}s that make L{FrenoRequest}s.
        """
        channel = self.site.buildProtocol(None)
        self.assertIsInstance(channel, FrenoChannel)
        self.assertIs(channel.requestFactory, FrenoRequest)
