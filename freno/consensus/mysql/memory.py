# -*- test-case-name: test.unit.test_consensus_mysql -*-
"""
L{MemoryBackendStore}: an in-memory L{IBackendStore} that plays the backend
database for unit tests, with the same election, health and write semantics
as the SQL in L{freno.consensus.mysql.store}, on an injected clock.

Several consensus nodes may share one store (one database). Set L{error} to
make every call fail with it, or L{hold} to leave every call's Deferred
unfired in L{pending} (a hung database).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import attr
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from freno.consensus.mysql.store import (
    TOMBSTONE,
    AppRow,
    HealthView,
    HostRow,
    IBackendStore,
    Leadership,
)


@attr.s(auto_attribs=True)
class _ElectionRow:
    share_domain: str
    service_id: str
    last_seen_active: float


@implementer(IBackendStore)
class MemoryBackendStore:
    """
    The backend tables as dicts.

    @ivar election: domain to its election row.
    @ivar health: service id to C{(domain, share_domain, last_seen)}.
    @ivar apps: app key to C{(expires, ratio)}, as stored.
    @ivar hosts: hostname to stored expiry.
    @ivar calls: the names of the operations called, in order.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self.election: Dict[str, _ElectionRow] = {}
        self.health: Dict[str, Tuple[str, str, float]] = {}
        self.apps: Dict[str, Tuple[Optional[int], Optional[float]]] = {}
        self.hosts: Dict[str, int] = {}
        self.calls: List[str] = []
        self.error: Optional[Exception] = None
        self.hold = False
        self.pending: List[Deferred] = []
        self.closed = False

    def _answer(self, name, compute):
        self.calls.append(name)
        if self.error is not None:
            return fail(self.error)
        if self.hold:
            d: Deferred = Deferred()
            self.pending.append(d)
            return d
        return succeed(compute())

    def _app_row(self, key) -> AppRow:
        expires, ratio = self.apps[key]
        return AppRow(key, None if expires is None else float(expires), ratio)

    def _host_row(self, hostname) -> HostRow:
        return HostRow(hostname, float(self.hosts[hostname]))

    def ensure_schema(self, create):
        return self._answer("ensure_schema", lambda: [])

    def elect(self, domain, share_domain, service_id, lease_seconds):
        def compute():
            now = self._clock.seconds()
            row = self.election.get(domain)
            if row is None:
                row = self.election[domain] = _ElectionRow(share_domain, service_id, now)
            else:
                if row.last_seen_active < now - lease_seconds:
                    row.service_id = service_id
                if row.service_id == service_id:
                    row.share_domain = share_domain
                    row.last_seen_active = now
            return Leadership(row.service_id == service_id, row.service_id)

        return self._answer("elect", compute)

    def release(self, domain, service_id):
        def compute():
            row = self.election.get(domain)
            if row is not None and row.service_id == service_id:
                del self.election[domain]

        return self._answer("release", compute)

    def register_health(self, service_id, domain, share_domain, window):
        def compute():
            now = self._clock.seconds()
            self.health[service_id] = (domain, share_domain, now)
            healthy = tuple(
                sid for sid, (d, _, seen) in self.health.items()
                if d == domain and seen >= now - window
            )
            shared = {}
            if share_domain:
                shared = {
                    d: row.service_id for d, row in self.election.items()
                    if row.share_domain == share_domain
                    and row.last_seen_active >= now - window
                    and row.service_id != service_id
                }
            return HealthView(healthy, shared)

        return self._answer("register_health", compute)

    def read_state(self):
        return self._answer(
            "read_state",
            lambda: (
                [self._app_row(k) for k in self.apps],
                [self._host_row(h) for h in self.hosts],
            ),
        )

    def throttle_app(self, key, expires, ratio):
        def compute():
            now = self._clock.seconds()
            if key in self.apps and ratio is None:
                old_expires, old_ratio = self.apps[key]
                expired = old_expires is not None and old_expires <= now
                new_ratio = 1.0 if old_ratio is None or old_ratio < 0 or expired else old_ratio
            else:
                new_ratio = 1.0 if ratio is None else ratio
            self.apps[key] = (expires, new_ratio)
            return self._app_row(key)

        return self._answer("throttle_app", compute)

    def unthrottle_app(self, key):
        def compute():
            ratio = self.apps.get(key, (None, 1.0))[1]
            self.apps[key] = (TOMBSTONE, ratio)
            return self._app_row(key)

        return self._answer("unthrottle_app", compute)

    def skip_host(self, hostname, expires):
        def compute():
            self.hosts[hostname] = expires
            return self._host_row(hostname)

        return self._answer("skip_host", compute)

    def recover_host(self, hostname):
        def compute():
            self.hosts[hostname] = TOMBSTONE
            return self._host_row(hostname)

        return self._answer("recover_host", compute)

    def close(self):
        self.closed = True
