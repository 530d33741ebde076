# -*- test-case-name: test.unit.test_raft_membership,test.integration.test_raft_membership -*-
"""
L{MembershipMethods}: L{IMembership <freno.consensus.membership.IMembership>}
for L{RaftConsensusService <freno.consensus.raft.service.RaftConsensusService>}.

The procedure (docs/decisions.md, D71 and D72)
==============================================

Adding C{D}:

    1. C{D} is started with C{RaftJoin} and a C{RaftBind} that C{RaftNodes}
       does not list and C{RaftNodes} naming the group's members. Its log
       does not make it a member, so it runs as a I{learner}: a read-only
       pysyncobj node that dials every member and receives the log (or a
       snapshot) from the leader, without a vote and without counting
       toward any majority.
    2. C{POST /api/v1/members} reaches the leader, which waits (at most
       L{CATCH_UP_TIMEOUT} seconds) until learner C{D} is connected and its
       log matches the leader's up to the commit index of the moment the
       request arrived; otherwise it refuses (409 C{learner_not_ready}).
    3. The leader appends the membership entry (pysyncobj: effective on
       append, one change at a time); the answer waits for its commit,
       and carries the audit id recorded when the entry was applied.
    4. C{D} sees the entry committed in its own log and restarts its raft
       node as a member (same journal, same process, a few milliseconds;
       L{_promote}); it does not stand for election for
       L{PROMOTION_HOLD} seconds, so that the leader reaches it first.

Removing C{X} (not the leader: transfer the leadership first): the leader
appends the entry and stops contacting C{X} at once; the answer waits for the
commit. C{X} is never told (it no longer receives anything) and every member
refuses its connections: stop it.

Only the leader takes a change (a follower answers 409 C{not_leader}, naming
the leader), so that step 2 is checked where it matters; one change at a
time (409 C{change_in_progress} while an entry is uncommitted or a request
is being handled).
"""

from __future__ import annotations

from functools import partial
from typing import Optional

from pysyncobj import FAIL_REASON
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freno.consensus.commands import AuditContext, InvalidCommand, context_to_dict
from freno.consensus.interface import ConsensusError
from freno.consensus.membership import (
    ALREADY_MEMBER,
    CHANGE_IN_PROGRESS,
    IS_LEADER,
    LEARNER_NOT_READY,
    NOT_LEADER,
    NOT_MEMBER,
    UNSUPPORTED,
    MemberState,
    MembershipRefused,
    MembershipView,
    check_member_address,
)
from freno.consensus.raft.members_machine import describe
from freno.consensus.raft.membership import ADD, REMOVE, MembershipChange

#: Seconds the leader waits for a learner to connect and catch up.
CATCH_UP_TIMEOUT = 5.0

#: Seconds a member promoted from learner waits before it may stand for
#: election (the leader reaches it well within that).
PROMOTION_HOLD = 3.0

#: Seconds between two looks at a learner's progress.
CATCH_UP_POLL = 0.01


