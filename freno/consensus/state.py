# -*- test-case-name: test.unit.test_consensus_state,test.unit.test_names -*-
"""
The replicated state machine: throttled apps and skipped hosts.

Commands are the small attrs records of L{freno.consensus.commands};
L{ThrottleState.apply} applies one. Apply is
pure and deterministic: it never reads a clock, so every node that applies the
same log reaches the same state. Expiry is an absolute time carried in the
command. An entry whose expiry has passed counts as absent for every reader,
and L{ThrottleState.purge_expired} removes such entries.

Semantics of throttle (freno's C{Throttler.ThrottleApp}; docs/decisions.md D6):

    - no expiry (C{expire_at is None}) makes the entry permanent;
    - a ratio of C{None} keeps an existing entry's ratio, or gives 1.0;
    - an expiry in the past therefore acts as an unthrottle.

A snapshot is the complete state (freno's were empty; docs/decisions.md D29).

Bounds (names of any length are accepted by the API, as in freno, so the
state bounds what it keeps; docs/decisions.md, D48):

    - a throttled-app key or skipped-host name is at most
      L{freno.consensus.commands.MAX_KEY_LENGTH} characters: every command is
      validated against it before it reaches any backend, and the raft
      machine validates each entry it applies, the same on every node;
    - at most L{MAX_ENTRIES} active throttled apps and as many active
      skipped hosts, whose names hold at most L{MAX_KEY_CHARACTERS}
      characters per map: L{room_problem} says why a new key would not fit,
      and L{freno.throttle.checker.Throttler} refuses such a command with a
      400 naming the bound before it reaches consensus. Only active entries
      count, so expired ones (which stay in the raft state, D35) never block
      new commands; these bounds need a clock, which C{apply} must not read,
      so C{apply} does not enforce them.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

import attr

from freno.consensus.commands import (
    MAX_KEY_LENGTH,
    Command,
    RecoverHost,
    SkipHost,
    ThrottleApp,
    UnthrottleApp,
)


#: The most active throttled apps, and the most active skipped hosts.
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
    """

    expire_at: Optional[float]
    ratio: float

    def active(self, now: float) -> bool:
        """
        Whether the throttle is still in force at C{now}.
        """
        return self.expire_at is None or self.expire_at > now


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
