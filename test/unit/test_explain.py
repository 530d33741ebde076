"""
Tests for C{GET /explain/<app>/mysql/<cluster>} (L{freno.http.explain})
and the per-host breakdown behind it, through the whole site in memory:
each host state, the inventory's source, refresh and glitch, throttles, a
follower's view, multi-store explanations, and that explaining changes
nothing.
"""

from __future__ import annotations

import json

from klein import Klein
from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.audit import EntryMeta
from freno.metrics.expvar import variables
from freno.consensus.state import AppThrottle, Policy
from freno.inventory.interfaces import InventoryError
from freno.throttle.checker import MAX_STORES
from test.unit.answer_harness import START, Node, TermConsensus, cluster, host

DB1, DB2, DB3, DB4 = host("db1"), host("db2"), host("db3"), host("db4")
TOP_KEYS = [
    "app", "store_type", "stores", "node", "is_leader", "leader", "term",
    "decision", "clusters", "throttle", "policy",
]
DECISION_KEYS = [
    "status", "message", "reason", "store", "value", "threshold", "data_age_ms", "retry_after_s",
]
CLUSTER_KEYS = [
    "name", "threshold", "resume_threshold", "holding", "value", "age_ms", "error",
    "inventory", "hosts",
]
INVENTORY_KEYS = ["source", "hosts", "last_refresh", "last_refresh_unix", "glitch"]
HOST_KEYS = ["host", "value", "age_ms", "state", "why", "skipped_until", "error"]


def explain(testcase, node, path, method="GET"):
    """
    The status and the parsed document of one explain request.
    """
    response, body = node.request(method, path)
    testcase.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
    return response.code, json.loads(body) if body else None


def states(document, cluster_index=0):
    """
    Host name to (state, why) of one cluster of a document.
    """
    return {
        h["host"]: (h["state"], h["why"])
        for h in document["clusters"][cluster_index]["hosts"]
    }


class ShapeTests(SynchronousTestCase):
    """
    The document's shape is the contract's, key for key and in order.
    """

    def test_keys(self):
        """
        Every object has exactly the contract's keys, in its order, and the
        decision is what a check answers.
        """
        node = Node(self, [cluster("main", 1.0, resume_threshold=0.8)], {"main": [DB1, DB2]},
                    {DB1: 0.2, DB2: 2.31})
        code, doc = explain(self, node, "/explain/gh-ost/mysql/main")
        self.assertEqual(code, 200)
        self.assertEqual(list(doc), TOP_KEYS)
        self.assertEqual(list(doc["decision"]), DECISION_KEYS)
        self.assertEqual(list(doc["clusters"][0]), CLUSTER_KEYS)
        self.assertEqual(list(doc["clusters"][0]["inventory"]), INVENTORY_KEYS)
        self.assertEqual(list(doc["clusters"][0]["hosts"][0]), HOST_KEYS)
        self.assertEqual(
            (doc["app"], doc["store_type"], doc["stores"], doc["node"], doc["is_leader"],
             doc["leader"], doc["term"], doc["throttle"], doc["policy"]),
            ("gh-ost", "mysql", ["main"], "node1:8087", True, "node1:8087", None, None, None),
        )
        self.assertEqual(
            doc["decision"],
            {"status": 429, "message": "Threshold exceeded", "reason": "lag 2.31 on db2:3306 > 1.0",
             "store": "main", "value": 2.31, "threshold": 1.0,
             "data_age_ms": doc["decision"]["data_age_ms"], "retry_after_s": 1},
        )
        main = doc["clusters"][0]
        self.assertEqual(
            {k: main[k] for k in CLUSTER_KEYS[:7]},
            {"name": "main", "threshold": 1.0, "resume_threshold": 0.8, "holding": True,
             "value": 2.31, "age_ms": main["age_ms"], "error": None},
        )
        self.assertEqual(
            main["hosts"][1],
            {"host": "db2:3306", "value": 2.31, "age_ms": main["hosts"][1]["age_ms"],
             "state": "counted", "why": None, "skipped_until": None, "error": None},
        )
        self.assertEqual(main["inventory"]["source"], "static")
        self.assertEqual(main["inventory"]["hosts"], 2)
        self.assertEqual(main["inventory"]["last_refresh_unix"], START)
        self.assertEqual(main["inventory"]["last_refresh"], "2023-11-14T22:13:20Z")

    def test_head_and_readable(self):
        """
        HEAD answers the same status and no body; GET's body is indented
        (a human reads it) and ends with a newline.
        """
        node = Node(self, [cluster("main")], {"main": [DB1]}, {DB1: 0.2})
        response, body = node.request("GET", "/explain/a/mysql/main")
        self.assertTrue(body.startswith(b'{\n  "app": "a",'), body[:40])
        self.assertTrue(body.endswith(b"}\n"))
        response, head = node.request("HEAD", "/explain/a/mysql/main")
        self.assertEqual((response.code, head), (200, b""))
        self.assertEqual(response.headers.getRawHeaders(b"content-length"), [b"%d" % len(body)])

    def test_term(self):
        """
        A backend with terms shows the term.
        """
        probe = Node(self, [cluster("main")], {"main": [DB1]}, {DB1: 0.2})
        consensus = TermConsensus(probe.clock, service_id="10.0.0.1:10008")
        node = Node(self, [cluster("main")], {"main": [DB1]}, {DB1: 0.2}, consensus=consensus)
        _, doc = explain(self, node, "/explain/a/mysql/main")
        self.assertEqual((doc["node"], doc["leader"], doc["term"]), ("10.0.0.1:10008", "10.0.0.1:10008", 7))


