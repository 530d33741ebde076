"""
Tests for L{RecordTransfer}, the command that records a leadership transfer
in the audit log: its dict form, its validation, how the state applies it
(an audit record, nothing else), and the MySQL backend's refusal.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.audit import AuditLog
from freno.consensus.commands import (
    AuditContext,
    InvalidCommand,
    RecordTransfer,
    command_from_dict,
    command_to_dict,
    operation,
    validate,
)
from freno.consensus.state import ThrottleState
from test.unit.test_consensus_mysql import Cluster

CONTEXT = AuditContext(1000.0, "token:ops", "POST /api/v1/leadership/transfer", {"to": "b:2"}, "deploy")


class RecordTransferTests(SynchronousTestCase):
    """
    The command itself.
    """

    def test_round_trip(self):
        """
        Its dict form comes back as the same command, under the operation
        C{leadership-transfer}.
        """
        for command in (RecordTransfer("a:1", "b:2", CONTEXT), RecordTransfer("a:1", None)):
            self.assertEqual(command_from_dict(command_to_dict(command)), command)
        self.assertEqual(operation(RecordTransfer("a:1", None)), "leadership-transfer")

    def test_validation(self):
        """
        The source must be a name; the target a name or C{None}.
        """
        validate(RecordTransfer("a:1", None, CONTEXT))
        for bad in (RecordTransfer("", None), RecordTransfer("a:1", ""), RecordTransfer("a:1", 3)):
            self.assertRaises(InvalidCommand, validate, bad)

    def test_applied_as_an_audit_record_only(self):
        """
        Applying it writes one audit record and changes nothing else.
        """
        state = ThrottleState(audit=AuditLog(10))
        before = state.snapshot()
        applied = state.apply(RecordTransfer("a:1", "b:2", CONTEXT))
        records = state.audit.page(0, 10).records
        self.assertEqual([r.id for r in records], [applied.audit_id])
        self.assertEqual(
            (records[0].actor, records[0].route, records[0].params, records[0].reason),
            ("token:ops", "POST /api/v1/leadership/transfer", {"to": "b:2"}, "deploy"),
        )
        after = state.snapshot()
        after.pop("audit", None)
        before.pop("audit", None)
        self.assertEqual(after, before)


class MySQLBackendTests(SynchronousTestCase):
    """
    The MySQL backend has no leadership to transfer.
    """

    def test_refused(self):
        """
        It refuses the command with L{InvalidCommand}, writing nothing.
        """
        cluster = Cluster(self)
        self.addCleanup(cluster.stop_all)
        cluster.clock.advance(1000)
        cluster.start()
        cluster.advance(1)
        leader = cluster.nodes[0]
        failure = self.failureResultOf(leader.submit(RecordTransfer("a:1", None, CONTEXT)), InvalidCommand)
        self.assertIn("no leadership", str(failure.value))
