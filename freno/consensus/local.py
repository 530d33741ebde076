# -*- test-case-name: test.unit.test_consensus_local -*-
"""
L{LocalConsensus}: a single-process, in-memory L{IConsensusService}.

It is the verified fake that unit tests use, and the base behaviour every
backend shares: commands apply at once, leadership is whatever L{set_leader}
says, and an injected clock purges expired entries every few seconds
(through the same L{freno.consensus.commands.PurgeExpired} command a raft
leader sends).
"""

from __future__ import annotations

from typing import Mapping, Optional

from twisted.internet.defer import fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from freno.consensus.audit import DEFAULT_AUDIT_LOG_SIZE, AuditLog, EntryMeta
from freno.consensus.interface import (
    ConsensusStatus,
    ControlStatus,
    IConsensusService,
    Member,
    NotLeaderError,
)
from freno.consensus.commands import Command, CommandMethods
from freno.consensus.observers import LeadershipObservers
from freno.consensus.purge import ExpiryPurger
from freno.consensus.state import AppThrottle, Policy, ThrottleState

#: How often expired throttles and skips are purged (freno: 5 s).
PURGE_INTERVAL = 5.0


@implementer(IConsensusService)
class LocalConsensus(CommandMethods):
    """
    Commands apply immediately to a local L{ThrottleState}.

    @param clock: used to purge expired entries.
    @param leader: whether this node starts as leader.
    @param service_id: the id shown as leader.
    @param audit_log_size: how many audit records to keep.
    @param backend: what L{control_status} calls the backend.
    @ivar reject_commands: when set, every command fails with it (tests).
    """

    def __init__(
        self,
        clock: IReactorTime,
        leader: bool = True,
        service_id: str = "local",
        audit_log_size: int = DEFAULT_AUDIT_LOG_SIZE,
        backend: str = "single",
    ) -> None:
        self._clock = clock
        self._leader = leader
        self._service_id = service_id
        self._backend = backend
        self.state = ThrottleState(audit=AuditLog(audit_log_size))
        self._observers = LeadershipObservers()
        self._purger = ExpiryPurger(
            clock, lambda: self.state, self.submit, lambda: True, PURGE_INTERVAL
        )
        self.reject_commands: Optional[Exception] = None

    def start(self) -> None:
        """
        Start purging expired entries.
        """
        self._purger.start()

    def stop(self) -> None:
        """
        Stop purging.
        """
        self._purger.stop()

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
        return succeed(self.state.apply(command))

    def throttled_apps(self) -> Mapping[str, AppThrottle]:
        return self.state.apps

    def skipped_hosts(self) -> Mapping[str, float]:
        return self.state.skipped

    def policies(self) -> Mapping[str, Policy]:
        return self.state.policies

    def skip_meta(self) -> Mapping[str, EntryMeta]:
        return self.state.skip_meta

    def audit_log(self, since: int, limit: int):
        return succeed(self.state.audit.page(since, limit))

    def control_status(self) -> ControlStatus:
        return ControlStatus(
            backend=self._backend,
            term=None,
            members=(Member(self._service_id, True, self._leader, True),),
        )

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
