"""
The requests the client builds (L{freno.client.routes}) and which API a
mutation takes (L{freno.client.control}).
"""

from __future__ import annotations

import json

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.client import control, routes
from freno.client.durations import DurationError


class CheckRouteTests(SynchronousTestCase):
    """
    L{routes.check} and L{routes.explain}.
    """

    def test_check(self):
        """
        A GET of C{/check}; C{?p=low}; C{/check-read} with a threshold;
        several clusters joined with commas.
        """
        self.assertEqual(routes.check("gh-ost", "main").target, "/check/gh-ost/mysql/main")
        self.assertEqual(routes.check("gh-ost", "main").method, "GET")
        self.assertEqual(routes.check("a", "main", low_priority=True).target, "/check/a/mysql/main?p=low")
        self.assertEqual(routes.check("a", "main", threshold=0.5).target, "/check-read/a/mysql/main/0.5")
        self.assertEqual(routes.check("a", "main", threshold=2).target, "/check-read/a/mysql/main/2")
        self.assertEqual(routes.check("a", ["c1", "c2"]).target, "/check/a/mysql/c1,c2")
        self.assertEqual(routes.explain("a", ["c1"]).target, "/explain/a/mysql/c1")

    def test_encoding(self):
        """
        Names are percent-encoded as single segments.
        """
        self.assertEqual(routes.check("a b?#%", "ü").target, "/check/a%20b%3F%23%25/mysql/%C3%BC")

    def test_bad_names(self):
        """
        Empty names, names with C{/}, non-strings, lone surrogates, a comma
        inside a list's name and bad thresholds are refused before anything
        is sent, naming the field.
        """
        for app, cluster, what in [("", "main", "app"), ("a/b", "main", "app"), ("a", "", "cluster"),
                                   ("a", "x/y", "cluster"), (5, "main", "app"), ("\udc80", "main", "app"),
                                   ("a", ["x,y"], "cluster"), ("a", [], "cluster")]:
            with self.assertRaises(ValueError) as caught:
                routes.check(app, cluster)
            self.assertIn(what, str(caught.exception))
        for threshold in (0, -1, float("nan"), float("inf"), True, "1"):
            self.assertRaises(ValueError, routes.check, "a", "main", threshold=threshold)

    @given(st.text(min_size=1, max_size=40).filter(lambda s: "/" not in s))
    def test_any_name(self, name):
        """
        Any name without C{/} becomes one path segment (or is refused as
        not valid text).
        """
        try:
            target = routes.check(name, "main").target
        except ValueError as e:
            self.assertIn("not valid text", str(e))
            return
        self.assertEqual(target.count("/"), 4)
        self.assertTrue(target.isascii())


class ControlRouteTests(SynchronousTestCase):
    """
    Mutations and listings on both APIs.
    """

    def test_choice(self):
        """
        C{auto} uses the REST API with a token only; C{rest} and C{freno}
        force one; anything else is refused.
        """
        self.assertFalse(control.uses_rest("auto", None))
        self.assertTrue(control.uses_rest("auto", "t"))
        self.assertTrue(control.uses_rest("rest", None))
        self.assertFalse(control.uses_rest("freno", "t"))
        self.assertRaises(ValueError, control.check_api, "soap")

    def test_freno_throttle(self):
        """
        freno's route, with TTL in minutes, ratio, store and reason; the
        token travels when given.
        """
        request = control.throttle("freno", "tok", "gh-ost", "1h30m", 0.5, "INC 1", "main")
        self.assertEqual(
            request.target, "/throttle-app/gh-ost/ttl/90/ratio/0.5?store_name=main&reason=INC%201"
        )
        self.assertEqual(request.headers, {"Authorization": "Bearer tok"})
        self.assertTrue(request.mutation)
        self.assertEqual(control.throttle("auto", None, "a", None, None, None, None).target, "/throttle-app/a")
        self.assertEqual(control.throttle("auto", None, "a", None, 1, None, None).target, "/throttle-app/a/ratio/1")

    def test_freno_ttl_whole_minutes(self):
        """
        freno's routes count whole minutes: other TTLs are refused, saying
        how to get them, rather than rounded.
        """
        for ttl in ("90s", "30.5m", 30, "0.5m"):
            with self.assertRaises(DurationError) as caught:
                control.throttle("freno", None, "a", ttl, None, None, None)
            self.assertIn("whole minutes", str(caught.exception))
        self.assertEqual(control.skip("freno", None, "db1", "2h", None).target, "/skip-host/db1/ttl/120")
        self.assertEqual(control.skip("freno", None, "db1", "1.1h", None).target, "/skip-host/db1/ttl/66")

    def test_rest_throttle(self):
        """
        C{POST /api/v1/throttles} with a JSON body holding what was given, the
        TTL as written.
        """
        request = control.throttle("auto", "tok", "gh-ost", " 30m ", 1, "why", None)
        self.assertEqual((request.method, request.target), ("POST", "/api/v1/throttles"))
        self.assertEqual(request.headers["Authorization"], "Bearer tok")
        self.assertEqual(request.headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(request.body), {"app": "gh-ost", "ttl": "30m", "ratio": 1.0, "reason": "why"})
        self.assertEqual(json.loads(control.throttle("rest", None, "a", "30", None, None, None).body)["ttl"], 30.0)
        request = control.throttle("rest", None, "a", 90, None, None, "s")
        self.assertEqual(json.loads(request.body), {"app": "a", "store": "s", "ttl": 90.0})
        self.assertNotIn("Authorization", request.headers)

    def test_rest_others(self):
        """
        Unthrottle, skip and recover on the REST API.
        """
        request = control.unthrottle("auto", "t", "a", "s", "done")
        self.assertEqual((request.method, request.target), ("DELETE", "/api/v1/throttles/a?store=s&reason=done"))
        request = control.skip("auto", "t", "db1", "90s", None)
        self.assertEqual(json.loads(request.body), {"host": "db1", "ttl": "90s"})
        request = control.recover("auto", "t", "db1", None)
        self.assertEqual((request.method, request.target), ("DELETE", "/api/v1/skips/db1"))
        self.assertEqual(control.unthrottle("auto", None, "a", None, None).target, "/unthrottle-app/a")
        self.assertEqual(control.recover("auto", None, "db1", "x").target, "/recover-host/db1?reason=x")

    def test_bad_values(self):
        """
        Bad ratios, TTLs and names are refused before anything is sent.
        """
        for api in ("freno", "rest"):
            for ratio in (-0.1, 1.5, float("nan"), "1", True):
                self.assertRaises(ValueError, control.throttle, api, None, "a", None, ratio, None, None)
            for ttl in ("-5m", "0s", "soon", 0):
                self.assertRaises(DurationError, control.throttle, api, None, "a", ttl, None, None, None)
            self.assertRaises(ValueError, control.throttle, api, None, "a", None, None, None, "x/y")
            self.assertRaises(ValueError, control.skip, api, None, "", None, None)

    def test_listings(self):
        """
        Listings take the REST API with a token, freno's routes otherwise.
        """
        self.assertEqual(control.list_throttles("auto", None)[0].target, "/throttled-apps")
        self.assertEqual(control.list_throttles("auto", "t")[0].target, "/api/v1/throttles")
        self.assertEqual(control.list_skips("auto", None)[0].target, "/skipped-hosts")
        self.assertEqual(control.list_skips("rest", None)[0].target, "/api/v1/skips")
