"""
The site on a real listening port (127.0.0.1, free port, trial's reactor):
Content-Length on GET and HEAD of the check path, and keep-alive.
"""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.trial.unittest import TestCase

from treq.client import HTTPClient
from twisted.web.client import Agent, HTTPConnectionPool

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings
from freno.consensus.local import LocalConsensus
from freno.http.site import build_site
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.metrics.registry import Registry


class _Raw(Protocol):
    """
    Writes raw requests on one connection (the last one says
    C{Connection: close}) and collects everything until the server closes.
    """

    def __init__(self, requests, done):
        self.requests = requests
        self.done = done
        self.data = b""

    def connectionMade(self):
        self.transport.write(self.requests)

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.done.callback(self.data)


class PortTests(TestCase):
    """
    Real sockets.
    """

    def setUp(self):
        clusters = {"main": ClusterSettings(name="main", throttle_threshold=1.0)}
        metrics = AggregatedMetrics(reactor, {"main": 1.0}, 60.0)
        metrics.set("main", ClusterMetric(0.5, None, reactor.seconds()))
        site = build_site(
            clock=reactor,
            config=Config(mysql=MySQLStoreSettings(clusters=clusters)),
            consensus=LocalConsensus(reactor),
            metrics=metrics,
            registry=Registry(),
            hostname="node1",
        )
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.addCleanup(self.pool.closeCachedConnections)
        self.client = HTTPClient(Agent(reactor, pool=self.pool))

    def exchange(self, *requests):
        """
        Send C{requests} (C{(method, path)}) on one connection.
        """
        raw = b""
        for n, (method, path) in enumerate(requests):
            close = b"Connection: close\r\n" if n == len(requests) - 1 else b""
            raw += b"%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (method, path, close)
        done = defer.Deferred()
        factory = ClientFactory()
        factory.protocol = lambda: _Raw(raw, done)
        connector = reactor.connectTCP("127.0.0.1", self.port.getHost().port, factory)
        timeout = reactor.callLater(10, connector.disconnect)
        done.addBoth(lambda r: (timeout.cancel() if timeout.active() else None, r)[1])
        return done

    @defer.inlineCallbacks
    def test_content_length_and_keep_alive(self):
        """
        On one keep-alive connection: GET of the check path carries its
        body's length, HEAD C{Content-Length: 0} and no body, HEAD of another
        route the would-be body's length; nothing is chunked.
        """
        data = yield self.exchange(
            (b"HEAD", b"/check/a/mysql/main"),
            (b"GET", b"/check/a/mysql/main"),
            (b"HEAD", b"/hostname"),
            (b"GET", b"/lb-check"),
        )
        check_body = b'{"StatusCode":200,"Value":0.5,"Threshold":1,"Message":""}\n'
        responses = data.split(b"HTTP/1.1 ")[1:]
        self.assertEqual(len(responses), 4)
        heads = [r.partition(b"\r\n\r\n") for r in responses]
        lengths = []
        for head, _, rest in heads:
            self.assertTrue(head.startswith(b"200 OK"), head)
            self.assertNotIn(b"transfer-encoding", head.lower())
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    lengths.append(int(line.split(b":")[1]))
        self.assertEqual(lengths, [0, len(check_body), len(b'"node1"\n'), 34])
        self.assertEqual(heads[0][2], b"")
        self.assertEqual(heads[1][2], check_body)
        self.assertEqual(heads[2][2], b"")
        self.assertEqual(heads[3][2], b'{"StatusCode":200,"Message":"OK"}\n')

    @defer.inlineCallbacks
    def test_treq(self):
        """
        A real HTTP client (treq, persistent pool) gets the check answers.
        """
        for _ in range(3):
            response = yield self.client.get(self.base + "/check/a/mysql/main")
            body = yield response.content()
            self.assertEqual(response.code, 200)
            self.assertEqual(body, b'{"StatusCode":200,"Value":0.5,"Threshold":1,"Message":""}\n')
            response = yield self.client.head(self.base + "/check/a/mysql/main")
            self.assertEqual((yield response.content()), b"")
