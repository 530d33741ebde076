"""
Tests for L{bench.hysteresis}: the simulation is deterministic, answers only
200 and 429, hysteresis never lets the lag run higher, and its figures are
read by C{bench.all}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench import all as bench_all
from bench import hysteresis


class SimulationTests(SynchronousTestCase):
    """
    Short runs of the simulation.
    """

    def test_deterministic(self):
        """
        The same seed gives the same figures.
        """
        self.assertEqual(
            hysteresis.simulate(3, 0.2, 0.8, "linear"), hysteresis.simulate(3, 0.2, 0.8, "linear")
        )

    def test_linear_model(self):
        """
        The writer alternates; hysteresis makes fewer transitions and no
        higher lag; every check is 200 or 429.
        """
        none = hysteresis.simulate(1, 0.5, None, "linear")
        held = hysteresis.simulate(1, 0.5, 0.5, "linear")
        self.assertEqual((none["other_statuses"], held["other_statuses"]), (0, 0))
        self.assertEqual(none["checks"], 300)
        self.assertGreater(none["transitions_per_minute"], 0)
        self.assertLess(held["transitions_per_minute"], none["transitions_per_minute"])
        self.assertLessEqual(held["lag_mean"], none["lag_mean"])

    def test_queue_model(self):
        """
        In the queue model the lag keeps growing after the writer stops.
        """
        run = hysteresis.simulate(1, 0.5, None, "queue")
        self.assertGreater(run["lag_p99"], 1.5)
        self.assertGreater(run["transitions_per_minute"], 0)


class ReportTests(SynchronousTestCase):
    """
    C{bench.all} knows the benchmark and reads its figures.
    """

    def test_registered(self):
        """
        One entry, run with C{--json}.
        """
        entries = [b for b in bench_all.benchmarks() if b.key == "hysteresis"]
        self.assertEqual(len(entries), 1)
        self.assertEqual(entries[0].module, "bench.hysteresis")
        self.assertIn("ResumeThreshold", entries[0].method(entries[0].full))

    def test_metrics(self):
        """
        Per model and kind: transitions, allowed share, lag, and the paired
        share removed.
        """
        data = {"seeds": 1, "minutes": 0.2, "results": hysteresis.run(1, 0.2, ["linear"], echo=lambda line: None)}
        metrics, notes = hysteresis.metrics(data)
        names = [m.name for m in metrics]
        self.assertIn("linear replicas, no hysteresis: 200↔429 transitions", names)
        self.assertIn("linear replicas, ResumeThreshold 0.8: transitions removed (paired with no hysteresis)", names)
        self.assertEqual(len(notes), 1)

    def test_odd_statuses_are_a_miss(self):
        """
        A check that answered neither 200 nor 429 is a miss judged on every
        run, and that run gives no figures; no runs at all is an error.
        """
        data = {"seeds": 1, "minutes": 0.2, "results": hysteresis.run(1, 0.2, ["linear"], echo=lambda line: None)}
        data["results"]["linear"]["none"][0]["other_statuses"] = 2.0
        metrics, notes = hysteresis.metrics(data)
        by_name = {m.name: m for m in metrics}
        self.assertEqual(by_name["linear replicas, no hysteresis: checks answered neither 200 nor 429"].verdict, "missed")
        self.assertEqual(by_name["linear replicas, no hysteresis: 200↔429 transitions"].values, ())
        self.assertEqual(
            by_name["linear replicas, ResumeThreshold 0.8: transitions removed (paired with no hysteresis)"].values, ()
        )
        self.assertIn("left out", notes[1])
        self.assertRaises(ValueError, hysteresis.metrics, {"minutes": 1, "results": {}})
