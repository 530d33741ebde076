"""
Tests for the control plane on the MySQL backend
(L{freno.consensus.mysql.service} with the in-memory store): audited
commands, the change counter, policies, limits, the leader's row purge and
the audit log read from the tables.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.audit import Applied, AuditPage, EntryMeta
from freno.consensus.commands import (
    AuditContext,
    PurgeExpired,
    RecoverHost,
    RemovePolicy,
    SetPolicy,
    SkipHost,
    ThrottleApp,
    UnthrottleApp,
)
from freno.consensus.mysql.service import CHANGE_INTERVAL, ROW_PURGE_GRACE
from freno.consensus.state import MAX_ENTRIES, Policy
from test.unit.test_consensus_mysql import Cluster


def ctx(cluster, actor="token:ops", reason=None, **params):
    return AuditContext(cluster.clock.seconds(), actor, "POST /api/v1/x", params, reason)


class ControlTests(SynchronousTestCase):
    """
    Two nodes sharing one in-memory backend.
    """

    def setUp(self):
        self.cluster = Cluster(self, state_interval=10.0, row_purge_interval=60.0)
        self.addCleanup(self.cluster.stop_all)
        self.cluster.clock.advance(1000)
        self.cluster.start()
        self.cluster.advance(1)
        self.leader, self.follower = self.cluster.nodes
        self.assertTrue(self.leader.is_leader())

    def test_audited_command_reaches_leader_at_once(self):
        """
        An audited throttle on the follower is answered with its audit id,
        recorded in the table in the same write, and on the leader within
        one change-counter interval (not the 10 s poll).
        """
        c = self.cluster
        applied = self.successResultOf(
            self.follower.throttle_app("a", None, 0.5, ctx(c, reason="why", app="a"))
        )
        self.assertEqual(applied, Applied(1))
        self.assertEqual(c.store.sequence, 1)
        self.assertEqual(c.store.audit[0].params, {"app": "a"})
        self.assertEqual(self.follower.throttled_apps()["a"].meta, EntryMeta(1, "token:ops", "why"))
        self.assertNotIn("a", self.leader.throttled_apps())
        c.advance(CHANGE_INTERVAL, step=CHANGE_INTERVAL)
        self.assertEqual(self.leader.throttled_apps()["a"].ratio, 0.5)
        self.assertEqual(self.leader.throttled_apps()["a"].meta, EntryMeta(1, "token:ops", "why"))

    def test_counter_unchanged_reads_nothing(self):
        """
        While the counter does not move, the watch reads only the counter.
        """
        c = self.cluster
        c.advance(1)
        before = c.store.calls.count("read_state")
        c.advance(2)
        self.assertEqual(c.store.calls.count("read_state"), before)
        self.assertGreaterEqual(c.store.calls.count("change_counter"), 2 * 2 * 4 - 2)
        self.successResultOf(self.follower.skip_host("h", 5000.0, ctx(c)))
        c.advance(CHANGE_INTERVAL, step=CHANGE_INTERVAL)
        self.assertIn("h", self.leader.skipped_hosts())
        self.assertEqual(self.leader.skip_meta()["h"].audit_id, 1)

    def test_every_command_audited_once(self):
        """
        Each audited command leaves exactly one record, in order, read back
        the same from either node.
        """
        c = self.cluster
        commands = [
            ThrottleApp("a", None, None, ctx(c)),
            SkipHost("h", 5000.0, ctx(c)),
            SetPolicy("a/main", "a", "main", 0.5, False, ctx(c)),
            RecoverHost("h", ctx(c)),
            UnthrottleApp("a", ctx(c)),
            RemovePolicy("a/main", ctx(c)),
        ]
        for i, command in enumerate(commands):
            node = self.leader if i % 2 else self.follower
            self.assertEqual(self.successResultOf(node.submit(command)).audit_id, i + 1)
        for node in (self.leader, self.follower):
            page = self.successResultOf(node.audit_log(0, 100))
            self.assertEqual([r.id for r in page.records], [1, 2, 3, 4, 5, 6])
            self.assertEqual(page.oldest, 1)
        self.assertEqual(
            self.successResultOf(self.leader.audit_log(4, 1)).records[0].id, 5
        )

    def test_policies_mirrored(self):
        """
        A policy set on one node shows on the other after one change
        interval, and its removal too.
        """
        c = self.cluster
        self.successResultOf(self.follower.submit(SetPolicy("a", "a", None, 0.5, True, ctx(c))))
        self.assertEqual(self.follower.policies()["a"], Policy("a", None, 0.5, True))
        c.advance(CHANGE_INTERVAL, step=CHANGE_INTERVAL)
        self.assertEqual(self.leader.policies()["a"], Policy("a", None, 0.5, True))
        self.assertEqual(self.leader.policies()["a"].meta.actor, "token:ops")
        self.successResultOf(self.leader.submit(RemovePolicy("a", ctx(c))))
        self.assertEqual(self.leader.policies(), {})
        c.advance(CHANGE_INTERVAL, step=CHANGE_INTERVAL)
        self.assertEqual(self.follower.policies(), {})

    def test_limit(self):
        """
        A skip added to a full table is refused in the same transaction as
        its audit record; nothing changes.
        """
        c = self.cluster
        for i in range(MAX_ENTRIES):
            c.store.hosts[f"h{i}"] = 10**9
        applied = self.successResultOf(self.follower.skip_host("new", 5000.0, ctx(c)))
        self.assertEqual((applied.audit_id, applied.field), (1, "host"))
        self.assertIn("at most 10000 skipped hosts at a time; recover some first", applied.refused)
        self.assertNotIn("new", c.store.hosts)
        self.assertNotIn("new", self.follower.skipped_hosts())
        self.assertTrue(c.store.audit[0].outcome.startswith("refused: "))

    def test_leader_purges_rows(self):
        """
        The leader deletes rows that expired and were last written more than
        the grace period ago; tombstones stay long enough to be seen.
        """
        c = self.cluster
        now = c.clock.seconds()
        self.successResultOf(self.follower.throttle_app("short", now + 5, None, ctx(c)))
        self.successResultOf(self.follower.unthrottle_app("gone", ctx(c)))
        self.successResultOf(self.follower.throttle_app("long", now + 10**6, None, ctx(c)))
        c.advance(59)
        self.assertIn("gone", c.store.apps)
        c.advance(ROW_PURGE_GRACE + 2)
        self.assertEqual(set(c.store.apps), {"long"})

    def test_purge_command(self):
        """
        A L{PurgeExpired} sent to the MySQL backend purges the local mirror
        and the rows.
        """
        c = self.cluster
        now = c.clock.seconds()
        self.successResultOf(self.follower.throttle_app("short", now + 5, None, ctx(c)))
        c.clock.advance(100)
        self.assertEqual(self.successResultOf(self.follower.submit(PurgeExpired(c.clock.seconds()))), Applied())
        self.assertNotIn("short", self.follower.throttled_apps())
        self.assertNotIn("short", c.store.apps)

    def test_audit_read_failure(self):
        """
        A failed audit read is a L{ConsensusError} naming the backend.
        """
        from freno.consensus.interface import ConsensusError

        self.cluster.store.error = OSError("gone")
        failure = self.failureResultOf(self.follower.audit_log(0, 10), ConsensusError)
        self.assertIn("MySQL backend read failed", str(failure.value))
        self.cluster.store.error = None
        self.assertEqual(self.successResultOf(self.follower.audit_log(0, 10)), AuditPage((), 0, None))

    def test_control_status(self):
        """
        The members are the domain's healthy services; no term.
        """
        self.cluster.advance(2)
        status = self.leader.control_status()
        self.assertEqual(status.backend, "mysql")
        self.assertIsNone(status.term)
        self.assertEqual(
            [(m.id, m.is_self, m.leader, m.reachable) for m in status.members],
            [("h:8000", True, True, True), ("h:8001", False, False, True)],
        )
