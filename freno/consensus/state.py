# -*- test-case-name: test.unit.test_consensus_state -*-
"""
The replicated state machine: throttled apps and skipped hosts.

Commands are small attrs records; L{ThrottleState.apply} applies one. Apply is
pure and deterministic: it never reads a clock, so every node that applies the
same log reaches the same state. Expiry is an absolute time carried in the
command. An entry whose expiry has passed counts as absent for every reader,
and L{ThrottleState.purge_expired} removes such entries.

Semantics of throttle (freno's C{Throttler.ThrottleApp}, §1.4):

    - no expiry (C{expire_at is None}) makes the entry permanent;
    - a ratio of C{None} keeps an existing entry's ratio, or gives 1.0;
    - an expiry in the past therefore acts as an unthrottle.

A snapshot is the complete state (freno's were empty, its bug B5).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Union

import attr


@attr.s(frozen=True, auto_attribs=True, slots=True)
class AppThrottle:
    """
    One throttled app.

    @ivar expire_at: POSIX seconds, or C{None} for "never expires".
    @ivar ratio: the probability in [0, 1] that a check is refused.
    """

    expire_at: Optional[float]
    ratio: float

    def active(self, now: float) -> bool:
        """
        Whether the throttle is still in force at C{now}.
        """
        return self.expire_at is None or self.expire_at > now


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


class CommandMethods:
    """
    The four command methods of
    L{freno.consensus.interface.IConsensusService}, each building its
    L{Command} record and handing it to C{self._submit(command)}, which the
    class mixing this in provides (it returns the command's Deferred).
    """

    def _submit(self, command: Command):
        raise NotImplementedError()

    def throttle_app(self, app_key: str, expire_at: Optional[float], ratio: Optional[float]):
        """
        See L{freno.consensus.interface.IConsensusService.throttle_app}.
        """
        return self._submit(ThrottleApp(app_key, expire_at, ratio))

    def unthrottle_app(self, app_key: str):
        """
        See L{freno.consensus.interface.IConsensusService.unthrottle_app}.
        """
        return self._submit(UnthrottleApp(app_key))

    def skip_host(self, hostname: str, expire_at: float):
        """
        See L{freno.consensus.interface.IConsensusService.skip_host}.
        """
        return self._submit(SkipHost(hostname, expire_at))

    def recover_host(self, hostname: str):
        """
        See L{freno.consensus.interface.IConsensusService.recover_host}.
        """
        return self._submit(RecoverHost(hostname))


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


@attr.s(auto_attribs=True)
class ThrottleState:
    """
    Throttled apps and skipped hosts, changed only by L{apply}.
    """

    apps: Dict[str, AppThrottle] = attr.ib(factory=dict)
    skipped: Dict[str, float] = attr.ib(factory=dict)

    def apply(self, command: Command) -> None:
        """
        Apply one command. Deterministic: no clock, no randomness.
        """
        if isinstance(command, ThrottleApp):
            existing = self.apps.get(command.key)
            if command.ratio is not None:
                ratio = command.ratio
            elif existing is not None:
                ratio = existing.ratio
            else:
                ratio = 1.0
            self.apps[command.key] = AppThrottle(command.expire_at, ratio)
        elif isinstance(command, UnthrottleApp):
            self.apps.pop(command.key, None)
        elif isinstance(command, SkipHost):
            self.skipped[command.hostname] = command.expire_at
        elif isinstance(command, RecoverHost):
            self.skipped.pop(command.hostname, None)
        else:
            raise TypeError(f"not a command: {command!r}")

    def purge_expired(self, now: float) -> None:
        """
        Drop entries whose expiry is at or before C{now}. Local housekeeping:
        readers already treat such entries as absent.
        """
        for key in [k for k, a in self.apps.items() if not a.active(now)]:
            del self.apps[key]
        for host in [h for h, t in self.skipped.items() if t <= now]:
            del self.skipped[host]

    def snapshot(self) -> Dict[str, Any]:
        """
        The complete state as JSON-able data.
        """
        return {
            "throttledApps": {
                key: {"ExpireAt": a.expire_at, "Ratio": a.ratio}
                for key, a in self.apps.items()
            },
            "skippedHosts": dict(self.skipped),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """
        Replace the whole state with a L{snapshot}.
        """
        self.apps = {
            key: AppThrottle(
                None if v["ExpireAt"] is None else float(v["ExpireAt"]),
                float(v["Ratio"]),
            )
            for key, v in data.get("throttledApps", {}).items()
        }
        self.skipped = {
            host: float(t) for host, t in data.get("skippedHosts", {}).items()
        }
