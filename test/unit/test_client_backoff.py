"""
The wait policy (L{freno.client.backoff}): exponential backoff with full
jitter between C{poll} and C{cap}, C{Retry-After} honoured, the deadline
kept. Generated inputs; no sleeping.
"""

from __future__ import annotations

import random

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.client.backoff import Backoff, next_wait

POSITIVE = st.floats(0.001, 1000)


class BackoffTests(SynchronousTestCase):
    """
    L{Backoff} and L{next_wait}.
    """

    def test_ceiling_doubles_to_cap(self):
        """
        The ceiling doubles from C{poll} and stops at C{cap}.
        """
        policy = Backoff(0.5, 3)
        self.assertEqual([policy.ceiling(n) for n in range(1, 6)], [0.5, 1.0, 2.0, 3.0, 3.0])
        self.assertEqual(policy.ceiling(10_000), 3.0)

    def test_bad_policy(self):
        """
        C{poll} and C{cap} must be positive and finite, C{cap >= poll}.
        """
        for poll, cap in [(0, 1), (-1, 1), (1, 0.5), (float("nan"), 1), (1, float("inf")), (True, 2)]:
            self.assertRaises(ValueError, Backoff, poll, cap)

    @given(POSITIVE, POSITIVE, st.integers(1, 200), st.integers(0, 2**32))
    def test_delay_within_bounds(self, poll, extra, attempt, seed):
        """
        Every delay lies between C{poll} and the ceiling.
        """
        policy = Backoff(poll, poll + extra)
        delay = policy.delay(attempt, random.Random(seed))
        self.assertGreaterEqual(delay, poll)
        self.assertLessEqual(delay, policy.ceiling(attempt))

    @given(POSITIVE, st.integers(1, 50), st.floats(0, 10_000), st.integers(0, 2**32))
    def test_retry_after_respected(self, poll, attempt, retry_after, seed):
        """
        A delay is never shorter than the server's C{Retry-After}.
        """
        delay = Backoff(poll, poll * 4).delay(attempt, random.Random(seed), retry_after)
        self.assertGreaterEqual(delay, retry_after)

    def test_jitter_spreads(self):
        """
        Full jitter: many clients refused together come back spread over the
        whole interval.
        """
        rng = random.Random(7)
        delays = [Backoff(1, 10).delay(5, rng) for _ in range(1000)]
        self.assertLess(min(delays), 2)
        self.assertGreater(max(delays), 9)

    @given(POSITIVE, st.integers(1, 50), st.one_of(st.none(), st.floats(0, 100)),
           st.one_of(st.none(), st.floats(-10, 100)), st.integers(0, 2**32))
    def test_next_wait(self, poll, attempt, retry_after, remaining, seed):
        """
        L{next_wait} gives up when the deadline passed or C{Retry-After}
        reaches past it; otherwise it waits at least C{Retry-After} and at
        most until the deadline.
        """
        wait = next_wait(Backoff(poll, poll * 8), attempt, random.Random(seed), retry_after, remaining)
        if remaining is not None and (remaining <= 0 or (retry_after is not None and retry_after > remaining)):
            self.assertIsNone(wait)
            return
        self.assertIsNotNone(wait)
        if remaining is not None:
            self.assertLessEqual(wait, remaining)
        if retry_after is not None:
            self.assertGreaterEqual(wait, min(retry_after, remaining if remaining is not None else retry_after))
        self.assertGreater(wait, 0)
