"""
Durations (C{"1h30m"}) and C{Retry-After} in L{freno.client.durations},
with generated inputs.
"""

from __future__ import annotations

import email.utils
import math

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.client.durations import (
    MAX_TTL_SECONDS,
    DurationError,
    format_duration,
    parse_duration,
    parse_retry_after,
    parse_ttl,
)

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class ParseDurationTests(SynchronousTestCase):
    """
    L{parse_duration} and L{parse_ttl}.
    """

    def test_examples(self):
        """
        The contract's examples read as the seconds they stand for.
        """
        for text, seconds in [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800),
                              ("1h30m", 5400), ("1.5h", 5400), (" 45s ", 45), ("0s", 0),
                              ("30m1h", 5400), ("30", 30), ("2.5", 2.5)]:
            self.assertEqual(parse_duration(text), seconds, text)

    def test_numbers(self):
        """
        Numbers are seconds.
        """
        self.assertEqual(parse_duration(5), 5.0)
        self.assertEqual(parse_duration(0.25), 0.25)

    def test_bad(self):
        """
        Anything else is refused with a message naming the field and saying
        how to write a duration.
        """
        for text in ["", "m", "1x", "-5m", "1h-30m", "5 m", "1e3s", "nan", "inf", "1h 30m", "٣m",
                     "1,5h", "++1s", True, None, [1], float("nan"), -1, float("inf")]:
            with self.assertRaises(DurationError, msg=repr(text)) as caught:
                parse_duration(text, what="ttl")
            self.assertIn("ttl", str(caught.exception))

    def test_bare_number_needs_unit(self):
        """
        With C{bare_seconds=False} a number without a unit is refused, and the
        message proposes minutes and seconds.
        """
        with self.assertRaises(DurationError) as caught:
            parse_duration("30", bare_seconds=False, what="ttl")
        self.assertIn("30m", str(caught.exception))
        self.assertIn("30s", str(caught.exception))

    def test_range(self):
        """
        100 years is the most; beyond (and overflowing) is refused.
        """
        self.assertEqual(parse_duration("36500d"), MAX_TTL_SECONDS)
        for text in ["36501d", "9" * 400 + "s", 1e300]:
            with self.assertRaises(DurationError):
                parse_duration(text)

    def test_ttl(self):
        """
        A TTL is positive; L{None} is no TTL.
        """
        self.assertIsNone(parse_ttl(None))
        self.assertEqual(parse_ttl("30m"), 1800)
        for text in ["0s", 0, "0"]:
            with self.assertRaises(DurationError):
                parse_ttl(text)

    @given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from("dhms")), min_size=1, max_size=6))
    def test_sums_parts(self, parts):
        """
        A generated duration reads as the sum of its parts, or is refused as
        too long.
        """
        text = "".join(f"{n}{u}" for n, u in parts)
        expected = sum(n * UNITS[u] for n, u in parts)
        if expected > MAX_TTL_SECONDS:
            self.assertRaises(DurationError, parse_duration, text)
        else:
            self.assertEqual(parse_duration(text), expected)

    @given(st.text(max_size=20))
    def test_any_text(self, text):
        """
        Any text is either a non-negative finite duration or a
        L{DurationError}; nothing else escapes.
        """
        try:
            seconds = parse_duration(text)
        except DurationError:
            return
        self.assertTrue(math.isfinite(seconds) and 0 <= seconds <= MAX_TTL_SECONDS)

    @given(st.floats(0, MAX_TTL_SECONDS))
    def test_format_round_trip(self, seconds):
        """
        L{format_duration} reads back to within a millisecond.
        """
        self.assertLessEqual(abs(parse_duration(format_duration(seconds)) - seconds), 0.001)

    def test_format_examples(self):
        """
        Short human forms.
        """
        self.assertEqual(format_duration(5400), "1h30m")
        self.assertEqual(format_duration(1.5), "1.5s")
        self.assertEqual(format_duration(0), "0s")
        self.assertEqual(format_duration(90.25), "1m30.25s")
        self.assertEqual(format_duration(604800), "7d")
        self.assertRaises(DurationError, format_duration, -1)


class RetryAfterTests(SynchronousTestCase):
    """
    L{parse_retry_after}.
    """

    def test_seconds(self):
        """
        Whole seconds; the precise millisecond header wins when readable.
        """
        self.assertEqual(parse_retry_after("3"), 3.0)
        self.assertEqual(parse_retry_after("3", "2500"), 2.5)
        self.assertEqual(parse_retry_after("3", "garbage"), 3.0)
        self.assertEqual(parse_retry_after(None, "1200"), 1.2)
        self.assertIsNone(parse_retry_after(None))

    def test_date(self):
        """
        An HTTP date is read against C{now}; one in the past means 0.
        """
        now = 1_800_000_000.0
        date = email.utils.formatdate(now + 30, usegmt=True)
        self.assertEqual(parse_retry_after(date, now=now), 30.0)
        self.assertEqual(parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now), 0.0)
        self.assertIsNone(parse_retry_after(date))

    def test_garbage_ignored(self):
        """
        Unreadable values are ignored (L{None}), never trusted.
        """
        for text in ["", "-1", "soon", "1.5", "Mon, 99 Foo 2026", "١٢"]:
            self.assertIsNone(parse_retry_after(text, now=0.0), text)

    @given(st.one_of(st.none(), st.text(max_size=40)), st.one_of(st.none(), st.text(max_size=20)))
    def test_any_header(self, retry_after, retry_after_ms):
        """
        Any header values give L{None} or a finite wait within 100 years.
        """
        seconds = parse_retry_after(retry_after, retry_after_ms, now=1_800_000_000.0)
        if seconds is not None:
            self.assertTrue(math.isfinite(seconds) and 0 <= seconds <= MAX_TTL_SECONDS)

    @given(st.integers(0, 10**30))
    def test_any_integer(self, n):
        """
        Any number of seconds is read, capped at 100 years.
        """
        self.assertEqual(parse_retry_after(str(n)), min(float(n), MAX_TTL_SECONDS))
