"""
Tests for L{freno.probe.metrics.AggregatedMetrics}.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.probe.metrics import AggregatedMetrics, ClusterMetric


class AggregatedMetricsTests(SynchronousTestCase):
    """
    The store applies freshness and records health.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.metrics = AggregatedMetrics(self.clock, {"main": 1.0}, max_age=0.5)

    def test_fresh_value(self):
        metric = ClusterMetric(0.2, None, self.clock.seconds())
        self.metrics.set("main", metric)
        self.assertEqual(self.metrics.get("main"), metric)
        self.assertEqual(self.metrics.last_healthy_at["main"], 1000)

    def test_stale_value_is_an_error(self):
        """
        A value older than C{max_age} reads as an error, never as a value.
        """
        self.metrics.set("main", ClusterMetric(0.2, None, self.clock.seconds()))
        self.clock.advance(0.6)
        metric = self.metrics.get("main")
        self.assertIn("stale", metric.error)
        self.assertEqual([c for c, _ in self.metrics.items()], ["main"])

    def test_unhealthy_value(self):
        """
        A value above threshold or an error does not refresh health.
        """
        self.metrics.set("main", ClusterMetric(2.0, None, self.clock.seconds()))
        self.metrics.set("main", ClusterMetric(0.0, "boom", self.clock.seconds()))
        self.assertNotIn("main", self.metrics.last_healthy_at)
        self.assertEqual(self.metrics.get("main").error, "boom")

    def test_observers_and_clear(self):
        seen = []
        self.metrics.add_observer(lambda c, m: seen.append(c))
        self.metrics.set("main", ClusterMetric(0.2, None, self.clock.seconds()))
        self.metrics.clear()
        self.assertEqual(seen, ["main"])
        self.assertIsNone(self.metrics.get("main"))
