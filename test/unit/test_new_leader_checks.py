"""
A newly elected leader never answers from an empty inventory: until its first
probe result a configured cluster answers 500 C{Metric not collected yet} on
every check route, method and flag, whatever its inventory source does (slow,
failing, garbage), for every source type.

The whole node runs in memory: the real source classes (HAProxy, ProxySQL,
Vitess, static) against in-process stand-ins (StubTreq resources, scripted
DB-API connections, held thread pools), the real L{Inventory} refresh loop
and L{ProbeService} with the fake metric source, L{LocalConsensus} promoted
from follower to leader, and the site through StubTreq. Time is a Clock.
"""

from __future__ import annotations

import json
from typing import Callable, List, Tuple

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from freno.config.model import (
    ClusterSettings,
    Config,
    MySQLStoreSettings,
    ProbeSettings,
    ProxySQLSettings,
    VitessSettings,
)
from freno.consensus.local import LocalConsensus
from freno.hosts import HostKey
from freno.http.site import build_site
from freno.inventory.haproxy import CSVFetcher, HAProxySource
from freno.inventory.proxysql import ProxySQLSource
from freno.inventory.refresh import Inventory
from freno.inventory.static import StaticSource
from freno.inventory.vitess import VitessSource
from freno.probe.fake import FakeMetricSource
from freno.probe.metrics import AggregatedMetrics
from freno.probe.service import ProbeService
from freno.metrics.catalogue import INVENTORY_GLITCHES
from freno.metrics.registry import Registry

NOT_COLLECTED = "Metric not collected yet"
#: Every check route on cluster C{c}, each also with C{?p=low}.
ROUTES = [
    "/check/app/mysql/c",
    "/check-if-exists/app/mysql/c",
    "/check-read/app/mysql/c/1",
    "/check-read-if-exists/app/mysql/c/1",
]
PATHS = ROUTES + [route + "?p=low" for route in ROUTES]
#: Seconds after promotion at which every route is checked: at once, while a
#: slow source is still pending, after the sources' 5 s timeouts, after the
#: inventory's own timeout and the next refreshes.
TIMES = [0.0, 1.0, 5.5, 10.5, 21.0, 45.0]
REFRESH_INTERVAL = 10.0

GOOD_CSV = b"# pxname,svname,status,\npool,db1,UP,\npool,BACKEND,UP,\n"
GOOD_TABLETS = json.dumps(
    [{"type": 2, "mysql_hostname": "db1", "mysql_port": 3306, "alias": {"cell": "z"}}]
).encode()


class ThreadlessClock(Clock):
    """
    A Clock whose C{callFromThread} calls at once (for C{deferToThreadPool}).
    """

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)


class Page(Resource):
    """
    An HTTP stand-in (HAProxy stats page or vtctld) whose behaviour the test
    sets: C{"slow"} never answers, C{"fail"} answers 503, C{"garbage"}
    answers 200 with bytes that are no CSV and no JSON, C{"good"} answers
    C{good}.
    """

    isLeaf = True

    def __init__(self, mode: str, good: bytes) -> None:
        super().__init__()
        self.mode = mode
        self.good = good
        self.pending: List = []
        self.hits = 0

    def render_GET(self, request):
        self.hits += 1
        if self.mode == "slow":
            self.pending.append(request)
            return NOT_DONE_YET
        if self.mode == "fail":
            request.setResponseCode(503)
            return b"<html>503 Service Unavailable</html>"
        if self.mode == "garbage":
            return b"\x00\xff<html>not, a\ncsv[{\n\n,,,\n"
        return self.good


class HeldThreadPool:
    """
    A thread pool whose work never runs (a ProxySQL admin port that accepts
    and never answers).
    """

    def __init__(self) -> None:
        self.held: List = []

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        self.held.append((on_result, f))


class SyncThreadPool:
    """
    A thread pool that runs work at once on the calling thread.
    """

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        try:
            result = f(*args, **kwargs)
        except BaseException:
            on_result(False, Failure())
        else:
            on_result(True, result)


class ScriptedConnection:
    """
    A DB-API connection answering every query with C{rows}.
    """

    def __init__(self, rows) -> None:
        self.rows = rows

    def cursor(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql):
        pass

    def fetchall(self):
        return self.rows

    def close(self):
        pass


