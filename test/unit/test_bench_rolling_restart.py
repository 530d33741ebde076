"""
Tests for L{bench.rolling_restart}'s bookkeeping (no processes): a phase's
figures from its answers, and the reader C{bench.all} uses.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench.rolling_restart import Answer, RollingRun, metrics, phase_of


class PhaseTests(SynchronousTestCase):
    """
    L{phase_of}.
    """

    def test_counts_and_gap(self):
        """
        Non-200 answers are counted by status with their start times, and
        the longest gap is the longest time between the ends of two 200s.
        """
        answers = [
            Answer(10.0, 10.01, 200),
            Answer(10.1, 10.11, 503),
            Answer(10.2, 10.21, 0),
            Answer(10.5, 10.51, 200),
            Answer(10.6, 10.61, 200),
        ]
        phase = phase_of(answers, 2.0, start=10.0)
        self.assertEqual(phase.requests, 5)
        self.assertEqual(phase.non_200, 2)
        self.assertEqual(phase.statuses, {"503": 1, "0": 1})
        self.assertEqual(phase.non_200_at, [0.1, 0.2])
        self.assertAlmostEqual(phase.longest_gap, 0.5)

    def test_empty(self):
        """
        No answers: no gap, nothing counted.
        """
        phase = phase_of([], 1.0)
        self.assertEqual((phase.requests, phase.non_200, phase.longest_gap), (0, 0, 0.0))


class MetricsTests(SynchronousTestCase):
    """
    The reader of the C{--json} file.
    """

    def test_judged_on_every_round(self):
        """
        The non-200 count of every rolling restart is judged against 0, so
        one bad round is a miss; statuses are summed in the notes.
        """
        run = RollingRun(200.0)
        run.rolling = [phase_of([Answer(0, 0.1, 200)], 5.0), phase_of([Answer(0, 0.1, 503)], 5.0)]
        run.sigkill = [phase_of([Answer(0, 0.1, 503), Answer(0.2, 0.3, 200)], 2.0)]
        out, notes = metrics(run.to_json())
        first = out[0]
        self.assertTrue(first.every)
        self.assertEqual(first.values, (0, 1))
        self.assertFalse(all(first.target.met(v) for v in first.values))
        self.assertIn("503: 1", notes[0])
        self.assertEqual(len(out), 5)

    def test_no_round(self):
        """
        A run with no completed rolling restart cannot be read.
        """
        self.assertRaises(ValueError, metrics, RollingRun(200.0).to_json())
