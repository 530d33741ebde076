"""
L{freno.inventory.vitess.VitessSource} with treq against a real HTTP
stand-in for vtctld on a loopback port.
"""

from __future__ import annotations

import json

from treq.client import HTTPClient
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from freno.config.model import VitessSettings
from freno.hosts import HostKey
from freno.inventory.interfaces import InventoryError
from freno.inventory.vitess import VitessSource

MASTER, REPLICA, BATCH, SPARE, BACKUP, RESTORE = 1, 2, 3, 4, 6, 7


def tablet(name, type_=None, cell="cell1", port=3306, **extra):
    """
    One tablet object as vtctld renders it.
    """
    t = {"alias": {"cell": cell, "uid": abs(hash(name)) % 1000}, "mysql_hostname": name, "mysql_port": port}
    if type_ is not None:
        t["type"] = type_
    t.update(extra)
    return t


TABLETS = [
    tablet("master", MASTER),
    tablet("replica1", REPLICA),
    tablet("replica2", REPLICA, cell="cell2", stats={"realtime": {"health_error": ""}, "serving": True, "up": True}),
    tablet("replica-nil-realtime", REPLICA, stats={"serving": True}),
    tablet("replica-last-error", REPLICA, stats={"last_error": "boom", "realtime": {}}),
    tablet("spare", SPARE),
    tablet("batch", BATCH),
    tablet("backup", BACKUP),
    tablet("restore", RESTORE),
    tablet("typeless"),
]


class VtctldResource(Resource):
    """
    A vtctld stand-in: C{/api/keyspace/test/tablets/00} serves L{TABLETS}
    (filtered by C{?cells=} as vtctld does); C{/api/keyspace/bad/...}
    serves malformed JSON; C{/api/keyspace/slow/...} never answers; anything
    else is 404.
    """

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.uris = []
        self.pending = []

    def render_GET(self, request):
        uri = request.uri.decode()
        self.uris.append(uri)
        path = request.path.decode()
        if path == "/api/keyspace/test/tablets/00":
            cells = request.args.get(b"cells", [b""])[0].decode()
            wanted = [c for c in cells.split(",") if c]
            body = [t for t in TABLETS if not wanted or t["alias"]["cell"] in wanted]
            return json.dumps(body).encode()
        if path == "/api/keyspace/bad/tablets/00":
            return b'[{"type": 2, "mysql_hostname": '
        if path == "/api/keyspace/slow/tablets/00":
            self.pending.append(request)
            return NOT_DONE_YET
        request.setResponseCode(404)
        return b"[]"


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
