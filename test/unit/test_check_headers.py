"""
Tests for the headers of check answers (L{freno.http.check_headers}) and
their words (L{freno.throttle.reasons}): every header on every check route
for HEAD and GET, every kind of reason, and the C{Retry-After} rules
(docs/decisions.md, D58 and D59), through the whole site in memory.
"""

from __future__ import annotations

import attr
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from freno.config.model import ProbeSettings
from freno.consensus.audit import EntryMeta
from freno.consensus.state import AppThrottle, Policy
from freno.hosts import HostKey
from freno.http import check_headers
from freno.http.check_headers import (
    LeaderHeader,
    _write_slowly,
    header_block,
    retry_headers,
    write_check_headers,
)
from freno.probe.breakdown import format_number
from freno.probe.metrics import ClusterMetric
from freno.throttle.reasons import clean, quantity_word, reason_text
from freno.throttle.result import (
    ERROR,
    NOT_LEADER_RESULT,
    THROTTLED,
    CheckResult,
    Explanation,
)
from test.unit.answer_harness import START, Node, TermConsensus, cluster, host

DB1, DB2, DB7 = host("db1"), host("db2"), host("db7")
ROUTES = (
    "/check/app/mysql/main",
    "/check-if-exists/app/mysql/main",
    "/check-read/app/mysql/main/1",
    "/check-read-if-exists/app/mysql/main/1",
)


def make_node(testcase, **kw):
    """
    A node with C{main} (threshold 1, hosts db1 0.2 and db7 0.31) and
    C{other} (threshold 2, host db2 0.5).
    """
    return Node(
        testcase,
        [cluster("main", 1.0), cluster("other", 2.0)],
        {"main": [DB1, DB7], "other": [DB2]},
        {DB1: 0.2, DB7: 0.31, DB2: 0.5},
        **kw,
    )


class EveryRouteTests(SynchronousTestCase):
    """
    Every check route answers every header, HEAD and GET alike, and GET's
    body stays freno's.
    """

    def setUp(self):
        self.node = make_node(self, consensus=None)

    def test_ok_on_every_route(self):
        """
        A 200 carries the reason, value, threshold, store, data age and
        leader, and no C{Retry-After}; HEAD and GET carry the same headers.
        """
        for path in ROUTES:
            for method in ("HEAD", "GET"):
                code, headers = self.node.headers(method, path)
                self.assertEqual(code, 200, path)
                self.assertEqual(
                    headers,
                    {
                        "x-freno-reason": "lag 0.31 on db7:3306 <= 1.0"
                        + (" (check-read threshold)" if "read" in path else ""),
                        "x-freno-value": "0.31",
                        "x-freno-threshold": "1",
                        "x-freno-store": "main",
                        "x-freno-data-age-ms": headers["x-freno-data-age-ms"],
                        "x-freno-leader": "node=node1:8087; leader=true",
                    },
                    (method, path),
                )
                self.assertLessEqual(int(headers["x-freno-data-age-ms"]), 100)

    def test_429_on_every_route(self):
        """
        A 429 also carries C{Retry-After} (at least 1) and the precise
        C{X-Freno-Retry-After-Ms}: two probe intervals.
        """
        self.node.set_value(DB7, 2.31)
        for path in ROUTES:
            for method in ("HEAD", "GET"):
                code, headers = self.node.headers(method, path)
                self.assertEqual(code, 429, path)
                self.assertEqual(headers["x-freno-reason"].split(" (")[0], "lag 2.31 on db7:3306 > 1.0")
                self.assertEqual(headers["retry-after"], "1")
                self.assertEqual(headers["x-freno-retry-after-ms"], "100")
                self.assertEqual(headers["x-freno-value"], "2.31")

    def test_get_body_unchanged(self):
        """
        GET's body is freno's JSON, byte for byte.
        """
        self.node.set_value(DB7, 2.31)
        _, body = self.node.request("GET", "/check/app/mysql/main")
        self.assertEqual(
            body, b'{"StatusCode":429,"Value":2.31,"Threshold":1,"Message":"Threshold exceeded"}\n'
        )
        response, body = self.node.request("HEAD", "/check/app/mysql/main")
        self.assertEqual(body, b"")
        self.assertEqual(response.headers.getRawHeaders(b"content-length"), [b"0"])

    def test_data_age_follows_the_clock(self):
        """
        The data age is the aggregated value's age when answered.
        """
        node = make_node(self, probe=ProbeSettings(interval=10.0, freshness=30.0))
        node.metrics.set("main", ClusterMetric(0.4, None, node.clock.seconds() - 0.123, DB1))
        _, headers = node.headers("HEAD", "/check/app/mysql/main")
        self.assertEqual(headers["x-freno-data-age-ms"], "123")
        node.clock.advance(0.2)
        _, headers = node.headers("HEAD", "/check/app/mysql/main")
        self.assertEqual(headers["x-freno-data-age-ms"], "323")

    def test_if_exists_404(self):
        """
        if-exists's 200 for an unknown cluster still says why.
        """
        code, headers = self.node.headers("HEAD", "/check-if-exists/app/mysql/nosuch")
        self.assertEqual(code, 200)
        self.assertEqual(headers["x-freno-reason"], "no such cluster")
        self.assertEqual(headers["x-freno-store"], "nosuch")
        self.assertNotIn("x-freno-data-age-ms", headers)
        self.assertNotIn("retry-after", headers)

    def test_bad_request_has_no_answer_headers(self):
        """
        A 400 (bad check-read threshold) is no check answer: no such headers.
        """
        code, headers = self.node.headers("GET", "/check-read/app/mysql/main/0")
        self.assertEqual((code, headers), (400, {}))


