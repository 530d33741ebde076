"""
Raft's durability promises, message by message: real L{ThrottleMachine}s
whose network is a list (L{Wire}) and whose disk is a L{MemoryDirectory}
that a crash reduces to what was synced.

Every message a member sends is checked against what was durable at that
moment (L{promises_broken}): a granted vote, a vote request, a follower's
acknowledgement and a leader's commit index must all be backed by synced
state. Client commands are checked when their callback fires. The tests
with C{sync=False} show the same scenarios breaking those promises when
nothing is synced (the behaviour before durable storage, D50): they are what the other
tests would catch.
"""

from __future__ import annotations

import json
import os
from typing import List, Optional, Tuple

from pysyncobj.node import TCPNode
from pysyncobj.transport import Transport
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.raft.disk import FileDirectory
from freno.consensus.raft.journal import LOG_NAME, META_NAME, parse_log
from freno.consensus.raft.machine import NoNetworkTransport, ThrottleMachine, raft_settings
from freno.consensus.raft.memorydisk import MemoryDirectory
from freno.consensus.raft.poller import ReactorPoller
from freno.consensus.raft.snapshot import DUMP_NAME, SnapshotFile
from freno.consensus.raft.transport import HoldUntilSynced
from freno.consensus.commands import ThrottleApp, command_to_dict
from freno.consensus.state import ThrottleState
from test.unit.test_raft_poller import FakeFDSet

SELF, A, B = "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"
NO_OP = b"\x01"


def durable_log(disk: MemoryDirectory) -> List[Tuple[bytes, int, int]]:
    return parse_log(disk.durable.get(LOG_NAME, b""))[0]


def durable_meta(disk: MemoryDirectory) -> dict:
    data = disk.durable.get(META_NAME)
    return json.loads(data) if data else {"currentTerm": 0, "votedFor": None}


def promises_broken(self_id: str, disk: MemoryDirectory, to: str, message) -> Optional[str]:
    """
    What C{message} (from C{self_id} to C{to}) promises that the durable
    state of C{disk} does not back, or C{None}.
    """
    kind = message.get("type")
    meta = durable_meta(disk)
    last = durable_log(disk)[-1][1] if durable_log(disk) else 0
    if kind == "response_vote":
        if (meta["currentTerm"], meta["votedFor"]) != (message["term"], to) and meta["currentTerm"] <= message["term"]:
            return f"vote for {to} in term {message['term']} sent, durable meta {meta}"
    if kind == "request_vote":
        if meta["currentTerm"] < message["term"] or (
            meta["currentTerm"] == message["term"] and meta["votedFor"] != self_id
        ):
            return f"vote requested in term {message['term']}, durable meta {meta}"
    if kind == "next_node_idx" and message["success"] and last < message["next_node_idx"] - 1:
        return f"entries up to {message['next_node_idx'] - 1} acknowledged, durable up to {last}"
    if kind == "append_entries" and message["commit_index"] > last:
        return f"commit index {message['commit_index']} announced, durable up to {last}"
    return None


class Wire(Transport):
    """
    A network made of a list: C{sent} gets C{(to, message)}, and a message
    that breaks a promise is also put in C{broken}.
    """

    disk: MemoryDirectory

    def __init__(self, syncObj, selfNode, otherNodes) -> None:
        super().__init__(syncObj, selfNode, otherNodes)
        self.self_id = selfNode.id
        self.sent: List[Tuple[str, dict]] = []
        self.broken: List[str] = []

    def send(self, node, message) -> bool:
        self.sent.append((node.id, message))
        problem = promises_broken(self.self_id, self.disk, node.id, message)
        if problem:
            self.broken.append(problem)
        return True

    def deliver(self, sender: str, message: dict) -> None:
        """
        A message from C{sender} arrives.
        """
        self._onMessageReceived(TCPNode(sender), message)

    def connect(self, *nodes: str) -> None:
        for node in nodes:
            self._onNodeConnected(TCPNode(node))

    def of_type(self, kind: str) -> List[Tuple[str, dict]]:
        return [(to, m) for to, m in self.sent if m.get("type") == kind]


def scripted(disk: MemoryDirectory):
    """
    The transport class of a member whose disk is C{disk}: L{Wire} behind
    the same holding logic as the real TCP transport.
    """
    return type("ScriptedTransport", (HoldUntilSynced, Wire), {"disk": disk})


def vote_request(term: int, last_index: int = 1, last_term: int = 0) -> dict:
    return {"type": "request_vote", "term": term, "last_log_index": last_index, "last_log_term": last_term}


