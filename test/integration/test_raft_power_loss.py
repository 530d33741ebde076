"""
Power cuts under real raft groups (docs/decisions.md, D50): L{RaftConsensusService}
members on loopback in the trial reactor, each storing its files in a
L{PowerCutDirectory}. A power cut keeps only what was synced, on the real
files, and the member is stopped in the same instant (nothing more leaves
it); the restarted member reads what survived.

The checks are the two that raft's durability exists for:

    - every command that was acknowledged (its Deferred fired) is in the
      state of every member after the restarts, with its value;
    - no member granted two candidates a vote in the same term (every
      C{response_vote} that left a member is recorded by its transport).

Power is cut at moments the test does not choose: when the k-th
acknowledgement of a burst arrives, with the rest of the burst in flight
(entries appended and not synced, acknowledgements held). The checks hold
whatever raft was doing at that moment, so the test is not timing-flaky; the
waits are polls with generous deadlines.

C{test_without_sync_acknowledged_commands_are_lost} runs a power cut on
members that never sync (the behaviour before durable storage) and shows that the
acknowledged commands are gone: what the first test would catch.
L{StorageFailureTests}: a member whose sync fails stops acknowledging.
"""

from __future__ import annotations

import time
import zlib
from typing import Dict, List, Sequence, Set, Tuple

from pysyncobj.transport import TCPTransport
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, returnValue
from twisted.trial.unittest import TestCase

from freno.consensus.interface import CommitTimeoutError
from freno.consensus.raft.memorydisk import MemoryDirectory, PowerCutDirectory
from freno.consensus.raft.transport import HoldUntilSynced
from test.integration.test_raft import FUTURE, Group, pause

Ledger = Dict[Tuple[str, int], Set[str]]


def recording(ledger: Ledger) -> type:
    """
    A durable TCP transport that writes every vote it sends into C{ledger}:
    C{(voter, term) -> {candidates}}.
    """

    class RecordingTCPTransport(TCPTransport):
        def send(self, node, message):
            if isinstance(message, dict) and message.get("type") == "response_vote":
                ledger.setdefault((self._selfNode.id, message["term"]), set()).add(node.id)
            return super().send(node, message)

    return type("VoteRecordingTransport", (HoldUntilSynced, RecordingTCPTransport), {})


class PoweredGroup(Group):
    """
    A L{Group} whose members store their files in L{PowerCutDirectory}s.
    """

    def __init__(self, case: TestCase, n: int, sync: bool = True, **kwargs) -> None:
        self.sync = sync
        self.ledger: Ledger = {}
        self.disks: List[PowerCutDirectory] = [None] * n  # type: ignore[list-item]
        super().__init__(case, n, transport_class=recording(self.ledger), **kwargs)

    def make(self, i: int, **kwargs):
        self.disks[i] = PowerCutDirectory(self.dirs[i], sync=self.sync)
        return super().make(i, directory=self.disks[i], **kwargs)

    def power_cut(self, indexes: Sequence[int]):
        """
        Cut the power of members C{indexes} at once: their disks keep what
        was synced and they stop before the reactor runs again.
        """
        for i in indexes:
            self.disks[i].power_cut()
        return DeferredList([self.services[i].stopService() for i in indexes])

    def restart(self, indexes: Sequence[int]) -> None:
        """
        Boot members C{indexes} again on what their disks kept.
        """
        for i in indexes:
            self.replace(i).startService()

    def double_votes(self) -> Dict[Tuple[str, int], Set[str]]:
        return {key: votes for key, votes in self.ledger.items() if len(votes) > 1}