class ReasonTests(SynchronousTestCase):
    """
    Every kind of reason, through the site.
    """

    def setUp(self):
        self.node = make_node(self)

    def reason(self, path="/check/app/mysql/main", method="HEAD"):
        code, headers = self.node.headers(method, path)
        return code, headers["x-freno-reason"]

    def test_threshold_and_ok(self):
        """
        C{lag <v> on <host> > <threshold>} and C{<=}.
        """
        self.assertEqual(self.reason(), (200, "lag 0.31 on db7:3306 <= 1.0"))
        self.node.set_value(DB1, 2.5)
        self.assertEqual(self.reason(), (429, "lag 2.5 on db1:3306 > 1.0"))

    def test_policy(self):
        """
        A policy that set the threshold is named: stricter, or exempt.
        """
        self.node.consensus.state.policies["app"] = Policy("app", None, 0.3)
        self.assertEqual(self.reason(), (429, "lag 0.31 on db7:3306 > 0.3 (policy app)"))
        self.node.consensus.state.policies["app/main"] = Policy("app", "main", 3.0, exempt=True)
        self.node.set_value(DB1, 2.5)
        self.assertEqual(self.reason(), (200, "lag 2.5 on db1:3306 <= 3.0 (exempt policy app/main)"))
        self.assertEqual(self.reason("/check/other/mysql/main"), (429, "lag 2.5 on db1:3306 > 1.0"))
        self.assertEqual(
            self.reason("/check-read/app/mysql/main/2"), (429, "lag 2.5 on db1:3306 > 2.0 (check-read threshold)")
        )

    def test_throttle_with_meta(self):
        """
        A throttle set through the control plane says who set it and why.
        """
        self.node.consensus.state.apps["app"] = AppThrottle(
            START + 3600, 1.0, EntryMeta(4, "ops", "migration freeze")
        )
        self.assertEqual(
            self.reason(),
            (417, "app throttled by ops until 2023-11-14T23:13:20Z (ratio 1): migration freeze"),
        )
        self.node.consensus.state.apps["app"] = AppThrottle(
            START + 3600, 1.0, EntryMeta(5, "deploy", "other reason")
        )
        self.assertEqual(
            self.reason(),
            (417, "app throttled by deploy until 2023-11-14T23:13:20Z (ratio 1): other reason"),
        )

    def test_value_word_for_other_queries(self):
        """
        A query that is no lag query says C{value}.
        """
        self.assertEqual(quantity_word(""), "lag")
        self.assertEqual(quantity_word("select lag from meta.x"), "lag")
        self.assertEqual(quantity_word("SELECT ... FROM meta.HEARTBEAT"), "lag")
        self.assertEqual(quantity_word("show global status like 'threads_running'"), "value")
        node = Node(self, [cluster("t", 50.0, metric_query="show global status like 'Threads_running'")],
                    {"t": [DB1]}, {DB1: 12.0})
        code, headers = node.headers("HEAD", "/check/app/mysql/t")
        self.assertEqual(headers["x-freno-reason"], "value 12.0 on db1:3306 <= 50.0")

    def test_throttled(self):
        """
        C{app throttled until <time> (ratio <r>)}; permanently; store-scoped.
        """
        self.node.consensus.throttle_app("app", START + 3600, 1.0)
        self.assertEqual(self.reason(), (417, "app throttled until 2023-11-14T23:13:20Z (ratio 1)"))
        self.node.consensus.throttle_app("app", None, 1.0)
        self.assertEqual(self.reason(), (417, "app throttled with no expiry (ratio 1)"))
        self.node.consensus.unthrottle_app("app")
        self.node.consensus.throttle_app("app/main", START + 60, 0.75)
        self.node.dice = 0.5
        self.assertEqual(
            self.reason(), (417, "app throttled on main until 2023-11-14T22:14:20Z (ratio 0.75)")
        )
        self.assertEqual(self.reason("/check/app/mysql/other")[0], 200)

    def test_throttled_by_operator(self):
        """
        A throttle that says who set it and why (the control plane's) is
        quoted, cleaned of control characters and cut.
        """
        meta = EntryMeta(3, "ops", "deploy\r\nfreeze " + "x" * 300)
        throttle = AppThrottle(START + 3600, 1.0, meta)
        result = CheckResult(
            417, 0.0, 0.0, "App denied", Explanation(THROTTLED, "main", key="app", throttle=throttle, meta=meta)
        )
        text = reason_text(result)
        self.assertTrue(
            text.startswith("app throttled by ops until 2023-11-14T23:13:20Z (ratio 1): deploy freeze xxx"),
            text,
        )
        self.assertEqual(len(text), len("app throttled by ops until 2023-11-14T23:13:20Z (ratio 1): ") + 200 - 1)

    def test_built_in(self):
        """
        C{abusing-app} is always throttled.
        """
        self.assertEqual(
            self.reason("/check/abusing-app/mysql/main"),
            (417, "app abusing-app is always throttled (built in)"),
        )

    def test_low_priority(self):
        """
        A low-priority check while a normal client was refused.
        """
        self.node.set_value(DB1, 2.5)
        self.reason()
        self.assertEqual(
            self.reason("/check/lp/mysql/main?p=low"),
            (417, "low priority: a normal client was refused on mysql/main within the last second"),
        )

    def test_no_app_no_cluster_no_store_type(self):
        """
        The empty app, an unknown cluster, an unknown store type.
        """
        self.assertEqual(self.reason("/check//mysql/main"), (417, "no app indicated"))
        self.assertEqual(self.reason("/check/app/mysql/nosuch"), (404, "no such cluster"))
        code, headers = self.node.headers("HEAD", "/check/app/pg/main")
        self.assertEqual((code, headers["x-freno-reason"]), (404, "no such store type"))
        self.assertNotIn("x-freno-store", headers)

    def test_not_leader(self):
        """
        A follower says so, and that it does not lead.
        """
        self.node.consensus.set_leader(False)
        code, headers = self.node.headers("GET", "/check/app/mysql/main")
        self.assertEqual((code, headers["x-freno-reason"]), (500, "not leader"))
        self.assertEqual(headers["x-freno-leader"], "node=node1:8087; leader=false")
        self.assertNotIn("retry-after", headers)

    def test_not_collected(self):
        """
        A configured cluster without a value; a host without a first result.
        """
        node = Node(self, [cluster("main")], {"main": [DB1]}, {DB1: 0.2})
        node.source.hold(DB7)
        node.sources["main"].set_hosts([DB1, DB7])
        node.inventory.refresh()
        node.settle()
        code, headers = node.headers("HEAD", "/check/app/mysql/main")
        self.assertEqual(code, 500)
        self.assertEqual(headers["x-freno-reason"], "metric not collected yet (no result from db7:3306 yet)")
        bare = Node(self, [cluster("main")], {"main": []}, {})
        self.assertEqual(bare.headers("HEAD", "/check/app/mysql/main")[1]["x-freno-reason"],
                         "metric not collected yet")

    def test_stale(self):
        """
        C{metric stale: value <age> s old (measured on <host>)}, with the
        data age.
        """
        self.node.metrics.set("main", ClusterMetric(0.4, None, self.node.clock.seconds() - 1.2, DB7))
        code, headers = self.node.headers("HEAD", "/check/app/mysql/main")
        self.assertEqual(code, 500)
        self.assertEqual(headers["x-freno-reason"], "metric stale: value 1.2 s old (measured on db7:3306)")
        self.assertEqual(headers["x-freno-data-age-ms"], "1200")

    def test_host_error(self):
        """
        A host's error names the host once.
        """
        self.node.source.set_error(DB7, "replication not running; Slave_IO_Running=No")
        self.node.settle()
        self.assertEqual(
            self.reason(),
            (500, "db7:3306: replication not running; Slave_IO_Running=No"),
        )
        self.node.source.set_error(DB7, "dial tcp db7:3306: connection refused", dial=True)
        self.node.settle()
        self.assertEqual(self.reason(), (500, "dial tcp db7:3306: connection refused"))

    def test_no_hosts(self):
        """
        No host gave a value.
        """
        self.node.consensus.skip_host("db1", START + 600)
        self.node.consensus.skip_host("db7", START + 600)
        self.node.settle()
        self.assertEqual(self.reason(), (500, "No hosts found"))

    def test_shared_domain(self):
        """
        Another domain's unhealthy metric: a 429 that looks again after the
        health interval.
        """
        class Unhealthy:
            def seconds_since_healthy(self, metric_name, now):
                return 3.0

        node = make_node(self, shared_domain=Unhealthy())
        code, headers = node.headers("HEAD", "/check/app/mysql/main")
        self.assertEqual(code, 429)
        self.assertEqual(headers["x-freno-reason"], "another domain's leader reports mysql/main unhealthy")
        self.assertEqual((headers["retry-after"], headers["x-freno-retry-after-ms"]), ("1", "1000"))

    def test_holding(self):
        """
        Hysteresis: below the threshold but not below the resume threshold.
        """
        node = Node(self, [cluster("main", 1.0, resume_threshold=0.8)], {"main": [DB1]}, {DB1: 1.5})
        node.set_value(DB1, 0.9)
        code, headers = node.headers("HEAD", "/check/app/mysql/main")
        self.assertEqual(code, 429)
        self.assertEqual(
            headers["x-freno-reason"],
            "lag 0.9 on db1:3306 not below resume threshold 0.8 (holding since it went above 1.0)",
        )
        self.assertEqual(headers["x-freno-retry-after-ms"], "100")

    def test_names_cleaned(self):
        """
        Control characters in names never reach a header; other characters
        are sent as UTF-8.
        """
        code, headers = self.node.headers("HEAD", "/check/app/mysql/n%0D%0Ax%C3%A9")
        self.assertEqual(code, 404)
        self.assertEqual(headers["x-freno-store"], "n xé")

    def test_unexplained(self):
        """
        A result built without an explanation says its message.
        """
        self.assertEqual(reason_text(CheckResult(500, 0.0, 0.0, "boom")), "boom")
        self.assertEqual(
            reason_text(CheckResult(500, 0.0, 0.0, "boom", Explanation(ERROR, "m", DB1))),
            "db1:3306: boom",
        )


