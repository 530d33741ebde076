"""
Tests for L{bench.dashboard}'s reading of its figures (no benchmark is
run here) and its place in L{bench.all}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench import all as bench_all
from bench.dashboard import growth_mib, last_point, method, metrics


def page(pages, cpu, errors=0):
    return {"pages": pages, "cpu_pct": cpu, "requests": 30 * pages, "errors": errors,
            "error_kinds": {"HTTP 500": errors} if errors else {}, "load_average": 1.0}


def data(rounds, soak_errors=0):
    return {
        "seconds": 15.0,
        "rounds": rounds,
        "soak": {"pages": 10, "seconds": 20.0, "rss_kib": [[0, 1024], [10, 2048], [20, 3072]],
                 "requests": 600, "errors": soak_errors, "error_kinds": {}},
        "same_leader": True,
    }


class MetricsTests(SynchronousTestCase):
    """
    L{metrics}.
    """

    def by_name(self, found):
        return {m.name: m for m in found[0]}

    def test_figures(self):
        """
        CPU per page count, the extra CPU paired per round, and the soak's
        growth (whole and second half).
        """
        found = self.by_name(metrics(data([[page(0, 3.0), page(1, 3.5), page(10, 4.0)],
                                           [page(0, 2.0), page(1, 2.1), page(10, 3.5)]])))
        self.assertEqual(found["extra leader CPU, 10 pages (paired with 0)"].values, (1.0, 1.5))
        self.assertEqual(found["extra leader CPU, 10 pages (paired with 0)"].verdict, "met")
        self.assertEqual(found["leader CPU, 0 pages open"].values, (3.0, 2.0))
        self.assertEqual(found["leader RSS growth, 20 s with 10 pages"].values, (2.0,))
        self.assertEqual(found["leader RSS growth, the soak's second half"].values, (1.0,))
        self.assertEqual(found["failed page requests"].verdict, "met")

    def test_failures(self):
        """
        A round with failed page requests is a miss and gives no CPU
        figure; failures in the soak are a miss too.
        """
        found = metrics(data([[page(0, 3.0), page(1, 3.5), page(10, 4.0, errors=2)],
                              [page(0, 2.0), page(1, 2.1), page(10, 3.5)]], soak_errors=1))
        by = self.by_name(found)
        self.assertEqual(by["failed page requests"].verdict, "missed")
        self.assertEqual(by["extra leader CPU, 10 pages (paired with 0)"].values, (1.5,))
        self.assertTrue(any("HTTP 500: 2" in n for n in found[1]))

    def test_no_rounds(self):
        """
        No rounds cannot be read.
        """
        self.assertRaises(ValueError, metrics, data([]))

    def test_growth(self):
        """
        Growth is in MiB, from the first sample or from half-way.
        """
        samples = [[0, 1000], [5, 1512], [10, 2024]]
        self.assertEqual(growth_mib(samples), 1.0)
        self.assertEqual(growth_mib(samples, from_half=True), 0.5)

    def test_last_point(self):
        """
        A page asks for the points after the newest it holds.
        """
        doc = {"clusters": [{"points": [[1.0, 0.1], [3.0, None]]}, {"points": []}, {"points": [[2.0, 0.5]]}]}
        self.assertEqual(last_point(doc, None), 3.0)
        self.assertEqual(last_point(doc, 4.0), 4.0)
        self.assertIsNone(last_point({"clusters": [{"points": []}]}, None))

    def test_listed(self):
        """
        C{bench.all} runs it, with a method text naming its settings.
        """
        bench = next(b for b in bench_all.benchmarks() if b.key == "dashboard")
        self.assertEqual(bench.module, "bench.dashboard")
        self.assertIn("240 s", method(bench.full))
