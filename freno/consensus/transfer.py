# -*- test-case-name: test.unit.test_raft_handoff,test.unit.test_http_rest_leadership -*-
"""
L{ILeadershipTransfer}: the optional capability of a consensus backend to
hand its leadership to another member on demand (raft has it; the single
node and the MySQL backend do not), with what a transfer answers
(L{HandoffResult}) and why it may be refused (L{HandoffRefused}).

C{POST /api/v1/leadership/transfer} (L{freno.http.rest_leadership}) and the
hand-off on shutdown use it; the raft implementation is
L{freno.consensus.raft.handoff}, its design C{docs/handoff.md}.
"""

from __future__ import annotations

from typing import Optional

import attr
from twisted.internet.defer import Deferred, fail
from zope.interface import Interface, implementer

from freno.consensus.local import LocalConsensus

#: Outcomes of a hand-off.
TRANSFERRED = "transferred"
NOT_LEADER = "not_leader"
NO_TARGET = "no_target"
TIMED_OUT = "timed_out"
STOPPED = "stopped"


class HandoffRefused(Exception):
    """
    A hand-off cannot start. C{code} says why: C{not_leader} (this node
    does not lead; C{leader} names the one that does, if known),
    C{unknown_member} (no such partner), C{unsupported} (a group of one),
    C{in_progress} (another hand-off runs). The message says it for people.
    """

    def __init__(self, code: str, message: str, leader: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code
        self.leader = leader


@attr.s(frozen=True, auto_attribs=True)
class HandoffResult:
    """
    How a hand-off ended.

    @ivar outcome: L{TRANSFERRED}, L{NOT_LEADER}, L{NO_TARGET},
        L{TIMED_OUT} or L{STOPPED}.
    @ivar target: the member asked to stand for election last, if any.
    @ivar leader: the leader seen at the end (C{None}: none known).
    @ivar seconds: how long it took.
    """

    outcome: str
    target: Optional[str]
    leader: Optional[str]
    seconds: float

    @property
    def transferred(self) -> bool:
        """
        Whether another member leads now.
        """
        return self.outcome == TRANSFERRED


class ILeadershipTransfer(Interface):
    """
    Hand leadership to another member.
    """

    def partners():
        """
        The ids of the other members (possible targets).
        """

    def check_transfer(target: Optional[str]) -> None:
        """
        Refuse now, before anything is committed, a transfer that cannot
        start (see L{HandoffRefused}).

        @raise HandoffRefused: it cannot.
        """

    def transfer_leadership(target: Optional[str]):
        """
        Hand leadership to C{target} (C{None}: the best up-to-date
        follower), bounded in time.

        @rtype: L{Deferred} firing with a L{HandoffResult} (never failing),
            or failing with L{HandoffRefused} when it cannot start.
        """


@implementer(ILeadershipTransfer)
class FakeTransferConsensus(LocalConsensus):
    """
    A L{LocalConsensus} that can hand off: L{transfer_leadership}
    returns a held Deferred that the test fires with L{finish}; a
    successful finish makes this node a follower of the target.

    @ivar members: the other members.
    @ivar requests: the targets asked for.
    """

    def __init__(self, clock, *args, **kwargs) -> None:
        super().__init__(clock, *args, **kwargs)
        self.members = ["b:2", "c:3"]
        self.requests = []
        self.pending: Optional[Deferred] = None

    def partners(self):
        return list(self.members)

    def check_transfer(self, target):
        if not self.is_leader():
            raise HandoffRefused("not_leader", "this node is not the raft leader")
        if self.pending is not None:
            raise HandoffRefused("in_progress", "a leadership hand-off is already in progress")
        if target is not None and target not in self.members:
            raise HandoffRefused("unknown_member", f"{target!r} is not another member")

    def transfer_leadership(self, target):
        try:
            self.check_transfer(target)
        except HandoffRefused:
            return fail()
        self.requests.append(target)
        self.pending = Deferred()
        return self.pending

    def finish(self, outcome: str, leader: Optional[str] = None, seconds: float = 0.05):
        """
        End the pending transfer with C{outcome}.
        """
        d, self.pending = self.pending, None
        target = self.requests[-1] or self.members[0]
        if outcome == TRANSFERRED:
            self.set_leader(False)
            leader = leader or target
        d.callback(HandoffResult(outcome, target, leader, seconds))