class RetryAfterTests(SynchronousTestCase):
    """
    C{Retry-After} and C{X-Freno-Retry-After-Ms} (D59).
    """

    def retry(self, node, path="/check/app/mysql/main"):
        code, headers = node.headers("HEAD", path)
        return code, headers.get("retry-after"), headers.get("x-freno-retry-after-ms")

    def test_429_two_probe_intervals(self):
        """
        A 429 retries after two probe intervals; whole seconds round up.
        """
        node = make_node(self, probe=ProbeSettings(interval=0.7, freshness=2.0))
        node.set_value(DB7, 5.0)
        node.clock.advance(1.4)
        self.assertEqual(self.retry(node), (429, "2", "1400"))

    def test_throttle_until_expiry_capped(self):
        """
        A ratio-1 throttle: until its expiry, at most 60 s; a permanent one
        60 s; the precise wait shrinks with the clock.
        """
        node = make_node(self)
        node.consensus.throttle_app("app", START + 3600, 1.0)
        self.assertEqual(self.retry(node), (417, "60", "60000"))
        node.consensus.throttle_app("app", None, 1.0)
        self.assertEqual(self.retry(node), (417, "60", "60000"))
        node.consensus.throttle_app("app", node.clock.seconds() + 10.5, 1.0)
        self.assertEqual(self.retry(node), (417, "11", "10500"))
        node.clock.advance(10.25)
        self.assertEqual(self.retry(node), (417, "1", "250"))
        node.clock.advance(0.25)
        self.assertEqual(self.retry(node)[0], 200)

    def test_ratio_throttle(self):
        """
        A throttle with ratio below 1: two probe intervals (the next roll may
        pass), but never past its expiry.
        """
        node = make_node(self, dice=0.1)
        node.consensus.throttle_app("app", START + 3600, 0.5)
        self.assertEqual(self.retry(node), (417, "1", "100"))
        node.consensus.throttle_app("app", node.clock.seconds() + 0.04, 0.5)
        self.assertEqual(self.retry(node), (417, "1", "40"))

    def test_low_priority_window(self):
        """
        Low priority: until the one-second window ends.
        """
        node = make_node(self)
        node.set_value(DB7, 5.0)
        node.status("/check/app/mysql/main")
        node.clock.advance(0.3)
        self.assertEqual(self.retry(node, "/check/lp/mysql/main?p=low"), (417, "1", "700"))

    def test_no_app_and_built_in(self):
        """
        The empty app and C{abusing-app}: 60 s (nothing will change sooner).
        """
        node = make_node(self)
        self.assertEqual(self.retry(node, "/check//mysql/main"), (417, "60", "60000"))
        self.assertEqual(self.retry(node, "/check/abusing-app/mysql/main"), (417, "60", "60000"))

    def test_none_on_200_404_500(self):
        """
        200, 404 and 500 carry none.
        """
        node = make_node(self)
        for path in ("/check/app/mysql/main", "/check/app/mysql/nosuch", "/check/app/x/main"):
            self.assertEqual(self.retry(node, path)[1:], (None, None), path)
        node.consensus.set_leader(False)
        self.assertEqual(self.retry(node), (500, None, None))

    @given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
    def test_retry_headers(self, seconds):
        """
        C{Retry-After} is the whole seconds rounded up, at least 1; the
        precise header the milliseconds.
        """
        block = retry_headers(seconds)
        whole = int(block[check_headers.RETRY_AFTER][0])
        millis = int(block[check_headers.RETRY_AFTER_MS][0])
        self.assertGreaterEqual(whole, 1)
        self.assertGreaterEqual(whole, seconds)
        self.assertLess(whole - 1, max(seconds, 1))
        self.assertLessEqual(abs(millis - seconds * 1000), 0.5)


