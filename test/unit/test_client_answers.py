"""
Reading answers (L{freno.client.answers}) and the result types
(L{freno.client.result}): a check answer from freno's status and GET body
alone, or from the C{X-Freno-*} headers; errors; listings.
"""

from __future__ import annotations

import json

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.client.answers import (
    GO_NOT_FOUND,
    Response,
    api_error,
    error_message,
    node_unusable,
    parse_leader,
    parse_time,
    read_check,
    route_missing,
    skips_from_freno,
    skips_from_rest,
    throttles_from_freno,
    throttles_from_rest,
)
from freno.client.result import (
    ALLOWED,
    ERROR,
    THROTTLED,
    CheckResult,
    NotAllowed,
    RouteNotServed,
    kind_of,
)


def body(status, value, threshold, message) -> bytes:
    return (json.dumps({"StatusCode": status, "Value": value, "Threshold": threshold,
                        "Message": message}) + "\n").encode()


class KindTests(SynchronousTestCase):
    """
    L{kind_of}: only 200 allows.
    """

    def test_kinds(self):
        """
        200 allowed; 429 and 417 throttled; everything else an error.
        """
        self.assertEqual(kind_of(200), ALLOWED)
        self.assertEqual(kind_of(429), THROTTLED)
        self.assertEqual(kind_of(417), THROTTLED)
        for status in (0, 204, 301, 400, 404, 500, 502, 503):
            self.assertEqual(kind_of(status), ERROR)

    @given(st.integers(-1000, 1000))
    def test_never_allowed_without_200(self, status):
        """
        No status but 200 is allowed.
        """
        self.assertEqual(kind_of(status) == ALLOWED, status == 200)


class ReadCheckTests(SynchronousTestCase):
    """
    L{read_check}.
    """

    def test_old_server(self):
        """
        Without headers, value, threshold and reason come from the GET body.
        """
        result = read_check(Response(429, {}, body(429, 2.5, 1, "Threshold exceeded")), "http://a")
        self.assertEqual(
            (result.status, result.kind, result.value, result.threshold, result.reason, result.node),
            (429, THROTTLED, 2.5, 1.0, "Threshold exceeded", "http://a"),
        )
        self.assertIsNone(result.data_age_ms)
        self.assertIsNone(result.retry_after)
        self.assertIsNone(result.leader)
        self.assertFalse(result.allowed)
        self.assertTrue(result.throttled)

    def test_ok_without_message(self):
        """
        A 200 with an empty message reads the status's phrase as reason.
        """
        result = read_check(Response(200, {}, body(200, 0.1, 1, "")), None)
        self.assertEqual((result.kind, result.reason), (ALLOWED, "OK"))
        self.assertTrue(result.allowed)

    def test_head_answer(self):
        """
        A HEAD answer (no body, no headers) still has its status.
        """
        result = read_check(Response(417, {}, b""), None)
        self.assertEqual((result.kind, result.value, result.reason), (THROTTLED, None, "Expectation Failed"))

    def test_headers_preferred(self):
        """
        The C{X-Freno-*} headers win over the body.
        """
        headers = {
            "x-freno-reason": "lag 2.31 on db7:3306 > 1.0", "x-freno-value": "2.31",
            "x-freno-threshold": "1", "x-freno-data-age-ms": "40", "x-freno-store": "main",
            "x-freno-leader": "node=10.0.0.1:10008; leader=true; term=7",
            "retry-after": "2", "x-freno-retry-after-ms": "1500",
        }
        result = read_check(Response(429, headers, body(429, 2, 1, "Threshold exceeded")), "u")
        self.assertEqual(result.reason, "lag 2.31 on db7:3306 > 1.0")
        self.assertEqual((result.value, result.threshold, result.data_age_ms), (2.31, 1.0, 40))
        self.assertEqual((result.store, result.retry_after), ("main", 1.5))
        self.assertEqual(result.leader, {"node": "10.0.0.1:10008", "leader": True, "term": 7})

    def test_garbage_headers_ignored(self):
        """
        Unreadable header values fall back to the body or to nothing.
        """
        headers = {"x-freno-value": "NaN", "x-freno-threshold": "x", "x-freno-data-age-ms": "-5",
                   "retry-after": "soon"}
        result = read_check(Response(429, headers, body(429, 2, 1, "m")), "u")
        self.assertEqual((result.value, result.threshold, result.data_age_ms, result.retry_after),
                         (2.0, 1.0, None, None))

    def test_null_value(self):
        """
        A body with C{null} values (NaN on the server, D16) reads as unknown.
        """
        result = read_check(Response(200, {}, b'{"StatusCode":200,"Value":null,"Threshold":1,"Message":""}'), None)
        self.assertIsNone(result.value)

    @given(st.integers(0, 599), st.binary(max_size=200),
           st.dictionaries(st.sampled_from(["x-freno-value", "x-freno-reason", "retry-after",
                                            "x-freno-leader", "x-freno-data-age-ms"]),
                           st.text(max_size=30)))
    def test_any_answer(self, status, data, headers):
        """
        Any answer reads into a result whose kind follows the status alone.
        """
        result = read_check(Response(status, headers, data), "u", now=0.0)
        self.assertEqual(result.kind, kind_of(status))
        self.assertIsInstance(result.reason, str)

    def test_to_json(self):
        """
        A result as JSON carries every field and C{allowed}.
        """
        result = CheckResult(status=200, kind=ALLOWED, leader={"leader": True})
        data = result.to_json()
        self.assertEqual(data["allowed"], True)
        self.assertEqual(data["leader"], {"leader": True})
        json.dumps(data)


