# -*- test-case-name: test.unit.test_consensus_state,test.unit.test_names,test.unit.test_control_state -*-
"""
The replicated state machine: throttled apps, skipped hosts, per-app
policies and the audit log.

Commands are the small attrs records of L{freno.consensus.commands};
L{ThrottleState.apply} applies one and answers an
L{freno.consensus.audit.Applied}. Apply is pure and deterministic: it never
reads a clock, so every node that applies the same log reaches the same
state. Expiry is an absolute time carried in the command. An entry whose
expiry has passed counts as absent for every reader; the leader's
L{freno.consensus.commands.PurgeExpired} command (carrying the leader's
time) removes such entries from every node's state alike.

Semantics of throttle (freno's C{Throttler.ThrottleApp}; docs/decisions.md D6):

    - no expiry (C{expire_at is None}) makes the entry permanent;
    - a ratio of C{None} keeps an existing entry's ratio, or gives 1.0;
    - an expiry in the past therefore acts as an unthrottle.

A command with an audit context appends its audit record in the same
C{apply}: the mutation and its record are atomic. The entry it sets
remembers the record (L{EntryMeta}: audit id, actor, reason).

A snapshot is the complete state (freno's were empty; docs/decisions.md D29)
and holds the policies and the audit log (D53).

Bounds (names of any length are accepted by the API, as in freno, so the
state bounds what it keeps; docs/decisions.md, D48 and D56):

    - a throttled-app key or skipped-host name is at most
      L{freno.consensus.commands.MAX_KEY_LENGTH} characters: every command is
      validated against it before it reaches any backend, and the raft
      machine validates each entry it applies, the same on every node;
    - at most L{MAX_ENTRIES} active throttled apps, as many active skipped
      hosts and as many policies, whose names hold at most
      L{MAX_KEY_CHARACTERS} characters per map: L{room_problem} says why a
      new key would not fit. L{freno.throttle.checker.Throttler} refuses such
      a command with a 400 naming the bound before it reaches consensus, and
      C{apply} refuses it again, deterministically, at the time its audit
      context carries (so a command that lost a race with another node's
      changes nothing, and its audit record says C{refused: ...}). Only
      active entries count; when a map is full, C{apply} first drops the
      entries expired at the command's time, so the maps never hold more
      than their bound. Commands without a context (the MySQL backend
      mirroring its tables) are never refused.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import attr

from freno.consensus.audit import APPLIED, DEFAULT_AUDIT_LOG_SIZE, Applied, AuditLog, EntryMeta
from freno.consensus.commands import (
    MAX_KEY_LENGTH,
    Command,
    PurgeExpired,
    RecordTransfer,
    RecoverHost,
    RemovePolicy,
    SetPolicy,
    SkipHost,
    ThrottleApp,
    UnthrottleApp,
)

#: The most active throttled apps, active skipped hosts, and policies.
MAX_ENTRIES = 10_000
#: The most characters the names of the active entries of one map hold.
MAX_KEY_CHARACTERS = 4 * 1024 * 1024


def room_problem(
    entries: Mapping[str, Any],
    key: str,
    active: Callable[[Any], bool],
    noun: str,
    remedy: str,
) -> Optional[str]:
    """
    Why adding or replacing C{key} in C{entries} would break a bound of the
    state, or C{None} when it fits.

    @param active: whether an entry's value is still in force.
    @param noun: what the entries are, e.g. C{"throttled apps"}.
    @param remedy: what frees room, e.g. C{"unthrottle"}.
    """
    if len(key) > MAX_KEY_LENGTH:
        return f"longer than {MAX_KEY_LENGTH} characters"
    if key in entries:
        return None
    live = [k for k, v in entries.items() if active(v)]
    if len(live) >= MAX_ENTRIES:
        return f"at most {MAX_ENTRIES} {noun} at a time; {remedy} some first"
    if sum(map(len, live)) + len(key) > MAX_KEY_CHARACTERS:
        return (
            f"the names of all {noun} hold at most {MAX_KEY_CHARACTERS} "
            f"characters; {remedy} some first"
        )
    return None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class AppThrottle:
    """
    One throttled app.

    @ivar expire_at: POSIX seconds, or C{None} for "never expires".
    @ivar ratio: the probability in [0, 1] that a check is refused.
    @ivar meta: who set it (C{None}: unknown).
    """

    expire_at: Optional[float]
    ratio: float
    meta: Optional[EntryMeta] = attr.ib(default=None, eq=False)

    def active(self, now: float) -> bool:
        """
        Whether the throttle is still in force at C{now}.
        """
        return self.expire_at is None or self.expire_at > now


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Policy:
    """
    One per-app policy (see L{freno.throttle.checker}).

    @ivar app: the app.
    @ivar store: the store (cluster) it is scoped to, or C{None}: every store.
    @ivar threshold: the app's threshold, or C{None}: the store's.
    @ivar exempt: C{threshold} applies even above the store's threshold.
    @ivar meta: who set it.
    """

    app: str
    store: Optional[str]
    threshold: Optional[float]
    exempt: bool = False
    meta: Optional[EntryMeta] = attr.ib(default=None, eq=False)

    @property
    def key(self) -> str:
        """
        C{app} or C{app/store}.
        """
        return f"{self.app}/{self.store}" if self.store else self.app


#: For each kind of command that adds an entry: the field a refusal names,
#: what the entries are called and what frees room.
_ROOM = {
    ThrottleApp: ("app", "throttled apps", "unthrottle"),
    SkipHost: ("host", "skipped hosts", "recover"),
    SetPolicy: ("app", "policies", "remove"),
}


def _target(state: "ThrottleState", command: Command, now: Optional[float]):
    """
    C{(entries, key, active)} for a command that may add an entry at
    C{now}, else C{None} (it adds nothing: a removal, or an expiry already
    past, which acts as a removal).
    """
    if isinstance(command, ThrottleApp):
        if command.expire_at is not None and now is not None and command.expire_at <= now:
            return None
        if now is None:
            return state.apps, command.key, lambda a: True
        return state.apps, command.key, lambda a: a.active(now)
    if isinstance(command, SkipHost):
        if now is not None and command.expire_at <= now:
            return None
        if now is None:
            return state.skipped, command.hostname, lambda t: True
        return state.skipped, command.hostname, lambda t: t > now
    if isinstance(command, SetPolicy):
        return state.policies, command.key, lambda p: True
    return None


def limit_problem(
    state: "ThrottleState", command: Command, now: Optional[float]
) -> Optional[Tuple[str, str]]:
    """
    C{(field, problem)} if C{command} would add an entry that breaks a bound
    (L{room_problem}) at C{now}, counting only entries active at C{now}; else
    C{None}. Pure: the HTTP layer asks it before sending a command, and
    L{ThrottleState.apply} asks it again when the command is applied.
    """
    target = _target(state, command, now)
    if target is None:
        return None
    entries, key, active = target
    field, noun, remedy = _ROOM[type(command)]
    problem = room_problem(entries, key, active, noun, remedy)
    return None if problem is None else (field, problem)


@attr.s(auto_attribs=True)
class ThrottleState:
    """
    Throttled apps, skipped hosts, policies and the audit log, changed only
    by L{apply}.

    @ivar skip_meta: who set each skip (host to L{EntryMeta}).
    """

    apps: Dict[str, AppThrottle] = attr.ib(factory=dict)
    skipped: Dict[str, float] = attr.ib(factory=dict)
    skip_meta: Dict[str, EntryMeta] = attr.ib(factory=dict)
    policies: Dict[str, Policy] = attr.ib(factory=dict)
    audit: AuditLog = attr.ib(factory=lambda: AuditLog(DEFAULT_AUDIT_LOG_SIZE))

    def apply(self, command: Command) -> Applied:
        """
        Apply one command. Deterministic: no clock, no randomness.

        @return: its audit id (if it has a context) and whether it was
            refused.
        """
        if isinstance(command, PurgeExpired):
            self.purge_expired(command.now)
            return Applied()
        context = command.context
        now = None if context is None else context.time
        problem = None
        if context is not None:
            target = _target(self, command, now)
            if target is not None and target[1] not in target[0] and len(target[0]) >= MAX_ENTRIES:
                # Full, counting expired entries: drop those (at the
                # command's time, so every node drops the same), then count.
                self.purge_expired(now)
            problem = limit_problem(self, command, now)
        if problem is not None:
            field, message = problem
            record = self.audit.append(
                context.time, context.actor, context.route, context.params,
                context.reason, f"refused: {message}",
            )
            return Applied(record.id, message, field)
        meta = None
        if context is not None:
            meta = EntryMeta(self.audit.next_id, context.actor, context.reason)
        self._change(command, meta)
        if context is None:
            return Applied()
        record = self.audit.append(
            context.time, context.actor, context.route, context.params, context.reason, APPLIED
        )
        return Applied(record.id)

    def _change(self, command: Command, meta: Optional[EntryMeta]) -> None:
        if isinstance(command, ThrottleApp):
            existing = self.apps.get(command.key)
            if command.ratio is not None:
                ratio = command.ratio
            elif existing is not None:
                ratio = existing.ratio
            else:
                ratio = 1.0
            if meta is None and existing is not None:
                meta = existing.meta
            self.apps[command.key] = AppThrottle(command.expire_at, ratio, meta)
        elif isinstance(command, UnthrottleApp):
            self.apps.pop(command.key, None)
        elif isinstance(command, SkipHost):
            self.skipped[command.hostname] = command.expire_at
            if meta is not None:
                self.skip_meta[command.hostname] = meta
        elif isinstance(command, RecoverHost):
            self.skipped.pop(command.hostname, None)
            self.skip_meta.pop(command.hostname, None)
        elif isinstance(command, SetPolicy):
            self.policies[command.key] = Policy(
                command.app, command.store, command.threshold, command.exempt, meta
            )
        elif isinstance(command, RemovePolicy):
            self.policies.pop(command.key, None)
        elif isinstance(command, RecordTransfer):
            pass  # an audit record only
        else:
            raise TypeError(f"not a command: {command!r}")

    def expired(self, now: float) -> bool:
        """
        Whether any throttle or skip has expired at C{now} (so a purge would
        change something).
        """
        return any(not a.active(now) for a in self.apps.values()) or any(
            t <= now for t in self.skipped.values()
        )

    def purge_expired(self, now: float) -> None:
        """
        Drop entries whose expiry is at or before C{now}. Readers already
        treat such entries as absent.
        """
        for key in [k for k, a in self.apps.items() if not a.active(now)]:
            del self.apps[key]
        for host in [h for h, t in self.skipped.items() if t <= now]:
            del self.skipped[host]
            self.skip_meta.pop(host, None)

    def snapshot(self) -> Dict[str, Any]:
        """
        The complete state as JSON-able data.
        """
        def meta(m: Optional[EntryMeta]) -> Dict[str, Any]:
            return {} if m is None else {"Meta": m.to_json()}

        return {
            "throttledApps": {
                key: {"ExpireAt": a.expire_at, "Ratio": a.ratio, **meta(a.meta)}
                for key, a in self.apps.items()
            },
            "skippedHosts": dict(self.skipped),
            "skipMeta": {host: m.to_json() for host, m in self.skip_meta.items()},
            "policies": {
                key: {
                    "App": p.app,
                    "Store": p.store,
                    "Threshold": p.threshold,
                    "Exempt": p.exempt,
                    **meta(p.meta),
                }
                for key, p in self.policies.items()
            },
            "audit": self.audit.snapshot(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """
        Replace the whole state with a L{snapshot} (a snapshot from before
        policies and audit existed restores with none).
        """
        apps = {
            key: AppThrottle(
                None if v["ExpireAt"] is None else float(v["ExpireAt"]),
                float(v["Ratio"]),
                EntryMeta.from_json(v.get("Meta")),
            )
            for key, v in data.get("throttledApps", {}).items()
        }
        skipped = {host: float(t) for host, t in data.get("skippedHosts", {}).items()}
        skip_meta = {}
        for host, m in data.get("skipMeta", {}).items():
            parsed = EntryMeta.from_json(m)
            if parsed is not None and host in skipped:
                skip_meta[host] = parsed
        policies = {
            key: Policy(
                str(v["App"]),
                v.get("Store"),
                None if v.get("Threshold") is None else float(v["Threshold"]),
                bool(v.get("Exempt", False)),
                EntryMeta.from_json(v.get("Meta")),
            )
            for key, v in data.get("policies", {}).items()
        }
        audit = AuditLog(self.audit.size)
        audit.restore(data.get("audit"))
        self.apps, self.skipped, self.skip_meta = apps, skipped, skip_meta
        self.policies, self.audit = policies, audit

    def replace_with(self, other: "ThrottleState") -> None:
        """
        Take over C{other}'s whole content (a snapshot loaded into a fresh
        state), keeping this object (readers hold it).
        """
        self.apps, self.skipped, self.skip_meta = other.apps, other.skipped, other.skip_meta
        self.policies, self.audit = other.policies, other.audit