class MembershipMethods:
    """
    Mixin for the raft service (listed before it); see the module
    docstring. Uses the service's C{_machine}, C{_reactor}, C{_pending},
    C{_ids}, C{_timeout}, C{_schedule_tick}, C{_finish}, C{_forget},
    C{_expire}, C{_tick}, C{_start_machine}, C{_stop_machine}, C{_bootstrap}
    and C{_self_address}.
    """

    _log = Logger()
    _changing: Optional[str] = None
    _waits: Optional[list] = None

    # -- reading ---------------------------------------------------------------

    def membership(self) -> MembershipView:
        """
        See L{IMembership.membership}.
        """
        machine = self._machine
        if machine is None:
            return MembershipView((), (), None, tuple(self._bootstrap), 0)
        leader = self.leader()
        nodes = {n.id: n for n in machine.otherNodes}
        is_leader = leader == self._self_address
        match = getattr(machine, "_SyncObj__raftMatchIndex", {})
        members = []
        for address in sorted(machine.membership.current()):
            node = nodes.get(address)
            if address == self._self_address:
                reachable = True
            else:
                reachable = machine.isNodeConnected(node) if node is not None else None
            members.append(
                MemberState(
                    address,
                    True,
                    address == self._self_address,
                    address == leader,
                    reachable,
                    match.get(node) if is_leader and node is not None else None,
                )
            )
        learners = tuple(
            MemberState(address, False, reachable=True, match_index=index)
            for address, index in (machine.learners() if is_leader else ())
        )
        pending = machine.pending_change()
        if pending is None and self._changing is not None:
            shown = self._changing
        else:
            shown = describe(pending[1]) if pending is not None else None
        return MembershipView(
            tuple(members),
            learners,
            shown,
            tuple(self._bootstrap),
            machine.raftCommitIndex,
            machine.is_learner,
        )

    # -- changing --------------------------------------------------------------

    def _leader_machine(self):
        machine = self._machine
        if machine is None or self.single_node:
            raise MembershipRefused(
                UNSUPPORTED,
                "membership changes need a raft group started with RaftNodes "
                "(a single node has no raft network)",
            )
        if not machine.has_majority_lease():
            leader = self.leader()
            where = f"the leader is {leader}" if leader else "no leader is known"
            raise MembershipRefused(
                NOT_LEADER,
                f"only the raft leader changes the members; {where}",
                leader or None,
            )
        return machine

    def _check_idle(self, machine) -> None:
        pending = machine.pending_change()
        if pending is not None:
            raise MembershipRefused(
                CHANGE_IN_PROGRESS, f"a membership change is not committed yet: {describe(pending[1])}"
            )
        if self._changing is not None:
            raise MembershipRefused(
                CHANGE_IN_PROGRESS, f"a membership change is in progress: {self._changing}"
            )

    def add_member(self, address, context: Optional[AuditContext] = None) -> Deferred:
        """
        See L{IMembership.add_member} and the module docstring.
        """
        try:
            address = check_member_address(address)
            machine = self._leader_machine()
            if address in machine.membership.current():
                raise MembershipRefused(ALREADY_MEMBER, f"{address} is already a member")
            self._check_idle(machine)
        except (InvalidCommand, ConsensusError):
            return fail()
        self._changing = f"add {address}"
        target = machine.raftCommitIndex
        d = self._wait_caught_up(address, target)
        d.addCallback(lambda _: self._change(ADD, address, context))
        return d.addBoth(self._done_changing)

    def remove_member(self, address, context: Optional[AuditContext] = None) -> Deferred:
        """
        See L{IMembership.remove_member} and the module docstring.
        """
        try:
            address = check_member_address(address)
            machine = self._leader_machine()
            if address not in machine.membership.current():
                raise MembershipRefused(NOT_MEMBER, f"{address} is not a member")
            if address == self._self_address:
                raise MembershipRefused(
                    IS_LEADER,
                    f"{address} is the leader: transfer the leadership first "
                    "(POST /api/v1/leadership/transfer), then ask the new leader",
                )
            self._check_idle(machine)
        except (InvalidCommand, ConsensusError):
            return fail()
        self._changing = f"remove {address}"
        d = maybeDeferred(self._change, REMOVE, address, context)
        return d.addBoth(self._done_changing)

    def _done_changing(self, result):
        self._changing = None
        return result

    def _wait_caught_up(self, address: str, target: int) -> Deferred:
        """
        Fire once learner C{address} matches the leader's log up to
        C{target}; fail with L{MembershipRefused} after L{CATCH_UP_TIMEOUT}.
        """
        done: Deferred = Deferred()
        started = self._reactor.seconds()
        loop = LoopingCall(lambda: self._look_at_learner(address, target, started, loop, done))
        loop.clock = self._reactor
        if self._waits is None:
            self._waits = []
        self._waits.append((loop, done))
        loop.start(CATCH_UP_POLL, now=True)
        return done

    def _look_at_learner(self, address, target, started, loop, done) -> None:
        machine = self._machine
        if machine is None or not machine.has_majority_lease():
            self._end_wait(loop, done, MembershipRefused(NOT_LEADER, "this node lost the leadership"))
            return
        match = machine.learner_match(address)
        if match is not None and match >= target:
            self._log.info(
                "raft learner {address} caught up (log matches up to {match}) after {waited:.3f}s",
                address=address,
                match=match,
                waited=self._reactor.seconds() - started,
            )
            self._end_wait(loop, done, None)
            return
        if self._reactor.seconds() - started >= CATCH_UP_TIMEOUT:
            if match is None:
                why = (
                    f"no learner {address} is connected to the leader: start it with "
                    "RaftJoin, RaftNodes naming the current members (not it) "
                    "and the group's RaftPassword"
                )
            else:
                why = f"learner {address} is still catching up: its log matches up to {match} of {target}"
            self._end_wait(loop, done, MembershipRefused(LEARNER_NOT_READY, why))

    def _end_wait(self, loop, done, error) -> None:
        if loop.running:
            loop.stop()
        if self._waits is not None:
            self._waits = [(lp, d) for lp, d in self._waits if d is not done]
        if done.called:
            return
        if error is None:
            done.callback(None)
        else:
            done.errback(error)

    def _stop_waits(self) -> None:
        for loop, done in list(self._waits or ()):
            self._end_wait(loop, done, ConsensusError("raft is shutting down"))

    def _change(self, kind: str, address: str, context: Optional[AuditContext]) -> Deferred:
        machine = self._leader_machine()
        pending = machine.pending_change()
        if pending is not None:
            raise MembershipRefused(CHANGE_IN_PROGRESS, f"a membership change is not committed yet: {describe(pending[1])}")
        current = machine.membership.current()
        if kind == ADD:
            members = tuple(sorted(set(current) | {address}))
        else:
            members = tuple(sorted(set(current) - {address}))
        change = MembershipChange(kind, address, members, context_to_dict(context))
        cid = next(self._ids)
        d = Deferred(canceller=lambda _: self._forget(cid))
        timer = self._reactor.callLater(self._timeout, self._expire, cid)
        self._pending[cid] = (d, timer, self._reactor.seconds())
        self._log.info(
            "raft membership: {change} proposed; members will be {members}",
            change=describe(change),
            members=list(members),
        )
        machine.submit_change(change, partial(self._on_change_result, cid))
        self._schedule_tick()
        if kind == ADD:
            d.addCallback(self._adopt, address)
        return d

    def _adopt(self, result, address: str):
        machine = self._machine
        if machine is not None:
            machine.adopt_learner_progress(address)
        return result

    def _on_change_result(self, cid: int, result, reason) -> None:
        if reason == FAIL_REASON.REQUEST_DENIED:
            self._finish(
                cid,
                MembershipRefused(
                    CHANGE_IN_PROGRESS,
                    "the leader refused the change: the previous change, or the first "
                    "entry of its term, is not committed yet; retry",
                ),
            )
            return
        self._on_result(cid, result, reason)

    # -- learner to member -----------------------------------------------------

    def _promote(self) -> None:
        """
        The change adding this learner committed: restart the raft node as
        a member (same journal).
        """
        self._log.info(
            "raft learner {address} was added to the group: starting as a member",
            address=self._self_address,
        )
        directory = self._directory_in_use
        self._stop_machine()
        try:
            self._start_machine(directory)
        except Exception:
            self._log.failure("raft node {address} could not restart as a member", address=self._self_address)
            return
        self._machine.hold_elections(PROMOTION_HOLD)
        # Tick now: the first tick replays the journal into the state, which
        # the restart emptied; no request may read it in between.
        self._tick()
