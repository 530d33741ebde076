"""
Tests for L{freno.consensus.local.LocalConsensus}, the in-memory consensus.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.consensus.audit import Applied
from freno.consensus.interface import IConsensusService, NotLeaderError
from freno.consensus.local import PURGE_INTERVAL, LocalConsensus


class LocalConsensusTests(SynchronousTestCase):
    """
    L{LocalConsensus} applies commands at once and reports leadership changes.
    """

    def setUp(self):
        self.clock = Clock()
        self.consensus = LocalConsensus(self.clock)

    def test_interface(self):
        """
        It provides L{IConsensusService}.
        """
        verifyObject(IConsensusService, self.consensus)

    def test_commands_apply(self):
        """
        Commands fire their Deferred after applying.
        """
        self.assertEqual(self.successResultOf(self.consensus.throttle_app("a", 10.0, 0.5)), Applied())
        self.successResultOf(self.consensus.skip_host("h", 10.0))
        self.assertEqual(self.consensus.throttled_apps()["a"].ratio, 0.5)
        self.assertEqual(self.consensus.skipped_hosts(), {"h": 10.0})
        self.successResultOf(self.consensus.unthrottle_app("a"))
        self.successResultOf(self.consensus.recover_host("h"))
        self.assertEqual(dict(self.consensus.throttled_apps()), {})
        self.assertEqual(dict(self.consensus.skipped_hosts()), {})

    def test_rejected_commands(self):
        """
        With C{reject_commands} set, commands fail and change nothing.
        """
        self.consensus.reject_commands = NotLeaderError()
        self.failureResultOf(self.consensus.throttle_app("a", None, None), NotLeaderError)
        self.assertEqual(dict(self.consensus.throttled_apps()), {})

    def test_leadership_observers(self):
        """
        Observers hear about changes only; a failing observer does not stop others.
        """
        seen = []

        def broken(leader):
            raise RuntimeError("boom")

        self.consensus.add_leadership_observer(broken)
        self.consensus.add_leadership_observer(seen.append)
        self.consensus.set_leader(True)
        self.consensus.set_leader(False)
        self.consensus.set_leader(False)
        self.assertEqual(seen, [False])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.consensus.leader(), "")
        self.assertEqual(self.consensus.status().State, "Follower")

    def test_audit_and_status(self):
        """
        Audited commands are paged by L{audit_log}; the control status names
        this one member.
        """
        from freno.consensus.commands import AuditContext

        context = AuditContext(1.0, "token:a", "POST /api/v1/throttles")
        self.assertEqual(self.successResultOf(self.consensus.throttle_app("a", None, None, context)), Applied(1))
        self.successResultOf(self.consensus.skip_host("h", 10.0, context))
        self.assertEqual(self.consensus.skip_meta()["h"].audit_id, 2)
        page = self.successResultOf(self.consensus.audit_log(1, 10))
        self.assertEqual([r.id for r in page.records], [2])
        self.assertEqual(self.consensus.policies(), {})
        status = self.consensus.control_status()
        self.assertEqual((status.backend, status.term, len(status.members)), ("single", None, 1))

    def test_purge(self):
        """
        Expired entries are purged on the clock.
        """
        self.consensus.start()
        self.successResultOf(self.consensus.throttle_app("a", 1.0, None))
        self.clock.advance(PURGE_INTERVAL)
        self.assertEqual(dict(self.consensus.throttled_apps()), {})
        self.consensus.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
