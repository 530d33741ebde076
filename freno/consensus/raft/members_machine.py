# -*- test-case-name: test.unit.test_raft_membership,test.integration.test_raft_membership -*-
"""
L{DynamicMembers}: what L{ThrottleMachine
<freno.consensus.raft.machine.ThrottleMachine>} adds to pysyncobj's dynamic
membership change (C{dynamicMembershipChange=True}).

pysyncobj 0.3.17, read critically
=================================

pysyncobj changes the member set when a membership entry is I{appended}
(the leader in C{_checkCommandsToApply}, a follower in its C{append_entries}
handler) and undoes it when the entry is truncated: raft's single-server
change, done right. It accepts one change at a time (the leader refuses a
change while the previous one is not applied, and before the no-op of its
term is), and a removed member stops being contacted at once (the leader
never sends it the entry that removes it; every member refuses connections
from an address outside its member set, so a removed node that keeps
running cannot disturb the group). Its weak points, and what we do:

    - At start it builds the member set from the I{constructor's} list and
      replays membership entries only as they are applied (up to the commit
      index), on top of that list; a snapshot replaces the set with the
      snapshot's. A node restarted with a stale C{RaftNodes} would run with
      a wrong set until the entries are applied again, and a replayed
      C{add} of an already removed member adds it back for a while. Here
      the set is derived from the snapshot and I{every} entry of the log
      (L{freno.consensus.raft.membership.Membership}) before pysyncobj
      starts, and replays and snapshot loads no longer change it
      (C{_SyncObj__doApplyCommand}, C{_SyncObj__updateClusterConfiguration}
      below).
    - A follower that appends C{rem X} and is told in the same message that
      an earlier C{add X} committed re-adds X when it applies that entry,
      until C{rem X} is applied too. Same cure.
    - A snapshot records the set as it is when the snapshot is written,
      uncommitted changes included; ours records the set as of the
      snapshot's last entry (L{Membership.at}).
    - A new member votes (and counts toward commits) as soon as the leader
      appends its entry, caught up or not, and C{addNodeToCluster} accepts
      anyone. Ours joins as a I{learner} first (a read-only node,
      L{freno.consensus.raft.peers}): the API adds it only once it is
      connected and has the log up to the commit index (D72).
    - The C{add}/C{remove} utility messages on the raft port (pysyncobj's
      admin tool) change the members outside the API and its audit log:
      they are refused here.
    - The leader starts replicating to a new member at the entry that added
      it; the member, which already has it, truncates it and appends it
      again, logging a critical "truncating already-applied log entries".
      (pysyncobj truncates whenever a message's entries follow entries the
      follower already has, identical or not, instead of only on a
      conflict; the entries are the same, nothing is applied twice, and the
      answer waits for the sync as always, so it is noise, but alarming
      noise.) The leader starts after what the learner holds instead
      (L{DynamicMembers.adopt_learner_progress}), which avoids it unless
      entries were in flight to the learner at that moment.
    - C{__updateClusterConfiguration} gives a member added on a leader no
      last-response time, which the leader's next tick reads (C{KeyError});
      ours adds it.

Private hooks (pysyncobj pinned): C{_SyncObj__doApplyCommand},
C{_SyncObj__updateClusterConfiguration}, C{_SyncObj__transport},
C{_SyncObj__raftMatchIndex}, C{_SyncObj__raftNextIndex},
C{_SyncObj__lastResponseTime},
C{_SyncObj__raftElectionDeadline}, C{_SyncObj__changeClusterIDx}, and
C{_applyCommand(command, callback, commandType)}.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from pysyncobj import FAIL_REASON, SyncObj
from pysyncobj.monotonic import monotonic
from pysyncobj.node import Node, TCPNode
from twisted.logger import Logger

from freno.consensus.audit import APPLIED, Applied
from freno.consensus.raft.membership import (
    MEMBERSHIP_TYPE,
    Membership,
    MembershipChange,
    encode_change,
    parse_change,
)
from freno.consensus.raft.peers import learner_id
from freno.consensus.raft.snapshot import DUMP_NAME, SnapshotFile


def _deny(args, callback) -> None:
    callback(None, FAIL_REASON.REQUEST_DENIED)


class DynamicMembers:
    """
    Mixin for L{ThrottleMachine} (listed before C{SyncObj}); see the module
    docstring.

    @ivar membership: the members as the log says.
    @ivar self_address: this node's C{host:port}.
    @ivar learner_name: this node's address while it is a learner, else
        C{None}.
    """

    _log = Logger()

    def _start_members(
        self,
        self_address: str,
        bootstrap: Sequence[str],
        directory,
        snapshot_file: SnapshotFile,
    ) -> Tuple[Optional[str], List[str]]:
        """
        Derive the members (snapshot, then log) and this node's role: the
        C{(self_node, others)} pysyncobj is built with (C{self_node} is
        C{None} for a learner).
        """
        self.self_address = self_address
        self.membership = Membership(self._journal, bootstrap)
        data = directory.read(DUMP_NAME)
        if data is not None:
            try:
                parsed = SnapshotFile.parse(data)
            except ValueError:
                pass  # pysyncobj will not load it either
            else:
                self.membership.set_base(parsed.last[1], parsed.members)
        snapshot_file.members_at = self.membership.at
        snapshot_file.on_members = self.membership.set_base
        # A member once the change that added it is committed (as far as
        # this node knows): an uncommitted add may still be rolled back.
        committed = self.membership.at(self._journal.getRaftCommitIndex())
        current = self.membership.current()
        if self_address in committed:
            self.learner_name = None
            return self_address, [m for m in current if m != self_address]
        self.learner_name = self_address
        return None, [m for m in current if m != self_address]

    @property
    def is_learner(self) -> bool:
        """
        Whether this node runs as a learner (not a member yet).
        """
        return self.learner_name is not None

    def _deny_utility_changes(self) -> None:
        transport = self._SyncObj__transport
        transport.setOnUtilityMessageCallback("add", _deny)
        transport.setOnUtilityMessageCallback("remove", _deny)

    # -- pysyncobj overrides --------------------------------------------------

    def _SyncObj__doApplyCommand(self, command):
        if command[:1] == bytes((MEMBERSHIP_TYPE,)):
            return self._applied_change(parse_change(command))
        return SyncObj._SyncObj__doApplyCommand(self, command)

    def _SyncObj__updateClusterConfiguration(self, newNodes) -> None:
        others = [m for m in self.membership.current() if m != self.self_node_id()]
        SyncObj._SyncObj__updateClusterConfiguration(self, others)
        if self._isLeader():
            last = self._SyncObj__lastResponseTime
            for node in self.otherNodes:
                last.setdefault(node, monotonic())

    # -- membership ------------------------------------------------------------

    def self_node_id(self) -> Optional[str]:
        """
        This node's id as pysyncobj knows it (C{None} for a learner).
        """
        node = self.selfNode
        return None if node is None else node.id

    def _applied_change(self, change: Optional[MembershipChange]) -> Applied:
        """
        A membership entry was applied (committed): record its audit
        context, the same on every node, and log it.
        """
        if change is None:
            return Applied()
        self._log.info(
            "raft membership: {kind} {address} committed; members {members}",
            kind="added" if change.kind == "add" else "removed",
            address=change.address,
            members=list(self.membership.at(self.raftLastApplied + 1)),
        )
        context = change.context
        if not isinstance(context, dict):
            return Applied()
        try:
            record = self._state.audit.append(
                float(context["time"]),
                str(context["actor"]),
                str(context["route"]),
                dict(context.get("params") or {}),
                context.get("reason"),
                APPLIED,
            )
        except (KeyError, TypeError, ValueError) as e:
            self._log.error("raft membership entry without a valid audit context: {error}", error=str(e))
            return Applied()
        return Applied(record.id)

    def committed_members(self) -> Tuple[str, ...]:
        """
        The members as of the commit index.
        """
        return self.membership.at(self.raftCommitIndex)

    def pending_change(self) -> Optional[Tuple[int, MembershipChange]]:
        """
        The membership entry appended but not committed yet, if any.
        """
        return self.membership.pending(self.raftCommitIndex)

    def learner_match(self, address: str) -> Optional[int]:
        """
        On a leader: how far learner C{address}'s log matches ours, or
        C{None} when no such learner is connected.
        """
        node = Node(learner_id(address))
        if node not in self.readonlyNodes or not self.isNodeConnected(node):
            return None
        return self._SyncObj__raftMatchIndex.get(node, 0)

    def learners(self) -> List[Tuple[str, Optional[int]]]:
        """
        On a leader: the connected learners' addresses and match indexes.
        """
        found = []
        match = self._SyncObj__raftMatchIndex
        for node in self.readonlyNodes:
            if isinstance(node.id, str) and node.id.startswith("learner "):
                found.append((node.id[len("learner "):], match.get(node)))
        return sorted(found)

    def adopt_learner_progress(self, address: str) -> None:
        """
        On a leader, once member C{address} was added: start replicating to
        it after what it already holds as a learner (its log is the same,
        on the same disk). pysyncobj would start at the entry that added it
        and, since the new member already has that entry, truncate and
        append it again, logging a critical "truncating already-applied
        log entries" (see the module docstring). A guess too far is
        corrected by the member's first answer, as any lagging follower's.
        """
        match = self.learner_match(address)
        node = TCPNode(address)
        next_index = self._SyncObj__raftNextIndex
        if match is not None and node in next_index:
            next_index[node] = max(next_index[node], match + 1)

    def submit_change(self, change: MembershipChange, callback) -> None:
        """
        Hand a membership change to pysyncobj (it refuses it with
        C{REQUEST_DENIED} while another change is not applied).
        """
        self._applyCommand(encode_change(change), callback, MEMBERSHIP_TYPE)

    def hold_elections(self, seconds: float) -> None:
        """
        Do not stand for election for C{seconds}: a member just promoted
        from learner waits for the leader to reach it instead of deposing
        it (delaying an election is always safe).
        """
        self._SyncObj__raftElectionDeadline = monotonic() + seconds


def describe(change: Any) -> str:
    """
    C{"add host:port"} or C{"remove host:port"}.
    """
    return f"{'add' if change.kind == 'add' else 'remove'} {change.address}"
