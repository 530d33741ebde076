# -*- test-case-name: test.integration.test_raft_handoff,test.unit.test_raft_handoff -*-
"""
L{HandoffMethods}: the leadership hand-off half of
L{RaftConsensusService <freno.consensus.raft.service.RaftConsensusService>}
(L{freno.consensus.transfer.ILeadershipTransfer}, the serving window, the
hand-off before stopping), kept apart from the service's raft plumbing.

The class mixing this in provides C{_machine} (the running
L{ThrottleMachine <freno.consensus.raft.machine.ThrottleMachine>} or
C{None}), C{_self_address}, C{_partners}, C{_reactor}, C{_force}, C{_handoff_bound},
C{_handoff} (the running L{Handoff} or C{None}), C{_grace} (a
L{ServingGrace <freno.consensus.raft.grace.ServingGrace>}), C{_grace_timer},
C{single_node}, C{leader()}, C{is_leader()}, C{_raft_leader()},
C{_observe()} and C{_schedule_tick()}; its tick calls C{self._handoff.step()}
and its C{_submit} refuses commands while C{self._handoff} is set.
"""

from __future__ import annotations

from typing import List, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import deferLater
from twisted.logger import Logger

from freno.consensus.raft.handoff import Handoff, MachineView
from freno.consensus.raft.machine import LEADER_LEASE
from freno.consensus.transfer import HandoffRefused, HandoffResult


class HandoffMethods:
    """
    Leadership transfer for a raft service (see the module docstring and
    C{docs/handoff.md}).
    """

    _log = Logger()

    def _following(self) -> bool:
        """
        Whether this member follows another one it is connected to.
        """
        machine = self._machine
        if machine is None:
            return False
        node = machine._getLeader()
        return node is not None and node != machine.selfNode and machine.isNodeConnected(node)

    def advertises_leadership(self) -> bool:
        """
        Whether C{/leader-check} may pass: L{is_leader}, except in the drain
        part of the window after a hand-off (L{freno.consensus.raft.grace}).
        """
        if self._force or self._raft_leader():
            return True
        return self.is_leader() and self._grace.advertising()

    # -- leadership hand-off -------------------------------------------------

    def partners(self) -> List[str]:
        """
        The other members' ids: the current membership (which changes
        through the membership API, L{freno.consensus.raft.changes}), or
        C{RaftNodes} while raft is not running.
        """
        machine = self._machine
        if machine is None:
            return list(self._partners)
        return [m for m in machine.membership.current() if m != self._self_address]

    def check_transfer(self, target: Optional[str]) -> None:
        """
        See L{ILeadershipTransfer.check_transfer}.
        """
        machine = self._machine
        if self.single_node:
            raise HandoffRefused("unsupported", "a group of one has nobody to hand off to")
        if machine is None:
            raise HandoffRefused("not_leader", "raft is not running")
        if self._handoff is not None:
            raise HandoffRefused("in_progress", "a leadership hand-off is already in progress")
        if not machine.has_majority_lease():
            leader = self.leader() or None
            raise HandoffRefused(
                "not_leader",
                "this node is not the raft leader" + (f" ({leader} is)" if leader else ""),
                leader,
            )
        partners = self.partners()
        if target is not None and target not in partners:
            raise HandoffRefused(
                "unknown_member", f"{target!r} is not one of the other members {partners}"
            )

    def transfer_leadership(self, target: Optional[str] = None) -> Deferred:
        """
        Hand leadership to C{target} (C{None}: the best up-to-date
        follower); see L{ILeadershipTransfer.transfer_leadership}.
        """
        try:
            self.check_transfer(target)
        except HandoffRefused:
            return fail()
        assert self._machine is not None
        self._end_grace()
        self._grace.begin()
        handoff = Handoff(
            self._reactor,
            MachineView(self._machine),
            lease=LEADER_LEASE,
            target=target,
            bound=self._handoff_bound,
            on_done=self._handoff_done,
        )
        self._handoff = handoff
        d = handoff.start()
        self._schedule_tick()
        return d

    def _handoff_done(self, result: HandoffResult) -> None:
        self._handoff = None
        ends = self._grace.end(result.transferred)
        if ends is not None:
            delay = max(0.0, ends - self._reactor.seconds())
            self._grace_timer = self._reactor.callLater(delay, self._grace_over)
        self._observe()

    def _grace_over(self) -> None:
        self._grace_timer = None
        self._grace.clear()
        self._observe()

    def _end_grace(self) -> None:
        if self._grace_timer is not None and self._grace_timer.active():
            self._grace_timer.cancel()
        self._grace_timer = None
        self._grace.clear()

    def _rest_of_window(self) -> Deferred:
        """
        Fires when the serving window after a hand-off ends (at once when
        none is open).
        """
        ends = self._grace.ends_at
        if ends is None:
            return succeed(None)
        return deferLater(self._reactor, max(0.0, ends - self._reactor.seconds()), lambda: None)

    def stop_after_handoff(self) -> Deferred:
        """
        Before this member stops: if it leads a group, hand off and serve
        through the window after it; fires when it may stop (at once when
        it does not lead, after the bound when no hand-off was possible). A
        member still in the window of an earlier hand-off (an on-demand
        transfer) serves to its end first. Never fails.
        """
        if self.single_node or self._machine is None:
            return succeed(None)
        if not self._raft_leader():
            return self._rest_of_window()
        d = self.transfer_leadership(None)

        def after(result):
            if isinstance(result, HandoffResult) and result.transferred:
                return self._rest_of_window()
            return None

        def refused(failure):
            failure.trap(HandoffRefused)
            self._log.info("no hand-off before stopping: {why}", why=str(failure.value))

        d.addCallbacks(after, refused)
        d.addErrback(lambda f: self._log.failure("hand-off before stopping failed", f))
        return d
