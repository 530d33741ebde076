# -*- test-case-name: test.unit.test_consensus_local -*-
"""
L{LocalConsensus}: a single-process, in-memory L{IConsensusService}.

It is the verified fake that unit tests use, and the base behaviour every
backend shares: commands apply at once, leadership is whatever L{set_leader}
says, and an injected clock purges expired entries every few seconds.
"""

from __future__ import annotations

from typing import Mapping, Optional

from twisted.internet.defer import fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from zope.interface import implementer

from freno.consensus.interface import (
    ConsensusStatus,
    IConsensusService,
    NotLeaderError,
)
from freno.consensus.commands import Command, CommandMethods
from freno.consensus.observers import LeadershipObservers
from freno.consensus.state import AppThrottle, ThrottleState

#: How often expired throttles and skips are purged (freno: 5 s).
PURGE_INTERVAL = 5.0


@implementer(IConsensusService)
class LocalConsensus(CommandMethods):
    """
    Commands apply immediately to a local L{ThrottleState}.

    @param clock: used to purge expired entries.
    @param leader: whether this node starts as leader.
    @param service_id: the id shown as leader.
    """

    def __init__(
        self,
        clock: IReactorTime,
        leader: bool = True,
        service_id: str = "local",
    ) -> None:
        self._clock = clock
        self._leader = leader
        self._service_id = service_id
        self.state = ThrottleState()
        self._observers = LeadershipObservers()
        self._purge = LoopingCall(self._purge_expired)
        self._purge.clock = clock
        self.reject_commands: Optional[Exception] = None

    def start(self) -> None:
        """
        Start purging expired entries.
        """
        if not self._purge.running:
            self._purge.start(PURGE_INTERVAL, now=False)

    def stop(self) -> None:
        """
        Stop purging.
        """
        if self._purge.running:
            self._purge.stop()

    def _purge_expired(self) -> None:
        self.state.purge_expired(self._clock.seconds())

    def set_leader(self, leader: bool) -> None:
        """
        Change leadership, telling observers if it changed.
        """
        if leader != self._leader:
            self._leader = leader
            self._observers.notify(leader)

    def _submit(self, command: Command):
        if self.reject_commands is not None:
            return fail(self.reject_commands)
        self.state.apply(command)
        return succeed(None)

    def throttled_apps(self) -> Mapping[str, AppThrottle]:
        return self.state.apps

    def skipped_hosts(self) -> Mapping[str, float]:
        return self.state.skipped

    def is_leader(self) -> bool:
        return self._leader

    def leader(self) -> str:
        return self._service_id if self._leader else ""

    def state_description(self) -> str:
        return "Leader" if self._leader else "Follower"

    def is_healthy(self) -> bool:
        return True

    def status(self) -> ConsensusStatus:
        return ConsensusStatus(
            ServiceID=self._service_id,
            Healthy=True,
            IsLeader=self._leader,
            Leader=self.leader(),
            State=self.state_description(),
        )

    def add_leadership_observer(self, observer):
        self._observers.add(observer)

    def remove_leadership_observer(self, observer):
        self._observers.remove(observer)


__all__ = ["LocalConsensus", "NotLeaderError"]
