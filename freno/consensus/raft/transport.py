# -*- test-case-name: test.unit.test_raft_durability,test.integration.test_raft_power_loss -*-
"""
pysyncobj transports for a freno member.

    - L{DurableTCPTransport}: pysyncobj's TCP transport, except that a
      message which acknowledges something the journal has not synced yet
      waits for the next L{DurableJournal.flush}.
    - L{NoNetworkTransport}: single-node mode's: no socket at all.

Which messages wait
===================

Raft lets a member promise something only once it is on stable storage:

    - C{next_node_idx}: a follower's answer to C{append_entries} (success
      tells the leader the entries are stored: the leader counts them toward
      the commit majority);
    - C{response_vote}: a granted vote (the vote, and the term, must survive
      a crash, or the member can vote twice in one term);
    - C{request_vote}: a candidate's request (its new term and its vote for
      itself must be durable before anyone can vote for it).

Such a message is held while the journal has unsynced changes; once one
message is held, every later one queues behind it, so nothing is ever
reordered. L{DurableJournal.flush} (after the socket event that wrote the
entries, and before and after every tick) releases them all after a single
sync, so a burst of entries costs one sync (group commit). Messages that promise nothing (the leader's
C{append_entries}, forwarded commands) go out at once, so a leader writes
its log in parallel with its followers (Ongaro's raft thesis, section
10.2.1); it counts itself toward a commit only after its own flush
(L{freno.consensus.raft.machine.ThrottleMachine.doTick}).
"""

from __future__ import annotations

from typing import Any, List, Tuple

from pysyncobj.transport import TCPTransport, Transport

#: Message types that acknowledge durable state (see the module docstring).
ACKNOWLEDGING = frozenset({"next_node_idx", "response_vote", "request_vote"})


def acknowledges(message: Any) -> bool:
    """
    Whether C{message} promises that something is on stable storage.
    """
    return isinstance(message, dict) and message.get("type") in ACKNOWLEDGING


class HoldUntilSynced:
    """
    Mixin for a pysyncobj C{Transport} (listed before it): acknowledging
    messages wait for the journal's flush (see the module docstring).
    C{syncObj} must have a C{journal} (a L{DurableJournal}):
    L{freno.consensus.raft.machine.ThrottleMachine} has.
    """

    def __init__(self, syncObj, selfNode, otherNodes) -> None:
        self._held: List[Tuple[Any, Any]] = []
        self._journal = syncObj.journal
        self._journal.add_durable_observer(self.release)
        super().__init__(syncObj, selfNode, otherNodes)

    def send(self, node, message) -> bool:
        """
        Send C{message} now, or hold it until the next flush. A held message
        counts as sent, as a message queued in a socket buffer does.
        """
        if self._held or (acknowledges(message) and self._journal.unsynced):
            self._held.append((node, message))
            return True
        return super().send(node, message)

    def release(self) -> None:
        """
        Send the held messages, in order (called after each flush).
        """
        held, self._held = self._held, []
        for node, message in held:
            super().send(node, message)

    def held(self) -> int:
        """
        How many messages are waiting for a flush.
        """
        return len(self._held)

    def destroy(self) -> None:
        """
        Drop held messages (the member is stopping) and close everything.
        """
        self._held = []
        super().destroy()


class DurableTCPTransport(HoldUntilSynced, TCPTransport):
    """
    pysyncobj's C{TCPTransport} holding acknowledgements until the journal
    is synced.
    """


class NoNetworkTransport(Transport):
    """
    The transport of single-node mode: no listening socket, no peers. A lone
    node has nobody to talk to, and a port that unpickles whatever reaches it
    would only be an attack surface.
    """

    def send(self, node, message) -> bool:
        return False