class LeaderTests(SynchronousTestCase):
    """
    L{parse_leader} and L{node_unusable}.
    """

    def test_parse(self):
        """
        The header's parts; the MySQL backend's has no term; junk is left out.
        """
        self.assertEqual(parse_leader("node=a:1; leader=false"), {"node": "a:1", "leader": False})
        self.assertEqual(parse_leader("leader=maybe; term=x; junk"), {})
        self.assertIsNone(parse_leader(None))

    def test_unusable(self):
        """
        500 C{not leader}, a 500 from a node saying it is not the leader, and
        a proxy's 502/503/504 send the client to the next node; other
        answers stand.
        """
        def result(status, reason="", leader=None):
            return CheckResult(status=status, kind=kind_of(status), reason=reason, leader=leader)

        self.assertEqual(node_unusable(result(500, "not leader")), "not leader")
        self.assertEqual(node_unusable(result(500, "x", {"leader": False})), "not leader")
        self.assertIsNotNone(node_unusable(result(503, "Service Unavailable")))
        self.assertIsNone(node_unusable(result(500, "Metric not collected yet")))
        self.assertIsNone(node_unusable(result(500, "x", {"leader": True})))
        self.assertIsNone(node_unusable(result(429)))
        self.assertIsNone(node_unusable(result(404, "not leader")))


