"""
Tests for L{bench.check_instructions} (without valgrind: its parsing and
the in-memory request loop it measures).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench.check_instructions import KINDS, REQUESTS, parse_total, run_requests


class CheckInstructionsTests(SynchronousTestCase):
    """
    L{parse_total} and L{run_requests}.
    """

    def test_parse_total(self):
        """
        The total comes from callgrind's C{summary:} (or C{totals:}) line.
        """
        self.assertEqual(parse_total(b"events: Ir\nsummary: 123456\n"), 123456)
        self.assertEqual(parse_total(b"events: Ir\ntotals: 42\n"), 42)
        self.assertIsNone(parse_total(b"events: Ir\n"))

    def test_every_case_answers(self):
        """
        Every case answers every request on one kept-alive connection; the
        fast and plain freno paths write the same number of bytes.
        """
        for method in REQUESTS:
            written = {kind: run_requests(kind, method, 3) for kind in KINDS}
            self.assertEqual(written["fast"], written["plain"], method)
            self.assertGreater(written["bare"], 0)
