"""
Leadership hand-off on real pysyncobj groups of L{RaftConsensusService}
objects in the trial reactor (the harness of L{test.integration.test_raft}):
the hand-off over the real L{MachineView}, commands refused during it (also
those a follower forwards), the serving window, and the bound. Real time:
every wait is a poll with a deadline; assertions are on outcomes and
orderings, never on durations.
"""

from __future__ import annotations

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from freno.consensus.interface import NotLeaderError
from freno.consensus.raft.grace import ServingGrace
from freno.consensus.transfer import NO_TARGET, TRANSFERRED, HandoffRefused
from test.integration.test_raft import FUTURE, Group, pause, wait_for


class HandoffTests(TestCase):
    """
    A three-member group hands leadership off.
    """

    timeout = 60

    @inlineCallbacks
    def test_transfer_to_a_member(self):
        """
        The leader hands off to the member asked for, in the next term;
        everything committed before is on the new leader; the old leader
        serves through its window (advertising, then draining), then is a
        plain follower.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        for i in range(5):
            yield leader.throttle_app(f"app{i}", FUTURE, 1.0)
        term = leader.term()
        target = [s for s in group.services if s is not leader][0]
        target_id = target.status().ServiceID
        result = yield leader.transfer_leadership(target_id)
        self.assertEqual((result.outcome, result.leader, result.target), (TRANSFERRED, target_id, target_id))
        yield wait_for(lambda: target.state_description() == "Leader", 10, "the target to lead")
        self.assertEqual(target.term(), term + 1)
        self.assertLessEqual({f"app{i}" for i in range(5)}, set(target.throttled_apps()))
        # The window: the old leader serves and advertises, then drains.
        self.assertEqual(leader.state_description(), "Follower")
        self.assertTrue(leader.is_leader())
        self.assertTrue(leader.advertises_leadership())
        yield wait_for(lambda: not leader.advertises_leadership(), 10, "the drain")
        self.assertTrue(leader.is_leader())
        yield wait_for(lambda: not leader.is_leader(), 10, "the end of the window")
        # A command through the old leader (now a follower) reaches the new one.
        yield leader.throttle_app("after", FUTURE, 1.0)
        self.assertIn("after", target.throttled_apps())

    @inlineCallbacks
    def test_commands_refused_during_the_handoff(self):
        """
        While the hand-off runs, a command on the leader and one a follower
        forwards both fail with L{NotLeaderError}; none is applied.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        follower = [s for s in group.services if s is not leader][0]
        d = leader.transfer_leadership(None)
        local = leader.throttle_app("local", FUTURE, 1.0)
        forwarded = follower.throttle_app("forwarded", FUTURE, 1.0)
        failure = yield self.assertFailure(local, NotLeaderError)
        self.assertIn("hand-off", str(failure))
        yield self.assertFailure(forwarded, NotLeaderError)
        result = yield d
        self.assertEqual(result.outcome, TRANSFERRED)
        for s in group.services:
            self.assertNotIn("local", s.throttled_apps())
            self.assertNotIn("forwarded", s.throttled_apps())

    @inlineCallbacks
    def test_refusals(self):
        """
        A follower, an unknown member and a second hand-off are refused
        before anything starts.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        follower = [s for s in group.services if s is not leader][0]
        failure = yield self.assertFailure(follower.transfer_leadership(None), HandoffRefused)
        self.assertEqual((failure.code, failure.leader), ("not_leader", leader.status().ServiceID))
        failure = yield self.assertFailure(leader.transfer_leadership("127.0.0.1:1"), HandoffRefused)
        self.assertEqual(failure.code, "unknown_member")
        first = leader.transfer_leadership(None)
        failure = yield self.assertFailure(leader.transfer_leadership(None), HandoffRefused)
        self.assertEqual(failure.code, "in_progress")
        yield first

    @inlineCallbacks
    def test_no_target_within_the_bound(self):
        """
        With both followers stopped, nobody is up to date: the hand-off
        ends after its bound as C{no_target}, and the leader (still leading
        until its lease runs out) accepts commands again.
        """
        group = Group(self, 3, handoff_bound=0.5)
        group.start_all()
        leader = yield group.settled()
        for s in group.services:
            if s is not leader:
                yield s.stopService()
        machine = leader.machine
        yield wait_for(
            lambda: not any(machine.isNodeConnected(n) for n in machine.otherNodes),
            10,
            "the leader to see its followers gone",
        )
        result = yield leader.transfer_leadership(None)
        self.assertEqual(result.outcome, NO_TARGET)
        self.assertFalse(leader.machine.refusing_commands)

    @inlineCallbacks
    def test_stop_after_handoff(self):
        """
        L{stop_after_handoff} on the leader fires only after the hand-off
        and the window; on a follower at once.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        follower = [s for s in group.services if s is not leader][0]
        self.successResultOf(follower.stop_after_handoff())
        leader._grace = ServingGrace(leader._reactor, advertise=1.0, drain=1.0)
        d = leader.stop_after_handoff()
        self.assertNoResult(d)
        yield wait_for(lambda: leader.state_description() == "Follower", 10, "the hand-off")
        self.assertTrue(leader.is_leader(), "serving through the window")
        yield d
        self.assertFalse(leader.is_leader())
        yield pause(0)

    @inlineCallbacks
    def test_stop_in_the_window_of_a_transfer(self):
        """
        A member stopped while in the window of an on-demand transfer
        serves to the end of the window first.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        leader._grace = ServingGrace(leader._reactor, advertise=1.0, drain=1.0)
        result = yield leader.transfer_leadership(None)
        self.assertEqual(result.outcome, TRANSFERRED)
        d = leader.stop_after_handoff()
        self.assertNoResult(d)
        self.assertTrue(leader.is_leader())
        yield d
        self.assertFalse(leader.is_leader())