class LeaderHeaderTests(SynchronousTestCase):
    """
    C{X-Freno-Leader}.
    """

    def test_term(self):
        """
        A backend with terms adds the term, and a new term shows at once.
        """
        node = make_node(self, consensus=None)
        consensus = TermConsensus(node.clock, service_id="10.0.0.1:10008")
        node = make_node(self, consensus=consensus)
        self.assertEqual(
            node.headers("HEAD", "/check/app/mysql/main")[1]["x-freno-leader"],
            "node=10.0.0.1:10008; leader=true; term=7",
        )
        consensus.current_term = 8
        consensus.set_leader(False)
        self.assertEqual(
            node.headers("HEAD", "/check/app/mysql/main")[1]["x-freno-leader"],
            "node=10.0.0.1:10008; leader=false; term=8",
        )

    def test_cached(self):
        """
        The value is built once per (leads, term).
        """
        calls = []

        def node_id():
            calls.append(1)
            return "n"

        header = LeaderHeader(node_id)
        self.assertIs(header.value(True), header.value(True))
        self.assertEqual(header.value(False), (b"node=n; leader=false",))
        self.assertEqual(calls, [1])


class BlockTests(SynchronousTestCase):
    """
    The cached blocks and the two ways of writing them.
    """

    def test_cached_per_result(self):
        """
        Equal results share one rendered block.
        """
        why = Explanation("ok", "main", DB1, START, "lag")
        one = header_block(CheckResult(200, 0.5, 1.0, "", why))
        self.assertIs(one, header_block(CheckResult(200, 0.5, 1.0, "", why)))
        self.assertIsNot(one, header_block(CheckResult(200, 0.5, 1.0, "", attr.evolve(why, host=DB2))))

    def test_bounded(self):
        """
        The cache never holds more than its bound.
        """
        for i in range(check_headers._BLOCK_CACHE_SIZE + 10):
            header_block(CheckResult(200, float(i), 1.0, "", Explanation("ok", "m")))
        self.assertLessEqual(len(check_headers._BLOCKS), check_headers._BLOCK_CACHE_SIZE)

    def test_slow_path_same_headers(self):
        """
        Writing through C{setRawHeaders} gives the same headers as the fast
        path (which Twisted's header storage allows).
        """
        leader = LeaderHeader("n", lambda: 3)
        results = [
            CheckResult(429, 2.0, 1.0, "Threshold exceeded",
                        Explanation("threshold", "main", DB7, START - 0.05, retry_after=0.1)),
            CheckResult(417, 0.0, 0.0, "App denied",
                        Explanation(THROTTLED, "main", key="app", throttle=AppThrottle(START + 5, 1.0),
                                    retry_after=60.0, retry_until=START + 5)),
            NOT_LEADER_RESULT,
        ]

        class Request:
            def __init__(self):
                self.responseHeaders = Headers()

        for result in results:
            fast, slow = Request(), Request()
            write_check_headers(fast, result, START, leader)
            _write_slowly(slow.responseHeaders, result, START, leader)
            as_lists = lambda r: sorted((k, list(v)) for k, v in r.responseHeaders.getAllRawHeaders())
            self.assertEqual(as_lists(fast), as_lists(slow))
            self.assertEqual(
                dict(as_lists(fast)).get(b"Retry-After"),
                [b"5"] if result.status_code == 417 else ([b"1"] if result.status_code == 429 else None),
            )

    def test_fallback_without_raw_headers(self):
        """
        Headers without Twisted's dict storage are written one by one.
        """
        calls = []

        class OtherHeaders:
            def setRawHeaders(self, name, values):
                calls.append((name, values))

        class Request:
            responseHeaders = OtherHeaders()

        write_check_headers(Request(), NOT_LEADER_RESULT, START, LeaderHeader("n"))
        self.assertIn((check_headers.LEADER, [b"node=n; leader=false"]), calls)


