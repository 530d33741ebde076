"""
Tests for the status page's JSON (L{freno.http.dashboard.views}) through
the whole site in memory (L{test.unit.answer_harness}): rows problems
first with their status words and host counts, throttles with their
countdown, recent apps with their last status, per-second caching, the
history, and a follower's view.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.commands import AuditContext
from freno.consensus.interface import ControlStatus, Member
from freno.consensus.local import LocalConsensus
from freno.http.dashboard.audit_tail import AuditTail
from freno.http.dashboard.history import History
from freno.http.dashboard.leadership import LeadershipLog
from freno.http.dashboard.parts import DashboardParts
from freno.http.dashboard.sampler import DashboardSampler
from freno.http.dashboard.views import default_url, host_counts, row_status
from test.unit.answer_harness import START, Node, cluster, host

DB1, DB2, DB3, DB4, DB5 = (host(f"db{i}") for i in range(1, 6))


def get_json(testcase, node, path):
    response, body = node.request("GET", path)
    testcase.assertEqual(response.code, 200, body)
    testcase.assertEqual(response.headers.getRawHeaders(b"access-control-allow-origin"), [b"*"])
    return json.loads(body)


class FollowerConsensus(LocalConsensus):
    """
    A follower that knows the raft leader C{10.0.0.1:10008}.
    """

    def leader(self):
        return "10.0.0.1:10008"

    def control_status(self):
        return ControlStatus(
            "raft", 4,
            (Member("10.0.0.2:10008", True, False, True), Member("10.0.0.1:10008", False, True, True)),
        )


class FunctionTests(SynchronousTestCase):
    """
    The pure helpers.
    """

    def test_row_status(self):
        """
        Over the threshold or holding is C{over}; from the resume
        threshold (or 80% of the threshold) C{warn}; no value is C{error}
        on a node that probes and C{unknown} on one that does not.
        """
        self.assertEqual(row_status(1.1, 1.0, None, False, None, True), "over")
        self.assertEqual(row_status(0.5, 1.0, 0.8, True, None, True), "over")
        self.assertEqual(row_status(0.8, 1.0, None, False, None, True), "warn")
        self.assertEqual(row_status(0.6, 1.0, 0.5, False, None, True), "warn")
        self.assertEqual(row_status(0.79, 1.0, None, False, None, True), "ok")
        self.assertEqual(row_status(None, 1.0, None, False, "stale", True), "error")
        self.assertEqual(row_status(None, 1.0, None, False, None, False), "unknown")

    def test_host_counts(self):
        """
        Failed, stale and erring hosts count as failing.
        """
        hosts = [{"state": s} for s in ("counted", "counted", "ignored", "skipped", "failed", "stale", "error")]
        self.assertEqual(
            host_counts(hosts), {"total": 7, "counted": 2, "ignored": 1, "skipped": 1, "failing": 3}
        )

    def test_default_url(self):
        """
        Without C{DashboardURLs}, a raft member is its host on this node's
        port; a MySQL-backend id is already C{host:port}.
        """
        self.assertEqual(default_url("10.0.0.1:10008", "raft", 8087), "http://10.0.0.1:8087")
        self.assertEqual(default_url("db-host:8087", "mysql", 9), "http://db-host:8087")
        self.assertIsNone(default_url("", "raft", 8087))


class StateTests(SynchronousTestCase):
    """
    C{GET /dashboard/state.json} on a leader.
    """

    def node(self, **kw):
        return Node(
            self,
            [cluster("calm", 1.0), cluster("busy", 1.0), cluster("hot", 1.0, resume_threshold=0.5),
             cluster("dead", 1.0)],
            {"calm": [DB1], "busy": [DB2], "hot": [DB3, DB4], "dead": [DB5]},
            {DB1: 0.1, DB2: 0.85, DB3: 2.0, DB4: 0.1},
            **kw,
        )

    def test_rows(self):
        """
        Rows come problems first, each with its status word, value against
        threshold, data age and host counts.
        """
        node = self.node()
        node.source.set_error(DB5, "connection refused")
        node.settle()
        node.clock.advance(1)
        doc = get_json(self, node, "/dashboard/state.json")
        self.assertEqual(
            [(r["name"], r["status"]) for r in doc["clusters"]],
            [("dead", "error"), ("hot", "over"), ("busy", "warn"), ("calm", "ok")],
        )
        hot = doc["clusters"][1]
        self.assertEqual((hot["value"], hot["threshold"], hot["resume_threshold"], hot["holding"]), (2.0, 1.0, 0.5, True))
        self.assertEqual(hot["hosts"], {"total": 2, "counted": 2, "ignored": 0, "skipped": 0, "failing": 0})
        self.assertIsInstance(hot["age_ms"], int)
        dead = doc["clusters"][0]
        self.assertEqual(dead["hosts"]["failing"], 1)
        self.assertIn("connection refused", dead["error"])
        self.assertTrue(doc["is_leader"])

    def test_apps(self):
        """
        Throttled apps carry their countdown (the built-in C{abusing-app}
        is left out), soonest first; recently checked apps their last
        status, newest first.
        """
        node = self.node()
        self.successResultOf(node.consensus.throttle_app("later", START + 600, 1.0))
        self.successResultOf(node.consensus.throttle_app("sooner", START + 90, 0.5))
        node.throttler.check("a1", "mysql", "calm", "10.1.1.1")
        node.clock.advance(0.5)
        node.throttler.check("a2", "mysql", "hot", "10.1.1.2")
        node.clock.advance(1)
        doc = get_json(self, node, "/dashboard/state.json")
        now = doc["time_unix"]
        self.assertEqual([t["app"] for t in doc["throttles"]], ["sooner", "later"])
        self.assertAlmostEqual(doc["throttles"][0]["expires_in_s"], START + 90 - now, places=2)
        self.assertEqual(
            [(r["app"], r["remote"], r["status"]) for r in doc["recent_apps"]],
            [("a2", "10.1.1.2", 429), ("a1", "10.1.1.1", 200)],
        )

    def test_cached_per_second(self):
        """
        Ten pages asking within one second cost one build; the next second
        builds again.
        """
        node = self.node()
        node.clock.advance(1 - (node.clock.seconds() % 1) + 0.01)
        cache = node.site.resource.dashboard_resource._views.cache
        before = cache.builds
        bodies = {node.request("GET", "/dashboard/state.json")[1] for _ in range(10)}
        self.assertEqual(len(bodies), 1)
        self.assertEqual(cache.builds, before + 1)
        node.clock.advance(1)
        node.request("GET", "/dashboard/state.json")
        self.assertEqual(cache.builds, before + 2)

    def test_audit(self):
        """
        The latest audit records are shown newest first; with
        C{RestrictAuditLog} they are not shown (C{null}).
        """
        consensus = LocalConsensus(None, service_id="node1:8087")
        parts = DashboardParts(History(["main"]), LeadershipLog(), AuditTail(consensus))
        node = Node(self, [cluster("main")], {"main": [DB1]}, {DB1: 0.1}, consensus=consensus, dashboard=parts)
        consensus._clock = node.clock
        for app in ("a", "b"):
            context = AuditContext(time=START, actor="token:ops", route="POST /api/v1/throttles", reason="r")
            self.successResultOf(consensus.throttle_app(app, START + 60, 1.0, context))
        self.successResultOf(parts.audit.refresh())
        doc = get_json(self, node, "/dashboard/state.json")
        self.assertEqual([(a["id"], a["params"], a["actor"]) for a in doc["audit"]], [(2, {}, "token:ops"), (1, {}, "token:ops")])
        restricted = Node(
            self, [cluster("main")], {"main": [DB1]}, {DB1: 0.1},
            dashboard=DashboardParts(History(["main"]), LeadershipLog(), None),
        )
        self.assertIsNone(get_json(self, restricted, "/dashboard/state.json")["audit"])

    def test_cluster(self):
        """
        One cluster host by host, as C{/explain} shows it; an unknown
        cluster is a 404.
        """
        node = self.node()
        doc = get_json(self, node, "/dashboard/clusters/hot.json")
        self.assertEqual(doc["cluster"]["name"], "hot")
        self.assertEqual(sorted(h["host"] for h in doc["cluster"]["hosts"]), ["db3:3306", "db4:3306"])
        response, body = node.request("GET", "/dashboard/clusters/nope.json")
        self.assertEqual(response.code, 404)
        self.assertEqual(json.loads(body)["error"]["code"], "not_found")

    def test_history(self):
        """
        C{/api/v1/history} serves the sampler's points, C{[time, value]}
        oldest first.
        """
        parts = DashboardParts(History(["main"]), LeadershipLog(), None)
        node = Node(self, [cluster("main")], {"main": [DB1]}, {DB1: 0.25}, dashboard=parts)
        sampler = DashboardSampler(node.clock, node.consensus, node.metrics, parts.history, parts.leadership, parts.audit)
        sampler.startService()
        self.addCleanup(sampler.stopService)
        node.clock.pump([1, 1, 1])
        doc = get_json(self, node, "/api/v1/history")
        self.assertEqual(doc["capacity"], 900)
        self.assertTrue(doc["is_leader"])
        points = doc["clusters"][0]["points"]
        self.assertEqual([v for _, v in points][-3:], [0.25, 0.25, 0.25])
        self.assertEqual(points[-1][0], round(node.clock.seconds(), 3))
        since = get_json(self, node, f"/api/v1/history?since={points[-2][0]}")
        self.assertEqual(since["clusters"][0]["points"], points[-1:])
        self.assertEqual(since["started_unix"], doc["started_unix"])
        for bad in ("x", "-1", "1e9", "nan", "inf", "1.2.3"):
            response, body = node.request("GET", f"/api/v1/history?since={bad}")
            self.assertEqual(response.code, 400, bad)
            self.assertEqual(json.loads(body)["error"]["field"], "since")


class FollowerTests(SynchronousTestCase):
    """
    A follower's page: it says so and names the leader's URL; it has no
    history.
    """

    def node(self):
        consensus = FollowerConsensus(Clock(), leader=False, service_id="10.0.0.2:10008")
        return Node(self, [cluster("main")], {"main": [DB1]}, {DB1: 0.25}, consensus=consensus)

    def test_state(self):
        """
        The state says C{is_leader: false}, names the leader and its URL
        (this node's port on the leader's host by default), and shows no
        values: the follower does not probe.
        """
        node = self.node()
        doc = get_json(self, node, "/dashboard/state.json")
        self.assertEqual((doc["is_leader"], doc["leader"], doc["term"]), (False, "10.0.0.1:10008", 4))
        self.assertEqual(doc["leader_url"], "http://10.0.0.1:8087")
        self.assertEqual([m["url"] for m in doc["members"]], ["http://10.0.0.2:8087", "http://10.0.0.1:8087"])
        self.assertEqual([(r["status"], r["value"]) for r in doc["clusters"]], [("unknown", None)])

    def test_dashboard_urls(self):
        """
        C{DashboardURLs} names each member's URL.
        """
        node = self.node()
        views = node.site.resource.dashboard_resource._views
        views._urls = {"10.0.0.1:10008": "https://leader.example:9443"}
        self.assertEqual(get_json(self, node, "/dashboard/state.json")["leader_url"], "https://leader.example:9443")

    def test_history(self):
        """
        A follower's history has no points, whatever its buffer held.
        """
        node = self.node()
        views = node.site.resource.dashboard_resource._views
        views._history.record(node.clock.seconds(), {"main": 0.5})
        doc = get_json(self, node, "/api/v1/history")
        self.assertEqual((doc["is_leader"], doc["leader"], doc["started_unix"]), (False, "10.0.0.1:10008", None))
        self.assertEqual(doc["clusters"][0]["points"], [])