class HostStateTests(SynchronousTestCase):
    """
    Each host state, and why.
    """

    def test_ignore_hosts_and_threshold(self):
        """
        C{IgnoreHosts} patterns; C{IgnoreHostsThreshold} drops only a value
        above it, named with its value.
        """
        node = Node(
            self,
            [cluster("main", 1.0, ignore_hosts=("db4",), ignore_hosts_count=1, ignore_hosts_threshold=10.0)],
            {"main": [DB1, DB2, DB3, DB4]},
            {DB1: 0.1, DB2: 11.2, DB3: 0.3, DB4: 50.0},
        )
        _, doc = explain(self, node, "/explain/a/mysql/main")
        self.assertEqual(
            states(doc),
            {
                "db1:3306": ("counted", None),
                "db2:3306": ("ignored", "IgnoreHostsThreshold 10.0 (value 11.2)"),
                "db3:3306": ("counted", None),
                "db4:3306": ("ignored", 'IgnoreHosts "db4"'),
            },
        )
        self.assertEqual(doc["decision"]["reason"], "lag 0.3 on db3:3306 <= 1.0")
        self.assertEqual(doc["clusters"][0]["hosts"][3]["value"], 50.0)

    def test_ignore_hosts_count(self):
        """
        The budget drops the largest value, or absorbs an error (which is
        shown).
        """
        node = Node(self, [cluster("main", 1.0, ignore_hosts_count=1)],
                    {"main": [DB1, DB2, DB3]}, {DB1: 0.1, DB2: 5.0, DB3: 0.3})
        _, doc = explain(self, node, "/explain/a/mysql/main")
        self.assertEqual(states(doc)["db2:3306"], ("ignored", "IgnoreHostsCount 1 (one of the largest values, 5.0)"))
        self.assertEqual(doc["decision"]["status"], 200)
        node.source.set_error(DB1, "Error 1045: Access denied")
        node.settle()
        _, doc = explain(self, node, "/explain/a/mysql/main")
        self.assertEqual(states(doc)["db1:3306"], ("ignored", "IgnoreHostsCount 1 (absorbed its error)"))
        self.assertEqual(doc["clusters"][0]["hosts"][0]["error"], "Error 1045: Access denied")
        self.assertEqual(states(doc)["db2:3306"], ("counted", None))
        self.assertEqual(doc["decision"]["reason"], "lag 5.0 on db2:3306 > 1.0")

    def test_dial_errors(self):
        """
        C{IgnoreDialTcpErrors} leaves an unreachable host out.
        """
        node = Node(self, [cluster("main", 1.0, ignore_dial_tcp_errors=True)],
                    {"main": [DB1, DB2]}, {DB1: 0.1})
        node.source.set_error(DB2, "dial tcp db2:3306: connection refused", dial=True)
        node.settle()
        _, doc = explain(self, node, "/explain/a/mysql/main")
        self.assertEqual(states(doc)["db2:3306"], ("ignored", "IgnoreDialTcpErrors"))
        self.assertEqual(doc["decision"]["status"], 200)

    def test_skipped(self):
        """
        A skipped host says until when; its value is still shown.
        """
        node = Node(self, [cluster("main")], {"main": [DB1, DB2]}, {DB1: 0.1, DB2: 9.0})
        node.consensus.skip_host("db2", START + 600)
        node.settle()
        _, doc = explain(self, node, "/explain/a/mysql/main")
        db2 = doc["clusters"][0]["hosts"][1]
        self.assertEqual(
            (db2["state"], db2["skipped_until"], db2["value"]), ("skipped", "2023-11-14T22:23:20Z", 9.0)
        )
        self.assertEqual(doc["decision"]["status"], 200)

    def test_http_check_failed(self):
        """
        A host whose HTTP check answers 404 failed it and is left out.
        """
        app = Klein()

        @app.route("/check", branch=True)
        def check(request):
            request.setResponseCode(404 if b"db2" in request.getHeader(b"host") else 200)
            return b""

        node = Node(self, [cluster("main", 1.0, http_check_port=9000, http_check_path="check")],
                    {"main": [DB1, DB2]}, {DB1: 0.1, DB2: 9.0},
                    http_client=StubTreq(app.resource()))
        _, doc = explain(self, node, "/explain/a/mysql/main")
        self.assertEqual(doc["decision"]["status"], 429)
        node.settle(5.0 / 0.05)  # the next round of HTTP checks
        _, doc = explain(self, node, "/explain/a/mysql/main")
        self.assertEqual(states(doc)["db2:3306"], ("failed", "HTTP check answered 404"))
        self.assertEqual(states(doc)["db1:3306"], ("counted", None))
        self.assertEqual(doc["decision"]["status"], 200)

    def test_error_and_stale(self):
        """
        A host's error decides the cluster's error; a host whose values
        stopped is stale, with its age.
        """
        node = Node(self, [cluster("main")], {"main": [DB1, DB2, DB3]}, {DB1: 0.1, DB2: 0.2, DB3: 0.3})
        node.source.set_error(DB2, "replication not running; Slave_IO_Running=No")
        node.source.hold(DB3)
        node.settle(10)
        _, doc = explain(self, node, "/explain/a/mysql/main")
        hosts = doc["clusters"][0]["hosts"]
        self.assertEqual([h["state"] for h in hosts], ["counted", "error", "stale"])
        self.assertEqual(hosts[1]["error"], "replication not running; Slave_IO_Running=No")
        self.assertTrue(hosts[2]["error"].startswith("Metric is stale: last value of db3:3306"), hosts[2])
        self.assertEqual(hosts[2]["value"], 0.3)
        self.assertGreater(hosts[2]["age_ms"], 500)
        self.assertEqual(doc["decision"]["status"], 500)
        self.assertEqual(doc["decision"]["reason"], "db2:3306: replication not running; Slave_IO_Running=No")
        self.assertEqual(doc["clusters"][0]["error"], "replication not running; Slave_IO_Running=No")
        self.assertIsNone(doc["clusters"][0]["value"])

    def test_stale_cluster_value(self):
        """
        A stale aggregated value is shown with its error and age.
        """
        node = Node(self, [cluster("main")], {"main": [DB1]}, {DB1: 0.4})
        node.source.hold(DB1)
        node.clock.advance(2.0)
        _, doc = explain(self, node, "/explain/a/mysql/main")
        main = doc["clusters"][0]
        self.assertEqual(main["value"], 0.4)
        self.assertGreaterEqual(main["age_ms"], 2000)
        self.assertTrue(main["error"].startswith("Metric is stale"), main["error"])
        self.assertTrue(doc["decision"]["reason"].startswith("metric stale: value 2.0 s old"), doc["decision"])
        self.assertEqual(doc["decision"]["data_age_ms"], main["age_ms"])

    def test_not_collected(self):
        """
        A host without a first result is an error that decides; a cluster
        whose hosts are not known yet has none listed.
        """
        node = Node(self, [cluster("main"), cluster("later")], {"main": [DB1]}, {DB1: 0.4})
        node.source.hold(DB2)
        node.sources["main"].set_hosts([DB1, DB2])
        node.sources["later"].set_failure("nothing yet")
        node.inventory.refresh()
        _, doc = explain(self, node, "/explain/a/mysql/main,later")
        main, later = doc["clusters"]
        self.assertEqual(main["hosts"][1]["state"], "error")
        self.assertEqual(main["hosts"][1]["error"], "Metric not collected yet")
        self.assertEqual(later["hosts"], [])
        self.assertEqual(later["error"], "Metric not collected yet")
        self.assertEqual(later["inventory"]["hosts"], None)