class WordTests(SynchronousTestCase):
    """
    Numbers and cleaning.
    """

    def test_format_number(self):
        """
        Short numbers: three decimals at most, one kept.
        """
        self.assertEqual(
            [format_number(v) for v in (2.31, 1.0, 0, 1234.5678, 0.000123456, 2.0001, -1.5)],
            ["2.31", "1.0", "0.0", "1234.568", "0.000123", "2.0", "-1.5"],
        )
        self.assertEqual(format_number(float("nan")), "nan")

    @settings(max_examples=200)
    @given(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=0, max_value=1e9),
        st.text(min_size=1, max_size=40),
        st.sampled_from(["ok", "threshold", "holding", "stale", "error", "not-collected"]),
    )
    def test_reason_is_a_header_value(self, value, threshold, name, kind):
        """
        Whatever the numbers and names, a reason has no control character
        and renders as a header.
        """
        why = Explanation(kind, name, HostKey(name, 1), START, "lag", resume_threshold=0.5, detail=name)
        result = CheckResult(200, value, threshold, name, why)
        text = reason_text(result)
        self.assertEqual(clean(text), text)
        block = header_block(result)
        for values in block.values():
            self.assertNotIn(b"\r", values[0])
            self.assertNotIn(b"\n", values[0])


class LongNameTests(SynchronousTestCase):
    """
    Long names are answered, and not cached.
    """

    def test_long_store_not_cached(self):
        """
        A result naming a long store renders its headers and body but keeps
        neither.
        """
        from freno.http import responses

        node = make_node(self)
        name = "m" * 8000
        code, headers = node.headers("GET", f"/check/app/mysql/{name}")
        self.assertEqual((code, headers["x-freno-store"]), (404, name))
        self.assertFalse(any(len(r.explanation.store) > 512 for r in check_headers._BLOCKS))
        self.assertFalse(any(len(r.explanation.store) > 512 for r in responses._BODIES))