def append(term: int, previous: Tuple[int, int], entries=(), commit: int = 1) -> dict:
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": commit,
        "entries": list(entries),
        "prevLogIdx": previous[0],
        "prevLogTerm": previous[1],
    }


class Members(SynchronousTestCase):
    """
    Building members on a disk.
    """

    def member(self, disk: MemoryDirectory, partners=(A, B)) -> ThrottleMachine:
        data_dir = os.path.abspath(self.mktemp())  # only for the snapshot path; never written
        poller = ReactorPoller(FakeFDSet(), lambda: None)
        machine = ThrottleMachine(
            SELF,
            list(partners),
            raft_settings(data_dir, None, None),
            poller,
            ThrottleState(),
            transport_class=scripted(disk) if partners else NoNetworkTransport,
            directory=disk,
        )
        self.addCleanup(poller.close)
        self.addCleanup(machine.close_leftovers)
        self.addCleanup(machine.destroy)
        return machine

    def wire(self, machine: ThrottleMachine) -> Wire:
        return machine._SyncObj__transport

    def reboot(self, disk: MemoryDirectory, machine: ThrottleMachine, **kwargs) -> ThrottleMachine:
        """
        Cut the power under C{machine} and start a new member on what
        survived.
        """
        disk.crash()
        self.assertEqual(getattr(self.wire(machine), "broken", []), [])
        return self.member(disk, **kwargs)

    def elect(self, machine: ThrottleMachine) -> None:
        """
        Let C{machine}'s election timer expire now.
        """
        machine._SyncObj__raftElectionDeadline = 0


class VoteTests(Members):
    """
    A member grants or asks for a vote only once its term and vote are
    synced.
    """

    def test_vote_synced_before_it_is_granted(self):
        """
        The vote waits for the flush; after a power cut the member still
        knows it voted and refuses another candidate in the same term.
        """
        disk = MemoryDirectory()
        member = self.member(disk)
        wire = self.wire(member)
        wire.deliver(A, vote_request(5))
        self.assertEqual(wire.sent, [])
        self.assertTrue(member.journal.unsynced)
        member.doTick(0.0)
        self.assertEqual(wire.of_type("response_vote"), [(A, {"type": "response_vote", "term": 5})])
        self.assertEqual(wire.broken, [])

        member = self.reboot(disk, member)
        wire = self.wire(member)
        self.assertEqual(member.raftCurrentTerm, 5)
        wire.deliver(B, vote_request(5))
        member.doTick(0.0)
        self.assertEqual(wire.of_type("response_vote"), [])

    def test_without_sync_it_votes_twice(self):
        """
        Without syncing, the same scenario ends with two votes in term 5.
        """
        disk = MemoryDirectory(sync=False)
        member = self.member(disk)
        self.wire(member).deliver(A, vote_request(5))
        member.doTick(0.0)
        self.assertEqual(len(self.wire(member).broken), 1)
        disk.crash()
        member = self.member(disk)
        wire = self.wire(member)
        wire.deliver(B, vote_request(5))
        member.doTick(0.0)
        self.assertEqual(wire.of_type("response_vote"), [(B, {"type": "response_vote", "term": 5})])

    def test_candidate_syncs_before_asking(self):
        """
        A candidate's new term and its vote for itself are durable before
        it asks anyone for a vote.
        """
        disk = MemoryDirectory()
        member = self.member(disk)
        wire = self.wire(member)
        wire.connect(A, B)
        self.elect(member)
        member.doTick(0.0)
        self.assertEqual(sorted(to for to, _ in wire.of_type("request_vote")), [A, B])
        self.assertEqual(wire.broken, [])
        self.assertEqual(durable_meta(disk)["votedFor"], SELF)


