"""
Tests for L{freno.probe.reactor_lag.ReactorLagMonitor}, on a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from prometheus_client.exposition import generate_latest

from freno.metrics.catalogue import REACTOR_LAG
from freno.metrics.expvar import render_expvar, variables
from freno.metrics.prometheus import make_registry
from freno.metrics.registry import Registry
from freno.probe.reactor_lag import ReactorLagMonitor

VARS_NAME = "reactor.lag"


class ReactorLagMonitorTests(SynchronousTestCase):
    """
    The monitor records how late each of its calls ran.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.stats = Registry()
        self.monitor = ReactorLagMonitor(self.clock, self.stats, interval=0.02)

    def test_on_time(self) -> None:
        """
        Calls that run when due are recorded as 0 s late.
        """
        self.monitor.startService()
        self.clock.pump([0.02] * 5)
        timer = variables(self.stats).timers[VARS_NAME]
        self.assertEqual(timer.count, 5)
        self.assertEqual(timer.samples, [0.0] * 5)
        self.assertEqual(self.stats.value(REACTOR_LAG).count, 5)

    def test_late(self) -> None:
        """
        A call that runs after its due time is recorded with its lateness,
        and the next one is due one interval after it actually ran.
        """
        self.monitor.startService()
        self.clock.advance(0.07)  # due at 0.02, ran at 0.07
        self.clock.advance(0.02)  # due at 0.09, ran at 0.09
        samples = variables(self.stats).timers[VARS_NAME].samples
        self.assertEqual(len(samples), 2)
        self.assertAlmostEqual(samples[0], 0.05)
        self.assertAlmostEqual(samples[1], 0.0)

    def test_stop(self) -> None:
        """
        After C{stopService} nothing is scheduled and nothing more is
        recorded.
        """
        self.monitor.startService()
        self.clock.advance(0.02)
        self.monitor.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(1.0)
        self.assertEqual(variables(self.stats).timers[VARS_NAME].count, 1)

    def test_bad_interval(self) -> None:
        """
        A non-positive interval is refused.
        """
        for bad in (0, -1.0, float("nan")):
            self.assertRaises(ValueError, ReactorLagMonitor, self.clock, self.stats, bad)

    def test_exported(self) -> None:
        """
        The timer appears in C{/debug/vars} (nanoseconds) and in
        C{/metrics} as a summary.
        """
        monitor = ReactorLagMonitor(self.clock, self.stats, interval=0.25)
        monitor.startService()
        self.clock.advance(0.5)  # a quarter of a second late
        monitor.stopService()
        self.assertIn(b'"reactor.lag.max": 250000000,', render_expvar(self.stats, 1.0))
        text = generate_latest(make_registry(self.stats, process=False)).decode()
        self.assertIn("freno_reactor_lag_seconds_count 1.0", text)