class InventoryTests(SynchronousTestCase):
    """
    The inventory: source, host count, last refresh and glitch.
    """

    def test_glitch_and_recovery(self):
        """
        A failing refresh is the current glitch, the last good refresh and
        hosts stay; a good refresh clears it.
        """
        node = Node(self, [cluster("main")], {"main": [DB1, DB2]}, {DB1: 0.1, DB2: 0.2})
        node.clock.advance(5)
        node.sources["main"].fail_with(InventoryError("HAProxy answered 503"))
        node.inventory.refresh()
        _, doc = explain(self, node, "/explain/a/mysql/main")
        inventory = doc["clusters"][0]["inventory"]
        self.assertEqual(
            inventory,
            {"source": "static", "hosts": 2, "last_refresh": "2023-11-14T22:13:20Z",
             "last_refresh_unix": START, "glitch": "HAProxy answered 503"},
        )
        node.inventory.refresh()
        _, doc = explain(self, node, "/explain/a/mysql/main")
        inventory = doc["clusters"][0]["inventory"]
        self.assertIsNone(inventory["glitch"])
        self.assertEqual(inventory["last_refresh_unix"], node.clock.seconds())


class DecisionTests(SynchronousTestCase):
    """
    The decision, throttles, followers, multi-store, and no side effects.
    """

    def node(self, **kw):
        return Node(self, [cluster("main", 1.0), cluster("other", 2.0)],
                    {"main": [DB1], "other": [DB2]}, {DB1: 0.5, DB2: 3.0}, **kw)

    def test_throttle(self):
        """
        The app's throttle is shown (store-scoped first), and the decision
        says so.
        """
        node = self.node()
        node.consensus.throttle_app("gh-ost", START + 600, 1.0)
        _, doc = explain(self, node, "/explain/gh-ost/mysql/main")
        self.assertEqual(
            doc["throttle"],
            {"key": "gh-ost", "app": "gh-ost", "store": None, "ratio": 1.0,
             "expires_at": "2023-11-14T22:23:20Z", "expires_at_unix": START + 600,
             "reason": None, "actor": None, "audit_id": None},
        )
        self.assertEqual(doc["decision"]["status"], 417)
        self.assertEqual(doc["decision"]["retry_after_s"], 60)
        node.consensus.throttle_app("gh-ost/main", None, 0.25)
        node.dice = 0.9
        node.consensus.unthrottle_app("gh-ost")
        _, doc = explain(self, node, "/explain/gh-ost/mysql/main")
        self.assertEqual((doc["throttle"]["key"], doc["throttle"]["store"]), ("gh-ost/main", "main"))
        self.assertEqual(doc["decision"]["status"], 200)

    def test_policy_and_meta(self):
        """
        The app's policy (store-scoped first) and who set the throttle are
        shown, in the REST API's shapes.
        """
        node = self.node()
        node.consensus.state.policies["gh-ost"] = Policy("gh-ost", None, 0.4, meta=EntryMeta(7, "ops", "slow replicas"))
        _, doc = explain(self, node, "/explain/gh-ost/mysql/main")
        self.assertEqual(
            doc["policy"],
            {"key": "gh-ost", "app": "gh-ost", "store": None, "threshold": 0.4, "exempt": False,
             "reason": "slow replicas", "actor": "ops", "audit_id": 7},
        )
        self.assertEqual(doc["decision"]["reason"], "lag 0.5 on db1:3306 > 0.4 (policy gh-ost)")
        node.consensus.state.apps["gh-ost/main"] = AppThrottle(None, 1.0, EntryMeta(8, "ops", "freeze"))
        _, doc = explain(self, node, "/explain/gh-ost/mysql/main")
        self.assertEqual((doc["throttle"]["actor"], doc["throttle"]["reason"], doc["throttle"]["audit_id"]),
                         ("ops", "freeze", 8))
        self.assertEqual(doc["decision"]["reason"], "app throttled on main by ops with no expiry (ratio 1): freeze")

    def test_follower(self):
        """
        A follower explains its own view: not leader, no hosts probed.
        """
        node = self.node()
        node.consensus.set_leader(False)
        _, doc = explain(self, node, "/explain/a/mysql/main")
        self.assertEqual((doc["is_leader"], doc["leader"]), (False, None))
        self.assertEqual(doc["decision"]["status"], 500)
        self.assertEqual(doc["decision"]["reason"], "not leader")
        self.assertEqual(doc["clusters"][0]["hosts"], [])
        self.assertIsNone(doc["clusters"][0]["value"])
        self.assertEqual(doc["clusters"][0]["inventory"]["hosts"], 1)

    def test_multi_store(self):
        """
        A multi-store explanation lists every store, an unknown one too, and
        the decision names the worst.
        """
        node = self.node()
        _, doc = explain(self, node, "/explain/a/mysql/main,other,nosuch")
        self.assertEqual(doc["stores"], ["main", "other", "nosuch"])
        self.assertEqual([c["name"] for c in doc["clusters"]], ["main", "other", "nosuch"])
        self.assertEqual(doc["clusters"][2]["error"], "no such cluster")
        self.assertEqual(
            (doc["decision"]["status"], doc["decision"]["store"], doc["decision"]["reason"]),
            (429, "other", "lag 3.0 on db2:3306 > 2.0"),
        )

    def test_other_store_type(self):
        """
        A store type other than mysql: 404, no clusters.
        """
        _, doc = explain(self, self.node(), "/explain/a/pg/main")
        self.assertEqual((doc["decision"]["status"], doc["clusters"]), (404, []))

    def test_changes_nothing(self):
        """
        Explaining is not a check: nothing counted or recorded, no
        low-priority denial marked.
        """
        node = self.node()
        explain(self, node, "/explain/a/mysql/other")
        self.assertEqual([name for name in variables(node.stats).counters if name.startswith("check.")], [])
        self.assertEqual(len(node.throttler.recent_apps), 0)
        self.assertEqual(node.status("/check/lp/mysql/other?p=low"), 429)
        self.assertEqual(node.status("/check/a/mysql/other"), 429)
        _, doc = explain(self, node, "/explain/lp/mysql/other?p=low")
        self.assertEqual(doc["decision"]["status"], 417)

    def test_too_many_stores(self):
        """
        More stores than a check takes: 400 naming C{storeName}.
        """
        names = ",".join(f"s{i}" for i in range(MAX_STORES + 1))
        response, body = self.node().request("GET", f"/explain/a/mysql/{names}")
        self.assertEqual(response.code, 400)
        self.assertIn(b'"Message":"storeName: at most 64 stores in one check"', body)
