# -*- test-case-name: test.unit.test_client_durations -*-
"""
Durations as people write them (C{"90s"}, C{"30m"}, C{"1h30m"}, C{"7d"}) and
as servers send them (C{Retry-After}, C{X-Freno-Retry-After-Ms}).

The grammar is the REST API's (C{docs/api.md}): one or more C{<number><unit>}
parts, units C{d h m s}, decimals allowed (C{"1.5h"}), parts added up. Pure
functions of their arguments; the standard library only.
"""

from __future__ import annotations

import email.utils
import math
import re
from typing import Optional, Union

#: The longest TTL the REST API accepts: 100 years, in seconds.
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600.0

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([dhms])")
_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[dhms])+\Z")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?\Z")

#: How a duration is written, for error messages.
DURATION_HELP = 'a duration such as "90s", "30m", "2h", "7d" or "1h30m"'


class DurationError(ValueError):
    """
    A duration that cannot be read, or is out of range; the message says
    which and how to write one.
    """


def parse_duration(
    text: Union[str, int, float],
    bare_seconds: bool = True,
    what: str = "duration",
) -> float:
    """
    The number of seconds C{text} stands for.

    @param text: a duration string (C{"1h30m"}), or a number of seconds.
    @param bare_seconds: whether a string without a unit (C{"30"}) is read as
        seconds; when false it is refused, naming the units (for TTLs, where
        freno's own routes count minutes and a bare number is ambiguous).
    @param what: the name used in error messages (C{"ttl"}).
    @raise DurationError: not a duration, negative, not finite, or above
        100 years.
    """
    if isinstance(text, bool):
        raise DurationError(f"{what}: must be {DURATION_HELP}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    elif isinstance(text, str):
        stripped = text.strip()
        if _NUMBER.match(stripped):
            if not bare_seconds:
                raise DurationError(
                    f"{what}: add a unit, e.g. {stripped}m for minutes or {stripped}s for seconds"
                )
            seconds = float(stripped)
        elif _DURATION.match(stripped):
            try:
                seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(stripped))
            except OverflowError:  # pragma: no cover - float() gives inf instead
                seconds = math.inf
        else:
            raise DurationError(f"{what}: must be {DURATION_HELP}; got {text[:40]!r}")
    else:
        raise DurationError(f"{what}: must be {DURATION_HELP}")
    if math.isnan(seconds) or seconds < 0:
        raise DurationError(f"{what}: must not be negative")
    if not math.isfinite(seconds) or seconds > MAX_TTL_SECONDS:
        raise DurationError(f"{what}: must be at most 100 years")
    return seconds


def parse_ttl(text: Union[str, int, float, None], bare_seconds: bool = True) -> Optional[float]:
    """
    A TTL in seconds, or L{None} (no TTL) for L{None}.

    @raise DurationError: as L{parse_duration}, and for zero (a TTL must be
        positive; leave it out for "permanent").
    """
    if text is None:
        return None
    seconds = parse_duration(text, bare_seconds=bare_seconds, what="ttl")
    if seconds <= 0:
        raise DurationError("ttl: must be positive (leave it out for no expiry)")
    return seconds


def format_duration(seconds: float) -> str:
    """
    A short human form of C{seconds}: C{"1h30m"}, C{"45s"}, C{"2.5s"},
    C{"7d"}. L{parse_duration} reads it back to within a millisecond.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise DurationError(f"duration: must be a finite number >= 0, got {seconds!r}")
    whole = int(seconds)
    fraction = seconds - whole
    if whole < 60 and fraction:
        return f"{round(seconds, 3):g}s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = int(_UNITS[unit])
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    if fraction >= 0.0005:
        if parts and parts[-1].endswith("s"):
            last = int(parts.pop()[:-1])
            parts.append(f"{round(last + fraction, 3):g}s")
        else:
            parts.append(f"{round(fraction, 3):g}s")
    return "".join(parts) or "0s"


def parse_retry_after(
    retry_after: Optional[str],
    retry_after_ms: Optional[str] = None,
    now: Optional[float] = None,
) -> Optional[float]:
    """
    How many seconds a server asked us to wait, or L{None} when it did not
    say (or said something unreadable, which is ignored rather than trusted).

    @param retry_after: the C{Retry-After} header: whole seconds, or an
        HTTP date (RFC 9110), which needs C{now}.
    @param retry_after_ms: freno's C{X-Freno-Retry-After-Ms}: the precise
        value in milliseconds; preferred when readable.
    @param now: the wall-clock time (POSIX seconds), for an HTTP date.
    @return: seconds, at least 0 and at most 100 years.
    """
    if retry_after_ms is not None:
        text = retry_after_ms.strip()
        if _NUMBER.match(text):
            seconds = float(text) / 1000.0
            if math.isfinite(seconds) and seconds <= MAX_TTL_SECONDS:
                return seconds
    if retry_after is None:
        return None
    text = retry_after.strip()
    if text.isascii() and text.isdigit():
        seconds = float(int(text[:20]))
        return min(seconds, MAX_TTL_SECONDS)
    if now is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    try:
        return min(max(0.0, when.timestamp() - now), MAX_TTL_SECONDS)
    except (OverflowError, OSError, ValueError):
        return None
