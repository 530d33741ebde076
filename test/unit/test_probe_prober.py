"""
Tests for L{freno.probe.prober} and the L{freno.probe.fake} source it runs on.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import ClusterSettings
from freno.hosts import HostKey
from freno.probe.fake import FakeMetricSource
from freno.probe.interfaces import IMetricSource, ProbeError
from freno.probe.prober import Prober
from freno.metrics.catalogue import PROBES
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry

A = HostKey("a", 3306)
B = HostKey("b", 3306)
C1 = ClusterSettings(name="c1")


class FakeMetricSourceTests(SynchronousTestCase):
    """
    L{FakeMetricSource} answers from its script.
    """

    def setUp(self):
        self.clock = Clock()
        self.source = FakeMetricSource(self.clock, timeout=1.0)

    def test_interface(self):
        """
        It provides L{IMetricSource}.
        """
        verifyObject(IMetricSource, self.source)

    def test_values_errors_delays(self):
        """
        Values, errors and per-cluster values; delays on the clock; a delay
        beyond the timeout times out.
        """
        self.source.set_value(A, 2)
        self.source.set_value(A, 5, cluster="c2")
        self.assertEqual(self.successResultOf(self.source.probe(C1, A)), 2.0)
        self.assertEqual(
            self.successResultOf(self.source.probe(ClusterSettings(name="c2"), A)), 5.0
        )
        self.failureResultOf(self.source.probe(C1, B), ProbeError)
        self.source.set_delay(A, 0.5)
        d = self.source.probe(C1, A)
        self.assertNoResult(d)
        self.clock.advance(0.5)
        self.assertEqual(self.successResultOf(d), 2.0)
        self.source.set_delay(A, 5)
        d = self.source.probe(C1, A)
        self.clock.advance(1.0)
        self.assertIn("timed out", str(self.failureResultOf(d, ProbeError).value))

    def test_hold(self):
        """
        Held probes answer on release.
        """
        self.source.set_value(A, 1)
        self.source.hold(A)
        d = self.source.probe(C1, A)
        self.assertNoResult(d)
        self.source.release(A)
        self.assertEqual(self.successResultOf(d), 1.0)


class ProberTests(SynchronousTestCase):
    """
    L{Prober}: rounds, in-flight skipping, caching, stats.
    """

    def setUp(self):
        self.clock = Clock()
        self.source = FakeMetricSource(self.clock)
        self.stats = Registry()
        self.results = []
        self.prober = Prober(
            self.clock, self.source, 0.05,
            lambda c, h, r: self.results.append((c, h, r)), self.stats,
        )

    def test_rounds(self):
        """
        Every host is probed at start and every interval.
        """
        self.source.set_value(A, 1)
        self.source.set_value(B, 2)
        self.prober.set_targets(C1, [A, B])
        self.prober.start()
        self.assertEqual(len(self.source.calls), 2)
        self.clock.advance(0.05)
        self.assertEqual(len(self.source.calls), 4)
        self.assertEqual([r.value for _, _, r in self.results], [1, 2, 1, 2])
        self.assertEqual(variables(self.stats).counters["probes.total"], 4)
        self.assertEqual(self.stats.value(PROBES, ("c1", "a:3306")), 2)
        self.prober.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_in_flight_skipped(self):
        """
        A host whose probe is in flight is skipped, not queued; others go on.
        """
        self.source.set_value(A, 1)
        self.source.set_value(B, 2)
        self.source.hold(A)
        self.prober.set_targets(C1, [A, B])
        self.prober.start()
        self.clock.pump([0.05] * 4)
        self.assertEqual(self.source.calls.count(("c1", A)), 1)
        self.assertEqual(self.source.calls.count(("c1", B)), 5)
        self.source.release(A)
        self.clock.advance(0.05)
        self.assertEqual(self.source.calls.count(("c1", A)), 2)

    def test_errors(self):
        """
        Errors become error results, counted in probes.error; connect
        errors are flagged.
        """
        self.source.set_error(A, "dial tcp a:3306: refused", dial=True)
        self.prober.set_targets(C1, [A])
        self.prober.probe_all()
        (_, _, result), = self.results
        self.assertEqual(result.error, "dial tcp a:3306: refused")
        self.assertTrue(result.dial_error)
        self.assertEqual(variables(self.stats).counters["probes.error"], 1)

    def test_cache(self):
        """
        With CacheMillis a value is reused for that long, per cluster; the
        cached answer is not counted; errors are not cached.
        """
        cached = ClusterSettings(name="c1", cache_millis=1000)
        other = ClusterSettings(name="c2", cache_millis=1000)
        self.source.set_value(A, 1)
        self.prober.set_targets(cached, [A])
        self.prober.set_targets(other, [A])
        self.prober.probe_all()
        self.source.set_value(A, 9)
        self.clock.advance(0.5)
        self.prober.probe_all()
        self.assertEqual([r.value for _, _, r in self.results], [1, 1, 1, 1])
        self.assertEqual(self.results[-1][2].measured_at, 0.5)
        self.assertEqual(variables(self.stats).counters["probes.total"], 2)
        self.clock.advance(0.6)
        self.source.set_error(A, "boom")
        self.prober.probe_all()
        self.source.set_value(A, 3)
        self.prober.probe_all()
        self.assertEqual([r.value for _, _, r in self.results[-2:]], [3, 3])

    def test_stop_ignores_late_results(self):
        """
        After stop, results of probes in flight are dropped.
        """
        self.source.set_value(A, 1)
        self.source.hold(A)
        self.prober.set_targets(C1, [A])
        self.prober.start()
        self.prober.stop()
        self.source.release(A)
        self.assertEqual(self.results, [])

    def test_callback_error_logged(self):
        """
        A failing result handler does not break the loop.
        """
        def broken(*a):
            raise RuntimeError("boom")

        prober = Prober(self.clock, self.source, 0.05, broken, self.stats)
        self.source.set_value(A, 1)
        prober.set_targets(C1, [A])
        prober.start()
        self.clock.advance(0.05)
        self.assertEqual(len(self.source.calls), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        prober.stop()


class SpreadTests(SynchronousTestCase):
    """
    A round is spread over the interval in slices instead of one burst.
    """

    def test_rounds_are_spread(self):
        """
        After the first full round, each tick probes 1/L{SLICES} of the
        hosts, and every host once per interval.
        """
        from freno.probe.prober import SLICES

        clock = Clock()
        source = FakeMetricSource(clock)
        hosts = [HostKey(f"h{i}", 3306) for i in range(2 * SLICES)]
        for host in hosts:
            source.set_value(host, 0.1)
        prober = Prober(clock, source, 0.05, lambda c, h, r: None, Registry())
        prober.set_targets(C1, hosts)
        prober.start()
        self.assertEqual(len(source.calls), 2 * SLICES)
        per_tick = []
        for _ in range(SLICES):
            before = len(source.calls)
            clock.advance(0.05 / SLICES)
            per_tick.append(len(source.calls) - before)
        self.assertEqual(per_tick, [2] * SLICES)
        self.assertEqual(sorted(h for _, h in source.calls[2 * SLICES:]), sorted(hosts))
        prober.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_spread_survives_a_stall(self):
        """
        After a stall longer than a round (every slice late at once), the
        late slices are probed once, together, and then return to their own
        phases: the rounds are spread again, not one burst per interval.
        """
        from freno.probe.prober import SLICES

        clock = Clock()
        source = FakeMetricSource(clock)
        hosts = [HostKey(f"h{i}", 3306) for i in range(2 * SLICES)]
        for host in hosts:
            source.set_value(host, 0.1)
        prober = Prober(clock, source, 0.05, lambda c, h, r: None, Registry())
        prober.set_targets(C1, hosts)
        prober.start()
        clock.advance(0.2)  # one late tick for the four missed rounds
        self.assertEqual(len(source.calls), 4 * SLICES)
        clock.advance(0.05)  # settle
        per_tick = []
        for _ in range(2 * SLICES):
            before = len(source.calls)
            clock.advance(0.05 / SLICES)
            per_tick.append(len(source.calls) - before)
        self.assertEqual(per_tick, [2] * (2 * SLICES))
        prober.stop()
