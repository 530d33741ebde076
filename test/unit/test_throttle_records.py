"""
Tests for the throttle core's local records: L{RecentApps},
L{LowPriorityDenials} and L{CheckCounters}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from freno.metrics.catalogue import CHECKS
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry
from freno.throttle.counters import CheckCounters
from freno.throttle.lowpriority import LowPriorityDenials
from freno.throttle.recent import RECENT_APPS_TTL, RecentApps


class RecentAppsTests(SynchronousTestCase):
    """
    L{RecentApps} is bounded, refreshes on each check and expires after 24 h.
    """

    def test_record_and_refresh(self):
        """
        A key's time is its latest check.
        """
        r = RecentApps()
        r.record("a/h", 10.0)
        r.record("a/h", 20.0)
        self.assertEqual(list(r.items(30.0)), [("a/h", 20.0)])

    def test_bounded(self):
        """
        Past the bound, the least recently checked key goes.
        """
        r = RecentApps(max_entries=3)
        for i, key in enumerate(["a", "b", "c"]):
            r.record(key, float(i))
        r.record("a", 5.0)
        r.record("d", 6.0)
        self.assertEqual(sorted(k for k, _ in r.items(7.0)), ["a", "c", "d"])
        for i in range(1000):
            r.record(f"x{i}", 10.0 + i)
        self.assertEqual(len(r), 3)

    def test_expiry(self):
        """
        Keys disappear 24 h after their latest check.
        """
        r = RecentApps()
        r.record("a", 0.0)
        r.record("b", 100.0)
        self.assertEqual([k for k, _ in r.items(RECENT_APPS_TTL)], ["b"])

    def test_last_minutes(self):
        """
        C{last_minutes > 0} keeps keys whose whole minutes since the check are
        at most that; 0 and negative keep all.
        """
        r = RecentApps()
        r.record("old", 0.0)
        r.record("new", 170.0)
        now = 180.0
        self.assertEqual([k for k, _ in r.items(now, 2)], ["new"])
        self.assertEqual([k for k, _ in r.items(now, 3)], ["old", "new"])
        self.assertEqual(len(list(r.items(now, 0))), 2)
        self.assertEqual(len(list(r.items(now, -1))), 2)


    def test_latest(self):
        """
        L{RecentApps.latest} gives the most recently checked live keys,
        newest first, with their time and last status (the status page's
        list).
        """
        r = RecentApps()
        r.record("a/h", 0.0, 200)
        r.record("b/h", 10.0, 429)
        r.record("c/h", 20.0)
        r.record("a/h", 30.0, 417)
        self.assertEqual(r.latest(40.0, 2), [("a/h", 30.0, 417), ("c/h", 20.0, None)])
        self.assertEqual(r.latest(RECENT_APPS_TTL + 15.0, 10), [("a/h", 30.0, 417), ("c/h", 20.0, None)])


class LowPriorityDenialsTests(SynchronousTestCase):
    """
    L{LowPriorityDenials} remembers a mark for one second.
    """

    def test_window(self):
        """
        Denied strictly within the window after the mark.
        """
        d = LowPriorityDenials()
        self.assertFalse(d.denied("mysql/a", 0.0))
        d.mark("mysql/a", 10.0)
        self.assertTrue(d.denied("mysql/a", 10.999))
        self.assertFalse(d.denied("mysql/b", 10.5))
        self.assertFalse(d.denied("mysql/a", 11.0))


class CheckCountersTests(SynchronousTestCase):
    """
    L{CheckCounters} counts the labeled series freno's names derive from.
    """

    def test_names(self):
        """
        A 200 counts the four totals; a 404 adds the errors; a 500 adds the
        internal errors.
        """
        stats = Registry()
        c = CheckCounters(stats, {"main"})
        c.count("a", "mysql", "main", 200)
        c.count("a", "mysql", "main", 404)
        c.count("a", "mysql", "main", 500)
        self.assertEqual(
            variables(stats).counters,
            {
                "check.any.total": 3, "check.a.total": 3,
                "check.any.mysql.main.total": 3, "check.a.mysql.main.total": 3,
                "check.any.error": 2, "check.a.error": 2,
                "check.any.mysql.main.error": 2, "check.a.mysql.main.error": 2,
                "check.any.internal-error": 1, "check.a.internal-error": 1,
                "check.any.mysql.main.internal-error": 1,
                "check.a.mysql.main.internal-error": 1,
            },
        )
        self.assertEqual(stats.value(CHECKS, ("a", "mysql", "main", "404")), 1)
        self.assertEqual(len(stats.series(CHECKS)), 3)

    def test_bounded(self):
        """
        Apps beyond the bound and unknown stores count as C{other}.
        """
        stats = Registry()
        c = CheckCounters(stats, {"main"}, max_apps=2)
        for app in ["a", "b", "c", "d", "a"]:
            c.count(app, "mysql", "main", 200)
        c.count("a", "mysql", "nosuch", 200)
        self.assertEqual(variables(stats).counters["check.other.total"], 2)
        self.assertEqual(variables(stats).counters["check.a.total"], 3)
        self.assertEqual(variables(stats).counters["check.any.mysql.other.total"], 1)
        self.assertNotIn("check.c.total", variables(stats).counters)
        apps = {labels[0] for labels in stats.series(CHECKS)}
        self.assertEqual(apps, {"a", "b", "other"})

    def test_cardinality_bounded(self):
        """
        However many apps and stores clients invent, the check series, and
        the /debug/vars names derived from them, stay bounded: at most
        C{max_apps + 1} apps times the known stores plus C{other}, times the
        statuses.
        """
        registry = Registry()
        c = CheckCounters(registry, {"main", "ro"}, max_apps=5)
        for i in range(3000):
            c.count(f"app{i}", "mysql", f"store{i % 7}" if i % 3 else "main", (200, 429, 500)[i % 3])
        series = registry.series(CHECKS)
        self.assertLessEqual(len(series), 6 * 3 * 3)
        self.assertLessEqual({labels[0] for labels in series} - {"other"}, {f"app{i}" for i in range(5)})
        self.assertLessEqual({labels[2] for labels in series}, {"main", "ro", "other"})
        self.assertLessEqual(len(variables(registry).counters), 12 * len(series))
        self.assertEqual(sum(series.values()), 3000)
