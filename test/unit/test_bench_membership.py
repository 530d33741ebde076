"""
Tests for the readers of C{bench.membership} (the process run itself is a
benchmark, run by C{make bench}).
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from bench import all as bench_all
from bench import membership
from bench.all import Outcome, judge


def _round(bad: int = 0, refused: int = 0) -> dict:
    return {
        "add_s": 0.08, "add_vs_command": 12.0, "promote_s": 0.02, "remove_s": 0.006, "command_s": 0.006,
        "checks": 90, "checks_not_200": bad, "longest_gap_s": 0.0, "commands_refused": refused,
    }


class MembershipReaderTests(SynchronousTestCase):
    """
    L{membership.metrics} and its place in C{bench.all}.
    """

    def metrics(self, data):
        return {m.name: m for m in membership.metrics(data)[0]}, membership.metrics(data)[1]

    def test_clean(self):
        """
        Clean rounds meet the targets and give their latencies.
        """
        metrics, notes = self.metrics({"rounds": [_round(), _round()], "summary": {"commands_missing": 0}})
        self.assertEqual(notes, [])
        self.assertEqual(metrics["checks at the leader answered other than 200, per round"].verdict, "met")
        self.assertEqual(metrics["add a caught-up learner: request → committed answer"].values, (0.08, 0.08))

    def test_failed_round(self):
        """
        A round with a failed check is a miss, and its latencies are left
        out, with a note; a lost command is a miss.
        """
        data = {"rounds": [_round(), _round(bad=3)], "summary": {"commands_missing": 1}}
        metrics, notes = self.metrics(data)
        self.assertEqual(metrics["checks at the leader answered other than 200, per round"].verdict, "missed")
        self.assertEqual(metrics["acknowledged commands missing on a member at the end"].verdict, "missed")
        self.assertEqual(len(metrics["remove a member: request → committed answer"].values), 1)
        self.assertIn("round 2: 3 checks not 200", notes[0])

    def test_in_bench_all(self):
        """
        C{bench.all} runs it and judges its results.
        """
        bench = [b for b in bench_all.benchmarks() if b.key == "membership"][0]
        data = {"rounds": [_round()], "summary": {"commands_missing": 0}}
        section = judge(bench, list(bench.full), Outcome(0, "", json.dumps(data)))
        self.assertIsNone(section.error)
        self.assertIn("RaftJoin", bench.method(bench.full))
