# -*- test-case-name: test.unit.test_consensus_mysql,test.unit.test_consensus_mysql_control -*-
"""
The seam of the MySQL consensus backend: L{IBackendStore} (the database as
the operations L{freno.consensus.mysql.service.MySQLBackendConsensus}
needs) and the rows it answers. L{freno.consensus.mysql.store} implements it
on MariaDB/MySQL, L{freno.consensus.mysql.memory} in memory.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import attr
from zope.interface import Interface

from freno.consensus.audit import EntryMeta
from freno.consensus.state import Policy


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Leadership:
    """
    The election row after one attempt.

    @ivar is_leader: whether this service holds the row.
    @ivar leader: the service id holding it (C{""} if none).
    """

    is_leader: bool
    leader: str


@attr.s(frozen=True, auto_attribs=True, slots=True)
class HealthView:
    """
    What one health round saw.

    @ivar healthy_services: service ids of this domain seen within the window.
    @ivar shared_services: domain to leader service id of the other domains
        sharing this node's C{ShareDomain} (empty when it has none).
    """

    healthy_services: Tuple[str, ...]
    shared_services: Dict[str, str]


@attr.s(frozen=True, auto_attribs=True, slots=True)
class AppRow:
    """
    One C{throttled_apps} row.

    @ivar expire_at: POSIX seconds, or C{None}: never expires.
    @ivar ratio: C{None}: the row has no usable ratio (keep the local one, or 1.0).
    @ivar meta: who set it (from the audit log), if known.
    """

    key: str
    expire_at: Optional[float]
    ratio: Optional[float]
    meta: Optional[EntryMeta] = attr.ib(default=None, eq=False)


@attr.s(frozen=True, auto_attribs=True, slots=True)
class HostRow:
    """
    One C{skipped_hosts} row; C{expire_at} C{None} (a zero date) counts as expired.
    """

    hostname: str
    expire_at: Optional[float]
    meta: Optional[EntryMeta] = attr.ib(default=None, eq=False)


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Tables:
    """
    What one state read saw: every row of C{throttled_apps},
    C{skipped_hosts} and C{freno_policies}.
    """

    apps: List[AppRow]
    hosts: List[HostRow]
    policies: List[Policy]


class IBackendStore(Interface):
    """
    The backend database, as the operations L{MySQLBackendConsensus} needs.
    Every method returns a L{Deferred}; each is one round trip to one pooled
    connection, and fails with the driver's error.
    """

    def ensure_schema(create: bool):
        """
        Create missing tables if C{create}, and check them.

        @rtype: L{Deferred} firing with a list of warning strings.
        """

    def elect(domain: str, share_domain: str, service_id: str, lease_seconds: int):
        """
        Attempt leadership of C{domain} (take the row over if it is older
        than C{lease_seconds}, refresh it if held), then read it.

        @rtype: L{Deferred} firing with a L{Leadership}.
        """

    def release(domain: str, service_id: str):
        """
        Give up C{domain}'s row if C{service_id} holds it.
        """

    def register_health(service_id: str, domain: str, share_domain: str, window: int):
        """
        Record C{service_id} as alive now, then read the services of
        C{domain} alive within C{window} seconds and (if C{share_domain})
        the leaders of other domains sharing it.

        @rtype: L{Deferred} firing with a L{HealthView}.
        """

    def read_state():
        """
        Read the throttles, skips (each with its meta from the audit log)
        and policies.

        @rtype: L{Deferred} firing with L{Tables}.
        """

    def change_counter():
        """
        The backend's change counter: the last audit id (C{None} when the
        control tables are missing).

        @rtype: L{Deferred} firing with an C{int} or C{None}.
        """

    def throttle_app(key: str, expires: Optional[int], ratio: Optional[float], audit=None, limit=None):
        """
        Write a throttle (C{expires} from L{db_expiry} or C{None}) and read
        the row back; with an L{AuditEntry}, in one transaction with its
        audit record, refused if it adds an entry beyond the L{Limit}.

        @rtype: L{Deferred} firing with a L{Written} holding the L{AppRow}.
        """

    def unthrottle_app(key: str, audit=None):
        """
        Write a tombstone for C{key} and read the row back.

        @rtype: L{Deferred} firing with a L{Written} holding the L{AppRow}.
        """

    def skip_host(hostname: str, expires: int, audit=None, limit=None):
        """
        Write a skip and read the row back.

        @rtype: L{Deferred} firing with a L{Written} holding the L{HostRow}.
        """

    def recover_host(hostname: str, audit=None):
        """
        Write a tombstone for C{hostname} and read the row back.

        @rtype: L{Deferred} firing with a L{Written} holding the L{HostRow}.
        """

    def set_policy(policy: Policy, audit=None, limit=None):
        """
        Write a policy and read it back.

        @rtype: L{Deferred} firing with a L{Written} holding the L{Policy}.
        """

    def remove_policy(key: str, audit=None):
        """
        Delete a policy.

        @rtype: L{Deferred} firing with a L{Written} (row C{None}).
        """

    def audit_page(since: int, limit: int):
        """
        The audit records with id above C{since}, at most C{limit}.

        @rtype: L{Deferred} firing with an L{freno.consensus.audit.AuditPage}.
        """

    def purge(grace_seconds: int):
        """
        Delete throttles and skips that expired and were last written more
        than C{grace_seconds} ago.

        @rtype: L{Deferred} firing with the number of rows deleted.
        """

    def close():
        """
        Release connections and threads. Call once nothing is in flight.
        """
