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

from typing import Callable, Dict, List, Optional, Tuple

import attr
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from freno.consensus.audit import APPLIED, AuditRecord, EntryMeta, page_of
from freno.consensus.mysql.control_tables import _NOUNS, Written
from freno.consensus.mysql.store import (
    TOMBSTONE,
    AppRow,
    HealthView,
    HostRow,
    IBackendStore,
    Leadership,
    Tables,
)
from freno.consensus.state import Policy


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
    @ivar written: C{("app"|"host", key)} to when the row was last written.
    @ivar policies: policy key to L{Policy}.
    @ivar audit: the audit records, in id order.
    @ivar sequence: the last audit id (the change counter).
    @ivar calls: the names of the operations called, in order.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self.election: Dict[str, _ElectionRow] = {}
        self.health: Dict[str, Tuple[str, str, float]] = {}
        self.apps: Dict[str, Tuple[Optional[int], Optional[float]]] = {}
        self.hosts: Dict[str, int] = {}
        self.written: Dict[Tuple[str, str], float] = {}
        self.policies: Dict[str, Policy] = {}
        self.audit: List[AuditRecord] = []
        self.audit_kinds: Dict[int, Tuple[str, str]] = {}
        self.sequence = 0
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

    def _meta(self, kind, target) -> Optional[EntryMeta]:
        for record in reversed(self.audit):
            if self.audit_kinds[record.id] == (kind, target) and record.outcome == APPLIED:
                return EntryMeta(record.id, record.actor, record.reason)
        return None

    def _app_row(self, key, meta=None) -> AppRow:
        if key not in self.apps:
            return AppRow(key, TOMBSTONE, None)  # as the SQL store reads a missing row
        expires, ratio = self.apps[key]
        return AppRow(key, None if expires is None else float(expires), ratio, meta)

    def _host_row(self, hostname, meta=None) -> HostRow:
        if hostname not in self.hosts:
            return HostRow(hostname, None)
        return HostRow(hostname, float(self.hosts[hostname]), meta)

    def _active_count(self, table, key) -> Tuple[int, bool]:
        now = self._clock.seconds()
        if table == "throttles":
            active = [k for k, (e, _) in self.apps.items() if e is None or e > now]
        elif table == "skips":
            active = [h for h, e in self.hosts.items() if e > now]
        else:
            active = list(self.policies)
        return len(active), key in active

    def _mutate(self, audit, limit, key, write: Callable, read_back: Callable) -> Written:
        """
        L{freno.consensus.mysql.control_tables.mutate}, in memory.
        """
        if audit is None:
            write(None)
            return Written(read_back(None))
        audit_id = self.sequence + 1
        refused = field = None
        if limit is not None:
            count, present = self._active_count(limit.table, key)
            if not present and count >= limit.maximum:
                field = limit.field
                noun, remedy = _NOUNS[limit.table]
                refused = f"at most {limit.maximum} {noun} at a time; {remedy} some first"
        context = audit.context
        meta = EntryMeta(audit_id, context.actor, context.reason)
        if refused is None:
            write(meta)
        self.sequence = audit_id
        self.audit.append(
            AuditRecord(
                audit_id, context.time, context.actor, context.route, dict(context.params),
                context.reason, APPLIED if refused is None else f"refused: {refused}",
            )
        )
        self.audit_kinds[audit_id] = (audit.kind, audit.target)
        while self.audit and self.audit[0].id <= audit_id - audit.keep:
            del self.audit_kinds[self.audit.pop(0).id]
        return Written(read_back(meta if refused is None else None), audit_id, refused, field)

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
            lambda: Tables(
                [self._app_row(k, self._meta("app", k)) for k in self.apps],
                [self._host_row(h, self._meta("host", h)) for h in self.hosts],
                list(self.policies.values()),
            ),
        )

    def change_counter(self):
        return self._answer("change_counter", lambda: self.sequence)

    def throttle_app(self, key, expires, ratio, audit=None, limit=None):
        def write(meta):
            now = self._clock.seconds()
            if key in self.apps and ratio is None:
                old_expires, old_ratio = self.apps[key]
                expired = old_expires is not None and old_expires <= now
                new_ratio = 1.0 if old_ratio is None or old_ratio < 0 or expired else old_ratio
            else:
                new_ratio = 1.0 if ratio is None else ratio
            self.apps[key] = (expires, new_ratio)
            self.written[("app", key)] = now

        return self._answer(
            "throttle_app",
            lambda: self._mutate(audit, limit, key, write, lambda meta: self._app_row(key, meta)),
        )

    def unthrottle_app(self, key, audit=None):
        def write(meta):
            ratio = self.apps.get(key, (None, 1.0))[1]
            self.apps[key] = (TOMBSTONE, ratio)
            self.written[("app", key)] = self._clock.seconds()

        return self._answer(
            "unthrottle_app",
            lambda: self._mutate(audit, None, key, write, lambda meta: self._app_row(key, meta)),
        )

    def skip_host(self, hostname, expires, audit=None, limit=None):
        def write(meta):
            self.hosts[hostname] = expires
            self.written[("host", hostname)] = self._clock.seconds()

        return self._answer(
            "skip_host",
            lambda: self._mutate(
                audit, limit, hostname, write, lambda meta: self._host_row(hostname, meta)
            ),
        )

    def recover_host(self, hostname, audit=None):
        def write(meta):
            self.hosts[hostname] = TOMBSTONE
            self.written[("host", hostname)] = self._clock.seconds()

        return self._answer(
            "recover_host",
            lambda: self._mutate(
                audit, None, hostname, write, lambda meta: self._host_row(hostname, meta)
            ),
        )

    def set_policy(self, policy, audit=None, limit=None):
        def write(meta):
            self.policies[policy.key] = attr.evolve(policy, meta=meta or EntryMeta(None, None, None))

        return self._answer(
            "set_policy",
            lambda: self._mutate(
                audit, limit, policy.key, write, lambda meta: self.policies.get(policy.key)
            ),
        )

    def remove_policy(self, key, audit=None):
        return self._answer(
            "remove_policy",
            lambda: self._mutate(
                audit, None, key, lambda meta: self.policies.pop(key, None), lambda meta: None
            ),
        )

    def audit_page(self, since, limit):
        return self._answer(
            "audit_page",
            lambda: page_of(self.audit, since, limit, self.audit[0].id if self.audit else None),
        )

    def purge(self, grace_seconds):
        def compute():
            now = self._clock.seconds()
            old = now - grace_seconds
            deleted = 0
            for key, (expires, _) in list(self.apps.items()):
                if expires is not None and expires <= now and self.written.get(("app", key), 0) <= old:
                    del self.apps[key]
                    deleted += 1
            for host, expires in list(self.hosts.items()):
                if expires <= now and self.written.get(("host", host), 0) <= old:
                    del self.hosts[host]
                    deleted += 1
            return deleted

        return self._answer("purge", compute)

    def close(self):
        self.closed = True
