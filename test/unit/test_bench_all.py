"""
The benchmark report (L{bench.report}) and the reading of each benchmark's
results (L{bench.all}), on fixed inputs. No benchmark is run here.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench import all as bench_all
from bench.report import Metric, Section, Target, render, render_summary, render_table, spread


class SpreadTests(SynchronousTestCase):
    """
    L{spread} summarises samples.
    """

    def test_odd(self) -> None:
        """
        Median, min and max of an odd count; no IQR below 4 samples.
        """
        s = spread([3.0, 1.0, 2.0])
        self.assertEqual((s.n, s.median, s.low, s.high), (3, 2.0, 1.0, 3.0))
        self.assertIsNone(s.q1)
        self.assertIsNone(s.q3)

    def test_even_with_iqr(self) -> None:
        """
        The median of an even count is the mean of the middle two; from 4
        samples on the quartiles are given (inclusive method).
        """
        s = spread([4, 1, 3, 2, 5, 6])
        self.assertEqual(s.median, 3.5)
        self.assertEqual((s.low, s.high), (1.0, 6.0))
        self.assertEqual((s.q1, s.q3), (2.25, 4.75))

    def test_empty(self) -> None:
        """
        No samples, no summary.
        """
        self.assertIsNone(spread([]))


class VerdictTests(SynchronousTestCase):
    """
    A metric's verdict compares its median with its target.
    """

    def test_upper_bound(self) -> None:
        """
        C{<=} is met at and below the bound, missed above, judged on the
        median (not the max).
        """
        t = Target("<=", 3.0)
        self.assertEqual(Metric("w", "s", [1.0, 3.0, 9.0], t).verdict, "met")
        self.assertEqual(Metric("w", "s", [2.0, 3.5, 4.0], t).verdict, "missed")

    def test_strict_bounds(self) -> None:
        """
        C{<} and C{>} exclude the bound; C{>=} includes it.
        """
        self.assertEqual(Metric("p99", "ms", [10.0], Target("<", 10)).verdict, "missed")
        self.assertEqual(Metric("r", "", [0.70], Target(">=", 0.70)).verdict, "met")
        self.assertEqual(Metric("r", "", [0.70], Target(">", 0.70)).verdict, "missed")

    def test_no_target_no_data(self) -> None:
        """
        Without a target there is no verdict; without samples, "no data".
        """
        self.assertEqual(Metric("x", "s", [1.0]).verdict, "")
        self.assertEqual(Metric("x", "s", [], Target("<=", 1)).verdict, "no data")

    def test_bad_operator(self) -> None:
        """
        An unknown comparison is refused.
        """
        self.assertRaises(ValueError, Target, "=~", 1.0)


class RenderTests(SynchronousTestCase):
    """
    The markdown tables and document.
    """

    def test_table_row(self) -> None:
        """
        A row shows median, min – max, IQR, n, target and verdict with the
        metric's digits and unit.
        """
        m = Metric("window", "s", [0.5, 0.9, 1.0, 4.0], Target("<=", 3.0), digits=2, note="orig 10.6 s")
        row = render_table([m]).splitlines()[2]
        self.assertEqual(
            row,
            "| window | 0.95 s | 0.50 – 4.00 s | 0.80 – 1.75 s | 4 | ≤ 3.00 s | met | orig 10.6 s |",
        )

    def test_missed_and_empty_rows(self) -> None:
        """
        A missed target is bold; a metric without samples shows dashes and
        "no data"; percentages have no space before the sign; digits=0
        uses thousands separators.
        """
        table = render_table(
            [
                Metric("cpu", "%", [40.0, 50.0], Target("<=", 30), digits=1),
                Metric("none", "s", [], Target("<=", 1)),
                Metric("rps", "req/s", [12345.6], digits=0),
            ]
        ).splitlines()
        self.assertEqual(table[2], "| cpu | 45.0% | 40.0 – 50.0% | — | 2 | ≤ 30.0% | **missed** |  |")
        self.assertEqual(table[3], "| none | — | — | — | 0 | ≤ 1.00 s | **no data** |  |")
        self.assertEqual(table[4], "| rps | 12,346 req/s | 12,346 – 12,346 req/s | — | 1 |  |  |  |")

    def test_summary_lists_targets_and_failures(self) -> None:
        """
        The summary has one row per targeted metric, and a row for a
        benchmark that did not complete.
        """
        sections = [
            Section("a", "A", "cmd a", "how", [Metric("t", "s", [1.0], Target("<=", 2)), Metric("u", "s", [1.0])]),
            Section("b", "B", "cmd b", "how", error="boom"),
        ]
        rows = render_summary(sections).splitlines()[2:]
        self.assertEqual(rows, ["| A | t | 1.00 s | ≤ 2.00 s | met |", "| B | (did not complete) | — | | **failed** |"])

    def test_document(self) -> None:
        """
        The document names the command, says the machine is shared and
        noisy, lists the machine and both load averages, and gives each
        section its command, method, error, table and notes.
        """
        sections = [
            Section(
                "haproxy", "Failover through HAProxy", "python -m bench.haproxy_failover --rounds 3",
                "Kill the leader.", [Metric("window", "s", [1.0, 2.0, 3.0], Target("<=", 3.0))],
                ["12 requests"], seconds=42,
            ),
            Section("chaos", "Chaos run", "python -m bench.chaos", "Faults.", error="timed out after 900 s"),
        ]
        text = render(
            {"CPU": "Xeon", "cores (nproc)": "2"}, "1.00, 2.00, 3.00", "4.00, 5.00, 6.00",
            sections, "python -m bench.all", "2025-01-01 10:00 UTC", 600,
        )
        self.assertIn("Generated by `python -m bench.all` on 2025-01-01 10:00 UTC in 10.0 minutes", text)
        self.assertIn("shared and noisy", text)
        self.assertIn("| CPU | Xeon |", text)
        self.assertIn("| load average (1, 5, 15 min) at start | 1.00, 2.00, 3.00 |", text)
        self.assertIn("| load average (1, 5, 15 min) at end | 4.00, 5.00, 6.00 |", text)
        self.assertIn("## Failover through HAProxy", text)
        self.assertIn("Command: `python -m bench.haproxy_failover --rounds 3` (42 s).", text)
        self.assertIn("| window | 2.00 s | 1.00 – 3.00 s | — | 3 | ≤ 3.00 s | met |  |", text)
        self.assertIn("- 12 requests", text)
        self.assertIn("**This benchmark did not complete:**", text)
        self.assertIn("timed out after 900 s", text)
        self.assertTrue(text.endswith("\n") and not text.endswith("\n\n"))


def _by_name(metrics):
    return {m.name: m for m in metrics}


class ParseTests(SynchronousTestCase):
    """
    L{bench.all} turns each benchmark's output into metrics.
    """

    def test_check_ratio_per_round(self) -> None:
        """
        The ratio check/bare is computed per round, and the fixed-rate p99
        is judged against 10 ms.
        """
        def r(rps):
            return {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0}

        data = {
            "rounds": {
                "check GET": [r(800), r(900)], "bare GET": [r(1000), r(1000)],
                "check HEAD": [r(500), r(600)], "bare HEAD": [r(1000), r(1000)],
            },
            "fixed_rate": {"GET": [{"rps": 1990, "p50_ms": 3, "p99_ms": 12.0}, {"rps": 1990, "p50_ms": 3, "p99_ms": 8.0}, {"rps": 1990, "p50_ms": 3, "p99_ms": 11.0}]},
        }
        metrics, _ = bench_all.check_metrics(data)
        m = _by_name(metrics)
        self.assertEqual(m["GET ratio check / bare (paired rounds)"].values, (0.8, 0.9))
        self.assertEqual(m["GET ratio check / bare (paired rounds)"].verdict, "met")
        self.assertEqual(m["HEAD ratio check / bare (paired rounds)"].verdict, "missed")
        self.assertEqual(m["GET at 2,000 req/s: p99 latency"].verdict, "missed")

    def test_probe_stdout(self) -> None:
        """
        C{bench.probe}'s run and crossing lines become per-N metrics and
        crossing metrics; CPU per 1,000 probes/s is CPU / (probes/s / 1000).
        """
        stdout = (
            "pool 20 threads, switch interval 5 ms\n"
            "N=50 run 1 (load average 1.2): 1000 probes/s, CPU 20.0% of one core, reactor lag p50 "
            "0.10 ms p99 1.00 ms max 3.0 ms, errors 0\n"
            "N=50 run 2 (load average 1.3): 500 probes/s, CPU 20.0% of one core, reactor lag p50 "
            "0.10 ms p99 7.00 ms max 9.0 ms, errors 2\n"
            "lag visibility (1 crossings, 50 background hosts):\n"
            "  crossing 1: up agg 40.0 ms, 429 45.5 ms; down agg 10.0 ms, 200 12.0 ms\n"
        )
        metrics, _ = bench_all.probe_metrics(stdout)
        m = _by_name(metrics)
        self.assertEqual(m["50 hosts: CPU per 1,000 probes/s"].values, (20.0, 40.0))
        self.assertEqual(m["50 hosts: CPU per 1,000 probes/s"].verdict, "met")  # median 30
        self.assertEqual(m["50 hosts: reactor lag p99"].values, (1.0, 7.0))
        self.assertEqual(m["50 hosts: probe errors"].values, (0.0, 2.0))
        self.assertEqual(m["lag crosses threshold → /check 429"].values, (45.5,))
        self.assertEqual(m["lag crosses threshold → /check 429"].verdict, "met")

    def test_probe_unreadable(self) -> None:
        """
        Output without a run line is an error, not an empty section.
        """
        self.assertRaises(ValueError, bench_all.probe_metrics, "Traceback (most recent call last):\n")

    def test_haproxy(self) -> None:
        """
        The window is judged against 3 s, and any 200 from a non-leader
        misses its target of 0.
        """
        data = {
            "windows": [0.5, 0.7, 4.0], "errors": [0, 60, 10], "statuses": {"0": 1, "200": 90},
            "requests": 91, "non_leader_200": 1,
        }
        metrics, notes = bench_all.haproxy_metrics(data)
        m = _by_name(metrics)
        self.assertEqual(m["non-200 window through HAProxy (kill → first 200)"].verdict, "met")
        self.assertEqual(m["200s served by a non-leader (whole run)"].verdict, "missed")
        self.assertEqual(notes, ["91 client requests through HAProxy; answers by status: no answer: 1, 200: 90."])

    def test_failover_missing_kind(self) -> None:
        """
        A kind that was not run gives metrics without data, not an error.
        """
        metrics, _ = bench_all.failover_metrics({"kill": [{"leader_check": 0.5, "check": 0.6}]})
        m = _by_name(metrics)
        self.assertEqual(m["SIGKILL leader → /check 200 on the new leader"].verdict, "met")
        self.assertEqual(m["cold start of 3 nodes → first /check 200"].verdict, "no data")

    def test_chaos(self) -> None:
        """
        Violations and lost commands are judged against 0; failover times
        come per fault kind.
        """
        data = {
            "rounds": 2, "rounds_done": 2, "kills": 1, "freezes": 1, "elapsed": 7.6,
            "commands_sent": 10, "commands_acknowledged": 8, "missing_on_final_leader": 0,
            "missing_on_some_node": 0, "checks": {"200": 5}, "longest_check_overlap": 0.0,
            "longest_leader_overlap": 0.0,
            "failover_times": {"kill": {"leader_check": [0.4], "check": [0.5]}},
            "violations": ["overlap: x"],
        }
        metrics, notes = bench_all.chaos_metrics(data)
        m = _by_name(metrics)
        self.assertEqual(m["kill → /check 200 on another node"].values, (0.5,))
        self.assertEqual(m["violations (lost commands, 200s outside leadership)"].verdict, "missed")
        self.assertIn("violation: overlap: x", notes)

    def test_control(self) -> None:
        """
        The control figures: both delays judged against 1 s, the baseline
        and the load reported.
        """
        data = {
            "mysql": {
                "rounds": [{"delay_s": 0.2}, {"delay_s": 0.1}, {"delay_s": 1.5}],
                "baseline": [{"delay_s": 9.9}],
                "load": {"seconds": 20, "nodes": 2, "total_qps_per_node": 7.4, "change_counter_qps_per_node": 4.0},
            },
            "raft": [{"delay_s": 0.001}],
        }
        metrics, notes = bench_all.control_metrics(data)
        m = _by_name(metrics)
        mysql = m["MySQL backend: follower command acknowledged → leader /check 417"]
        self.assertEqual(mysql.values, (0.2, 0.1, 1.5))
        self.assertEqual(mysql.verdict, "met")
        self.assertEqual(m["… of which change-counter reads"].values, (4.0,))
        self.assertIn("2 nodes", notes[0])

    def test_quick_arguments(self) -> None:
        """
        Every benchmark has quick arguments, and the method texts name the
        round counts they run with.
        """
        for b in bench_all.benchmarks(["pymysql", "native"]):
            self.assertTrue(b.quick, b.key)
        haproxy = [b for b in bench_all.benchmarks() if b.key == "haproxy"][0]
        self.assertIn("15 rounds", haproxy.method(haproxy.full))
        self.assertIn("1 rounds", haproxy.method(haproxy.quick))
