# -*- test-case-name: test.unit.test_http_members,test.unit.test_raft_membership -*-
"""
L{IMembership}: changing the members of a consensus group while it runs
(the raft backend has it; the single-node and MySQL backends do not), its
value objects, its refusals, and L{FakeMembership}, the in-memory fake.

    - L{MembershipView}: the members, the learners waiting to join, the
      change in progress;
    - L{MembershipRefused}: a change that cannot be made now (409 at the
      API, with a stable C{code}), or names no member (404).
"""

from __future__ import annotations

from typing import Optional, Tuple

import attr
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import Interface, implementer

from freno.config.addresses import AddressProblem, check_raft_address
from freno.consensus.audit import APPLIED, Applied, AuditLog
from freno.consensus.commands import AuditContext, InvalidCommand
from freno.consensus.interface import ConsensusError

#: Stable codes of L{MembershipRefused}.
NOT_LEADER = "not_leader"
CHANGE_IN_PROGRESS = "change_in_progress"
ALREADY_MEMBER = "already_member"
NOT_MEMBER = "not_member"
LEARNER_NOT_READY = "learner_not_ready"
IS_LEADER = "is_leader"
UNSUPPORTED = "unsupported"


class MembershipRefused(ConsensusError):
    """
    A membership change refused before anything was committed; nothing
    changed.

    @ivar code: one of the codes above.
    @ivar status: the HTTP status (409, or 404 for L{NOT_MEMBER}).
    @ivar leader: the leader's raft address when known (L{NOT_LEADER}).
    """

    def __init__(self, code: str, message: str, leader: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = 404 if code == NOT_MEMBER else 409
        self.leader = leader


@attr.s(frozen=True, auto_attribs=True)
class MemberState:
    """
    One member or learner as this node sees it.

    @ivar address: C{host:port}.
    @ivar voter: a member (C{True}) or a learner (C{False}).
    @ivar is_self: this node.
    @ivar leader: the leader.
    @ivar reachable: connected to this node (C{None}: unknown).
    @ivar match_index: on the leader, how far its log matches the
        leader's (C{None} elsewhere).
    """

    address: str
    voter: bool
    is_self: bool = False
    leader: bool = False
    reachable: Optional[bool] = None
    match_index: Optional[int] = None


@attr.s(frozen=True, auto_attribs=True)
class MembershipView:
    """
    The group as this node's log says.

    @ivar members: the voting members (sorted by address).
    @ivar learners: the learners connected to this node (the leader sees
        them all).
    @ivar pending: C{"add host:port"} / C{"remove host:port"}: a change
        appended but not committed yet, or C{None}.
    @ivar bootstrap: C{RaftNodes}, the list the group started from.
    @ivar commit_index: this node's raft commit index.
    @ivar self_learner: this node is a learner (not a member yet).
    """

    members: Tuple[MemberState, ...]
    learners: Tuple[MemberState, ...]
    pending: Optional[str]
    bootstrap: Tuple[str, ...]
    commit_index: int
    self_learner: bool = False


class IMembership(Interface):
    """
    Membership changes, one at a time, answered once committed.
    """

    def membership() -> MembershipView:
        """
        The members now.
        """

    def add_member(address: str, context: Optional[AuditContext]) -> Deferred:
        """
        Add C{address} (a learner that has caught up) as a voting member.
        Only the leader takes it.

        @rtype: L{Deferred} firing with an L{Applied} once committed, or
            failing with L{MembershipRefused}, L{InvalidCommand} (a bad
            address) or L{ConsensusError}.
        """

    def remove_member(address: str, context: Optional[AuditContext]) -> Deferred:
        """
        Remove member C{address} (not the leader itself). Only the leader
        takes it.

        @rtype: as L{add_member}.
        """


def check_member_address(address) -> str:
    """
    A member address as C{RaftNodes} holds one: C{host:port}.

    @raise InvalidCommand: naming C{address}.
    """
    if not isinstance(address, str) or not address.strip():
        raise InvalidCommand("address", "must be a non-empty host:port string")
    address = address.strip()
    if len(address) > 1024:
        raise InvalidCommand("address", "longer than 1024 characters")
    try:
        return check_raft_address(address)
    except AddressProblem as e:
        raise InvalidCommand("address", str(e)) from None


@implementer(IMembership)
class FakeMembership:
    """
    An in-memory group led by C{self_address}: learners are whatever
    L{learners} holds, changes commit at once (or fail with
    C{fail_with}), audit records go to C{audit}.
    """

    def __init__(self, self_address: str = "n1:10008", members=("n1:10008", "n2:10008", "n3:10008")) -> None:
        self.self_address = self_address
        self.members = list(members)
        self.learners = set()
        self.leader = self_address
        self.pending: Optional[str] = None
        self.fail_with: Optional[Exception] = None
        self.audit = AuditLog()

    def membership(self) -> MembershipView:
        return MembershipView(
            tuple(
                MemberState(m, True, m == self.self_address, m == self.leader, True)
                for m in sorted(self.members)
            ),
            tuple(MemberState(m, False, reachable=True, match_index=1) for m in sorted(self.learners)),
            self.pending,
            tuple(self.members),
            1,
        )

    def _check(self, address) -> str:
        address = check_member_address(address)
        if self.leader != self.self_address:
            raise MembershipRefused(NOT_LEADER, f"not the leader; the leader is {self.leader}", self.leader)
        if self.pending is not None:
            raise MembershipRefused(CHANGE_IN_PROGRESS, f"a change is in progress: {self.pending}")
        return address

    def _commit(self, context: Optional[AuditContext]) -> Deferred:
        if self.fail_with is not None:
            return fail(self.fail_with)
        if context is None:
            return succeed(Applied())
        record = self.audit.append(
            context.time, context.actor, context.route, context.params, context.reason, APPLIED
        )
        return succeed(Applied(record.id))

    def add_member(self, address, context=None) -> Deferred:
        try:
            address = self._check(address)
            if address in self.members:
                raise MembershipRefused(ALREADY_MEMBER, f"{address} is already a member")
            if address not in self.learners:
                raise MembershipRefused(LEARNER_NOT_READY, f"no learner {address} is connected")
        except ConsensusError:
            return fail()
        self.learners.discard(address)
        self.members.append(address)
        return self._commit(context)

    def remove_member(self, address, context=None) -> Deferred:
        try:
            address = self._check(address)
            if address not in self.members:
                raise MembershipRefused(NOT_MEMBER, f"{address} is not a member")
            if address == self.self_address:
                raise MembershipRefused(IS_LEADER, "the leader cannot remove itself")
        except ConsensusError:
            return fail()
        self.members.remove(address)
        return self._commit(context)
