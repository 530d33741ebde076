"""
The benchmark report (L{bench.report}), the reading of each benchmark's
results (L{bench.readers}) and the judging of each benchmark process
(L{bench.all.judge}), on fixed inputs. No benchmark is run here.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from bench import all as bench_all
from bench import readers
from bench.all import Benchmark, Outcome, judge
from bench.probe import first_after
from bench.report import Metric, Section, Target, render, render_summary, render_table, spread
from freno.config.model import DEFAULT_PROBE_THREADS, ProbeSettings


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
        self.assertEqual(rows, ["| A | t | 1.00 s | ≤ 2.00 s | met |", "| B | run failed: boom | — | | **failed** |"])

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
        self.assertIn("**This run failed; its figures are not reported:**", text)
        self.assertIn("timed out after 900 s", text)
        self.assertTrue(text.endswith("\n") and not text.endswith("\n\n"))


class EveryRoundTests(SynchronousTestCase):
    """
    A target judged on every round is missed by one bad round, whatever
    the median.
    """

    def test_one_bad_round(self) -> None:
        """
        Errors in one round of five miss a C{<= 0} target judged on every
        round, though the median is 0; the same target on the median is met.
        """
        values = [0, 0, 7, 0, 0]
        self.assertEqual(Metric("errors", "", values, Target("<=", 0), every=True).verdict, "missed")
        self.assertEqual(Metric("errors", "", values, Target("<=", 0)).verdict, "met")
        self.assertEqual(Metric("errors", "", [0, 0], Target("<=", 0), every=True).verdict, "met")

    def test_texts(self) -> None:
        """
        The target says "every round", and the summary shows the worst
        round instead of the median.
        """
        m = Metric("errors", "", [0, 7, 0], Target("<=", 0), digits=0, every=True)
        self.assertEqual(m.target_text, "≤ 0 (every round)")
        rows = render_summary([Section("a", "A", "c", "how", [m])]).splitlines()
        self.assertEqual(rows[2], "| A | errors | worst 7 | ≤ 0 (every round) | **missed** |")
        low = Metric("share", "", [1.0, 0.5], Target(">=", 0.95), every=True)
        rows = render_summary([Section("a", "A", "c", "how", [low])]).splitlines()
        self.assertEqual(rows[2], "| A | share | worst 0.50 | ≥ 0.95 (every round) | **missed** |")

    def test_met_counted_in_summary(self) -> None:
        """
        Targets judged on every round that were met are counted in one
        summary row per section; a missed one has its own row.
        """
        ok = [Metric(f"errors {i}", "", [0], Target("<=", 0), every=True) for i in range(3)]
        bad = Metric("violations", "", [1], Target("<=", 0), digits=0, every=True)
        rows = render_summary([Section("a", "A", "c", "how", ok + [bad])]).splitlines()[2:]
        self.assertEqual(rows, [
            "| A | violations | worst 1 | ≤ 0 (every round) | **missed** |",
            "| A | other every-round checks (errors, failures, violations): 3, see below | — | | met |",
        ])


def _bench(parse=None) -> Benchmark:
    return Benchmark(
        "fake", "Fake", "bench.fake", ["--rounds", "3"], ["--rounds", "1"],
        lambda args: f"Method with {bench_all._arg(args, '--rounds', '?')} rounds.",
        parse or (lambda data: ([Metric("window", "s", data["windows"], Target("<=", 3.0))], ["a note"])),
    )


GOOD = json.dumps({"windows": [1.0, 2.0, 2.5]})


class JudgeTests(SynchronousTestCase):
    """
    L{judge} turns what a benchmark process left behind into a section; a
    failed run is never reported with figures.
    """

    def judged(self, outcome: Outcome, bench: Benchmark = None) -> Section:
        return judge(bench or _bench(), ["--rounds", "3"], outcome)

    def assertFailed(self, section: Section, reason: str) -> str:
        self.assertIsNotNone(section.error)
        self.assertIn(reason, section.error.splitlines()[0])
        text = render({}, "0", "0", [section], "cmd", "now", 1)
        self.assertIn("**This run failed; its figures are not reported:**", text)
        self.assertNotIn("| window |", text)
        self.assertIn("| **failed** |", render_summary([section]))
        return text

    def test_completed(self) -> None:
        """
        Exit status 0 and readable results: the figures, the notes, the
        command and the method, no error.
        """
        section = self.judged(Outcome(0, "ok\n", GOOD, seconds=12.0))
        self.assertIsNone(section.error)
        self.assertEqual([m.name for m in section.metrics], ["window"])
        self.assertEqual(section.notes, ("a note",))
        self.assertEqual(section.command, "python -m bench.fake --rounds 3")
        self.assertEqual(section.method, "Method with 3 rounds.")
        self.assertEqual(section.seconds, 12.0)

    def test_nonzero_exit_with_readable_results(self) -> None:
        """
        A process that exits non-zero failed, even though its results can
        be read: the reason and the tail of its output are shown, and the
        figures are not.
        """
        section = self.judged(Outcome(1, "round 1\nTraceback: boom\n", GOOD))
        text = self.assertFailed(section, "exited with status 1")
        self.assertIn("Traceback: boom", text)

    def test_killed_by_signal(self) -> None:
        """
        A negative exit status (killed by a signal) is a failure too.
        """
        self.assertFailed(self.judged(Outcome(-9, "", GOOD)), "exited with status -9")

    def test_timeout(self) -> None:
        """
        A process killed at its timeout failed, whatever it wrote.
        """
        self.assertFailed(self.judged(Outcome(None, "", GOOD, timed_out=900.0)), "timed out after 900 s")

    def test_no_results(self) -> None:
        """
        Exit status 0 but no results file: failed.
        """
        self.assertFailed(self.judged(Outcome(0, "", None)), "wrote no results")

    def test_unparseable_results(self) -> None:
        """
        Results that are not JSON: failed, with the parser's complaint.
        """
        self.assertFailed(self.judged(Outcome(0, "", "{not json")), "could not be read (JSONDecodeError")

    def test_results_missing_a_figure(self) -> None:
        """
        Results the reader cannot read (a missing key, a wrong type): failed.
        """
        self.assertFailed(self.judged(Outcome(0, "", json.dumps({}))), "could not be read (KeyError")
        self.assertFailed(
            self.judged(Outcome(0, "", json.dumps({"windows": 3}))), "could not be read (TypeError"
        )

    def test_every_reason(self) -> None:
        """
        Every reason that applies is given.
        """
        section = self.judged(Outcome(2, "tool missing", None))
        self.assertEqual(section.error.splitlines()[0], "exited with status 2; wrote no results")

    def test_reported_errors_are_a_miss(self) -> None:
        """
        A completed run whose results report errors is a miss (the probe
        reader on a run with failed probes), with the reason in a note.
        """
        data = _probe_data(errors=2000)
        bench = [b for b in bench_all.benchmarks(["pymysql"]) if b.key == "probe-pymysql"][0]
        section = judge(bench, list(bench.full), Outcome(0, "", json.dumps(data)))
        self.assertIsNone(section.error)
        summary = render_summary([section])
        self.assertIn("| 200 hosts: failed probes, share of attempts | worst 50.0% | ≤ 0.0% (every round) | **missed** |", summary)
        self.assertTrue(any("2000 of 4000 probes failed (ProbeError: timed out: 2000)" in n for n in section.notes))


def _by_name(metrics):
    return {m.name: m for m in metrics}


def _load(rps, failed=0, **kw):
    row = {
        "rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "ok": 100, "non2xx": failed, "errors": 0,
        "error_kinds": {"status 500": failed} if failed else {}, "slowest_ms": 5.0, "over_200ms": 0,
        "seconds": 1.0, "tool": "wrk",
    }
    row.update(kw)
    return row


def _probe_data(errors=0):
    def run(hosts, number, errors):
        return {
            "hosts": hosts, "run": number, "load": 1.0, "seconds": 1.0, "due_per_s": hosts * 20.0,
            "cpu": 0.3, "ok": hosts * 20 - errors, "errors": errors,
            "error_kinds": {"ProbeError: timed out": errors} if errors else {},
            "lag_p50": 0.001, "lag_p99": 0.002, "lag_max": 0.004,
        }

    crossing = {
        "up_agg": 0.04, "up_check": 0.045, "down_agg": 0.01, "down_check": 0.012,
        "up_bracket": 0.001, "down_bracket": 0.003, "failures": [],
    }
    return {
        "default_driver": "pymysql",
        "drivers": {"pymysql": {
            "driver": "pymysql", "default": True, "pool": 8, "interval": 0.05,
            "runs": [run(50, 1, 0), run(50, 2, 0), run(200, 1, 0), run(200, 2, errors)],
            "visibility": {"crossings": [crossing], "probe_errors": 0, "error_kinds": {}},
        }},
    }


class ReaderTests(SynchronousTestCase):
    """
    L{bench.readers} turns each benchmark's results into metrics; rounds
    with errors give a miss and no figures.
    """

    def check_data(self, **changes):
        data = {
            "rounds": {
                "bare GET": [_load(1000), _load(1000)], "single GET": [_load(2100), _load(2200)],
                "leader GET": [_load(600), _load(700)],
                "bare HEAD": [_load(1000), _load(1000)], "single HEAD": [_load(500), _load(600)],
                "leader HEAD": [_load(900), _load(900)],
            },
            "fixed_rate": {
                "leader GET": [_load(1990, p99_ms=12.0), _load(1990, p99_ms=4.0), _load(1990, p99_ms=11.0)],
                "bare GET": [_load(1990, p99_ms=3.0)],
            },
            "backlog": [_load(1500, over_200ms=0, slowest_ms=90.0), _load(1500, over_200ms=12, slowest_ms=1030.0)],
            "saturation": None,
        }
        data.update(changes)
        return data

    def test_check_ratios_per_round(self) -> None:
        """
        The ratios to the bare resource are computed per round, for the
        single node and for the leader, and judged against 2; the
        fixed-rate p99 of the leader against 5 ms.
        """
        m = _by_name(readers.check_metrics(self.check_data())[0])
        self.assertEqual(m["GET ratio single node / bare (paired rounds)"].values, (2.1, 2.2))
        self.assertEqual(m["GET ratio single node / bare (paired rounds)"].verdict, "met")
        self.assertEqual(m["GET ratio 3-node leader / bare (paired rounds)"].verdict, "missed")
        self.assertEqual(m["HEAD ratio single node / bare (paired rounds)"].verdict, "missed")
        self.assertEqual(m["GET 3-node leader at 2,000 req/s: p99 latency"].verdict, "missed")
        self.assertIsNone(m["GET bare resource at 2,000 req/s: p99 latency"].target)
        self.assertEqual(m["GET 3-node leader, failed requests"].verdict, "met")

    def test_check_plain_path(self) -> None:
        """
        A run with the twisted.web check path (C{plain}) reports its
        throughput and ratio to the bare resource, without a target.
        """
        data = self.check_data()
        data["rounds"]["plain GET"] = [_load(900), _load(950)]
        data["rounds"]["plain HEAD"] = [_load(800), _load(800)]
        m = _by_name(readers.check_metrics(data)[0])
        ratio = m["GET ratio single node, twisted.web check path / bare (paired rounds)"]
        self.assertEqual(ratio.values, (0.9, 0.95))
        self.assertIsNone(ratio.target)
        self.assertNotIn("HEAD ratio single node, twisted.web check path / bare (paired rounds)",
                         _by_name(readers.check_metrics(self.check_data())[0]))

    def test_check_failed_round(self) -> None:
        """
        A round with failed requests is a miss judged on every round, its
        figures are left out (of its own metrics and of the ratio), and a
        note says why.
        """
        data = self.check_data()
        data["rounds"]["leader GET"][1] = _load(5000, failed=3)
        metrics, notes = readers.check_metrics(data)
        m = _by_name(metrics)
        self.assertEqual(m["GET 3-node leader, failed requests"].values, (0, 3))
        self.assertEqual(m["GET 3-node leader, failed requests"].verdict, "missed")
        self.assertEqual(m["GET 3-node leader, throughput"].values, (600,))
        self.assertEqual(m["GET ratio 3-node leader / bare (paired rounds)"].values, (0.6,))
        self.assertIn("GET 3-node leader, round 2: 3 failed requests (status 500: 3); its figures are left out.", notes)

    def test_check_backlog(self) -> None:
        """
        Requests over 200 ms with 200 new connections at a time are judged
        on every run.
        """
        m = _by_name(readers.check_metrics(self.check_data())[0])
        self.assertEqual(m["200 new connections at a time: requests over 200 ms"].verdict, "missed")
        self.assertEqual(m["200 new connections at a time: slowest request"].values, (90.0, 1030.0))

    def test_check_saturation(self) -> None:
        """
        The saturation run: term changes, failed requests, failed probes
        and stale answers are judged on every round; probes are compared
        with the probes due; the notes list terms and what the checks got.
        """
        saturation = {
            "seconds": 60.0, "terms": {"node0": [2, 2], "node1": [2, 3]}, "term_changes": 1,
            "leader_changes_seen_by_nodes": 1, "leaders_seen": ["node0", "node1"],
            "checks": {"200": 500, "500: Metric is stale": 2}, "stale_answers": 2,
            "lag_ms": [{"p99": 12.0, "max": 30.0}, {"p99": 14.0, "max": 40.0}],
            "probes_ok_per_s": 70.0, "probe_errors": 0, "probes_due_per_s": 80.0, "failures": [],
            "load": _load(9000),
        }
        metrics, notes = readers.check_metrics(self.check_data(saturation=saturation))
        m = _by_name(metrics)
        self.assertEqual(m["saturation: raft term changes (any node)"].verdict, "missed")
        self.assertEqual(m["saturation: sampled checks refused as stale"].verdict, "missed")
        self.assertEqual(m["saturation: leader's reactor lag p99 (recent samples)"].verdict, "met")
        self.assertEqual(m["saturation: successful probes / probes due"].values, (0.875,))
        self.assertEqual(m["saturation: successful probes / probes due"].verdict, "missed")
        self.assertEqual(m["saturation: failed probes"].verdict, "met")
        self.assertIn("node1 2 → 3", notes[0])
        self.assertIn("500: Metric is stale: 2", notes[1])

    def test_check_unreadable(self) -> None:
        """
        Results without the rounds cannot be read.
        """
        self.assertRaises(KeyError, readers.check_metrics, {})

    def test_probe_successes_and_failures_apart(self) -> None:
        """
        Successful and failed probes are counted apart; the error rate is
        a share of attempts judged on every run; successes are compared with
        the probes due; CPU and lag figures come from runs without failures
        only, and CPU is per 1,000 successful probes/s.
        """
        metrics, notes = readers.probe_metrics(_probe_data(errors=1000))
        m = _by_name(metrics)
        self.assertEqual(m["200 hosts: probes succeeded"].values, (4000.0, 3000.0))
        self.assertEqual(m["200 hosts: probes failed"].values, (0.0, 1000.0))
        self.assertEqual(m["200 hosts: failed probes, share of attempts"].values, (0.0, 25.0))
        self.assertEqual(m["200 hosts: failed probes, share of attempts"].verdict, "missed")
        self.assertEqual(m["200 hosts: probes succeeded / probes due"].values, (1.0, 0.75))
        self.assertEqual(m["200 hosts: probes succeeded / probes due"].verdict, "missed")  # median 0.875
        self.assertEqual(m["50 hosts: probes succeeded / probes due"].verdict, "met")
        self.assertEqual(m["200 hosts: CPU"].values, (30.0,))
        self.assertEqual(m["200 hosts: CPU per 1,000 successful probes/s"].values, (7.5,))
        self.assertEqual(m["50 hosts: CPU per 1,000 successful probes/s"].values, (30.0, 30.0))
        self.assertEqual(m["50 hosts: failed probes, share of attempts"].verdict, "met")
        self.assertEqual(len(notes), 1)
        self.assertIn("200 hosts, run 2: 1000 of 4000 probes failed", notes[0])

    def test_probe_crossings(self) -> None:
        """
        Crossing latencies come from crossings that were measured; a failed
        crossing is counted, a miss, and explained.
        """
        data = _probe_data()
        crossings = data["drivers"]["pymysql"]["visibility"]["crossings"]
        crossings.append(dict(crossings[0], up_agg=None, failures=["aggregate above the threshold before the cause"]))
        metrics, notes = readers.probe_metrics(data)
        m = _by_name(metrics)
        self.assertEqual(m["lag crosses threshold → /check 429"].values, (45.0,))
        self.assertEqual(m["crossings that could not be measured"].values, (1,))
        self.assertEqual(m["crossings that could not be measured"].verdict, "missed")
        self.assertIn("crossing 2 failed: aggregate above the threshold before the cause.", notes)

    def test_probe_two_drivers(self) -> None:
        """
        Results of two drivers in one file are told apart by a prefix.
        """
        data = _probe_data()
        data["drivers"]["native"] = data["drivers"]["pymysql"]
        names = [m.name for m in readers.probe_metrics(data)[0]]
        self.assertIn("native: 50 hosts: probes succeeded", names)
        self.assertIn("pymysql: 50 hosts: probes succeeded", names)

    def test_probe_nothing_measured(self) -> None:
        """
        Results with no driver or no run cannot be read.
        """
        self.assertRaises(ValueError, readers.probe_metrics, {"drivers": {}})
        data = _probe_data()
        data["drivers"]["pymysql"]["runs"] = []
        self.assertRaises(ValueError, readers.probe_metrics, data)

    def test_haproxy(self) -> None:
        """
        The window is judged against 3 s, and any 200 from a non-leader
        misses its target of 0.
        """
        data = {
            "windows": [0.5, 0.7, 4.0], "errors": [0, 60, 10], "statuses": {"0": 1, "200": 90},
            "requests": 91, "non_leader_200": 1,
        }
        metrics, notes = readers.haproxy_metrics(data)
        m = _by_name(metrics)
        self.assertEqual(m["non-200 window through HAProxy (kill → first 200)"].verdict, "met")
        self.assertEqual(m["200s served by a non-leader (whole run)"].verdict, "missed")
        self.assertEqual(notes, ["91 client requests through HAProxy; answers by status: no answer: 1, 200: 90."])

    def test_failover_missing_kind(self) -> None:
        """
        A kind that was not run gives metrics without data, not an error.
        """
        metrics, _ = readers.failover_metrics({"kill": [{"leader_check": 0.5, "check": 0.6}]})
        m = _by_name(metrics)
        self.assertEqual(m["SIGKILL leader → /check 200 on the new leader"].verdict, "met")
        self.assertEqual(m["cold start of 3 nodes → first /check 200"].verdict, "no data")

    def test_chaos(self) -> None:
        """
        Violations and lost commands are judged against 0, and rounds not
        done are a miss; failover times come per fault kind.
        """
        data = {
            "rounds": 2, "rounds_done": 1, "kills": 1, "freezes": 1, "elapsed": 7.6,
            "commands_sent": 10, "commands_acknowledged": 8, "missing_on_final_leader": 0,
            "missing_on_some_node": 0, "checks": {"200": 5}, "longest_check_overlap": 0.0,
            "longest_leader_overlap": 0.0,
            "failover_times": {"kill": {"leader_check": [0.4], "check": [0.5]}},
            "violations": ["overlap: x"],
        }
        metrics, notes = readers.chaos_metrics(data)
        m = _by_name(metrics)
        self.assertEqual(m["kill → /check 200 on another node"].values, (0.5,))
        self.assertEqual(m["violations (lost commands, 200s outside leadership)"].verdict, "missed")
        self.assertEqual(m["rounds completed"].verdict, "missed")
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
        metrics, notes = readers.control_metrics(data)
        m = _by_name(metrics)
        mysql = m["MySQL backend: follower command acknowledged → leader /check 417"]
        self.assertEqual(mysql.values, (0.2, 0.1, 1.5))
        self.assertEqual(mysql.verdict, "met")
        self.assertEqual(m["… of which change-counter reads"].values, (4.0,))
        self.assertIn("2 nodes", notes[0])


class CrossingTests(SynchronousTestCase):
    """
    L{bench.probe.first_after} counts only what happens after the cause.
    """

    def test_after_the_cause(self) -> None:
        """
        The first transition to the value at or after the cause is found;
        an earlier one is not.
        """
        ts = [(0.0, False), (9.5, True), (9.6, False), (10.2, True)]
        self.assertEqual(first_after(ts, True, 10.0), (10.2, False))
        self.assertEqual(first_after(ts, True, 10.2), (10.2, False))

    def test_already_there(self) -> None:
        """
        When the state already had the value before the cause, that is
        said, and no later transition is found.
        """
        self.assertEqual(first_after([(0.0, False), (9.5, True)], True, 10.0), (None, True))

    def test_not_yet(self) -> None:
        """
        No transition after the cause: none found.
        """
        self.assertEqual(first_after([(0.0, False)], True, 10.0), (None, False))


class BenchmarkListTests(SynchronousTestCase):
    """
    The benchmarks C{bench.all} runs, and their method texts.
    """

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

    def test_default_driver_first_and_labelled(self) -> None:
        """
        The probing benchmark runs once per driver, freno's default (read
        from the configuration model) first and labelled as the default.
        """
        default = ProbeSettings().driver
        probes = [b for b in bench_all.benchmarks(["pymysql", "native"]) if b.module == "bench.probe"]
        self.assertEqual(probes[0].key, f"probe-{default}")
        self.assertEqual(probes[0].title, f"Probing, {default} driver (the default)")
        self.assertNotIn("default", probes[1].title)
        self.assertIn("This is freno's default driver.", probes[0].method(probes[0].full))
        self.assertIn(f"freno's default driver is `{default}`", probes[1].method(probes[1].full))

    def test_probe_method_pool(self) -> None:
        """
        The probing method names the thread pool size that ran: the
        configuration's default, or the one passed.
        """
        probe = [b for b in bench_all.benchmarks(["pymysql"]) if b.key == "probe-pymysql"][0]
        self.assertIn(f"a pool of {DEFAULT_PROBE_THREADS} threads", probe.method(probe.full))
        self.assertIn("a pool of 20 threads", probe.method(list(probe.full) + ["--pool", "20"]))

    def test_check_method(self) -> None:
        """
        The check-path method names the load generators that ran and the
        settings it ran with.
        """
        check = [b for b in bench_all.benchmarks() if b.key == "check"][0]
        text = check.method(check.full)
        for expected in (
            "`wrk -t1 -c50`", "`hey -c 50 -m HEAD`", "`hey -c 50 -q 40 -z 8s`",
            "`hey -n 16000 -c 200 -disable-keepalive -m HEAD -o csv`", "for 60 s",
            f"the `{ProbeSettings().driver}` driver", "5 rounds",
        ):
            self.assertIn(expected, text)
