# -*- test-case-name: test.unit.test_consensus_state,test.unit.test_consensus_local,test.unit.test_consensus_mysql,test.unit.test_control_state -*-
"""
The replicated commands: small attrs records (L{ThrottleApp},
L{UnthrottleApp}, L{SkipHost}, L{RecoverHost}, L{SetPolicy},
L{RemovePolicy}, L{PurgeExpired}, L{RecordTransfer}), their validation, their plain dict form
for journals and the wire, and L{CommandMethods}, the one command path every
consensus backend shares.

A command goes the same way on every backend: the interface method
(C{throttle_app}, ..., or C{submit} with a record) builds its record,
L{validate} checks it (here and nowhere else), and the backend's C{_submit}
commits it (raft: the log; MySQL: the tables; local: at once). An invalid
command fails with L{InvalidCommand} before it reaches any backend, so
nothing changes anywhere.

Audit
=====

Every operator mutation carries an L{AuditContext}: who asked (C{actor}),
through which route, with which parameters and why, and the time the node
that accepted the request stamped on it. The mutation and its audit record
are one command, applied atomically (L{freno.consensus.state}); the audit id
is assigned when the command is applied, not here. A command without a
context (the MySQL backend mirroring its tables, L{PurgeExpired}) leaves no
audit record.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Mapping, Optional, Union

import attr
from twisted.internet.defer import fail

from freno.consensus.interface import ConsensusError

#: The longest app key (C{app} or C{app/store}) or host name a command may
#: carry, in characters. Names may be of any length at the API, as in freno;
#: this bounds what the replicated state keeps (a request line, at most 16
#: KiB, cannot carry a longer one). A backend may hold less: the MySQL
#: backend's columns take 128.
MAX_KEY_LENGTH = 16 * 1024

#: Bounds on the audit context's fields (characters), so that an audit record
#: (and the audit log in every snapshot) stays small.
MAX_ACTOR_LENGTH = 255
MAX_ROUTE_LENGTH = 1024
MAX_REASON_LENGTH = 1024
MAX_PARAMS_LENGTH = 4096


class InvalidCommand(ConsensusError, ValueError):
    """
    A command was refused before reaching consensus; nothing changed.

    @ivar parameter: the offending parameter, e.g. C{"app"} or C{"ratio"}.
    @ivar problem: what is wrong with it.
    """

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


class LimitReached(InvalidCommand):
    """
    The command would add an entry that breaks a bound of the state (see
    L{freno.consensus.state.room_problem}); nothing changed.

    @ivar audit_id: the audit record saying so, when the command was refused
        as it was applied (C{None} when it was refused before being sent).
    """

    def __init__(self, parameter: str, problem: str, audit_id: Optional[int] = None) -> None:
        super().__init__(parameter, problem)
        self.audit_id = audit_id


@attr.s(frozen=True, auto_attribs=True, slots=True, hash=False)
class AuditContext:
    """
    Who asked for a mutation, how and why: the content of its audit record.

    @ivar time: POSIX seconds, stamped by the node that accepted the request
        (the closest a deterministic log can carry to "time of commit").
    @ivar actor: C{token:<name>}, or the remote address (with its
        C{X-Forwarded-For}) when no token was used.
    @ivar route: C{"POST /api/v1/throttles"} or C{"GET /throttle-app/x/ttl/5"}.
    @ivar params: the request's parameters, JSON-able.
    @ivar reason: the operator's optional reason.
    """

    time: float
    actor: str
    route: str
    params: Mapping[str, Any] = attr.ib(factory=dict)
    reason: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class ThrottleApp:
    """
    Throttle C{key} (C{app} or C{app/store}).
    """

    key: str
    expire_at: Optional[float]
    ratio: Optional[float]
    context: Optional[AuditContext] = None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class UnthrottleApp:
    """
    Remove C{key}'s throttle.
    """

    key: str
    context: Optional[AuditContext] = None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class SkipHost:
    """
    Skip C{hostname} until C{expire_at}.
    """

    hostname: str
    expire_at: float
    context: Optional[AuditContext] = None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class RecoverHost:
    """
    Stop skipping C{hostname}.
    """

    hostname: str
    context: Optional[AuditContext] = None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class SetPolicy:
    """
    Set the per-app policy C{key} (C{app} or C{app/store}).

    @ivar threshold: the app's threshold on the store(s), or C{None} (the
        store's threshold applies).
    @ivar exempt: the threshold applies even when above the store's.
    """

    key: str
    app: str
    store: Optional[str]
    threshold: Optional[float]
    exempt: bool = False
    context: Optional[AuditContext] = None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class RemovePolicy:
    """
    Remove the per-app policy C{key}.
    """

    key: str
    context: Optional[AuditContext] = None


@attr.s(frozen=True, auto_attribs=True, slots=True)
class PurgeExpired:
    """
    Drop every throttle and skip whose expiry is at or before C{now} (issued
    by the leader; C{now} is the leader's clock, so every node drops the
    same entries).
    """

    now: float


@attr.s(frozen=True, auto_attribs=True, slots=True)
class RecordTransfer:
    """
    Record in the audit log that an operator asked C{source} (the leader)
    to hand its leadership to C{target} (C{None}: the best follower). It
    changes no state: leadership is raft's, not the state machine's. The
    leader commits it before it starts the hand-off (docs/handoff.md).
    """

    source: str
    target: Optional[str]
    context: Optional[AuditContext] = None


Command = Union[
    ThrottleApp,
    UnthrottleApp,
    SkipHost,
    RecoverHost,
    SetPolicy,
    RemovePolicy,
    PurgeExpired,
    RecordTransfer,
]

_COMMANDS = {
    "throttle": ThrottleApp,
    "unthrottle": UnthrottleApp,
    "skip": SkipHost,
    "recover": RecoverHost,
    "set-policy": SetPolicy,
    "remove-policy": RemovePolicy,
    "purge": PurgeExpired,
    "leadership-transfer": RecordTransfer,
}
_OPS = {cls: op for op, cls in _COMMANDS.items()}


def operation(command: Command) -> str:
    """
    The operation name of C{command} (C{"throttle"}, C{"set-policy"}, ...).
    """
    return _OPS[type(command)]


def _check_name(parameter: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidCommand(parameter, "must be a non-empty string")
    if len(name) > MAX_KEY_LENGTH:
        raise InvalidCommand(parameter, f"longer than {MAX_KEY_LENGTH} characters")


def _check_time(parameter: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidCommand(parameter, f"must be a finite time, not {value!r}")


def check_ratio(ratio: Any) -> None:
    """
    Refuse a throttle ratio that is not a finite number in [0, 1].

    @raise InvalidCommand: naming C{ratio}.
    """
    if (
        isinstance(ratio, bool)
        or not isinstance(ratio, (int, float))
        or not math.isfinite(ratio)
        or not 0.0 <= ratio <= 1.0
    ):
        raise InvalidCommand("ratio", f"must be in [0..1] range; got {ratio!r}")


def check_threshold(threshold: Any) -> None:
    """
    Refuse a policy threshold that is not a finite number above 0.

    @raise InvalidCommand: naming C{threshold}.
    """
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not math.isfinite(threshold)
        or threshold <= 0
    ):
        raise InvalidCommand("threshold", f"must be a finite number > 0; got {threshold!r}")


def _check_text(parameter: str, value: Any, limit: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidCommand(parameter, "must be a string")
    if len(value) > limit:
        raise InvalidCommand(parameter, f"longer than {limit} characters")


def check_reason(reason: Any) -> None:
    """
    Refuse a reason that is neither C{None} nor a string of at most
    L{MAX_REASON_LENGTH} characters.

    @raise InvalidCommand: naming C{reason}.
    """
    _check_text("reason", reason, MAX_REASON_LENGTH, optional=True)


def validate_context(context: Any) -> None:
    """
    Check an L{AuditContext}: a finite time, bounded texts, JSON-able
    parameters of bounded size.

    @raise InvalidCommand: naming the first bad field.
    """
    if not isinstance(context, AuditContext):
        raise InvalidCommand("context", f"not an audit context: {context!r}")
    _check_time("time", context.time)
    _check_text("actor", context.actor, MAX_ACTOR_LENGTH)
    _check_text("route", context.route, MAX_ROUTE_LENGTH)
    check_reason(context.reason)
    if not isinstance(context.params, Mapping):
        raise InvalidCommand("params", "must be an object")
    try:
        text = json.dumps(dict(context.params), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidCommand("params", f"not JSON: {e}") from None
    if len(text) > MAX_PARAMS_LENGTH:
        raise InvalidCommand("params", f"longer than {MAX_PARAMS_LENGTH} characters as JSON")


def policy_key(app: str, store: Optional[str]) -> str:
    """
    The key of an app's policy (or throttle): C{app}, or C{app/store}.
    """
    return f"{app}/{store}" if store else app


def validate(command: Command) -> None:
    """
    Check C{command}'s fields: names non-empty and at most
    L{MAX_KEY_LENGTH} characters, expiries finite, ratios in [0, 1],
    thresholds above 0, and its audit context (if any).

    @raise InvalidCommand: naming the first bad field.
    """
    if isinstance(command, (ThrottleApp, UnthrottleApp)):
        _check_name("app", command.key)
        if isinstance(command, ThrottleApp):
            if command.expire_at is not None:
                _check_time("expire_at", command.expire_at)
            if command.ratio is not None:
                check_ratio(command.ratio)
    elif isinstance(command, (SkipHost, RecoverHost)):
        _check_name("host", command.hostname)
        if isinstance(command, SkipHost):
            _check_time("expire_at", command.expire_at)
    elif isinstance(command, SetPolicy):
        _check_name("app", command.app)
        if command.store is not None:
            _check_name("store", command.store)
        if command.key != policy_key(command.app, command.store):
            raise InvalidCommand("key", f"must be {policy_key(command.app, command.store)!r}")
        if command.threshold is not None:
            check_threshold(command.threshold)
        if not isinstance(command.exempt, bool):
            raise InvalidCommand("exempt", "must be true or false")
    elif isinstance(command, RemovePolicy):
        _check_name("app", command.key)
    elif isinstance(command, PurgeExpired):
        _check_time("now", command.now)
        return
    elif isinstance(command, RecordTransfer):
        _check_name("source", command.source)
        if command.target is not None:
            _check_name("target", command.target)
    else:
        raise InvalidCommand("command", f"not a command: {command!r}")
    if command.context is not None:
        validate_context(command.context)


class CommandMethods:
    """
    The command methods of L{freno.consensus.interface.IConsensusService}:
    each builds its L{Command} record, L{validate}s it and hands it to
    C{self._submit(command)}, which the class mixing this in provides (it
    returns a Deferred firing with the command's
    L{freno.consensus.state.Applied}). An invalid command gives a Deferred
    that has already failed with L{InvalidCommand}.
    """

    def _submit(self, command: Command):
        raise NotImplementedError()

    def submit(self, command: Command):
        """
        See L{freno.consensus.interface.IConsensusService.submit}.
        """
        try:
            validate(command)
        except InvalidCommand:
            return fail()
        return self._submit(command)

    def throttle_app(
        self,
        app_key: str,
        expire_at: Optional[float],
        ratio: Optional[float],
        context: Optional[AuditContext] = None,
    ):
        """
        See L{freno.consensus.interface.IConsensusService.throttle_app}.
        """
        return self.submit(ThrottleApp(app_key, expire_at, ratio, context))

    def unthrottle_app(self, app_key: str, context: Optional[AuditContext] = None):
        """
        See L{freno.consensus.interface.IConsensusService.unthrottle_app}.
        """
        return self.submit(UnthrottleApp(app_key, context))

    def skip_host(self, hostname: str, expire_at: float, context: Optional[AuditContext] = None):
        """
        See L{freno.consensus.interface.IConsensusService.skip_host}.
        """
        return self.submit(SkipHost(hostname, expire_at, context))

    def recover_host(self, hostname: str, context: Optional[AuditContext] = None):
        """
        See L{freno.consensus.interface.IConsensusService.recover_host}.
        """
        return self.submit(RecoverHost(hostname, context))


def context_to_dict(context: Optional[AuditContext]) -> Optional[Dict[str, Any]]:
    """
    The plain, JSON-able form of an audit context (C{None} stays C{None}),
    as commands carry it (raft membership entries carry the same).
    """
    if context is None:
        return None
    return {
        "time": context.time,
        "actor": context.actor,
        "route": context.route,
        "params": dict(context.params),
        "reason": context.reason,
    }


def command_to_dict(command: Command) -> Dict[str, Any]:
    """
    A plain, JSON-able form of C{command} (for journals and the wire).
    """
    data = attr.asdict(command, recurse=False)
    if "context" in data:
        if data["context"] is None:
            del data["context"]  # the form of a command without audit is unchanged
        else:
            data["context"] = context_to_dict(data["context"])
    data["op"] = _OPS[type(command)]
    return data


def command_from_dict(data: Mapping[str, Any]) -> Command:
    """
    The inverse of L{command_to_dict}.

    @raise ValueError: an unknown operation or malformed fields.
    """
    fields = dict(data)
    op = fields.pop("op", None)
    cls = _COMMANDS.get(op)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unrecognized command operation: {op}")
    context = fields.get("context")
    try:
        if context is not None:
            if not isinstance(context, Mapping):
                raise TypeError("context must be an object")
            fields["context"] = AuditContext(**context)
        return cls(**fields)
    except TypeError as e:
        raise ValueError(f"malformed {op} command: {e}") from None
