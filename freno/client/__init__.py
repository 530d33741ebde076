"""
A client for freno, on the standard library only (C{docs/client.md}).

    from freno.client import FrenoClient
    freno = FrenoClient("http://freno1:8087,http://freno2:8087")
    result = freno.check("archiver", "main")   # .allowed .status .value .threshold .reason .data_age_ms
    freno.wait_until_allowed("archiver", "main", max_wait=600)   # or raises NotAllowed

Modules:

- L{freno.client.client}: L{FrenoClient}, the blocking client;
- L{freno.client.tx}: the same on Twisted and treq, returning Deferreds (the
  one module here that needs more than the standard library);
- L{freno.client.cli}: C{freno-cli};
- L{freno.client.engine}: the logic both clients share (failover, fail
  closed or open, the wait loop), free of I/O;
- L{freno.client.routes}, L{freno.client.answers}, L{freno.client.control}:
  what is sent and how answers are read;
- L{freno.client.backoff}, L{freno.client.durations}: waiting, and
  durations such as C{"1h30m"};
- L{freno.client.http}: the keep-alive transport on C{http.client};
- L{freno.client.fake}: an in-memory freno and transport for tests.

How a check is read:

- C{200}: allowed. C{429} (lag above threshold) and C{417} (the app is
  throttled, or a low-priority check was refused): throttled. Anything else
  is an error: C{404} (no such cluster), C{500} (not the leader, no metric
  yet, a stale metric, a probe error), C{400}, and C{0} for no answer.
  Nothing but a 200 means "write", unless the client fails open.
- The client asks with C{GET}, not C{HEAD}: every freno's GET body carries
  C{Value}, C{Threshold} and C{Message} (so the client knows a follower's
  C{not leader} from other 500s, and reports value and threshold from any
  freno). Newer servers add C{X-Freno-Reason}, C{X-Freno-Data-Age-Ms},
  C{Retry-After} and friends, which the client prefers when present.
"""

from freno.client.client import FrenoClient
from freno.client.durations import DurationError, format_duration, parse_duration
from freno.client.result import (
    ALLOWED,
    ERROR,
    THROTTLED,
    CheckResult,
    ControlResult,
    FrenoAPIError,
    FrenoError,
    FrenoUnavailable,
    NotAllowed,
    RouteNotServed,
    Skip,
    Throttle,
)

__all__ = [
    "ALLOWED", "ERROR", "THROTTLED", "CheckResult", "ControlResult", "DurationError",
    "FrenoAPIError", "FrenoClient", "FrenoError", "FrenoUnavailable", "NotAllowed",
    "RouteNotServed", "Skip", "Throttle", "format_duration", "parse_duration",
]
