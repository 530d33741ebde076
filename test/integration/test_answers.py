"""
SLOW integration tests of answers that explain themselves (docs/decisions.md,
D58-D61), with real processes: a real C{twistd freno} node (single-node
raft) probing a MariaDB replication sandbox (a primary, two replicas, a
heartbeat), lag injected on a replica with the sandbox's tools.

    - The check headers and C{/explain} name the lagging replica.
    - Hysteresis: with C{ResumeThreshold}, a cluster whose lag crossed the
      threshold and came back between the two thresholds (a steady
      C{MASTER_DELAY}) answers 429 while the same replica in a cluster
      without it answers 200, until the lag is gone.
    - Multi-store checks over two clusters answer the worst and name it.

One sandbox serves every test of the class; each test starts its own node
and undoes its lag. Every wait is a poll with a deadline; the node is
stopped by its pid. The node's C{MetricFreshnessMillis} is 5 s: these tests
are about lag and its explanations, not the freshness bound (D3, tested on
its own), and a busy CI machine can delay a probe past the 0.5 s default.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from typing import Dict, Tuple

from twisted.trial.unittest import SynchronousTestCase

from freno.sandbox.mysql import LAG_QUERY
from freno.sandbox.nodes import FrenoNode
from freno.sandbox.processes import free_port, wait_for
from test.support import SharedSandboxMixin

THRESHOLD = 3.0
RESUME = 0.8


def answer(node: FrenoNode, path: str, method: str = "HEAD") -> Tuple[int, Dict[str, str], bytes]:
    """
    One request: the status, the headers (lower-cased names), the body;
    C{(0, {}, b"")} when the node does not answer.
    """
    request = urllib.request.Request(node.url + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
    except OSError:
        return 0, {}, b""


class AnswerTests(SharedSandboxMixin, SynchronousTestCase):
    """
    SLOW (about a minute): a node probing real replicas.
    """

    sandbox_kwargs = {"replicas": 2, "heartbeat_interval": 0.05}

    def setUp(self):
        super().setUp()
        self.r0, self.r1 = (r.hostport for r in self.sandbox.replicas)
        workdir = os.path.abspath(self.mktemp())
        cluster = {"ThrottleThreshold": THRESHOLD}
        self.raft = f"127.0.0.1:{free_port()}"
        config = {
            "ListenPort": free_port(),
            "RaftBind": self.raft,
            "RaftDataDir": os.path.join(workdir, "raft"),
            "RaftNodes": [],
            "Stores": {
                "MySQL": {
                    "User": self.sandbox.user,
                    "Password": self.sandbox.password,
                    "MetricQuery": LAG_QUERY,
                    "MetricFreshnessMillis": 5000,
                    "Clusters": {
                        "main": dict(cluster, ResumeThreshold=RESUME,
                                     StaticHostsSettings={"Hosts": [self.r0, self.r1]}),
                        "plain": dict(cluster, StaticHostsSettings={"Hosts": [self.r0]}),
                        "quiet": dict(cluster, StaticHostsSettings={"Hosts": [self.r1]}),
                    },
                }
            },
        }
        self.node = FrenoNode("answers", workdir, config)
        self.addCleanup(self.node.stop)
        self.node.start()
        self.node.wait_ready(20)
        self.addCleanup(self.restore)
        for cluster in ("main", "plain", "quiet"):
            wait_for(lambda c=cluster: self.status(c) == 200, 30, what=f"{cluster} to answer 200")

    def restore(self):
        """
        No lag on either replica, and caught up.
        """
        for index in (0, 1):
            self.sandbox.remove_lag(index)
        self.sandbox.wait_caught_up(timeout=30)

    def status(self, stores: str, app: str = "app") -> int:
        return answer(self.node, f"/check/{app}/mysql/{stores}")[0]

    def assertStatus(self, stores: str, expected: int, route: str = "check") -> None:
        """
        A HEAD on C{/<route>/app/mysql/<stores>} answers C{expected}; a
        failure shows the answer's C{X-Freno-Reason}.
        """
        code, headers, _ = answer(self.node, f"/{route}/app/mysql/{stores}")
        self.assertEqual(code, expected, f"{route} {stores}: {headers.get('x-freno-reason')!r}")

    def explain(self, stores: str) -> dict:
        code, _, body = answer(self.node, f"/explain/app/mysql/{stores}", "GET")
        self.assertEqual(code, 200)
        return json.loads(body)

    def grow_lag(self):
        """
        Stop replica 0's SQL thread and wait until C{main} answers 429.
        """
        self.sandbox.inject_lag(0)
        wait_for(lambda: self.status("main") == 429, 30, interval=0.1, what="main to answer 429")

    def test_headers_name_the_lagging_replica(self):
        """
        Every header on HEAD and GET: a 200 names the worst replica, a 429
        the lagging one, with the node's leadership and raft term.
        """
        for method in ("HEAD", "GET"):
            code, headers, body = answer(self.node, "/check/app/mysql/main", method)
            self.assertEqual(code, 200, headers.get("x-freno-reason"))
            self.assertRegex(headers["x-freno-reason"], r"^lag \d+\.\d+ on 127\.0\.0\.1:\d+ <= 3\.0$")
            self.assertEqual((headers["x-freno-threshold"], headers["x-freno-store"]), ("3", "main"))
            self.assertRegex(headers["x-freno-leader"], rf"^node={re.escape(self.raft)}; leader=true; term=\d+$")
            self.assertLess(int(headers["x-freno-data-age-ms"]), 1000)
            self.assertNotIn("retry-after", headers)
            if method == "GET":
                self.assertEqual(json.loads(body)["Value"], float(headers["x-freno-value"]))
        self.grow_lag()
        code, headers, _ = answer(self.node, "/check/app/mysql/main")
        self.assertEqual(code, 429)
        self.assertRegex(headers["x-freno-reason"], rf"^lag \d+\.\d+ on {re.escape(self.r0)} > 3\.0$")
        self.assertEqual((headers["retry-after"], headers["x-freno-retry-after-ms"]), ("1", "100"))
        document = self.explain("main")
        self.assertEqual(document["decision"]["status"], 429)
        self.assertIn(self.r0, document["decision"]["reason"])
        hosts = {h["host"]: h for h in document["clusters"][0]["hosts"]}
        self.assertEqual(set(hosts), {self.r0, self.r1})
        self.assertEqual(hosts[self.r0]["state"], "counted")
        self.assertGreater(hosts[self.r0]["value"], THRESHOLD)
        self.assertLess(hosts[self.r1]["value"], THRESHOLD)
        self.assertTrue(document["clusters"][0]["holding"])
        self.assertEqual(document["clusters"][0]["inventory"]["source"], "static")
        self.assertIsNotNone(document["clusters"][0]["inventory"]["last_refresh"])
        self.assertEqual((document["is_leader"], document["leader"]), (True, self.raft))
        self.assertGreaterEqual(document["term"], 1)

    def test_hysteresis_holds_until_below_resume(self):
        """
        After the lag crossed the threshold, a steady lag of about 2 s
        (between 0.8 and 3) keeps C{main} at 429, holding, while C{plain}
        (the same replica, no C{ResumeThreshold}) answers 200; without lag
        C{main} answers 200 again.
        """
        self.grow_lag()
        self.sandbox.inject_lag(0, 2)

        def held():
            code, headers, _ = answer(self.node, "/check/app/mysql/main")
            if code != 429 or "not below resume threshold 0.8" not in headers.get("x-freno-reason", ""):
                return None
            return headers if self.status("plain") == 200 else None

        headers = wait_for(held, 30, interval=0.1, what="main holding while plain answers 200")
        self.assertRegex(
            headers["x-freno-reason"],
            rf"^lag \d+\.\d+ on {re.escape(self.r0)} not below resume threshold 0\.8 "
            r"\(holding since it went above 3\.0\)$",
        )
        self.assertLessEqual(float(headers["x-freno-value"]), THRESHOLD)
        self.sandbox.remove_lag(0)
        wait_for(lambda: self.status("main") == 200, 30, interval=0.1, what="main released")
        self.assertFalse(self.explain("main")["clusters"][0]["holding"])

    def test_multi_store(self):
        """
        Two clusters in one check answer the worst and name it; the quiet one
        alone answers 200; an unknown one is 404 (200 with if-exists).
        """
        self.assertStatus("quiet,main", 200)
        self.grow_lag()
        code, headers, _ = answer(self.node, "/check/app/mysql/quiet,main")
        self.assertEqual((code, headers["x-freno-store"]), (429, "main"))
        self.assertIn(self.r0, headers["x-freno-reason"])
        self.assertStatus("quiet", 200)
        self.assertStatus("quiet,nosuch", 404)
        self.assertStatus("quiet,nosuch", 200, route="check-if-exists")
        document = self.explain("quiet,main")
        self.assertEqual(document["stores"], ["quiet", "main"])
        self.assertEqual((document["decision"]["status"], document["decision"]["store"]), (429, "main"))