PROXYSQL = ProxySQLSettings(addresses=("proxysql:6032",), user="u", password="p", hostgroup_id=10)


def haproxy(clock: Clock, mode: str):
    """
    A real L{HAProxySource} reading an in-memory stats page.
    """
    page = Page(mode, GOOD_CSV)
    fetcher = CSVFetcher(clock, StubTreq(page), timeout=5.0)
    return HAProxySource(("http://haproxy:8080",), "pool", 3306, fetcher), page


def vitess(clock: Clock, mode: str):
    """
    A real L{VitessSource} reading an in-memory vtctld.
    """
    page = Page(mode, GOOD_TABLETS)
    settings = VitessSettings(api="http://vtctld:15000", keyspace="ks", shard="00")
    return VitessSource(settings, clock, StubTreq(page)), page


def proxysql(clock: Clock, mode: str):
    """
    A real L{ProxySQLSource} over a scripted connection (or a thread pool
    that never runs the query, for C{"slow"}).
    """
    rows = {
        "garbage": [("db1", "not-a-port", "ONLINE"), (None,)],
        "good": [("db1", 3306, "ONLINE")],
    }

    def connect(**kwargs):
        if mode == "fail":
            raise OSError("(2003) Can't connect to MySQL server on 'proxysql' (111)")
        return ScriptedConnection(rows.get(mode, []))

    pool = HeldThreadPool() if mode == "slow" else SyncThreadPool()
    return ProxySQLSource(PROXYSQL, clock, pool, clock=clock, connect=connect), pool


def static(clock: Clock, mode: str):
    """
    A real L{StaticSource}: with bad entries for C{"fail"} and C{"garbage"}
    (the config loader refuses them; the source fails each refresh), a good
    host whose probe never answers for C{"slow"}.
    """
    entries = {"fail": (":1",), "garbage": ("db1:notaport",)}.get(mode, ("db1",))
    return StaticSource(entries, 3306), None


SOURCES: List[Tuple[str, Callable]] = [
    ("haproxy", haproxy),
    ("proxysql", proxysql),
    ("vitess", vitess),
    ("static", static),
]
MODES = ("slow", "fail", "garbage")


class Node:
    """
    One node in memory whose only cluster, C{c}, takes its hosts from
    C{source}; it starts as a follower and L{promote} makes it leader.
    """

    def __init__(self, testcase: SynchronousTestCase, clock: Clock, source) -> None:
        self.testcase = testcase
        self.clock = clock
        clusters = {"c": ClusterSettings(name="c", throttle_threshold=1.0)}
        self.config = Config(
            mysql=MySQLStoreSettings(
                clusters=clusters,
                probe=ProbeSettings(interval=0.05, freshness=0.5,
                                    inventory_refresh_interval=REFRESH_INTERVAL),
            )
        )
        self.stats = Registry()
        self.consensus = LocalConsensus(clock, leader=False)
        self.inventory = Inventory(clock, clusters, {"c": source}, self.stats,
                                   REFRESH_INTERVAL)
        self.probes = FakeMetricSource(clock)
        self.probes.set_value(HostKey("db1", 3306), 0.25)
        self.metrics = AggregatedMetrics(clock, {"c": 1.0}, 0.5)
        self.service = ProbeService(clock, self.config, self.consensus, self.inventory,
                                    self.probes, self.metrics, self.stats)
        site = build_site(clock=clock, config=self.config, consensus=self.consensus,
                          metrics=self.metrics, registry=self.stats, hostname="n1")
        self.treq = StubTreq(site.resource)
        self.service.startService()
        testcase.addCleanup(self.stop)

    def stop(self) -> None:
        if self.service.running:
            self.service.stopService()

    def promote(self) -> None:
        """
        Become leader (the inventory refreshes and probing starts at once).
        """
        self.consensus.set_leader(True)

    def request(self, method: str, path: str) -> Tuple[int, bytes]:
        d = self.treq.request(method, "http://freno" + path, allow_redirects=False)
        response = self.testcase.successResultOf(d)
        body = self.testcase.successResultOf(response.content())
        return response.code, body

    def answers(self) -> List[Tuple[str, str, int, object]]:
        """
        Every route, flag and method: C{(method, path, status, message)},
        the message C{None} for HEAD.
        """
        out = []
        for path in PATHS:
            code, body = self.request("GET", path)
            out.append(("GET", path, code, json.loads(body)["Message"]))
            code, body = self.request("HEAD", path)
            out.append(("HEAD", path, code, None if body == b"" else body))
        return out


