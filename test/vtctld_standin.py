"""
A vtctld stand-in for the Vitess inventory tests (not a test module): the
tablets vtctld renders for a keyspace, every tablet type freno knows, and a
twisted.web resource that serves them, with a malformed and a never-answering
keyspace. The unit tests serve it through StubTreq, the integration tests
on a real loopback port.
"""

from __future__ import annotations

import json

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

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
