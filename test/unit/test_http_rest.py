"""
Tests for L{freno.http.rest}: the C{/api/v1} routes in memory through the
whole site (StubTreq).
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.audit import Applied
from freno.consensus.interface import CommitTimeoutError, ConsensusError, NotLeaderError
from freno.consensus.state import MAX_ENTRIES, AppThrottle, Policy
from freno.probe.metrics import ClusterMetric
from test.unit.test_http_auth import (
    AUDITOR,
    DEPLOY,
    OPS,
    SRE,
    START,
    TOKENS,
    ControlService,
)

HOUR = 3600.0


class StatusTests(SynchronousTestCase):
    """
    C{GET /api/v1/status}.
    """

    def test_status(self):
        """
        The node, its leader and members, and every cluster with value,
        threshold, age and host count.
        """
        s = ControlService(self)
        s.clock.advance(0.25)
        code, body = s.json("GET", "/api/v1/status")
        self.assertEqual(code, 200)
        self.assertEqual(
            body,
            {
                "node": "local", "leader": "local", "is_leader": True, "term": None,
                "state": "Leader", "healthy": True, "backend": "single",
                "members": [{"id": "local", "self": True, "leader": True, "reachable": True}],
                "clusters": [
                    {"name": "main", "value": 0.5, "threshold": 1.0, "age_ms": 250,
                     "error": None, "hosts": 3},
                ],
                "time_unix": START + 0.25,
            },
        )
        s.consensus.set_leader(False)
        s.metrics.set("main", ClusterMetric(0.0, "boom", START))
        body = s.json("GET", "/api/v1/status")[1]
        self.assertEqual((body["leader"], body["is_leader"]), (None, False))
        self.assertEqual((body["clusters"][0]["value"], body["clusters"][0]["error"]), (None, "boom"))


class ThrottleTests(SynchronousTestCase):
    """
    C{/api/v1/throttles}.
    """

    def setUp(self):
        self.s = ControlService(self)

    def test_throttle(self):
        """
        A throttle answers the resulting entry with its absolute expiry and
        its audit id, after commit; the list shows it.
        """
        code, body = self.s.json(
            "POST", "/api/v1/throttles",
            {"app": "etl", "store": "main", "ratio": 0.5, "ttl": "1h30m", "reason": "incident 42"},
        )
        self.assertEqual(code, 200)
        self.assertEqual(
            body,
            {
                "throttle": {
                    "key": "etl/main", "app": "etl", "store": "main", "ratio": 0.5,
                    "expires_at": "2023-11-14T23:43:20Z", "expires_at_unix": START + 1.5 * HOUR,
                    "reason": "incident 42", "actor": "remote:127.0.0.1", "audit_id": 1,
                },
                "audit_id": 1,
            },
        )
        listed = self.s.json("GET", "/api/v1/throttles")[1]["throttles"]
        self.assertEqual([t["key"] for t in listed], ["abusing-app", "etl/main"])
        record = self.s.json("GET", "/api/v1/audit")[1]["records"][0]
        self.assertEqual(record["route"], "POST /api/v1/throttles")
        self.assertEqual(record["params"]["ttl"], "1h30m")
        self.assertEqual(record["reason"], "incident 42")
        self.assertEqual(record["outcome"], "applied")

    def test_ttls(self):
        """
        TTLs are duration strings or seconds; none is permanent; an update
        without a ratio keeps the ratio.
        """
        for ttl, seconds in (("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 7 * 86400),
                             ("1h30m", 5400), (120, 120), (0.5, 0.5), ("1.5h", 5400)):
            body = self.s.json("POST", "/api/v1/throttles", {"app": "a", "ttl": ttl})[1]
            self.assertEqual(body["throttle"]["expires_at_unix"], START + seconds, ttl)
        self.s.json("POST", "/api/v1/throttles", {"app": "a", "ratio": 0.3})
        body = self.s.json("POST", "/api/v1/throttles", {"app": "a", "ttl": None})[1]
        self.assertEqual(body["throttle"]["expires_at"], None)
        self.assertEqual(body["throttle"]["ratio"], 0.3)

    def test_unthrottle(self):
        """
        DELETE removes a throttle (C{?store=} for a store-scoped one);
        removing something this node does not have still commits (and
        audits) the removal, answering C{removed: false} (D6: the node may
        lag behind the throttle).
        """
        self.s.json("POST", "/api/v1/throttles", {"app": "a", "store": "main"})
        self.assertEqual(self.s.json("DELETE", "/api/v1/throttles/a")[1], {"removed": False, "audit_id": 2})
        self.assertEqual(
            self.s.json("DELETE", "/api/v1/throttles/a?store=main&reason=done")[1],
            {"removed": True, "audit_id": 3},
        )
        self.assertEqual(self.s.audit()[-1].reason, "done")
        self.assertEqual(len(self.s.audit()), 3)
        self.assertNotIn("a/main", self.s.consensus.throttled_apps())

    def test_builtin(self):
        """
        The built-in C{abusing-app} cannot be changed.
        """
        for method, path, body in (
            ("POST", "/api/v1/throttles", {"app": "abusing-app"}),
            ("DELETE", "/api/v1/throttles/abusing-app", None),
        ):
            code, answer = self.s.json(method, path, body)
            self.assertEqual((code, answer["error"]["field"]), (400, "app"))

    def test_validation(self):
        """
        Bad fields answer 400 naming the field; nothing changes.
        """
        cases = [
            ({}, "app"),
            ({"app": ""}, "app"),
            ({"app": 5}, "app"),
            ({"app": "a/b"}, "app"),
            ({"app": "x" * 16385}, "app"),
            ({"app": "a", "store": ""}, "store"),
            ({"app": "a", "store": ["s"]}, "store"),
            ({"app": "a", "ratio": 1.5}, "ratio"),
            ({"app": "a", "ratio": -0.1}, "ratio"),
            ({"app": "a", "ratio": "0.5"}, "ratio"),
            ({"app": "a", "ratio": True}, "ratio"),
            ({"app": "a", "ratio": 10**400}, "ratio"),
            ({"app": "a", "ttl": 0}, "ttl"),
            ({"app": "a", "ttl": -5}, "ttl"),
            ({"app": "a", "ttl": "-1h"}, "ttl"),
            ({"app": "a", "ttl": "1 hour"}, "ttl"),
            ({"app": "a", "ttl": "1h 30m"}, "ttl"),
            ({"app": "a", "ttl": "101y"}, "ttl"),
            ({"app": "a", "ttl": "36501d"}, "ttl"),
            ({"app": "a", "ttl": 1e300}, "ttl"),
            ({"app": "a", "ttl": "9" * 400 + "d"}, "ttl"),
            ({"app": "a", "ttl": True}, "ttl"),
            ({"app": "a", "ttl": {}}, "ttl"),
            ({"app": "a", "reason": 7}, "reason"),
            ({"app": "a", "reason": "x" * 1025}, "reason"),
            ({"app": "a", "tll": "1h"}, "tll"),
        ]
        before = self.s.snapshot()
        for body, field in cases:
            code, answer = self.s.json("POST", "/api/v1/throttles", body)
            self.assertEqual(code, 400, body)
            self.assertEqual(answer["error"]["code"], "invalid_parameter")
            self.assertEqual(answer["error"]["field"], field, body)
            self.assertTrue(answer["error"]["message"].startswith(field + ": "))
        self.assertEqual(self.s.snapshot(), before)
        refused = [e for e in self.s.events if e.get("status") == 400]
        self.assertEqual(len(refused), len(cases))

    def test_bad_bodies(self):
        """
        A body that is not JSON, not an object, too large, or not sent as
        application/json is a 400 naming C{body} or C{content-type}.
        """
        for raw, content_type, field in (
            (b"{", "application/json", "body"),
            (b"\xff\xfe", "application/json", "body"),
            (b"[1]", "application/json", "body"),
            (b'{"app": NaN}', "application/json", "body"),
            (b"[" * 100000, "application/json", "body"),
            (b'{"app": "' + b"a" * 70000 + b'"}', "application/json", "body"),
            (b'{"app": "a"}', "text/plain", "content-type"),
            (b'{"app": "a"}', None, "content-type"),
        ):
            headers = {"Content-Type": [content_type]} if content_type else {}
            code, _, body = self.s.request("POST", "/api/v1/throttles", raw=raw, headers=headers)
            self.assertEqual((code, json.loads(body)["error"]["field"]), (400, field), raw[:20])
        self.assertEqual(self.s.audit(), [])
        code, _, _ = self.s.request(
            "POST", "/api/v1/throttles", raw=b'{"app":"a"}',
            headers={"Content-Type": ["application/json; charset=utf-8"]},
        )
        self.assertEqual(code, 200)

    def test_limit(self):
        """
        Adding a throttle to a full table is a 400 naming the limit, with
        no command sent; updating an existing one still works.
        """
        state = self.s.consensus.state
        state.apps = {f"a{i}": AppThrottle(None, 1.0) for i in range(MAX_ENTRIES)}
        code, body = self.s.json("POST", "/api/v1/throttles", {"app": "new"})
        self.assertEqual((code, body["error"]["field"]), (400, "app"))
        self.assertIn("at most 10000 throttled apps at a time; unthrottle some first", body["error"]["message"])
        self.assertEqual(self.s.audit(), [])
        self.assertEqual(self.s.json("POST", "/api/v1/throttles", {"app": "a7", "ratio": 0.1})[0], 200)

    def test_refused_when_applied(self):
        """
        A command refused as it is applied (a race on a full table) is a
        400 too, and its refusal is logged with its audit id.
        """
        self.s.consensus.submit = lambda command: _fired(Applied(9, "at most 10000 throttled apps at a time; unthrottle some first", "app"))
        code, body = self.s.json("POST", "/api/v1/throttles", {"app": "x"})
        self.assertEqual((code, body["error"]["field"]), (400, "app"))
        self.assertIn("(audit 9)", self.s.events[-1]["why"])


def _fired(result):
    d = Deferred()
    d.callback(result)
    return d


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


class GeneratedBodyTests(SynchronousTestCase):
    """
    Generated bodies: every answer is a 200 or a 400 naming a field, and a
    400 changes nothing.
    """

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.sampled_from([("POST", "/api/v1/throttles"), ("POST", "/api/v1/skips"),
                         ("PUT", "/api/v1/policies/app1")]),
        st.dictionaries(
            st.sampled_from(["app", "store", "ratio", "ttl", "reason", "host", "threshold",
                             "exempt", "extra"]),
            json_values,
            max_size=5,
        ),
    )
    def test_any_body(self, route, body):
        """
        Any JSON object body.
        """
        s = ControlService(self)
        before = s.snapshot()
        method, path = route
        code, answer = s.json(method, path, body)
        self.assertIn(code, (200, 400), (body, answer))
        if code == 400:
            self.assertEqual(answer["error"]["code"], "invalid_parameter")
            self.assertIsInstance(answer["error"]["field"], str)
            self.assertEqual(s.snapshot(), before)
        else:
            self.assertEqual(len(s.audit()), 1)
        self.assertEqual(s.request("GET", "/lb-check")[0], 200)

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(max_size=200))
    def test_garbage(self, raw):
        """
        Any bytes as a body.
        """
        s = ControlService(self)
        code, _, body = s.request("POST", "/api/v1/skips", raw=raw, headers={"Content-Type": ["application/json"]})
        if code == 400:
            self.assertEqual(s.audit(), [])
        else:
            self.assertEqual(code, 200, body)


class SkipTests(SynchronousTestCase):
    """
    C{/api/v1/skips}.
    """

    def test_skip_and_recover(self):
        """
        A skip without TTL lasts 60 minutes; DELETE recovers; the list
        shows active skips with their actor.
        """
        s = ControlService(self, TOKENS)
        code, body = s.json("POST", "/api/v1/skips", {"host": "db1", "reason": "maintenance"}, token=SRE)
        self.assertEqual(code, 200)
        self.assertEqual(body["skip"]["expires_at_unix"], START + HOUR)
        self.assertEqual(body["skip"]["actor"], "token:sre")
        self.assertEqual(s.json("POST", "/api/v1/skips", {"host": "db2", "ttl": "5m"}, token=OPS)[0], 200)
        hosts = [k["host"] for k in s.json("GET", "/api/v1/skips")[1]["skips"]]
        self.assertEqual(hosts, ["db1", "db2"])
        self.assertEqual(s.json("POST", "/api/v1/skips", {"host": "db3"}, token=DEPLOY)[0], 403)
        self.assertEqual(s.json("POST", "/api/v1/skips", {"host": "db3"})[0], 401)
        self.assertEqual(s.json("DELETE", "/api/v1/skips/db1", token=SRE)[1], {"removed": True, "audit_id": 3})
        self.assertEqual(s.json("DELETE", "/api/v1/skips/db1", token=SRE)[1], {"removed": False, "audit_id": 4})
        s.clock.advance(301)
        self.assertEqual(s.json("GET", "/api/v1/skips")[1], {"skips": []})


class PolicyTests(SynchronousTestCase):
    """
    C{/api/v1/policies} and their effect on checks.
    """

    def setUp(self):
        self.s = ControlService(self, TOKENS)

    def test_stricter_policy(self):
        """
        An operator sets a stricter threshold; C{/check} follows it for that
        app only; removing it restores the store's threshold.
        """
        s = self.s
        code, body = s.json("PUT", "/api/v1/policies/etl", {"store": "main", "threshold": 0.3}, token=SRE)
        self.assertEqual(code, 200)
        self.assertEqual(
            body["policy"],
            {"key": "etl/main", "app": "etl", "store": "main", "threshold": 0.3, "exempt": False,
             "reason": None, "actor": "token:sre", "audit_id": 1},
        )
        self.assertEqual(s.json("GET", "/check/etl/mysql/main")[1]["StatusCode"], 429)
        self.assertEqual(s.json("GET", "/check/etl/mysql/main")[1]["Threshold"], 0.3)
        self.assertEqual(s.json("GET", "/check/other/mysql/main")[1]["StatusCode"], 200)
        self.assertEqual([p["key"] for p in s.json("GET", "/api/v1/policies")[1]["policies"]], ["etl/main"])
        self.assertEqual(s.json("DELETE", "/api/v1/policies/etl?store=main", token=SRE)[1]["removed"], True)
        self.assertEqual(s.json("GET", "/check/etl/mysql/main")[1]["StatusCode"], 200)
        body = s.json("DELETE", "/api/v1/policies/etl", token=SRE)[1]
        self.assertEqual((body["removed"], type(body["audit_id"])), (False, int))

    def test_looser_needs_exemption(self):
        """
        A store-scoped threshold above the store's is refused unless the app
        is exempt; exempting needs an admin token, and so does changing or
        removing an exempt policy.
        """
        s = self.s
        s.metrics.set("main", ClusterMetric(1.5, None, START))
        code, body = s.json("PUT", "/api/v1/policies/big", {"store": "main", "threshold": 2.0}, token=SRE)
        self.assertEqual((code, body["error"]["field"]), (400, "threshold"))
        code, body = s.json("PUT", "/api/v1/policies/big", {"store": "main", "threshold": 2.0, "exempt": True}, token=SRE)
        self.assertEqual(code, 403)
        self.assertIn("admin", body["error"]["message"])
        self.assertEqual(s.consensus.policies(), {})
        code, body = s.json(
            "PUT", "/api/v1/policies/big", {"store": "main", "threshold": 2.0, "exempt": True, "reason": "batch"},
            token=OPS,
        )
        self.assertEqual(code, 200)
        self.assertEqual(s.audit()[-1].actor, "token:ops")
        self.assertEqual(s.audit()[-1].params["exempt"], True)
        self.assertEqual(s.json("GET", "/check/big/mysql/main")[1]["StatusCode"], 200)
        self.assertEqual(s.json("GET", "/check/small/mysql/main")[1]["StatusCode"], 429)
        code, _ = s.json("PUT", "/api/v1/policies/big", {"store": "main", "threshold": 0.5}, token=SRE)
        self.assertEqual(code, 403)
        self.assertEqual(s.json("DELETE", "/api/v1/policies/big?store=main", token=SRE)[0], 403)
        self.assertEqual(s.json("DELETE", "/api/v1/policies/big?store=main", token=OPS)[0], 200)

    def test_validation(self):
        """
        Bad policy fields answer 400 naming the field.
        """
        for body, field in (
            ({"threshold": 0}, "threshold"),
            ({"threshold": -1}, "threshold"),
            ({"threshold": "1"}, "threshold"),
            ({"exempt": "yes"}, "exempt"),
            ({"store": 3}, "store"),
            ({"ratio": 1}, "ratio"),
        ):
            code, answer = self.s.json("PUT", "/api/v1/policies/a", body, token=OPS)
            self.assertEqual((code, answer["error"]["field"]), (400, field), body)
        self.assertEqual(self.s.consensus.policies(), {})


class AuditTests(SynchronousTestCase):
    """
    C{GET /api/v1/audit}.
    """

    def test_paging(self):
        """
        Pages of records after C{since}, in commit order; C{next} is the
        cursor; C{oldest} the oldest record kept.
        """
        s = ControlService(self, audit_log_size=5)
        for i in range(8):
            s.json("POST", "/api/v1/throttles", {"app": f"a{i}"})
        body = s.json("GET", "/api/v1/audit?limit=2")[1]
        self.assertEqual([r["id"] for r in body["records"]], [4, 5])
        self.assertEqual((body["next"], body["oldest"]), (5, 4))
        body = s.json("GET", f"/api/v1/audit?since={body['next']}&limit=1000")[1]
        self.assertEqual([r["id"] for r in body["records"]], [6, 7, 8])
        self.assertEqual(s.json("GET", "/api/v1/audit?since=8")[1], {"records": [], "next": 8, "oldest": 4})
        for query, field in (("since=-1", "since"), ("since=x", "since"), ("limit=0", "limit"),
                             ("limit=1001", "limit"), ("since=" + "9" * 30, "since")):
            code, answer = s.json("GET", "/api/v1/audit?" + query)
            self.assertEqual((code, answer["error"]["field"]), (400, field), query)

    def test_long_names_and_addresses(self):
        """
        Names of any length are throttled (D48) and audited with their text
        shortened; a long X-Forwarded-For is cut so the actor stays within
        its bound.
        """
        s = ControlService(self)
        app = "a" * 10000
        code, _, _ = s.request(
            "GET", f"/throttle-app/{app}", headers={"X-Forwarded-For": ["10.0.0.1, " * 100]}
        )
        self.assertEqual(code, 200)
        self.assertIn(app, s.consensus.throttled_apps())
        record = s.json("GET", "/api/v1/audit")[1]["records"][0]
        self.assertEqual(record["params"]["app"], "a" * 256 + "...(+9744 characters)")
        self.assertLessEqual(len(record["actor"]), 255)
        self.assertLessEqual(len(record["route"]), 1024)
        code, body = s.json("POST", "/api/v1/throttles", {"app": "b" * 5000, "reason": "long"})
        self.assertEqual((code, body["throttle"]["key"]), (200, "b" * 5000))

    def test_restricted(self):
        """
        With C{RestrictAuditLog}, reading needs an audit or admin token.
        """
        s = ControlService(self, TOKENS, restrict=True)
        self.assertEqual(s.json("GET", "/api/v1/audit")[0], 401)
        self.assertEqual(s.json("GET", "/api/v1/audit", token=SRE)[0], 403)
        self.assertEqual(s.json("GET", "/api/v1/audit", token=AUDITOR)[0], 200)
        self.assertEqual(s.json("GET", "/api/v1/audit", token=OPS)[0], 200)


class ErrorTests(SynchronousTestCase):
    """
    Errors of the REST API.
    """

    def test_not_committed(self):
        """
        A command that could not be committed answers 503 with
        C{Retry-After} and the matching code; nothing changes.
        """
        s = ControlService(self)
        for error, code in (
            (NotLeaderError(), "not_leader"),
            (CommitTimeoutError("not committed within 5s"), "commit_timeout"),
            (ConsensusError("MySQL backend write failed"), "no_quorum"),
        ):
            s.consensus.reject_commands = error
            status, headers, body = s.request("POST", "/api/v1/throttles", {"app": "a"})
            self.assertEqual((status, json.loads(body)["error"]["code"]), (503, code))
            self.assertEqual(headers.getRawHeaders("retry-after"), ["1"])
        self.assertEqual(s.audit(), [])

    def test_routes(self):
        """
        Unknown routes are 404, other methods 405 with C{Allow}, OPTIONS
        200 with C{Allow}: all JSON.
        """
        s = ControlService(self)
        code, body = s.json("GET", "/api/v1/nothing")
        self.assertEqual((code, body["error"]["code"]), (404, "not_found"))
        code, headers, body = s.request("PATCH", "/api/v1/throttles")
        self.assertEqual((code, json.loads(body)["error"]["code"]), (405, "method_not_allowed"))
        self.assertEqual(headers.getRawHeaders("allow"), ["GET, HEAD, OPTIONS, POST"])
        code, headers, body = s.request("OPTIONS", "/api/v1/policies/a")
        self.assertEqual((code, body), (200, b""))
        self.assertEqual(headers.getRawHeaders("allow"), ["DELETE, OPTIONS, PUT"])
        self.assertEqual(s.request("HEAD", "/api/v1/throttles")[::2], (200, b""))

    def test_waits_for_commit(self):
        """
        A mutation answers only once its command is committed.
        """
        s = ControlService(self)
        pending = Deferred()
        s.consensus.submit = lambda command: pending
        d = s.treq.request(
            "POST", "http://freno/api/v1/throttles", data=b'{"app":"a"}',
            headers={"Content-Type": ["application/json"]},
        )
        self.assertNoResult(d)
        s.consensus.state.apps["a"] = AppThrottle(None, 1.0)
        pending.callback(Applied(1))
        s.treq.flush()
        self.assertEqual(self.successResultOf(d).code, 200)

    def test_policies_listed(self):
        """
        Policies set without the API (the replicated state) are listed.
        """
        s = ControlService(self)
        s.consensus.state.policies["x"] = Policy("x", None, 0.5)
        self.assertEqual(s.json("GET", "/api/v1/policies")[1]["policies"][0]["key"], "x")