class NewLeaderTests(SynchronousTestCase):
    """
    A new leader whose inventory has not loaded answers every check 500
    C{Metric not collected yet}.
    """

    def assert_not_collected(self, node: Node, context: str,
                             text: str = NOT_COLLECTED) -> None:
        for method, path, code, message in node.answers():
            expected_message = text if method == "GET" else None
            self.assertEqual(
                (code, message), (500, expected_message), f"{context}: {method} {path}"
            )

    def run_case(self, name: str, make: Callable, mode: str) -> None:
        clock = ThreadlessClock()
        clock.advance(1_700_000_000)
        source, standin = make(clock, mode)
        node = Node(self, clock, source)
        self.assert_not_collected(node, f"{name}/{mode} follower", "not leader")
        node.promote()
        elapsed = 0.0
        for at in TIMES:
            while elapsed < at:  # small steps: a Clock runs what is due once
                clock.advance(0.5)
                elapsed += 0.5
            self.assert_not_collected(node, f"{name}/{mode} at +{at:g}s")
        self.assertIsNone(node.inventory.hosts("c"))
        if name == "static" and mode == "slow":
            return
        glitches = node.stats.value(INVENTORY_GLITCHES, ("c",)) or 0
        self.assertGreaterEqual(glitches, 2, f"{name}/{mode}")

    def test_every_source_type_and_behaviour(self):
        """
        HAProxy, ProxySQL, Vitess and static sources that are slow, failing
        or answering garbage: every check route (check, check-read, their
        if-exists forms; GET and HEAD; with and without C{p=low}) answers
        500 C{Metric not collected yet}, at promotion and after every
        refresh and timeout, never 200 and never 404.
        """
        for name, make in SOURCES:
            for mode in MODES:
                if name == "static" and mode == "slow":
                    continue
                self.run_case(name, make, mode)

    def test_static_hosts_not_probed_yet(self):
        """
        A static cluster whose hosts are known but whose probes have not
        answered is C{Metric not collected yet} on every route too.
        """
        clock = ThreadlessClock()
        clock.advance(1_700_000_000)
        source, _ = static(clock, "good")
        node = Node(self, clock, source)
        node.probes.hold(HostKey("db1", 3306))
        node.promote()
        self.assertEqual(node.inventory.hosts("c"), (HostKey("db1", 3306),))
        self.assert_not_collected(node, "static, probe held")

    def test_recovery_serves(self):
        """
        Once each source answers a good list and the host is probed, the
        same node answers 200: the 500s above are the inventory's doing.
        """
        for name, make in SOURCES[:3]:
            clock = ThreadlessClock()
            clock.advance(1_700_000_000)
            source, standin = make(clock, "fail")
            node = Node(self, clock, source)
            node.promote()
            self.assert_not_collected(node, f"{name} failing")
            if name == "proxysql":
                source._connect = lambda **kw: ScriptedConnection([("db1", 3306, "ONLINE")])
            else:
                standin.mode = "good"
            clock.advance(REFRESH_INTERVAL)
            self.assertEqual(node.inventory.hosts("c"), (HostKey("db1", 3306),), name)
            for method, path, code, message in node.answers():
                self.assertEqual(code, 200, f"{name}: {method} {path}")
            node.stop()

    def test_unknown_cluster_still_404(self):
        """
        An unknown cluster is still 404 on the leader, and the if-exists
        routes still turn that into 200 (freno's meaning of if-exists).
        """
        clock = ThreadlessClock()
        source, _ = static(clock, "good")
        node = Node(self, clock, source)
        node.promote()
        self.assertEqual(node.request("HEAD", "/check/app/mysql/nosuch")[0], 404)
        self.assertEqual(node.request("HEAD", "/check-if-exists/app/mysql/nosuch")[0], 200)
