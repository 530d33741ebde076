"""
Tests for hysteresis (C{ResumeThreshold}; L{freno.throttle.hysteresis},
docs/decisions.md, D60): transitions on a Clock through the whole site,
what errors, staleness and leadership changes do, which checks it applies
to, a model check with generated value sequences, and the configuration
key.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.config.errors import ConfigError
from freno.config.loader import load_config
from freno.consensus.state import Policy
from freno.probe.metrics import ClusterMetric
from freno.throttle.hysteresis import Hysteresis
from test.unit.answer_harness import Node, cluster, host

DB1 = host("db1")
CHECK = "/check/app/mysql/main"


def make_node(testcase, resume=0.8, **kw):
    """
    A node with C{main}: threshold 1.0, the resume threshold C{resume},
    one host db1 at 0.5.
    """
    settings_kw = {} if resume is None else {"resume_threshold": resume}
    return Node(testcase, [cluster("main", 1.0, **settings_kw)], {"main": [DB1]}, {DB1: 0.5}, **kw)


class TransitionTests(SynchronousTestCase):
    """
    Holding and releasing, step by step.
    """

    def test_holds_until_below_resume(self):
        """
        Above the threshold: 429; back between the two thresholds: still 429
        (holding); at the resume threshold: still 429; strictly below it:
        200; between the two again without crossing: 200.
        """
        node = make_node(self)
        steps = [(0.5, 200), (1.2, 429), (0.95, 429), (1.0, 429), (0.8, 429), (0.79, 200), (0.95, 200),
                 (1.0, 200), (1.01, 429), (0.9, 429), (0.1, 200)]
        seen = []
        for value, _ in steps:
            node.set_value(DB1, value)
            seen.append((value, node.status(CHECK)))
        self.assertEqual(seen, steps)

    def test_without_resume_threshold(self):
        """
        A cluster without C{ResumeThreshold} never holds (freno).
        """
        node = make_node(self, resume=None)
        for value, status in [(1.2, 429), (0.95, 200), (0.5, 200)]:
            node.set_value(DB1, value)
            self.assertEqual(node.status(CHECK), status)

    def test_errors_do_not_release(self):
        """
        An error or a stale value while holding answers 500, and the hold
        survives it: a value between the thresholds is still 429.
        """
        node = make_node(self)
        node.set_value(DB1, 1.5)
        node.source.set_error(DB1, "replication not running")
        node.settle()
        self.assertEqual(node.status(CHECK), 500)
        node.set_value(DB1, 0.9)
        self.assertEqual(node.status(CHECK), 429)
        node.source.hold(DB1)
        node.clock.advance(1.0)
        self.assertEqual(node.status(CHECK), 500)
        self.assertTrue(node.throttler.hysteresis.holding("main"))
        node.source.release(DB1)
        node.settle()
        self.assertEqual(node.status(CHECK), 429)

    def test_crossing_between_checks(self):
        """
        A crossing no check saw still holds: the state follows every
        aggregated value, not the checks.
        """
        node = make_node(self)
        node.set_value(DB1, 1.5)
        node.set_value(DB1, 0.9)
        self.assertEqual(node.status(CHECK), 429)

    def test_leadership_change_releases(self):
        """
        A new leader starts released.
        """
        node = make_node(self)
        node.set_value(DB1, 1.5)
        node.set_value(DB1, 0.9)
        self.assertEqual(node.status(CHECK), 429)
        node.consensus.set_leader(False)
        self.assertEqual(node.status(CHECK), 500)
        node.consensus.set_leader(True)
        node.settle()
        self.assertEqual(node.status(CHECK), 200)

    def test_check_read_and_low_priority(self):
        """
        A check-read compares with its own threshold only; a low-priority
        check is held too, and a normal client's held 429 denies low
        priority for a second.
        """
        node = make_node(self)
        node.set_value(DB1, 1.5)
        node.set_value(DB1, 0.9)
        self.assertEqual(node.status("/check-read/app/mysql/main/1"), 200)
        self.assertEqual(node.status("/check-read/app/mysql/main/0.85"), 429)
        self.assertEqual(node.status("/check/lp/mysql/main?p=low"), 429)
        self.assertEqual(node.status(CHECK), 429)
        self.assertEqual(node.status("/check/lp/mysql/main?p=low"), 417)

    def test_policies(self):
        """
        An app whose policy is stricter is held with the cluster; an exempt
        app whose threshold is looser is not (its own threshold decides).
        """
        node = make_node(self)
        node.consensus.state.policies["strict"] = Policy("strict", None, 0.5)
        node.consensus.state.policies["bulk"] = Policy("bulk", None, 2.0, exempt=True)
        node.set_value(DB1, 1.5)
        self.assertEqual(node.status("/check/bulk/mysql/main"), 200)
        node.set_value(DB1, 0.9)
        self.assertEqual(node.status("/check/strict/mysql/main"), 429)
        self.assertEqual(node.status(CHECK), 429)
        self.assertEqual(node.status("/check/bulk/mysql/main"), 200)
        node.set_value(DB1, 0.7)
        self.assertEqual(node.status(CHECK), 200)
        self.assertEqual(node.status("/check/strict/mysql/main"), 429)

    def test_explain_shows_holding(self):
        """
        C{/explain} shows the resume threshold and whether the cluster holds.
        """
        node = make_node(self)
        node.set_value(DB1, 1.5)
        node.set_value(DB1, 0.9)
        _, body = node.request("GET", "/explain/app/mysql/main")
        main = json.loads(body)["clusters"][0]
        self.assertEqual((main["resume_threshold"], main["holding"]), (0.8, True))

    def test_holding_since(self):
        """
        The state remembers when holding began.
        """
        clock = Clock()
        clock.advance(100)
        state = Hysteresis(clock, {"main": cluster("main", 1.0, resume_threshold=0.5)})
        self.assertIsNone(state.holding_since("main"))
        state.observe("main", ClusterMetric(2.0, None, 99.0))
        clock.advance(5)
        state.observe("main", ClusterMetric(3.0, None, 104.0))
        self.assertEqual(state.holding_since("main"), 100.0)
        state.observe("other", ClusterMetric(3.0, None, 104.0))
        self.assertFalse(state.holding("other"))

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.sampled_from([0.0, 0.5, 0.79, 0.8, 0.81, 0.99, 1.0, 1.01, 3.0, None]), max_size=25))
    def test_model(self, values):
        """
        For any sequence of values (and errors, C{None}), every check answers
        what a two-state model says.
        """
        node = make_node(self)
        holding = False
        for value in values:
            if value is None:
                node.source.set_error(DB1, "boom")
                node.settle()
                self.assertEqual(node.status(CHECK), 500)
                continue
            node.set_value(DB1, value)
            if value > 1.0:
                holding = True
            elif value < 0.8:
                holding = False
            expected = 429 if holding or value > 1.0 else 200
            self.assertEqual(node.status(CHECK), expected, (values, value))
        node.stop()


class ConfigTests(SynchronousTestCase):
    """
    The C{ResumeThreshold} key.
    """

    def load(self, store, cluster_doc):
        config = {
            "RaftDataDir": "/tmp/x",
            "Stores": {"MySQL": dict(store, Clusters={"main": dict(
                cluster_doc, StaticHostsSettings={"Hosts": ["db1"]})})},
        }
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump(config, f)
        return load_config(path).mysql.clusters["main"]

    def test_inherited_and_overridden(self):
        """
        Inherited from the store like C{ThrottleThreshold}; a cluster's
        value wins; 0 (or absent) means none, also over a store's value.
        """
        self.assertIsNone(self.load({"ThrottleThreshold": 1}, {}).resume_threshold)
        self.assertEqual(self.load({"ThrottleThreshold": 1, "ResumeThreshold": 0.8}, {}).resume_threshold, 0.8)
        self.assertEqual(
            self.load({"ThrottleThreshold": 1, "ResumeThreshold": 0.8}, {"ResumeThreshold": 0.5}).resume_threshold,
            0.5,
        )
        self.assertIsNone(
            self.load({"ThrottleThreshold": 1, "ResumeThreshold": 0.8}, {"ResumeThreshold": 0}).resume_threshold
        )
        self.assertEqual(self.load({}, {"ThrottleThreshold": 5, "resumethreshold": 4}).resume_threshold, 4.0)

    def test_must_be_below_threshold(self):
        """
        A resume threshold at or above the cluster's threshold is refused,
        naming where it was set; a negative one or a string too.
        """
        with self.assertRaises(ConfigError) as caught:
            self.load({"ThrottleThreshold": 1}, {"ResumeThreshold": 1})
        self.assertIn("Stores.MySQL.Clusters.main.ResumeThreshold: must be below ThrottleThreshold (1)",
                      str(caught.exception))
        with self.assertRaises(ConfigError) as caught:
            self.load({"ThrottleThreshold": 2, "ResumeThreshold": 1.5}, {"ThrottleThreshold": 1})
        self.assertIn("Stores.MySQL.ResumeThreshold: must be below ThrottleThreshold of cluster main (1)",
                      str(caught.exception))
        for bad in (-1, "0.5", True):
            self.assertRaises(ConfigError, self.load, {"ThrottleThreshold": 1}, {"ResumeThreshold": bad})
