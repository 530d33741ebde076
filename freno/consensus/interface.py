# -*- test-case-name: test.unit.test_consensus_local -*-
"""
L{IConsensusService}: the seam between the API/throttler and whatever keeps
the replicated state and decides leadership (freno's C{ConsensusService}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Optional, Tuple

import attr
from zope.interface import Interface

if TYPE_CHECKING:  # the state module imports this one's errors
    from freno.consensus.audit import EntryMeta
    from freno.consensus.state import AppThrottle, Policy


class ConsensusError(Exception):
    """
    A control command was not applied. C{str(error)} is the message clients see.
    """


class NotLeaderError(ConsensusError):
    """
    No leader is known, so the command cannot be committed now.
    """

    def __init__(self, message: str = "not leader") -> None:
        super().__init__(message)


class CommitTimeoutError(ConsensusError):
    """
    The command was not committed within the bound.
    """


@attr.s(frozen=True, auto_attribs=True)
class ConsensusStatus:
    """
    C{/consensus/status}: freno's C{ConsensusServiceStatus}, in its field order.
    """

    ServiceID: str
    Healthy: bool
    IsLeader: bool
    Leader: str
    State: str
    Domain: str = ""
    ShareDomain: str = ""
    ShareDomainServices: Optional[Mapping[str, str]] = None
    ShareDomainServicesList: Optional[list] = None
    HealthyDomainServicesList: Optional[list] = None


@attr.s(frozen=True, auto_attribs=True)
class Member:
    """
    One member of the consensus group, as this node sees it.

    @ivar id: its id (raft address, or MySQL service id).
    @ivar is_self: whether it is this node.
    @ivar reachable: whether this node is connected to it (C{None}: unknown).
    """

    id: str
    is_self: bool
    leader: bool
    reachable: Optional[bool]


@attr.s(frozen=True, auto_attribs=True)
class ControlStatus:
    """
    What C{GET /api/v1/status} shows of the consensus service.

    @ivar backend: C{"raft"}, C{"single"} or C{"mysql"}.
    @ivar term: the raft term, or C{None}.
    """

    backend: str
    term: Optional[int]
    members: Tuple[Member, ...]


class IConsensusService(Interface):
    """
    Commands, the state they build, and leadership.

    Commands return Deferreds that fire with an
    L{freno.consensus.audit.Applied} once the command is committed and
    applied locally, or fail with L{ConsensusError} (L{InvalidCommand
    <freno.consensus.commands.InvalidCommand>} before anything was sent);
    they never hang (implementations bound them). A command carrying an
    L{AuditContext <freno.consensus.commands.AuditContext>} is recorded in
    the audit log with it, atomically. Times are POSIX seconds.
    """

    def submit(command):
        """
        Validate and commit any L{freno.consensus.commands.Command} record.

        @rtype: L{Deferred} firing with an L{freno.consensus.audit.Applied}
        """

    def throttle_app(app_key: str, expire_at: Optional[float], ratio: Optional[float], context=None):
        """
        Throttle C{app_key} (C{app} or C{app/store}) until C{expire_at}
        (C{None}: never expires) with C{ratio} (C{None}: keep the existing
        ratio, or 1.0 for a new entry). See L{freno.consensus.state}.

        @rtype: L{Deferred} firing with an L{freno.consensus.audit.Applied}
        """

    def unthrottle_app(app_key: str, context=None):
        """
        Remove C{app_key}'s throttle.

        @rtype: L{Deferred} firing with an L{freno.consensus.audit.Applied}
        """

    def skip_host(hostname: str, expire_at: float, context=None):
        """
        Leave C{hostname} out of aggregation until C{expire_at}.

        @rtype: L{Deferred} firing with an L{freno.consensus.audit.Applied}
        """

    def recover_host(hostname: str, context=None):
        """
        Stop skipping C{hostname}.

        @rtype: L{Deferred} firing with an L{freno.consensus.audit.Applied}
        """

    def policies() -> Mapping[str, Policy]:
        """
        The per-app policies by key (C{app} or C{app/store}).
        """

    def skip_meta() -> Mapping[str, EntryMeta]:
        """
        Who set each skipped host (hosts without an entry: unknown).
        """

    def audit_log(since: int, limit: int):
        """
        The audit records with id above C{since}, oldest first, at most
        C{limit}.

        @rtype: L{Deferred} firing with an L{freno.consensus.audit.AuditPage}
        """

    def control_status() -> ControlStatus:
        """
        The backend, term and members, for C{GET /api/v1/status}.
        """

    def throttled_apps() -> Mapping[str, AppThrottle]:
        """
        The current throttled apps by key. May hold entries whose expiry has
        passed and that are not purged yet: readers compare with the clock.
        """

    def skipped_hosts() -> Mapping[str, float]:
        """
        The current skipped hosts: hostname to expiry time. May hold expired
        entries, as L{throttled_apps}.
        """

    def is_leader() -> bool:
        """
        Whether this node may probe and serve checks now (honours
        C{--force-leadership}).
        """

    def leader() -> str:
        """
        The leader's id (its raft address), or C{""} when unknown.
        """

    def state_description() -> str:
        """
        C{"Leader"}, C{"Follower"}, C{"Candidate"}, C{"Shutdown"} (raft), or
        C{"Leader"}/C{"Healthy"}/C{"Unhealthy"} (MySQL backend).
        """

    def is_healthy() -> bool:
        """
        Whether the node takes part in a working group (leader or follower).
        """

    def status() -> ConsensusStatus:
        """
        The C{/consensus/status} object.
        """

    def add_leadership_observer(observer: Callable[[bool], None]) -> None:
        """
        Call C{observer(is_leader)} on the reactor thread whenever
        L{is_leader} changes. The observer is not called for the current state.
        """

    def remove_leadership_observer(observer: Callable[[bool], None]) -> None:
        """
        Undo L{add_leadership_observer}.
        """


class ISharedDomainServices(Interface):
    """
    An optional capability of a consensus backend: knowing the leaders of the
    other domains that share this node's C{ShareDomain} (the MySQL backend
    has it; raft does not). L{freno.consensus.mysql.shared_domain} uses it.
    """

    def shared_domain_services() -> Mapping[str, str]:
        """
        Domain name to the leader's service id (C{host:port}) of every other
        domain sharing this node's C{ShareDomain}; empty without one.
        """