class PowerLossTests(TestCase):
    """
    Acknowledged commands survive power cuts; nobody votes twice.
    """

    timeout = 120

    def send(self, group: Group, names: Sequence[str], acknowledged: Dict[str, float], on_ack=None):
        """
        Send one throttle per name, round-robin over the running members;
        record each acknowledged one with its ratio. Returns a Deferred
        that fires when every command has succeeded or failed.
        """
        running = group.running()
        deferreds = []
        for i, name in enumerate(names):
            ratio = round(0.01 + (zlib.crc32(name.encode()) % 97) / 100.0, 2)

            def acked(_, name=name, ratio=ratio):
                acknowledged[name] = ratio
                if on_ack is not None:
                    on_ack()

            d = running[i % len(running)].throttle_app(name, FUTURE, ratio)
            d.addCallbacks(acked, lambda failure: None)
            deferreds.append(d)
        return DeferredList(deferreds)

    @inlineCallbacks
    def burst_then_cut(self, group: PoweredGroup, prefix: str, count: int, after: int,
                       victims, acknowledged: Dict[str, float]):
        """
        Send C{count} commands; when the C{after}-th is acknowledged, cut
        the power of C{victims(group)} (chosen then) at the next reactor
        turn, with the rest of the burst in flight. Restart them.
        """
        acks = [0]
        cut: Deferred = Deferred()

        def on_ack():
            acks[0] += 1
            if acks[0] == after:
                indexes = victims(group)
                reactor.callLater(0, lambda: group.power_cut(indexes).chainDeferred(cut))
                cut.addCallback(lambda _: indexes)

        names = [f"{prefix}-{i}" for i in range(count)]
        yield self.send(group, names, acknowledged, on_ack)
        indexes = yield cut
        group.restart(indexes)
        returnValue(indexes)

    @inlineCallbacks
    def all_have(self, group: Group, acknowledged: Dict[str, float], timeout: float = 15.0):
        deadline = time.monotonic() + timeout
        while True:
            missing = {
                s.status().ServiceID: sorted(
                    name for name, ratio in acknowledged.items()
                    if name not in s.throttled_apps() or s.throttled_apps()[name].ratio != ratio
                )
                for s in group.running()
            }
            if not any(missing.values()):
                return
            if time.monotonic() > deadline:
                self.fail(f"acknowledged commands missing after the power cuts: {missing}")
            yield pause(0.05)

    @inlineCallbacks
    def test_three_members(self):
        """
        Three rounds of bursts with power cuts in flight (every member; the
        leader and a follower; every member again, later in the burst): every
        acknowledged command is on every member afterwards, and no member
        voted twice in a term.
        """
        group = PoweredGroup(self, 3, command_timeout=2.0)
        group.start_all()
        acknowledged: Dict[str, float] = {}

        def everyone(g):
            return list(range(3))

        def leader_and_a_follower(g):
            leader = g.leaders()[0] if g.leaders() else g.services[0]
            i = g.services.index(leader)
            return [i, (i + 1) % 3]

        for round_, (victims, after) in enumerate(
            [(everyone, 3), (leader_and_a_follower, 6), (everyone, 11)]
        ):
            yield group.settled(15)
            yield self.send(group, [f"calm{round_}-{i}" for i in range(6)], acknowledged)
            yield self.burst_then_cut(group, f"burst{round_}", 16, after, victims, acknowledged)
        yield group.settled(15)
        self.assertGreaterEqual(len(acknowledged), 18 + 3 + 6 + 11)
        yield self.all_have(group, acknowledged)
        self.assertEqual(group.double_votes(), {})
        self.assertTrue(group.ledger, "no vote was recorded: the ledger is not wired")

    @inlineCallbacks
    def test_single_member(self):
        """
        A single member acknowledges a command only once it is synced: a
        power cut in a burst keeps every acknowledged one.
        """
        group = PoweredGroup(self, 1)
        group.start_all()
        acknowledged: Dict[str, float] = {}
        for round_, after in enumerate([1, 7]):
            yield group.settled(5)
            yield self.burst_then_cut(group, f"burst{round_}", 12, after, lambda g: [0], acknowledged)
        yield group.settled(5)
        self.assertGreaterEqual(len(acknowledged), 8)
        yield self.all_have(group, acknowledged)

    @inlineCallbacks
    def test_without_sync_acknowledged_commands_are_lost(self):
        """
        Members that never sync (as before durable storage) lose acknowledged
        commands to a power cut of the whole group.
        """
        group = PoweredGroup(self, 3, sync=False)
        group.start_all()
        acknowledged: Dict[str, float] = {}
        yield group.settled(15)
        yield self.send(group, [f"app{i}" for i in range(6)], acknowledged)
        self.assertEqual(len(acknowledged), 6)
        yield group.power_cut([0, 1, 2])
        group.restart([0, 1, 2])
        yield group.settled(15)
        for s in group.running():
            self.assertEqual(set(acknowledged) & set(s.throttled_apps()), set())


class FailingDisk(MemoryDirectory):
    """
    A disk whose syncs start failing when told to.
    """

    broken = False

    def sync(self, name):
        if self.broken:
            raise OSError(5, "Input/output error")
        super().sync(name)


class StorageFailureTests(TestCase):
    """
    A member whose storage fails stops acknowledging and stops leading.
    """

    timeout = 30

    @inlineCallbacks
    def test_failed_sync(self):
        """
        After a failed sync the single member answers no command, is
        unhealthy and not leader, and applies nothing more.
        """
        disk = FailingDisk()
        group = Group(self, 1, command_timeout=1.0, directory=disk)
        node = group.services[0]
        node.startService()
        yield group.settled(5)
        yield node.throttle_app("before", FUTURE, 0.5)
        disk.broken = True
        yield self.assertFailure(node.throttle_app("after", FUTURE, 0.5), CommitTimeoutError)
        self.assertFalse(node.is_healthy())
        self.assertFalse(node.is_leader())
        self.assertNotIn("after", node.throttled_apps())
        self.assertIsNotNone(node.machine.journal.failed)
        yield pause(0.2)  # ticks go on quietly
        self.assertNotIn("after", node.throttled_apps())