class ErrorTests(SynchronousTestCase):
    """
    L{route_missing}, L{error_message}, L{api_error}.
    """

    def test_route_missing(self):
        """
        Go's plain 404 and the REST API's C{no such route} mean the route is
        not served; a JSON 404 about something else does not.
        """
        self.assertTrue(route_missing(Response(404, {}, GO_NOT_FOUND)))
        rest = b'{"error":{"status":404,"code":"not_found","message":"no such route"}}'
        self.assertTrue(route_missing(Response(404, {}, rest)))
        self.assertFalse(route_missing(Response(404, {}, body(404, 0, 0, "No such metric"))))
        self.assertFalse(route_missing(Response(400, {}, GO_NOT_FOUND)))

    def test_messages(self):
        """
        The REST error object, freno's generic body, or the text.
        """
        rest = b'{"error":{"status":400,"code":"invalid_parameter","field":"ttl","message":"ttl: bad"}}'
        self.assertEqual(error_message(Response(400, {}, rest)), ("ttl: bad", "invalid_parameter", "ttl"))
        generic = b'{"StatusCode":400,"Message":"ttlMinutes: not an integer"}'
        self.assertEqual(error_message(Response(400, {}, generic)), ("ttlMinutes: not an integer", None, None))
        self.assertEqual(error_message(Response(405, {}, b"Method Not Allowed\n"))[0], "Method Not Allowed")
        self.assertEqual(error_message(Response(401, {}, b""))[0], "Unauthorized")

    def test_api_error(self):
        """
        A 404 for a route not served is L{RouteNotServed}, naming the path
        and the node.
        """
        error = api_error(Response(404, {}, GO_NOT_FOUND), "http://a", "/api/v1/throttles?x=1")
        self.assertIsInstance(error, RouteNotServed)
        self.assertIn("/api/v1/throttles", str(error))
        self.assertNotIn("x=1", str(error))
        error = api_error(Response(403, {}, b'{"error":{"code":"forbidden","message":"needs operator"}}'), "u", "/")
        self.assertEqual((error.status, error.code, error.node), (403, "forbidden", "u"))
        self.assertIn("needs operator", str(error))

    def test_not_allowed(self):
        """
        L{NotAllowed} says how long and how often, and what the last answer was.
        """
        error = NotAllowed(CheckResult(status=429, kind=THROTTLED, reason="lag"), 12.5, 4)
        self.assertEqual(str(error), "not allowed after 12.5s and 4 check(s): 429 lag")
        self.assertEqual(error.result.status, 429)


class ListingTests(SynchronousTestCase):
    """
    Listings from both APIs, and times.
    """

    def test_parse_time(self):
        """
        freno's nanosecond times and the REST API's; Go's zero time is never.
        """
        self.assertEqual(parse_time("2026-11-26T11:26:21.449916859Z"), 1795692381.449916)
        self.assertEqual(parse_time("2026-11-26T11:26:21Z"), 1795692381.0)
        self.assertEqual(parse_time("2026-11-26T12:26:21+01:00"), 1795692381.0)
        for text in ["0001-01-01T00:00:00Z", None, "", "yesterday", 5, "2026-13-40T00:00:00Z"]:
            self.assertIsNone(parse_time(text))

    def test_throttles_from_freno(self):
        """
        C{/throttled-apps}: keys with a store split off, the zero time as
        never.
        """
        found = throttles_from_freno({
            "app1": {"ExpireAt": "0001-01-01T00:00:00Z", "Ratio": 1},
            "app5/good": {"ExpireAt": "2026-11-26T11:26:21Z", "Ratio": 0.5},
        })
        self.assertEqual([(t.key, t.app, t.store, t.ratio, t.expires_at_unix) for t in found],
                         [("app1", "app1", None, 1.0, None), ("app5/good", "app5", "good", 0.5, 1795692381.0)])
        self.assertRaises(ValueError, throttles_from_freno, [])

    def test_throttles_from_rest(self):
        """
        C{/api/v1/throttles}, with reason, actor and audit id.
        """
        found = throttles_from_rest({"throttles": [
            {"key": "a/s", "app": "a", "store": "s", "ratio": 1.0, "expires_at_unix": 5.0,
             "reason": "r", "actor": "token:ops", "audit_id": 3},
            "junk",
        ]})
        self.assertEqual(len(found), 1)
        self.assertEqual((found[0].store, found[0].actor, found[0].audit_id), ("s", "token:ops", 3))
        self.assertRaises(ValueError, throttles_from_rest, {"throttles": None})

    def test_skips(self):
        """
        C{/skipped-hosts} and C{/api/v1/skips}.
        """
        self.assertEqual(skips_from_freno({"db1": "2026-11-26T11:26:21Z"})[0].expires_at_unix, 1795692381.0)
        found = skips_from_rest({"skips": [{"host": "db1", "expires_at_unix": 9.0, "reason": "x"}]})
        self.assertEqual((found[0].host, found[0].reason), ("db1", "x"))
        self.assertRaises(ValueError, skips_from_freno, "x")
        self.assertRaises(ValueError, skips_from_rest, {})
