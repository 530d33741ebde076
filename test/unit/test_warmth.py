"""
Tests for L{freno.probe.warmth.LeaderWarmth}: when C{/leader-check} passes
on a node that leads (D68), alone and through the site (StubTreq). Time is a
Clock; leadership a L{LocalConsensus}.
"""

from __future__ import annotations

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings
from freno.consensus.local import LocalConsensus
from freno.http.site import build_site
from freno.probe.aggregate import NOT_COLLECTED
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.probe.warmth import WARM_BOUND, LeaderWarmth
from freno.metrics.registry import Registry

START = 1_700_000_000.0


class Advertising(LocalConsensus):
    """
    A L{LocalConsensus} with C{advertises_leadership} (as raft has).
    """

    advertise = True

    def advertises_leadership(self):
        return self.is_leader() and self.advertise


class WarmthTests(SynchronousTestCase):
    """
    The warm-up rule.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.consensus = Advertising(self.clock, leader=False)
        self.metrics = AggregatedMetrics(self.clock, {"a": 1.0, "b": 1.0}, 5.0)
        self.warmth = LeaderWarmth(self.clock, self.consensus, self.metrics, ["a", "b"])

    def value(self, cluster, error=None):
        self.metrics.set(cluster, ClusterMetric(0.1, error, self.clock.seconds()))

    def test_follower(self):
        """
        A follower never passes, whatever its metrics.
        """
        self.value("a")
        self.value("b")
        self.assertFalse(self.warmth.leader_check())

    def test_warm_once_every_cluster_has_a_value(self):
        """
        A new leader passes once every cluster has a value, not before.
        """
        self.consensus.set_leader(True)
        self.assertFalse(self.warmth.leader_check())
        self.value("a")
        self.assertFalse(self.warmth.leader_check())
        self.value("b", NOT_COLLECTED)
        self.assertFalse(self.warmth.leader_check())
        self.value("b")
        self.assertTrue(self.warmth.leader_check())

    def test_an_error_is_a_value(self):
        """
        A real error (a failed probe, a stale value) is an answer a check
        would give anyway: it counts as warm.
        """
        self.consensus.set_leader(True)
        self.value("a", "dial tcp: connection refused")
        self.value("b", "Lag above threshold")
        self.assertTrue(self.warmth.leader_check())

    def test_bound(self):
        """
        After the bound a leader passes even without values.
        """
        self.consensus.set_leader(True)
        self.clock.advance(WARM_BOUND - 0.01)
        self.assertFalse(self.warmth.leader_check())
        self.clock.advance(0.01)
        self.assertTrue(self.warmth.leader_check())

    def test_bound_restarts_with_each_term(self):
        """
        Losing leadership and gaining it again starts a new warm-up.
        """
        self.consensus.set_leader(True)
        self.clock.advance(5)
        self.assertTrue(self.warmth.leader_check())
        self.consensus.set_leader(False)
        self.metrics.clear()
        self.consensus.set_leader(True)
        self.assertFalse(self.warmth.leader_check())

    def test_leader_from_the_start(self):
        """
        A node leading before anyone observed it (single node, forced
        leadership) starts its warm-up at the first question.
        """
        consensus = Advertising(self.clock, leader=True)
        warmth = LeaderWarmth(self.clock, consensus, self.metrics, ["a", "b"])
        self.assertFalse(warmth.leader_check())
        self.clock.advance(WARM_BOUND)
        self.assertTrue(warmth.leader_check())

    def test_bound_zero(self):
        """
        With a bound of 0 (a group of one, forced leadership) a leader is
        warm at once, without values.
        """
        warmth = LeaderWarmth(self.clock, self.consensus, self.metrics, ["a", "b"], bound=0.0)
        self.assertFalse(warmth.leader_check())
        self.consensus.set_leader(True)
        self.assertTrue(warmth.leader_check())

    def test_not_advertising(self):
        """
        A warm node that does not advertise its leadership (draining after
        a hand-off) does not pass.
        """
        self.consensus.set_leader(True)
        self.value("a")
        self.value("b")
        self.consensus.advertise = False
        self.assertFalse(self.warmth.leader_check())

    def test_no_clusters(self):
        """
        With no clusters a leader is warm at once.
        """
        warmth = LeaderWarmth(self.clock, self.consensus, self.metrics, [])
        self.consensus.set_leader(True)
        self.assertTrue(warmth.leader_check())


class LeaderCheckRouteTests(SynchronousTestCase):
    """
    C{/leader-check} through the site follows the warm-up rule when wired.
    """

    def test_route(self):
        """
        404 on a cold leader, 200 once warm.
        """
        clock = Clock()
        clock.advance(START)
        consensus = LocalConsensus(clock, leader=False)
        metrics = AggregatedMetrics(clock, {"main": 1.0}, 5.0)
        config = Config(mysql=MySQLStoreSettings(clusters={"main": ClusterSettings(name="main")}))
        warmth = LeaderWarmth(clock, consensus, metrics, ["main"])
        site = build_site(
            clock=clock, config=config, consensus=consensus, metrics=metrics, registry=Registry(),
            hostname="n", leader_check=warmth.leader_check,
        )
        treq = StubTreq(site.resource)

        def code():
            return self.successResultOf(treq.get("http://freno/leader-check")).code

        self.assertEqual(code(), 404)
        consensus.set_leader(True)
        self.assertEqual(code(), 404)
        metrics.set("main", ClusterMetric(0.2, None, clock.seconds()))
        self.assertEqual(code(), 200)
