"""
The reading of L{bench.commit_latency}'s results, on fixed inputs (no
benchmark is run here).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench import all as bench_all
from bench import commit_latency


def rows(p50s, p99=9.0):
    return [{"p50_ms": v, "p99_ms": p99} for v in p50s]


DATA = {
    "commands": 200,
    "disk": [
        {"fdatasync_p50_ms": 0.2, "fdatasync_p99_ms": 2.0, "msync_p50_ms": 0.3, "msync_p99_ms": 1.0,
         "replace_p50_ms": 0.7, "replace_p99_ms": 3.0}
    ] * 3,
    "processes": [{"p50_ms": v, "p99_ms": 12.0, "read_p50_ms": 0.8, "load": 1.5} for v in (3.0, 4.0, 6.0)],
    "inprocess": {
        "3 sync": rows([2.0, 3.0, 4.0]),
        "3 nosync": rows([1.0, 1.0, 2.0]),
        "1 sync": rows([0.4, 0.5, 0.6]),
        "1 nosync": rows([0.1, 0.1, 0.1]),
    },
}


class MetricsTests(SynchronousTestCase):
    """
    L{commit_latency.metrics} turns the C{--json} figures into report rows.
    """

    def by_name(self):
        metrics, notes = commit_latency.metrics(DATA)
        return {m.name: m for m in metrics}, notes

    def test_target_on_the_processes(self):
        """
        The 5 ms target applies to the median of the per-round p50s of the
        3-process group.
        """
        m, notes = self.by_name()
        command = m["3 processes: command on the leader over HTTP, p50"]
        self.assertEqual(command.values, (3.0, 4.0, 6.0))
        self.assertEqual(command.verdict, "met")
        self.assertIn("200 sequential commands", notes[0])
        self.assertEqual(m["machine load average (1 min) at the round"].values, (1.5, 1.5, 1.5))

    def test_ratio_per_round(self):
        """
        The cost of syncing is the per-round ratio syncing / not syncing.
        """
        m, _ = self.by_name()
        ratio = m["in-process, 3 members: p50 syncing / not syncing (paired rounds)"]
        self.assertEqual(ratio.values, (2.0, 3.0, 2.0))
        self.assertEqual(m["in-process, 3 members, syncing: commit p50"].verdict, "met")
        self.assertIsNone(m["in-process, 1 member, syncing: commit p50"].target)

    def test_missed(self):
        """
        A slow median is a miss.
        """
        slow = dict(DATA, processes=[{"p50_ms": 7.0, "p99_ms": 20.0, "read_p50_ms": 1.0}])
        metrics, _ = commit_latency.metrics(slow)
        command = [x for x in metrics if x.name.startswith("3 processes: command") and x.name.endswith("p50")][0]
        self.assertEqual(command.verdict, "missed")

    def test_incomplete_results_are_an_error(self):
        """
        Results without a part raise (C{bench.all} reports the benchmark as
        failed, not a number).
        """
        self.assertRaises(KeyError, commit_latency.metrics, {"commands": 1, "disk": []})

    def test_registered(self):
        """
        C{make bench} runs it, with a data directory under its work
        directory, and the method names the rounds.
        """
        bench = [b for b in bench_all.benchmarks() if b.key == "commit"][0]
        self.assertEqual(bench.module, "bench.commit_latency")
        self.assertTrue(bench.takes_workdir)
        self.assertIn("10 rounds", bench.method(bench.full))
        self.assertIn("1 rounds", bench.method(bench.quick))

    def test_percentiles(self):
        """
        p50 and p99 in milliseconds.
        """
        p = commit_latency.percentiles([i / 1000.0 for i in range(1, 101)])
        self.assertAlmostEqual(p["p50_ms"], 50.5)
        self.assertAlmostEqual(p["p99_ms"], 99.0)
