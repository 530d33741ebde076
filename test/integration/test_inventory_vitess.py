"""
L{freno.inventory.vitess.VitessSource} with treq against a real HTTP
stand-in for vtctld on a loopback port.
"""

from __future__ import annotations


from treq.client import HTTPClient
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.server import Site

from freno.config.model import VitessSettings
from freno.hosts import HostKey
from freno.inventory.interfaces import InventoryError
from freno.inventory.vitess import VitessSource
from test.vtctld_standin import VtctldResource

class RealServerTests(TestCase):
    """
    L{VitessSource} with treq against a vtctld stand-in on a real loopback
    port (integration: real sockets, the real reactor).
    """

    timeout = 30

    def setUp(self):
        self.resource = VtctldResource()
        self.port = reactor.listenTCP(0, Site(self.resource), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.api = f"http://127.0.0.1:{self.port.getHost().port}"
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        self.client = HTTPClient(Agent(reactor, pool=pool))

    def tearDown(self):
        for request in self.resource.pending:
            if not request.finished:
                request.finish()

    def source(self, keyspace="test", cells=(), timeout_secs=0):
        settings = VitessSettings(api=self.api, keyspace=keyspace, shard="00", cells=cells, timeout_secs=timeout_secs)
        return VitessSource(settings, reactor, self.client)

    @defer.inlineCallbacks
    def test_tablets_cells_404_malformed(self):
        """
        Success, the cell filter, 404 and malformed JSON over real HTTP.
        """
        hosts = yield self.source().hosts()
        self.assertEqual(hosts, [HostKey("replica1", 3306), HostKey("replica2", 3306)])
        hosts = yield self.source(cells=("cell1", "cell2")).hosts()
        self.assertEqual(len(hosts), 2)
        self.assertIn("/api/keyspace/test/tablets/00?cells=cell1%2Ccell2", self.resource.uris)
        hosts = yield self.source(cells=("cell1",)).hosts()
        self.assertEqual(hosts, [HostKey("replica1", 3306)])
        error = yield self.assertFailure(self.source(keyspace="nope").hosts(), InventoryError)
        self.assertIn("404 Not Found", str(error))
        error = yield self.assertFailure(self.source(keyspace="bad").hosts(), InventoryError)
        self.assertIn("malformed", str(error))

    @defer.inlineCallbacks
    def test_slow_times_out(self):
        """
        A vtctld that never answers fails after TimeoutSecs.
        """
        start = reactor.seconds()
        error = yield self.assertFailure(self.source(keyspace="slow", timeout_secs=1).hosts(), InventoryError)
        elapsed = reactor.seconds() - start
        self.assertIn("timed out", str(error))
        self.assertTrue(0.9 <= elapsed < 3, elapsed)

    @defer.inlineCallbacks
    def test_server_down(self):
        """
        A vtctld that is not listening fails.
        """
        yield self.port.stopListening()
        yield self.assertFailure(self.source().hosts(), InventoryError)
