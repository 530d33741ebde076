"""
Tests for L{freno.consensus.raft.machine}: the replicated method, the
lease and settings. (Durability: C{test_raft_durability}.)
"""

from __future__ import annotations

import os

from pysyncobj.monotonic import monotonic
from pysyncobj.node import TCPNode
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.raft.machine import (
    LEADER_LEASE,
    NoNetworkTransport,
    ThrottleMachine,
    raft_settings,
)
from freno.consensus.raft.poller import ReactorPoller
from freno.consensus.commands import MAX_KEY_LENGTH, SkipHost, ThrottleApp, command_to_dict
from freno.consensus.audit import Applied
from freno.consensus.state import ThrottleState
from test.unit.test_raft_poller import FakeFDSet


class ThrottleMachineTests(SynchronousTestCase):
    """
    L{ThrottleMachine}'s replicated method, applied as pysyncobj applies a
    committed entry.
    """

    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.state = ThrottleState()
        self.poller = ReactorPoller(FakeFDSet(), lambda: None)
        conf = raft_settings(self.dir, None, None)
        self.machine = ThrottleMachine(
            "127.0.0.1:1", [], conf, self.poller, self.state, NoNetworkTransport
        )
        self.addCleanup(self.poller.close)
        self.addCleanup(self.machine.close_leftovers)
        self.addCleanup(self.machine.destroy)

    def test_uses_the_reactor_poller(self):
        """
        pysyncobj's own poller is replaced by ours, so its pipe notifier is
        registered with the reactor.
        """
        self.assertIs(self.machine._poller, self.poller)
        self.assertEqual(len(self.poller.descriptors()), 1)

    def test_apply(self):
        """
        A committed command changes the state.
        """
        result = self.machine.apply_command(
            command_to_dict(ThrottleApp("app", None, 0.5)), _doApply=True
        )
        self.assertEqual(result, Applied())
        self.assertEqual(self.state.apps["app"].ratio, 0.5)

    def test_malformed_entry_is_skipped(self):
        """
        An entry that cannot be applied returns an error message instead of
        raising (which would stall pysyncobj's apply loop forever).
        """
        before = self.state.snapshot()
        for bad in ({"op": "nuke"}, {"op": "throttle", "key": "x"}, "junk"):
            result = self.machine.apply_command(bad, _doApply=True)
            self.assertIsInstance(result, str)
        self.assertEqual(self.state.snapshot(), before)
        self.flushLoggedErrors()

    def test_over_long_key_is_skipped(self):
        """
        An entry whose key is longer than the state holds is not applied,
        the same on every node.
        """
        key = "k" * (MAX_KEY_LENGTH + 1)
        for command in (ThrottleApp(key, None, None), SkipHost(key, 1.0)):
            result = self.machine.apply_command(command_to_dict(command), _doApply=True)
            self.assertIn("longer than", result)
        self.assertEqual(self.state.snapshot(), ThrottleState().snapshot())

    def test_single_node_is_leader_without_lease(self):
        """
        Alone, a leader needs nobody's answer; before it is elected it has
        no lease.
        """
        self.assertFalse(self.machine.has_majority_lease())

    def test_elect_alone(self):
        """
        A group of one that is told to elect itself is leader after one
        tick, without waiting out raft's election timeout.
        """
        self.machine.elect_alone()
        self.machine.doTick(0.0)
        self.machine.refresh_lease()
        self.assertTrue(self.machine._isLeader())
        self.assertTrue(self.machine.has_majority_lease())

    def test_applied_own_term(self):
        """
        A leader has applied its own term only once the no-op entry of its
        election is applied (D89): before the election it has none, after
        the one tick of a group of one it has, and with that entry not yet
        applied it has not.
        """
        self.assertFalse(self.machine.applied_own_term())
        self.machine.elect_alone()
        self.machine.doTick(0.0)
        self.assertTrue(self.machine.applied_own_term())
        noop = self.machine._SyncObj__noopIDx
        self.machine._SyncObj__raftLastApplied = noop - 1
        self.assertFalse(self.machine.applied_own_term())

    def test_settings(self):
        """
        The settings the stack notes call for.
        """
        conf = self.machine.conf
        self.assertFalse(conf.autoTick)
        self.assertFalse(conf.appendEntriesUseBatch)
        self.assertFalse(conf.commandsWaitLeader)
        self.assertLessEqual(conf.connectionRetryTime, 1.0)
        self.assertEqual(conf.leaderFallbackTimeout, LEADER_LEASE)
        self.assertLess(LEADER_LEASE, 2.0)
        self.assertIsNone(conf.journalFile)  # ours is the DurableJournal
        self.assertEqual(conf.fullDumpFile, os.path.join(self.dir, "freno-raft.dump"))


class ElectAloneTests(SynchronousTestCase):
    """
    L{ThrottleMachine.elect_alone} is for a group of one only.
    """

    def test_refused_with_partners(self):
        """
        A member of a real group must wait its election timeout.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        poller = ReactorPoller(FakeFDSet(), lambda: None)
        conf = raft_settings(directory, None, None)
        machine = ThrottleMachine(
            "127.0.0.1:1", ["127.0.0.1:2"], conf, poller, ThrottleState(), NoNetworkTransport
        )
        self.addCleanup(poller.close)
        self.addCleanup(machine.close_leftovers)
        self.addCleanup(machine.destroy)
        self.assertRaises(ValueError, machine.elect_alone)


class LeaseTests(SynchronousTestCase):
    """
    L{ThrottleMachine.has_majority_lease} follows pysyncobj's step-down rule
    at the moment of the call.
    """

    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.poller = ReactorPoller(FakeFDSet(), lambda: None)
        conf = raft_settings(self.dir, None, None)
        self.partners = [f"127.0.0.1:{p}" for p in (2, 3, 4, 5)]
        self.machine = ThrottleMachine(
            "127.0.0.1:1", self.partners, conf, self.poller, ThrottleState(), NoNetworkTransport
        )
        self.addCleanup(self.poller.close)
        self.addCleanup(self.machine.close_leftovers)
        self.addCleanup(self.machine.destroy)

    def answers(self, *ages):
        now = monotonic()
        self.machine._SyncObj__raftState = 2  # pretend to be leader
        self.machine._SyncObj__lastResponseTime = {
            TCPNode(p): now - age for p, age in zip(self.partners, ages)
        }
        self.machine.refresh_lease()

    def test_majority_recent(self):
        """
        Two of four partners answered recently: with us, a majority of five.
        """
        self.answers(0.1, 0.2, 30, 40)
        self.assertTrue(self.machine.has_majority_lease())

    def test_majority_stale(self):
        """
        Only one partner answered within the lease: no majority.
        """
        self.answers(0.1, LEADER_LEASE + 0.1, 30, 40)
        self.assertFalse(self.machine.has_majority_lease())

    def test_not_leader(self):
        """
        A follower has no lease whatever the answers.
        """
        self.answers(0.1, 0.1, 0.1, 0.1)
        self.machine._SyncObj__raftState = 0
        self.assertFalse(self.machine.has_majority_lease())
        self.machine.refresh_lease()
        self.assertEqual(self.machine._lease_until, 0.0)
