# -*- test-case-name: test.unit.test_consensus_state,test.unit.test_consensus_local,test.unit.test_consensus_mysql -*-
"""
The replicated commands: small attrs records (L{ThrottleApp},
L{UnthrottleApp}, L{SkipHost}, L{RecoverHost}), their validation, their plain
dict form for journals and the wire, and L{CommandMethods}, the one command
path every consensus backend shares.

A command goes the same way on every backend: the interface method
(C{throttle_app}, ...) builds its record, L{validate} checks it (here and
nowhere else), and the backend's C{_submit} commits it (raft: the log; MySQL:
the tables; local: at once). An invalid command fails with L{InvalidCommand}
before it reaches any backend, so nothing changes anywhere.
"""

from __future__ import annotations

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


@attr.s(frozen=True, auto_attribs=True, slots=True)
class ThrottleApp:
    """
    Throttle C{key} (C{app} or C{app/store}).
    """

    key: str
    expire_at: Optional[float]
    ratio: Optional[float]


@attr.s(frozen=True, auto_attribs=True, slots=True)
class UnthrottleApp:
    """
    Remove C{key}'s throttle.
    """

    key: str


@attr.s(frozen=True, auto_attribs=True, slots=True)
class SkipHost:
    """
    Skip C{hostname} until C{expire_at}.
    """

    hostname: str
    expire_at: float


@attr.s(frozen=True, auto_attribs=True, slots=True)
class RecoverHost:
    """
    Stop skipping C{hostname}.
    """

    hostname: str


Command = Union[ThrottleApp, UnthrottleApp, SkipHost, RecoverHost]

_COMMANDS = {
    "throttle": ThrottleApp,
    "unthrottle": UnthrottleApp,
    "skip": SkipHost,
    "recover": RecoverHost,
}
_OPS = {cls: op for op, cls in _COMMANDS.items()}


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


def validate(command: Command) -> None:
    """
    Check C{command}'s fields: names non-empty and at most
    L{MAX_KEY_LENGTH} characters, expiries finite, ratios in [0, 1].

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
    else:
        raise InvalidCommand("command", f"not a command: {command!r}")


class CommandMethods:
    """
    The four command methods of
    L{freno.consensus.interface.IConsensusService}: each builds its
    L{Command} record, L{validate}s it and hands it to
    C{self._submit(command)}, which the class mixing this in provides (it
    returns the command's Deferred). An invalid command gives a Deferred that
    has already failed with L{InvalidCommand}.
    """

    def _submit(self, command: Command):
        raise NotImplementedError()

    def _validated(self, command: Command):
        try:
            validate(command)
        except InvalidCommand:
            return fail()
        return self._submit(command)

    def throttle_app(self, app_key: str, expire_at: Optional[float], ratio: Optional[float]):
        """
        See L{freno.consensus.interface.IConsensusService.throttle_app}.
        """
        return self._validated(ThrottleApp(app_key, expire_at, ratio))

    def unthrottle_app(self, app_key: str):
        """
        See L{freno.consensus.interface.IConsensusService.unthrottle_app}.
        """
        return self._validated(UnthrottleApp(app_key))

    def skip_host(self, hostname: str, expire_at: float):
        """
        See L{freno.consensus.interface.IConsensusService.skip_host}.
        """
        return self._validated(SkipHost(hostname, expire_at))

    def recover_host(self, hostname: str):
        """
        See L{freno.consensus.interface.IConsensusService.recover_host}.
        """
        return self._validated(RecoverHost(hostname))


def command_to_dict(command: Command) -> Dict[str, Any]:
    """
    A plain, JSON-able form of C{command} (for journals and the wire).
    """
    data = attr.asdict(command)
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
    try:
        return cls(**fields)
    except TypeError as e:
        raise ValueError(f"malformed {op} command: {e}") from None