class FollowerTests(Members):
    """
    A follower acknowledges entries only once they are synced, with one
    sync for a burst.
    """

    def test_burst_one_sync(self):
        """
        Ten messages with one entry each, read before a tick: the ten
        acknowledgements wait, then leave in order after a single sync.
        """
        disk = MemoryDirectory()
        member = self.member(disk)
        wire = self.wire(member)
        wire.deliver(A, append(1, (1, 0)))  # heartbeat: nothing new to sync but the NO_OP of start-up
        for index in range(2, 12):
            wire.deliver(A, append(1, (index - 1, 0 if index == 2 else 1), [(NO_OP, index, 1)]))
        self.assertEqual(wire.sent, [])
        self.assertEqual(wire.held(), 11)
        syncs = disk.syncs(LOG_NAME)
        member.doTick(0.0)
        self.assertEqual(disk.syncs(LOG_NAME) - syncs, 1)
        acks = [m["next_node_idx"] for _, m in wire.of_type("next_node_idx")]
        self.assertEqual(acks, list(range(2, 13)))
        self.assertEqual(wire.broken, [])
        member = self.reboot(disk, member)
        self.assertEqual(member._getRaftLogSize(), 11)

    def test_clean_journal_answers_at_once(self):
        """
        A heartbeat when nothing is unsynced is answered at once (no
        latency is added where no promise is at stake).
        """
        disk = MemoryDirectory()
        member = self.member(disk)
        wire = self.wire(member)
        wire.deliver(A, append(1, (1, 0)))  # a new term: synced first
        self.assertEqual(wire.sent, [])
        member.doTick(0.0)
        self.assertEqual(len(wire.of_type("next_node_idx")), 1)
        wire.deliver(A, append(1, (1, 0)))
        self.assertEqual(len(wire.of_type("next_node_idx")), 2)
        self.assertEqual(wire.broken, [])

    def test_snapshot_install_durable_before_ack(self):
        """
        A snapshot from the leader is stored durably, the log is replaced,
        and only then is it acknowledged; a power cut right after keeps it.
        """
        leader_state = ThrottleState()
        leader_state.apply(ThrottleApp("snap", None, 0.5))
        document = SnapshotFile(leader_state).encode(
            ((NO_OP, 50, 3), (NO_OP, 49, 3), {TCPNode(A), TCPNode(B), TCPNode(SELF)})
        )
        disk = MemoryDirectory()
        member = self.member(disk)
        wire = self.wire(member)
        member.doTick(0.0)
        wire.deliver(A, {"type": "append_entries", "term": 3, "commit_index": 50, "serialized": (document, True, False)})
        wire.deliver(A, {"type": "append_entries", "term": 3, "commit_index": 50, "serialized": (b"", False, True)})
        member.doTick(0.0)
        self.assertEqual(wire.of_type("next_node_idx")[-1][1]["success"], True)
        self.assertEqual(wire.broken, [])
        self.assertEqual(member._state.apps["snap"].ratio, 0.5)
        self.assertEqual([e[1] for e in durable_log(disk)], [49, 50])


class LeaderTests(Members):
    """
    A leader answers a client only once the command's entry is synced on
    a majority, itself included; alone, on itself.
    """

    def leader(self, disk: MemoryDirectory) -> ThrottleMachine:
        member = self.member(disk)
        wire = self.wire(member)
        wire.connect(A, B)
        self.elect(member)
        member.doTick(0.0)
        wire.deliver(A, {"type": "response_vote", "term": member.raftCurrentTerm})
        self.assertTrue(member._isLeader())
        return member

    def test_leader_sends_before_its_own_sync(self):
        """
        The leader replicates a new entry at once (its followers write in
        parallel with it) but announces a commit only of what it synced.
        """
        disk = MemoryDirectory()
        member = self.leader(disk)
        wire = self.wire(member)
        self.assertTrue(member.journal.unsynced)  # the NO_OP of the new term
        entries = [m for _, m in wire.of_type("append_entries") if m.get("entries")]
        self.assertEqual({m["entries"][-1][1] for m in entries}, {2})
        wire.deliver(A, {"type": "next_node_idx", "next_node_idx": 3, "reset": False, "success": True})
        member.doTick(0.0)
        self.assertEqual(member.raftCommitIndex, 2)
        self.assertEqual(wire.broken, [])

    def test_command_answered_after_majority_synced(self):
        """
        A command's callback fires once the entry is durable here and
        acknowledged by a follower.
        """
        disk = MemoryDirectory()
        member = self.leader(disk)
        wire = self.wire(member)
        member.doTick(0.0)
        answered = []

        def done(result, error):
            answered.append((error, durable_log(disk)[-1][1]))

        member.apply_command(command_to_dict(ThrottleApp("app", None, 0.5)), callback=done)
        member.doTick(0.0)
        self.assertEqual(answered, [])
        index = member._getRaftLogSize()
        self.assertEqual(durable_log(disk)[-1][1], index)
        wire.deliver(A, {"type": "next_node_idx", "next_node_idx": index + 1, "reset": False, "success": True})
        member.doTick(0.0)
        self.assertEqual(answered, [(0, index)])
        self.assertEqual(wire.broken, [])


