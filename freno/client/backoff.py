# -*- test-case-name: test.unit.test_client_backoff -*-
"""
How long L{wait_until_allowed<freno.client.FrenoClient.wait_until_allowed>}
waits between two checks: exponential backoff with full jitter between
C{poll} and C{cap}, never sooner than the server's C{Retry-After}, and never
past the caller's deadline.

Pure: the random source is passed in, and nothing here reads a clock or
sleeps.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Optional


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be a finite number above 0, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Backoff:
    """
    The wait policy.

    @ivar poll: the shortest wait between two checks, in seconds.
    @ivar cap: the longest wait the backoff itself picks (a server's
        C{Retry-After} may ask for more), in seconds.
    """

    poll: float = 1.0
    cap: float = 10.0

    def __post_init__(self) -> None:
        _positive("poll", self.poll)
        _positive("cap", self.cap)
        if self.cap < self.poll:
            raise ValueError(f"cap ({self.cap}) must be at least poll ({self.poll})")

    def ceiling(self, attempt: int) -> float:
        """
        The longest wait after the C{attempt}-th refusal (1 for the first):
        C{poll * 2 ** (attempt - 1)}, at most C{cap}.
        """
        exponent = max(0, attempt - 1)
        if exponent >= 64:
            return self.cap
        return min(self.cap, self.poll * (2 ** exponent))

    def delay(
        self,
        attempt: int,
        rng: random.Random,
        retry_after: Optional[float] = None,
    ) -> float:
        """
        The wait after the C{attempt}-th refusal: drawn uniformly between
        C{poll} and L{ceiling} (full jitter, so that many clients refused at
        the same moment do not come back together), and at least
        C{retry_after}.
        """
        wait = rng.uniform(self.poll, self.ceiling(attempt))
        if retry_after is not None and retry_after > wait:
            wait = retry_after
        return wait


def next_wait(
    policy: Backoff,
    attempt: int,
    rng: random.Random,
    retry_after: Optional[float],
    remaining: Optional[float],
) -> Optional[float]:
    """
    How long to sleep before the next check, or L{None} to give up now.

    @param remaining: seconds left before the caller's deadline (L{None}:
        no deadline).
    @return: the policy's delay, shortened to end at the deadline (one last
        check is made there); L{None} when the deadline has passed, or when
        the server's C{Retry-After} reaches beyond it (asking again earlier
        would ignore the server, and waiting would only end in a refusal).
    """
    if remaining is not None:
        if remaining <= 0:
            return None
        if retry_after is not None and retry_after > remaining:
            return None
    wait = policy.delay(attempt, rng, retry_after)
    if remaining is not None and wait > remaining:
        wait = remaining
    return wait
