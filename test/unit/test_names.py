"""
Every name a client sends works: apps, stores and hosts of any length (129,
1,000 and about 8,000 characters, and hypothesis-generated ones) check,
throttle, list, unthrottle, skip and recover as short ones do, in memory
through the whole site. Where names are kept, memory stays bounded: recent
apps, check counters, the check path's route cache and the replicated state,
whose bounds are refused with a 400 naming them.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, assume, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.commands import MAX_KEY_LENGTH, InvalidCommand
from freno.consensus.state import MAX_ENTRIES, MAX_KEY_CHARACTERS, AppThrottle
from freno.metrics.catalogue import CHECKS
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry
from freno.throttle.checker import Throttler
from freno.throttle.counters import MAX_LABEL_LENGTH, OTHER, CheckCounters
from freno.throttle.recent import RecentApps
from test.unit.test_http_check import Service

LENGTHS = (129, 1000, 8000)
OK = {"StatusCode": 200, "Message": "OK"}
FUTURE = 4102444800.0


def encoded(name: str) -> str:
    """
    C{name} as one path segment: every reserved character percent-encoded,
    and dots too (so that C{.} and C{..} stay names, not dot segments).
    """
    return quote(name, safe="").replace(".", "%2E")


class LongNameTests(SynchronousTestCase):
    """
    Long names on every route that takes one.
    """

    def setUp(self):
        self.s = Service(self)

    def json(self, path):
        code, body = self.s.get(path)
        return code, json.loads(body)

    def test_check_routes(self):
        """
        Every check route and method answers a long app by its metric.
        """
        for length in LENGTHS:
            app = "a" * length
            for route in ("check", "check-if-exists"):
                for query in ("", "?p=low"):
                    path = f"/{route}/{app}/mysql/main{query}"
                    self.assertEqual(self.s.get(path)[0], 200, (length, path))
                    self.assertEqual(self.s.head(path)[0], 200, (length, path))
            for route in ("check-read", "check-read-if-exists"):
                self.assertEqual(self.s.head(f"/{route}/{app}/mysql/main/0.25")[0], 429)
                self.assertEqual(self.s.get(f"/{route}/{app}/mysql/main/2")[0], 200)

    def test_throttle_list_unthrottle(self):
        """
        A long app is throttled (its checks then answer 417), listed under
        its full name, and unthrottled; a long store-scoped key too.
        """
        for length in LENGTHS:
            app = "t" * length
            self.assertEqual(self.json(f"/throttle-app/{app}/ttl/60/ratio/1"), (200, OK))
            self.assertIn(app, self.json("/throttled-apps")[1])
            self.assertEqual(self.s.head(f"/check/{app}/mysql/main")[0], 417)
            self.assertEqual(self.json(f"/unthrottle-app/{app}"), (200, OK))
            self.assertNotIn(app, self.json("/throttled-apps")[1])
            self.assertEqual(self.s.head(f"/check/{app}/mysql/main")[0], 200)

            store = "s" * length
            self.assertEqual(self.json(f"/throttle-app/a?store_name={store}")[0], 200)
            self.assertIn(f"a/{store}", self.json("/throttled-apps")[1])
            self.assertEqual(self.json(f"/unthrottle-app/a?store_name={store}")[0], 200)
            self.assertEqual(set(self.json("/throttled-apps")[1]), {"abusing-app"})

    def test_skip_list_recover(self):
        """
        A long host name is skipped, listed and recovered.
        """
        for length in LENGTHS:
            host = "h" * length
            self.assertEqual(self.json(f"/skip-host/{host}"), (200, OK))
            self.assertEqual(self.json(f"/skip-host/{host}/ttl/5"), (200, OK))
            self.assertIn(host, self.json("/skipped-hosts")[1])
            self.assertEqual(self.json(f"/recover-host/{host}"), (200, OK))
            self.assertEqual(self.json("/skipped-hosts")[1], {})

    def test_recent_apps(self):
        """
        Long apps show in C{/recent-apps} under their full name.
        """
        for length in LENGTHS:
            self.s.head(f"/check/{'r' * length}/mysql/main")
        recent = self.json("/recent-apps")[1]
        for length in LENGTHS:
            self.assertIn(f"{'r' * length}/127.0.0.1", recent)

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/"),
                   min_size=1, max_size=300))
    def test_generated_names(self, name):
        """
        Any name without C{/} (which separates segments, as in freno) checks,
        throttles, lists, unthrottles, skips and recovers under exactly that
        name (the built-in C{abusing-app} aside).
        """
        assume(name != "abusing-app")
        s = Service(self)
        segment = encoded(name)
        self.assertEqual(s.get(f"/check/{segment}/mysql/main")[0], 200)
        code, body = s.get(f"/throttle-app/{segment}/ttl/10")
        self.assertEqual(code, 200, body)
        self.assertIn(name, json.loads(s.get("/throttled-apps")[1]))
        self.assertEqual(s.head(f"/check/{segment}/mysql/main")[0], 417)
        self.assertEqual(s.get(f"/unthrottle-app/{segment}")[0], 200)
        self.assertNotIn(name, json.loads(s.get("/throttled-apps")[1]))
        self.assertEqual(s.get(f"/skip-host/{segment}")[0], 200)
        self.assertIn(name, json.loads(s.get("/skipped-hosts")[1]))
        self.assertEqual(s.get(f"/recover-host/{segment}")[0], 200)
        self.assertEqual(json.loads(s.get("/skipped-hosts")[1]), {})
        self.assertIn(f"{name}/127.0.0.1", json.loads(s.get("/recent-apps")[1]))


class StateBoundTests(SynchronousTestCase):
    """
    The replicated state's bounds answer 400 naming them and change nothing.
    """

    def setUp(self):
        self.s = Service(self)
        self.state = self.s.consensus.state

    def refused(self, path, message):
        code, body = self.s.get(path)
        self.assertEqual((code, json.loads(body)), (400, {"StatusCode": 400, "Message": message}))
        self.assertEqual(self.s.head(path)[0], 400)

    def test_too_many_throttled_apps(self):
        """
        A new throttle beyond L{MAX_ENTRIES} active throttled apps is
        refused; changing an existing one, or one more once another expired,
        is not.
        """
        for i in range(MAX_ENTRIES):
            self.state.apps[f"app{i}"] = AppThrottle(None, 1.0)
        self.refused(
            "/throttle-app/new",
            f"app: at most {MAX_ENTRIES} throttled apps at a time; unthrottle some first",
        )
        self.assertNotIn("new", self.state.apps)
        self.assertEqual(self.s.get("/throttle-app/app0/ratio/0.5")[0], 200)
        self.state.apps["app1"] = AppThrottle(self.s.clock.seconds() - 1, 1.0)
        self.assertEqual(self.s.get("/throttle-app/new")[0], 200)

    def test_too_many_skipped_hosts(self):
        """
        A new skip beyond L{MAX_ENTRIES} active skipped hosts is refused.
        """
        for i in range(MAX_ENTRIES):
            self.state.skipped[f"h{i}"] = FUTURE
        self.refused(
            "/skip-host/new",
            f"hostName: at most {MAX_ENTRIES} skipped hosts at a time; recover some first",
        )
        self.assertEqual(self.s.get("/skip-host/h0/ttl/5")[0], 200)
        self.assertEqual(self.s.get("/recover-host/h0")[0], 200)
        self.assertEqual(self.s.get("/skip-host/new")[0], 200)

    def test_too_many_characters(self):
        """
        The names of the active entries of one map hold at most
        L{MAX_KEY_CHARACTERS} characters.
        """
        count = MAX_KEY_CHARACTERS // 8000
        for i in range(count):
            self.state.apps[f"{i:08d}" + "x" * 7992] = AppThrottle(None, 1.0)
        room = MAX_KEY_CHARACTERS - count * 8000
        self.assertEqual(self.s.get("/throttle-app/" + "y" * room)[0], 200)
        self.refused(
            "/throttle-app/z",
            f"app: the names of all throttled apps hold at most {MAX_KEY_CHARACTERS} "
            "characters; unthrottle some first",
        )

    def test_key_length(self):
        """
        A key over L{MAX_KEY_LENGTH} characters (which no request line can
        carry) is refused by the throttler and by every command path; one of
        exactly that length is kept.
        """
        key = "k" * (MAX_KEY_LENGTH + 1)
        s = self.s
        throttler = Throttler(s.clock, s.config, s.consensus, s.metrics, s.stats)
        error = self.assertRaises(InvalidCommand, throttler.throttle_app, key)
        self.assertEqual(str(error), f"app: longer than {MAX_KEY_LENGTH} characters")
        self.assertRaises(InvalidCommand, throttler.skip_host, key)
        self.failureResultOf(self.s.consensus.throttle_app(key, None, None), InvalidCommand)
        self.failureResultOf(self.s.consensus.skip_host(key, FUTURE), InvalidCommand)
        self.assertEqual(dict(self.state.apps), {})
        self.successResultOf(throttler.throttle_app(key[:-1]))
        self.assertIn(key[:-1], self.state.apps)

    def test_backend_limit_is_400(self):
        """
        A backend's own limit (L{InvalidCommand}, e.g. the MySQL backend's
        128-character columns) answers 400 with its message.
        """
        self.s.consensus.reject_commands = InvalidCommand(
            "app",
            "longer than 128 characters (the MySQL backend's throttled_apps.app_name column)"
        )
        self.refused(
            "/throttle-app/" + "a" * 129,
            "app: longer than 128 characters (the MySQL backend's throttled_apps.app_name column)",
        )


class MemoryBoundTests(SynchronousTestCase):
    """
    Where names are kept, memory stays bounded.
    """

    def test_recent_apps_characters(self):
        """
        Recent apps keep at most C{max_characters} characters of keys,
        dropping the least recently checked; a key longer than that is not
        kept at all.
        """
        recent = RecentApps(max_entries=100, max_characters=20_000)
        for i in range(10):
            recent.record(f"{i}" + "a" * 7999, float(i))
        self.assertLessEqual(recent.characters, 20_000)
        self.assertEqual(len(recent), 2)
        self.assertEqual([k[0] for k, _ in recent.items(10.0)], ["8", "9"])
        recent.record("x" * 20_001, 11.0)
        self.assertEqual(len(recent), 2)
        recent.record("short", 12.0)
        self.assertEqual(len(recent), 3)
        self.assertEqual(recent.characters, 16_005)

    def test_recent_apps_default_bound(self):
        """
        The default bound holds with names of about 8,000 characters.
        """
        recent = RecentApps()
        for i in range(2000):
            recent.record(f"{i:05d}" + "n" * 8000, float(i))
        self.assertLessEqual(recent.characters, recent.max_characters)
        self.assertLess(len(recent), 2000)

    def test_counters_fold_long_names(self):
        """
        An app name longer than L{MAX_LABEL_LENGTH} is counted as C{other},
        and the raw-name cache keeps short names only.
        """
        stats = Registry()
        counters = CheckCounters(stats, {"main"})
        self.assertEqual(counters.fold_app("a" * MAX_LABEL_LENGTH), "a" * MAX_LABEL_LENGTH)
        for length in LENGTHS:
            counters.count("b" * length, "mysql", "main", 200)
            self.assertEqual(counters.fold_app("b" * length), OTHER)
        self.assertEqual(variables(stats).counters["check.other.total"], 3)
        self.assertEqual(counters._fast, {})
        self.assertEqual(stats.value(CHECKS, (OTHER, "mysql", "main", "200")), 3)

    def test_route_cache_keeps_short_paths(self):
        """
        The check path caches parsed routes of short paths only.
        """
        s = Service(self)
        check = s.site.resource.check_resource
        s.head("/check/short/mysql/main")
        for i in range(50):
            s.head(f"/check/{i}{'l' * 1000}/mysql/main")
        self.assertEqual(list(check._routes), [b"/check/short/mysql/main"])
