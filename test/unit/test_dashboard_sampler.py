"""
Tests for the status page's sampler (L{freno.http.dashboard.sampler}), its
leadership log and its audit tail, on a L{Clock} with an in-memory
consensus.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.audit import AuditPage
from freno.consensus.commands import AuditContext
from freno.consensus.local import LocalConsensus
from freno.http.dashboard.audit_tail import AuditTail
from freno.http.dashboard.history import History
from freno.http.dashboard.leadership import LeadershipLog
from freno.http.dashboard.sampler import DashboardSampler
from freno.probe.metrics import AggregatedMetrics, ClusterMetric

START = 1_700_000_000.0


class SamplerTests(SynchronousTestCase):
    """
    L{DashboardSampler}.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.consensus = LocalConsensus(self.clock, leader=True, service_id="n1:8087")
        self.metrics = AggregatedMetrics(self.clock, {"main": 1.0, "other": 1.0}, 1e9)
        self.history = History(["main", "other"], capacity=60)
        self.leadership = LeadershipLog()
        self.audit = AuditTail(self.consensus)
        self.sampler = DashboardSampler(
            self.clock, self.consensus, self.metrics, self.history, self.leadership, self.audit
        )
        self.sampler.startService()
        self.addCleanup(self.stop)

    def stop(self):
        if self.sampler.running:
            self.sampler.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_leader_records(self):
        """
        The leader records one point a second per cluster: the value, or
        C{None} for an error.
        """
        self.metrics.set("main", ClusterMetric(0.5, None, START))
        self.metrics.set("other", ClusterMetric(0.0, "boom", START))
        self.clock.advance(1)
        self.metrics.set("main", ClusterMetric(0.7, None, START + 1))
        self.clock.advance(1)
        self.assertEqual(
            self.history.points("main"), [(START, None), (START + 1, 0.5), (START + 2, 0.7)]
        )
        self.assertEqual([v for _, v in self.history.points("other")], [None, None, None])

    def test_follower_records_nothing(self):
        """
        A follower records no points.
        """
        self.consensus.set_leader(False)
        self.history.clear()
        self.clock.advance(5)
        self.assertEqual(self.history.size(), 0)

    def test_new_leader_starts_fresh(self):
        """
        A node that becomes leader again starts a fresh buffer.
        """
        self.metrics.set("main", ClusterMetric(0.5, None, START))
        self.clock.pump([1, 1])
        self.consensus.set_leader(False)
        self.clock.pump([1, 1])
        self.assertEqual(len(self.history.points("main")), 3)
        self.consensus.set_leader(True)
        self.clock.advance(1)
        self.assertEqual(self.history.points("main"), [(START + 5, 0.5)])
        self.assertEqual(self.history.started_at, START + 5)

    def test_bounded(self):
        """
        A long run keeps the buffer at its capacity.
        """
        self.metrics.set("main", ClusterMetric(0.5, None, START))
        self.clock.pump([1] * 500)
        self.assertEqual(len(self.history.points("main")), 60)

    def test_leadership_changes(self):
        """
        Each change of leader is noted once, with its time.
        """
        self.clock.pump([1, 1, 1])
        self.consensus.set_leader(False)
        self.clock.advance(1)
        self.consensus.set_leader(True)
        self.clock.advance(1)
        changes = [(c.at, c.leader) for c in self.leadership.changes()]
        self.assertEqual(changes, [(START, "n1:8087"), (START + 4, ""), (START + 5, "n1:8087")])

    def test_failure_logged(self):
        """
        A tick that fails is logged and the next one runs.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        broken = []

        def get(name):
            if not broken:
                broken.append(1)
                raise RuntimeError("broken")
            return ClusterMetric(0.5, None, START)

        self.metrics.get = get
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.history.points("main")[-1], (START + 2, 0.5))

    def test_audit_tail(self):
        """
        The audit tail follows the log: the newest records first, at most
        the number it keeps.
        """
        for i in range(12):
            self.successResultOf(self.consensus.throttle_app(f"app{i}", START + 60, 1.0, _context(i)))
        self.clock.advance(1)
        records = self.audit.records()
        self.assertEqual([r.id for r in records], [12, 11, 10, 9, 8, 7, 6, 5])


def _context(i):
    return AuditContext(time=START, actor="token:ops", route="POST /api/v1/throttles", params={"i": i}, reason=None)


class AuditTailTests(SynchronousTestCase):
    """
    L{AuditTail} against a scripted log.
    """

    def test_incremental(self):
        """
        Each refresh asks only for records after the last one seen, page
        after page until a short page.
        """
        asked = []

        class Log:
            def audit_log(self, since, limit):
                asked.append((since, limit))
                return _page(since, limit, 2500)

        tail = AuditTail(Log(), keep=3)
        self.successResultOf(tail.refresh())
        self.assertEqual(asked, [(0, 1000), (1000, 1000), (2000, 1000)])
        self.assertEqual([r for r in tail.records()], [2500, 2499, 2498])
        del asked[:]
        self.successResultOf(tail.refresh())
        self.assertEqual(asked, [(2500, 1000)])

    def test_sampler_waits(self):
        """
        The sampler starts no second audit read while one is running.
        """
        clock = Clock()
        pending = []

        class SlowTail:
            def refresh(self):
                d = Deferred()
                pending.append(d)
                return d

        consensus = LocalConsensus(clock, leader=True, service_id="n1")
        sampler = DashboardSampler(
            clock, consensus, AggregatedMetrics(clock, {}, 1.0), History([]), LeadershipLog(), SlowTail()
        )
        sampler.startService()
        clock.advance(1)
        clock.advance(1)
        self.assertEqual(len(pending), 1)
        pending[0].callback(None)
        clock.advance(1)
        self.assertEqual(len(pending), 2)
        sampler.stopService()


def _page(since, limit, last):
    records = tuple(range(since + 1, min(last, since + limit) + 1))
    return _fired(AuditPage(records, records[-1] if records else since, 1))


def _fired(value):
    d = Deferred()
    d.callback(value)
    return d
