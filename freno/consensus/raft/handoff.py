# -*- test-case-name: test.unit.test_raft_handoff -*-
"""
Raft leadership transfer for freno: L{Handoff}, the state machine a leader
runs to hand its leadership to an up-to-date follower, over L{IRaftView}, the
few facts and the one action of pysyncobj it needs (L{MachineView} on the real
L{ThrottleMachine <freno.consensus.raft.machine.ThrottleMachine>},
L{FakeRaftView} in memory). The design and its safety argument are in
C{docs/handoff.md}; the decisions are D65-D67 in C{docs/decisions.md}.

What pysyncobj 0.3.17 offers, and what it does not
===================================================

C{SyncObj.transferLeadership(node)} sends one C{timeout_now} message to the
target if, I{at that instant}, the target's match index equals the leader's
last log index; otherwise it refuses (C{REQUEST_DENIED}). On receipt the
target (if the message comes from its current leader, at its term or later)
sets its election deadline to 0 and stands for election at its next tick,
at term + 1, with a normal C{request_vote}. That is all:

    - it does not wait for the target to catch up (it refuses instead);
    - the old leader keeps accepting commands (its own and those followers
      forward), so entries appended after the C{timeout_now} can make the
      target's log shorter than the old leader's: the old leader then
      refuses its vote and the transfer fails or turns into an ordinary
      election;
    - the callback's C{SUCCESS} only means "sent": nothing tells the caller
      whether a new leader was elected, and nothing times out;
    - a lost C{timeout_now} (connection reset) is never resent.

What L{Handoff} adds
====================

    1. B{Refuse new commands} (L{IRaftView.refuse_commands}): the service's
       own submissions and the commands followers forward fail at once with
       "not leader" (clients retry; the entry is never appended).
    2. B{Bring the target up to date}: wait, tick by tick, until every
       appended entry is committed and the target's match index is the last
       log index (for "the best member": any connected follower that
       answered within the lease; the one with the highest match index).
    3. B{Send C{timeout_now}} through pysyncobj's C{transferLeadership}, and
       send it again every L{RESEND_INTERVAL} while this node is still
       leader (a lost message costs one interval, not the transfer).
    4. B{Done} when this node is no longer raft leader and follows another
       member: C{transferred}. B{Bounded}: after C{bound} seconds the
       hand-off ends as C{no_target} (no follower was ever up to date) or
       C{timed_out} (one was, but no new leader was seen), and the node
       accepts commands again if it still leads. It ends sooner, the same
       way, once no candidate (the member asked for, or any follower) has
       been connected for L{UNREACHABLE_GRACE}: a C{timeout_now} cannot
       reach anyone, as when the whole group is being stopped (D88).

Safety does not rest on any of this: the target wins only through an
ordinary raft election, whose vote rule (a vote only for a log at least as
up to date) keeps every committed entry. The steps above make the election
fast and certain to succeed, and make sure no acknowledged command is lost
on the way (step 2 waits for the commit of everything appended before the
refusal began).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import attr
from pysyncobj import FAIL_REASON
from pysyncobj.monotonic import monotonic
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Interface, implementer

from freno.consensus.transfer import (
    NO_TARGET,
    NOT_LEADER,
    STOPPED,
    TIMED_OUT,
    TRANSFERRED,
    HandoffResult,
)

#: Seconds a hand-off may take before it gives up (the issue's bound).
HANDOFF_BOUND = 3.0

#: Seconds between two C{timeout_now} messages to the target while this
#: node is still leader.
RESEND_INTERVAL = 0.25

#: Seconds with no candidate connected after which a hand-off gives up
#: before its bound (D88): long enough for a connection that dropped to be
#: dialled again (pysyncobj redials at every tick), short against the bound.
UNREACHABLE_GRACE = 0.5


@attr.s(frozen=True, auto_attribs=True)
class Follower:
    """
    One follower as the leader sees it.

    @ivar id: its raft address (C{host:port}).
    @ivar connected: whether the leader has a connection to it.
    @ivar match_index: the last log index known to be on it.
    @ivar answered_ago: seconds since it last answered the leader.
    """

    id: str
    connected: bool
    match_index: int
    answered_ago: float


class IRaftView(Interface):
    """
    What a hand-off reads of the local raft member, and the two things it
    does to it.
    """

    def self_id() -> str:
        """
        This member's id.
        """

    def is_raft_leader() -> bool:
        """
        Whether this member is raft leader now (no lease involved).
        """

    def leader_id() -> Optional[str]:
        """
        The leader this member follows or is, or C{None}.
        """

    def followers() -> Sequence[Follower]:
        """
        Every other member, as the leader sees it (empty when not leader).
        """

    def connected_members() -> Sequence[str]:
        """
        The other members this member has a connection to now, whatever
        its role.
        """

    def last_log_index() -> int:
        """
        The index of the last entry in this member's log.
        """

    def commit_index() -> int:
        """
        The highest index this member knows to be committed.
        """

    def refuse_commands(refuse: bool) -> None:
        """
        Refuse (or accept again) every new command, local or forwarded.
        """

    def send_timeout_now(member: str) -> bool:
        """
        Ask C{member} to stand for election now; whether it was sent.
        """


def _attribute(machine, name: str, default=None):
    return getattr(machine, "_SyncObj__" + name, default)


@implementer(IRaftView)
class MachineView:
    """
    L{IRaftView} over a running L{ThrottleMachine}. It reads pysyncobj
    0.3.17's private fields (pinned; see L{freno.consensus.raft.machine}):
    C{__raftMatchIndex}, C{__raftCommitIndex}, C{__lastResponseTime} and
    C{__getCurrentLogIndex()} (and the public C{isNodeConnected}).
    """

    def __init__(self, machine) -> None:
        self._machine = machine

    def self_id(self) -> str:
        return self._machine.selfNode.id

    def is_raft_leader(self) -> bool:
        return bool(self._machine._isLeader())

    def leader_id(self) -> Optional[str]:
        node = self._machine._getLeader()
        return None if node is None else node.id

    def followers(self) -> Sequence[Follower]:
        machine = self._machine
        if not machine._isLeader():
            return ()
        match = _attribute(machine, "raftMatchIndex", {})
        answered = _attribute(machine, "lastResponseTime", {})
        now = monotonic()
        return tuple(
            Follower(
                node.id,
                bool(machine.isNodeConnected(node)),
                int(match.get(node, 0)),
                now - answered.get(node, 0.0),
            )
            for node in machine.otherNodes
        )

    def connected_members(self) -> Sequence[str]:
        machine = self._machine
        return tuple(node.id for node in machine.otherNodes if machine.isNodeConnected(node))

    def last_log_index(self) -> int:
        return int(self._machine._SyncObj__getCurrentLogIndex())

    def commit_index(self) -> int:
        return int(_attribute(self._machine, "raftCommitIndex", 0))

    def refuse_commands(self, refuse: bool) -> None:
        self._machine.refusing_commands = refuse

    def send_timeout_now(self, member: str) -> bool:
        machine = self._machine
        nodes = [n for n in machine.otherNodes if n.id == member]
        if not nodes:
            return False
        sent: List[bool] = []
        machine.transferLeadership(
            nodes[0], callback=lambda _, reason: sent.append(reason == FAIL_REASON.SUCCESS)
        )
        return bool(sent and sent[0])


@implementer(IRaftView)
@attr.s(auto_attribs=True)
class FakeRaftView:
    """
    An in-memory L{IRaftView}: tests set the fields; L{send_timeout_now}
    records the targets (and succeeds when C{accept_timeout_now}).
    """

    me: str = "a:1"
    leader: Optional[str] = "a:1"
    members: Dict[str, Follower] = attr.Factory(dict)
    last: int = 0
    committed: int = 0
    refusing: bool = False
    accept_timeout_now: bool = True
    sent: List[str] = attr.Factory(list)

    def self_id(self) -> str:
        return self.me

    def is_raft_leader(self) -> bool:
        return self.leader == self.me

    def leader_id(self) -> Optional[str]:
        return self.leader

    def followers(self) -> Sequence[Follower]:
        return tuple(self.members.values()) if self.is_raft_leader() else ()

    def connected_members(self) -> Sequence[str]:
        return tuple(f.id for f in self.members.values() if f.connected)

    def last_log_index(self) -> int:
        return self.last

    def commit_index(self) -> int:
        return self.committed

    def refuse_commands(self, refuse: bool) -> None:
        self.refusing = refuse

    def send_timeout_now(self, member: str) -> bool:
        self.sent.append(member)
        return self.accept_timeout_now


def best_target(
    followers: Sequence[Follower], last_index: int, lease: float, wanted: Optional[str] = None
) -> Optional[str]:
    """
    The follower to hand off to now, or C{None} when none is ready: it must
    be connected, have answered within C{lease} seconds and hold the whole
    log (match index C{last_index}). With C{wanted}, only that member; else
    the one that answered last (ties: the smallest id).
    """
    ready = [
        f
        for f in followers
        if f.connected
        and f.answered_ago < lease
        and f.match_index >= last_index
        and (wanted is None or f.id == wanted)
    ]
    if not ready:
        return None
    return min(ready, key=lambda f: (f.answered_ago, f.id)).id


class Handoff:
    """
    One leadership transfer (see the module docstring). The owner calls
    L{start} once, then L{step} after every raft tick (and may call it more
    often); the Deferred L{start} returns fires with a L{HandoffResult} and
    never fails.

    @param clock: time and the bound's timer.
    @param view: the local raft member.
    @param lease: a follower that has not answered for this long is not a
        target.
    @param target: the member to hand off to (C{None}: the best one).
    @param bound: seconds before giving up.
    @param on_done: called with the result before the Deferred fires.
    @param unreachable_grace: seconds with no candidate connected before
        giving up early.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        view: IRaftView,
        lease: float,
        target: Optional[str] = None,
        bound: float = HANDOFF_BOUND,
        resend_interval: float = RESEND_INTERVAL,
        on_done: Optional[Callable[[HandoffResult], None]] = None,
        unreachable_grace: float = UNREACHABLE_GRACE,
    ) -> None:
        self._clock = clock
        self._view = view
        self._lease = lease
        self._wanted = target
        self._bound = bound
        self._resend = resend_interval
        self._on_done = on_done
        self._unreachable_grace = unreachable_grace
        self._unreachable_since: Optional[float] = None
        self._started = 0.0
        self._sent_at: Optional[float] = None
        self._target: Optional[str] = None
        self._timer = None
        self._done: Optional[Deferred] = None
        self.result: Optional[HandoffResult] = None

    @property
    def active(self) -> bool:
        """
        Whether the hand-off has started and not ended.
        """
        return self._done is not None and self.result is None

    def start(self) -> Deferred:
        """
        Begin: refuse commands, arm the bound, take the first step.
        """
        if self._done is not None:
            raise RuntimeError("a Handoff runs once")
        self._done = Deferred()
        self._started = self._clock.seconds()
        if not self._view.is_raft_leader():
            self._finish(NOT_LEADER)
            return self._done
        self._view.refuse_commands(True)
        self._timer = self._clock.callLater(self._bound, self._expire)
        self._log.info(
            "leadership hand-off starts (target {target})", target=self._wanted or "best follower"
        )
        self.step()
        return self._done

    def step(self) -> None:
        """
        Move on if something changed: a new leader, a target now up to
        date, or a C{timeout_now} due again.
        """
        if not self.active:
            return
        view = self._view
        now = self._clock.seconds()
        if not view.is_raft_leader():
            leader = view.leader_id()
            if leader is not None and leader != view.self_id():
                self._finish(TRANSFERRED, leader)
            elif self._nobody_to_ask(now):
                self._finish(NO_TARGET if self._target is None else TIMED_OUT)
            return  # an election is running: wait for its winner or the bound
        if self._nobody_to_ask(now):
            self._finish(NO_TARGET if self._target is None else TIMED_OUT)
            return
        if self._sent_at is not None and now - self._sent_at < self._resend:
            return
        last = view.last_log_index()
        if view.commit_index() < last:
            return  # let what was appended before the refusal commit first
        target = best_target(view.followers(), last, self._lease, self._wanted)
        if target is None:
            return
        if view.send_timeout_now(target):
            self._target = target
            self._sent_at = now

    def _nobody_to_ask(self, now: float) -> bool:
        """
        Whether no candidate has been connected for the unreachable grace
        (the clock starts at the first step that finds none): nobody could
        take the leadership, nor tell this member who did.
        """
        connected = self._view.connected_members()
        if any(self._wanted is None or member == self._wanted for member in connected):
            self._unreachable_since = None
            return False
        if self._unreachable_since is None:
            self._unreachable_since = now
        return now - self._unreachable_since >= self._unreachable_grace

    def stop(self) -> None:
        """
        Abandon the hand-off (the service is stopping): ends as L{STOPPED}.
        """
        if self.active:
            self._finish(STOPPED)

    def _expire(self) -> None:
        self._timer = None
        if self.active:
            self._finish(NO_TARGET if self._target is None else TIMED_OUT)

    def _finish(self, outcome: str, leader: Optional[str] = None) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if leader is None:
            leader = self._view.leader_id()
        self._view.refuse_commands(False)
        self.result = HandoffResult(
            outcome, self._target, leader, self._clock.seconds() - self._started
        )
        self._log.info(
            "leadership hand-off {outcome} after {seconds:.3f}s (target {target}, leader {leader})",
            outcome=outcome,
            seconds=self.result.seconds,
            target=self._target,
            leader=leader,
        )
        if self._on_done is not None:
            try:
                self._on_done(self.result)
            except Exception:
                self._log.failure("hand-off completion failed")
        assert self._done is not None
        self._done.callback(self.result)
