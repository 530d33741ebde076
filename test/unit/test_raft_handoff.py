"""
Tests for the leadership hand-off: the state machine
(L{freno.consensus.raft.handoff.Handoff}) over an in-memory raft view, the
old leader's serving window (L{freno.consensus.raft.grace.ServingGrace}) and
the top service that hands off before stopping
(L{freno.consensus.raft.stopping.HandOffFirst}). Time is a Clock.
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.consensus.raft.grace import ServingGrace
from freno.consensus.raft.handoff import (
    FakeRaftView,
    Follower,
    Handoff,
    IRaftView,
    MachineView,
    best_target,
)
from freno.consensus.raft.stopping import HandOffFirst
from freno.consensus.transfer import (
    NO_TARGET,
    NOT_LEADER,
    STOPPED,
    TIMED_OUT,
    TRANSFERRED,
)

LEASE = 1.5


def view(last=10, committed=10, **matches) -> FakeRaftView:
    """
    A leader C{a:1} with followers C{b:2} and C{c:3}, both connected and
    up to date unless C{matches} says otherwise.
    """
    fake = FakeRaftView(last=last, committed=committed)
    for member in ("b:2", "c:3"):
        fake.members[member] = Follower(member, True, matches.get(member[0], last), 0.05)
    return fake


class BestTargetTests(SynchronousTestCase):
    """
    L{best_target} picks only a connected, recently heard, fully caught-up
    follower.
    """

    def test_up_to_date_only(self):
        """
        A follower missing entries is not a target.
        """
        followers = [Follower("b:2", True, 9, 0.0), Follower("c:3", True, 10, 0.2)]
        self.assertEqual(best_target(followers, 10, LEASE), "c:3")

    def test_disconnected_or_silent_is_not_a_target(self):
        """
        A disconnected follower, or one silent for a lease, is not a target.
        """
        followers = [Follower("b:2", False, 10, 0.0), Follower("c:3", True, 10, 2.0)]
        self.assertIsNone(best_target(followers, 10, LEASE))

    def test_most_recent_answer_wins(self):
        """
        Among ready followers, the one that answered last is chosen.
        """
        followers = [Follower("b:2", True, 10, 0.3), Follower("c:3", True, 10, 0.1)]
        self.assertEqual(best_target(followers, 10, LEASE), "c:3")

    def test_wanted(self):
        """
        With a wanted member only that one is considered.
        """
        followers = [Follower("b:2", True, 9, 0.3), Follower("c:3", True, 10, 0.1)]
        self.assertIsNone(best_target(followers, 10, LEASE, wanted="b:2"))
        self.assertEqual(best_target(followers, 10, LEASE, wanted="c:3"), "c:3")


class HandoffTests(SynchronousTestCase):
    """
    The hand-off state machine.
    """

    def setUp(self):
        self.clock = Clock()

    def start(self, fake, **kwargs):
        handoff = Handoff(self.clock, fake, LEASE, **kwargs)
        d = handoff.start()
        return handoff, d

    def test_fakes_provide_the_interface(self):
        """
        L{FakeRaftView} and L{MachineView} provide L{IRaftView}.
        """
        self.assertTrue(verifyObject(IRaftView, FakeRaftView()))
        self.assertTrue(verifyObject(IRaftView, MachineView(object())))

    def test_not_leader(self):
        """
        A member that does not lead ends at once as C{not_leader}, touching
        nothing.
        """
        fake = view()
        fake.leader = "b:2"
        handoff, d = self.start(fake)
        result = self.successResultOf(d)
        self.assertEqual(result.outcome, NOT_LEADER)
        self.assertEqual(result.leader, "b:2")
        self.assertEqual(fake.sent, [])
        self.assertFalse(fake.refusing)

    def test_refuses_commands_while_running(self):
        """
        Commands are refused from the start until the end.
        """
        fake = view(b=5, c=5)
        handoff, d = self.start(fake)
        self.assertTrue(fake.refusing)
        self.assertTrue(handoff.active)
        self.assertNoResult(d)
        fake.leader = "b:2"
        handoff.step()
        self.assertEqual(self.successResultOf(d).outcome, TRANSFERRED)
        self.assertFalse(fake.refusing)

    def test_up_to_date_target_is_asked_at_once(self):
        """
        With an up-to-date follower, C{timeout_now} is sent in the first
        step; the hand-off ends when another member leads.
        """
        fake = view(b=10, c=9)
        handoff, d = self.start(fake)
        self.assertEqual(fake.sent, ["b:2"])
        self.clock.advance(0.05)
        fake.leader = None  # b's request_vote deposed us; no leader known yet
        handoff.step()
        self.assertNoResult(d)
        fake.leader = "b:2"
        handoff.step()
        result = self.successResultOf(d)
        self.assertEqual(
            (result.outcome, result.target, result.leader, result.seconds),
            (TRANSFERRED, "b:2", "b:2", 0.05),
        )
        self.assertFalse(self.clock.getDelayedCalls())

    def test_waits_for_the_target_to_catch_up(self):
        """
        A target missing entries is waited for: nothing is sent until its
        match index reaches the last index.
        """
        fake = view(b=7, c=7)
        handoff, d = self.start(fake, target="c:3")
        self.assertEqual(fake.sent, [])
        fake.members["b:2"] = Follower("b:2", True, 10, 0.01)
        self.clock.advance(0.1)
        handoff.step()
        self.assertEqual(fake.sent, [], "b is up to date but c was asked for")
        fake.members["c:3"] = Follower("c:3", True, 10, 0.01)
        handoff.step()
        self.assertEqual(fake.sent, ["c:3"])

    def test_waits_for_commit(self):
        """
        Entries appended before the refusal are committed before
        C{timeout_now} is sent.
        """
        fake = view(last=10, committed=9)
        handoff, d = self.start(fake)
        self.assertEqual(fake.sent, [])
        fake.committed = 10
        handoff.step()
        self.assertEqual(fake.sent, ["b:2"])

    def test_resends(self):
        """
        While this node still leads, C{timeout_now} is sent again every
        resend interval, not at every step.
        """
        fake = view()
        handoff, d = self.start(fake, resend_interval=0.25)
        handoff.step()
        self.clock.advance(0.2)
        handoff.step()
        self.assertEqual(len(fake.sent), 1)
        self.clock.advance(0.05)
        handoff.step()
        self.assertEqual(len(fake.sent), 2)

    def test_no_target_within_the_bound(self):
        """
        When no follower is ever up to date, the hand-off ends after the
        bound as C{no_target} and the leader accepts commands again.
        """
        fake = view(b=3, c=4)
        handoff, d = self.start(fake, bound=3.0)
        self.clock.advance(2.9)
        handoff.step()
        self.assertNoResult(d)
        self.clock.advance(0.1)
        result = self.successResultOf(d)
        self.assertEqual((result.outcome, result.target), (NO_TARGET, None))
        self.assertFalse(fake.refusing)
        self.assertFalse(handoff.active)

    def test_timed_out(self):
        """
        A target that was asked but never won ends as C{timed_out}.
        """
        fake = view()
        handoff, d = self.start(fake, bound=3.0)
        self.clock.advance(3.0)
        result = self.successResultOf(d)
        self.assertEqual((result.outcome, result.target, result.leader), (TIMED_OUT, "b:2", "a:1"))

    def test_refused_timeout_now_is_retried(self):
        """
        A C{timeout_now} that pysyncobj refused to send is not counted as
        sent: the next step tries again.
        """
        fake = view()
        fake.accept_timeout_now = False
        handoff, d = self.start(fake)
        handoff.step()
        self.assertEqual(len(fake.sent), 2)
        self.clock.advance(3.0)
        self.assertEqual(self.successResultOf(d).outcome, NO_TARGET)

    def disconnect(self, fake, *members):
        for member in members:
            old = fake.members[member]
            fake.members[member] = Follower(member, False, old.match_index, old.answered_ago)

    def test_nobody_connected_ends_early(self):
        """
        With no follower connected (the whole group is stopping), the
        hand-off ends as C{no_target} once the unreachable grace has passed,
        long before the bound, and commands are accepted again (D88).
        """
        fake = view()
        self.disconnect(fake, "b:2", "c:3")
        handoff, d = self.start(fake, bound=3.0, unreachable_grace=0.5)
        self.clock.advance(0.45)
        handoff.step()
        self.assertNoResult(d)
        self.clock.advance(0.05)
        handoff.step()
        result = self.successResultOf(d)
        self.assertEqual((result.outcome, result.target, result.seconds), (NO_TARGET, None, 0.5))
        self.assertEqual(fake.sent, [])
        self.assertFalse(fake.refusing)
        self.assertFalse(self.clock.getDelayedCalls())

    def test_a_reconnect_restarts_the_grace(self):
        """
        A follower connected again within the grace keeps the hand-off
        going, and the grace counts anew from the next step that finds
        nobody.
        """
        fake = view(b=3, c=3)
        self.disconnect(fake, "b:2", "c:3")
        handoff, d = self.start(fake, bound=3.0, unreachable_grace=0.5)
        self.clock.advance(0.4)
        fake.members["b:2"] = Follower("b:2", True, 3, 0.01)
        handoff.step()
        self.disconnect(fake, "b:2")
        self.clock.advance(0.4)
        handoff.step()
        self.clock.advance(0.4)
        handoff.step()
        self.assertNoResult(d)
        self.clock.advance(0.1)
        handoff.step()
        self.assertEqual(self.successResultOf(d).outcome, NO_TARGET)

    def test_unreachable_wanted_member(self):
        """
        When a member was asked for, only its connection counts: the other
        follower being connected does not keep the hand-off waiting.
        """
        fake = view()
        self.disconnect(fake, "c:3")
        handoff, d = self.start(fake, target="c:3", bound=3.0, unreachable_grace=0.5)
        self.clock.advance(0.5)
        handoff.step()
        result = self.successResultOf(d)
        self.assertEqual((result.outcome, result.seconds), (NO_TARGET, 0.5))
        self.assertEqual(fake.sent, [])

    def test_asked_target_gone(self):
        """
        A target that was sent C{timeout_now} and then dropped away with
        every other follower ends the hand-off early as C{timed_out}.
        """
        fake = view()
        handoff, d = self.start(fake, bound=3.0, unreachable_grace=0.5)
        self.assertEqual(fake.sent, ["b:2"])
        self.disconnect(fake, "b:2", "c:3")
        self.clock.advance(0.1)
        handoff.step()
        self.clock.advance(0.5)
        handoff.step()
        result = self.successResultOf(d)
        self.assertEqual((result.outcome, result.target), (TIMED_OUT, "b:2"))

    def test_deposed_with_nobody_left(self):
        """
        Deposed by the target's election (no leader known yet), the
        hand-off waits for the winner while anyone is connected, and ends
        as C{timed_out} once nobody has been for the grace: the members
        are stopping, nobody is left to say who won.
        """
        fake = view()
        handoff, d = self.start(fake, bound=3.0, unreachable_grace=0.5)
        self.assertEqual(fake.sent, ["b:2"])
        fake.leader = None
        self.clock.advance(1.0)
        handoff.step()
        self.assertNoResult(d)
        self.disconnect(fake, "b:2", "c:3")
        handoff.step()
        self.clock.advance(0.5)
        handoff.step()
        result = self.successResultOf(d)
        self.assertEqual((result.outcome, result.target, result.leader, result.seconds), (TIMED_OUT, "b:2", None, 1.5))

    def test_stop(self):
        """
        Stopping ends the hand-off as C{stopped} and leaves no timer.
        """
        fake = view(b=1, c=1)
        handoff, d = self.start(fake)
        handoff.stop()
        self.assertEqual(self.successResultOf(d).outcome, STOPPED)
        self.assertFalse(self.clock.getDelayedCalls())

    def test_runs_once(self):
        """
        A L{Handoff} cannot be started twice.
        """
        handoff, d = self.start(view())
        self.assertRaises(RuntimeError, handoff.start)

    def test_on_done(self):
        """
        C{on_done} hears the result before the Deferred fires; an error in
        it does not keep the Deferred from firing.
        """
        seen = []
        fake = view()
        handoff, d = self.start(fake, on_done=seen.append)
        fake.leader = "c:3"
        handoff.step()
        self.assertEqual(seen, [self.successResultOf(d)])

        def broken(result):
            raise ValueError("boom")

        handoff, d = self.start(view(), on_done=broken)
        handoff.stop()
        self.assertEqual(self.successResultOf(d).outcome, STOPPED)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class ServingGraceTests(SynchronousTestCase):
    """
    The old leader's serving window.
    """

    def setUp(self):
        self.clock = Clock()
        self.grace = ServingGrace(self.clock, advertise=1.5, drain=1.0)

    def test_idle(self):
        """
        Without a hand-off it neither serves nor restricts /leader-check.
        """
        self.assertFalse(self.grace.serving(True))
        self.assertTrue(self.grace.advertising())
        self.assertIsNone(self.grace.ends_at)

    def test_serves_during_the_handoff(self):
        """
        During the hand-off the node serves, leader or not.
        """
        self.grace.begin()
        self.assertTrue(self.grace.serving(False))
        self.assertTrue(self.grace.advertising())

    def test_window_after_a_transfer(self):
        """
        After a transfer: advertise for 1.5 s, then drain for 1 s (serving,
        /leader-check failing), then nothing.
        """
        self.grace.begin()
        self.clock.advance(10)
        self.assertEqual(self.grace.end(True), 12.5)
        self.assertTrue(self.grace.serving(True))
        self.assertTrue(self.grace.advertising())
        self.clock.advance(1.5)
        self.assertTrue(self.grace.serving(True))
        self.assertFalse(self.grace.advertising())
        self.clock.advance(0.99)
        self.assertTrue(self.grace.serving(True))
        self.clock.advance(0.01)
        self.assertFalse(self.grace.serving(True))
        self.assertTrue(self.grace.advertising())

    def test_only_while_following(self):
        """
        A node that does not follow a connected leader does not serve in the
        window (a partitioned old leader stops at once).
        """
        self.grace.begin()
        self.grace.end(True)
        self.assertFalse(self.grace.serving(False))

    def test_failed_handoff_opens_no_window(self):
        """
        A hand-off that did not transfer opens no window.
        """
        self.grace.begin()
        self.assertIsNone(self.grace.end(False))
        self.assertFalse(self.grace.serving(True))

    def test_clear(self):
        """
        Clearing closes the window.
        """
        self.grace.begin()
        self.grace.end(True)
        self.grace.clear()
        self.assertFalse(self.grace.serving(True))
        self.assertTrue(self.grace.advertising())


class Recorder(Service):
    """
    A child service recording when it stops.
    """

    def __init__(self, events):
        self.events = events

    def stopService(self):
        Service.stopService(self)
        self.events.append("child stopped")


class HandOffFirstTests(SynchronousTestCase):
    """
    L{HandOffFirst} stops its children only after the hand-off.
    """

    def test_children_stop_after(self):
        """
        The children keep running until C{before_stop}'s Deferred fires.
        """
        events = []
        held = Deferred()
        top = HandOffFirst(lambda: held)
        Recorder(events).setServiceParent(top)
        top.startService()
        d = top.stopService()
        self.assertEqual(events, [])
        self.assertNoResult(d)
        held.callback(None)
        self.assertEqual(events, ["child stopped"])
        self.successResultOf(d)

    def test_failure_still_stops(self):
        """
        A failing C{before_stop} is logged and the children still stop.
        """
        events = []

        def broken():
            raise ValueError("no")

        top = HandOffFirst(broken)
        Recorder(events).setServiceParent(top)
        top.startService()
        self.successResultOf(top.stopService())
        self.assertEqual(events, ["child stopped"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