class SingleNodeTests(Members):
    """
    Alone, a command is applied and answered only after its entry was
    synced; a burst costs one sync.
    """

    def run_burst(self, disk: MemoryDirectory, count: int):
        member = self.member(disk, partners=())
        self.elect(member)
        member.doTick(0.0)
        self.assertTrue(member._isLeader())
        while member.doTick(0.0):
            pass
        answered = []
        syncs = disk.syncs(LOG_NAME)

        def done(result, error, i):
            answered.append((i, error, len(durable_log(disk))))

        for i in range(count):
            member.apply_command(
                command_to_dict(ThrottleApp(f"app{i}", None, 0.5)),
                callback=lambda result, error, i=i: done(result, error, i),
            )
        ticks = 0
        while len(answered) < count and ticks < 10:
            member.doTick(0.0)
            ticks += 1
        return member, answered, disk.syncs(LOG_NAME) - syncs, ticks

    def test_burst(self):
        """
        Twenty commands submitted together are answered after one sync,
        each with its entry durable, within two ticks.
        """
        disk = MemoryDirectory()
        member, answered, syncs, ticks = self.run_burst(disk, 20)
        self.assertEqual([i for i, _, _ in answered], list(range(20)))
        size = member._getRaftLogSize()
        self.assertEqual({(error, durable) for _, error, durable in answered}, {(0, size)})
        self.assertEqual(syncs, 1)
        self.assertEqual(ticks, 2)
        member = self.reboot(disk, member, partners=())
        self.assertEqual(member._getRaftLogSize(), size)

    def test_without_sync_answers_are_lost(self):
        """
        Without syncing, the same burst is answered with nothing durable,
        and a power cut loses all of it.
        """
        disk = MemoryDirectory(sync=False)
        member, answered, _, _ = self.run_burst(disk, 20)
        self.assertEqual(len(answered), 20)
        self.assertEqual({durable for _, _, durable in answered}, {0})
        disk.crash()
        self.assertIsNone(disk.read(LOG_NAME))


class InterruptedCompactionTests(SynchronousTestCase):
    """
    A crash between writing a snapshot and rewriting the log loses nothing.
    """

    def member(self, path: str) -> ThrottleMachine:
        poller = ReactorPoller(FakeFDSet(), lambda: None)
        machine = ThrottleMachine(
            SELF, [], raft_settings(path, None, None), poller, ThrottleState(),
            transport_class=NoNetworkTransport, directory=FileDirectory(path),
        )
        self.addCleanup(poller.close)
        self.addCleanup(machine.close_leftovers)
        self.addCleanup(machine.destroy)
        return machine

    def test_log_after_the_snapshot_kept(self):
        """
        The log holds ten commands; a snapshot of the first five is stored
        but the log was not compacted. After a restart all ten are applied
        (pysyncobj alone would replace the log by the snapshot's two
        entries and lose the other five).
        """
        path = os.path.abspath(self.mktemp())
        member = self.member(path)
        member._SyncObj__raftElectionDeadline = 0
        answered = []
        for i in range(10):
            member.apply_command(
                command_to_dict(ThrottleApp(f"app{i}", None, 0.5)),
                callback=lambda result, error: answered.append(error),
            )
        for _ in range(10):
            member.doTick(0.0)
        self.assertEqual(answered, [0] * 10)
        log = list(member.journal[:])
        self.assertEqual(len(log), 12)  # NO_OP of start-up, NO_OP of the term, ten commands
        early = ThrottleState()
        for i in range(5):
            early.apply(ThrottleApp(f"app{i}", None, 0.5))
        FileDirectory(path).replace(
            DUMP_NAME, SnapshotFile(early).encode((log[6], log[5], {TCPNode(SELF)}))
        )
        member.destroy()

        member = self.member(path)
        member._SyncObj__raftElectionDeadline = 0
        for _ in range(10):
            member.doTick(0.0)
        self.assertTrue(member._isLeader())
        self.assertEqual(sorted(member._state.apps), sorted(f"app{i}" for i in range(10)))
        self.assertEqual(member.journal[0], log[5])


class SocketEventTests(Members):
    """
    L{ThrottleMachine.flush_unsynced}, called after each socket event,
    sends held acknowledgements without waiting for a tick.
    """

    def test_flush_after_event(self):
        """
        Entries written by one event are synced once and acknowledged; with
        nothing new, nothing is synced.
        """
        disk = MemoryDirectory()
        member = self.member(disk)
        wire = self.wire(member)
        member.doTick(0.0)
        wire.deliver(A, append(1, (1, 0), [(NO_OP, 2, 1), (NO_OP, 3, 1)]))
        self.assertEqual(wire.sent, [])
        syncs = disk.syncs(LOG_NAME)
        self.assertTrue(member.flush_unsynced())
        self.assertEqual(disk.syncs(LOG_NAME) - syncs, 1)
        self.assertEqual([m["next_node_idx"] for _, m in wire.of_type("next_node_idx")], [4])
        self.assertFalse(member.flush_unsynced())
        self.assertEqual(disk.syncs(LOG_NAME) - syncs, 1)
        self.assertEqual(wire.broken, [])
