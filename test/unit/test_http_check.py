"""
Tests for L{freno.http.check_resource}: the four check routes in memory,
through the whole site (StubTreq).
"""

from __future__ import annotations

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site
from twisted.web.test.requesthelper import DummyRequest

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings
from freno.consensus.local import LocalConsensus
from freno.http.site import FrenoSite, build_site
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.metrics.catalogue import CHECKS
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry

START = 1_700_000_000.0


class Service:
    """
    A whole site over a L{LocalConsensus} and one cluster C{main}
    (threshold 1, value 0.5) plus C{empty} (threshold 2, no metric).
    """

    def __init__(self, testcase, value=0.5, dice=0.5):
        self.testcase = testcase
        self.clock = Clock()
        self.clock.advance(START)
        clusters = {
            "main": ClusterSettings(name="main", throttle_threshold=1.0),
            "empty": ClusterSettings(name="empty", throttle_threshold=2.0),
        }
        self.config = Config(
            mysql=MySQLStoreSettings(clusters=clusters),
            memcache_servers=("m1:11211",),
        )
        self.metrics = AggregatedMetrics(self.clock, {"main": 1.0, "empty": 2.0}, 5.0)
        self.consensus = LocalConsensus(self.clock)
        self.stats = Registry()
        self.dice = dice
        self.site = build_site(
            clock=self.clock,
            config=self.config,
            consensus=self.consensus,
            metrics=self.metrics,
            registry=self.stats,
            hostname="node1",
            random=lambda: self.dice,
        )
        self.treq = StubTreq(self.site.resource)
        if value is not None:
            self.set_value(value)

    def set_value(self, value, error=None):
        """
        Set C{main}'s metric, measured now.
        """
        self.metrics.set("main", ClusterMetric(value, error, self.clock.seconds()))

    def request(self, method, path, headers=None):
        """
        Issue a request; return C{(response, body bytes)}.
        """
        d = self.treq.request(
            method, "http://freno" + path, headers=headers, allow_redirects=False
        )
        response = self.testcase.successResultOf(d)
        body = self.testcase.successResultOf(response.content())
        return response, body

    def get(self, path, **kw):
        """
        GET C{path}: C{(status, body)}.
        """
        response, body = self.request("GET", path, **kw)
        return response.code, body

    def head(self, path, **kw):
        """
        HEAD C{path}: C{(status, body)}.
        """
        response, body = self.request("HEAD", path, **kw)
        return response.code, body


def header(response, name):
    """
    The first value of a response header, or C{None}.
    """
    values = response.headers.getRawHeaders(name.encode("ascii"))
    return values[0] if values else None


class CheckRouteTests(SynchronousTestCase):
    """
    C{/check}, C{/check-if-exists}, C{/check-read}, C{/check-read-if-exists}.
    """

    def setUp(self):
        self.s = Service(self)

    def test_check_get(self):
        """
        GET answers the CheckResult JSON with application/json.
        """
        response, body = self.s.request("GET", "/check/app/mysql/main")
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b'{"StatusCode":200,"Value":0.5,"Threshold":1,"Message":""}\n')
        self.assertEqual(header(response, "content-type"), b"application/json")

    def test_check_head(self):
        """
        HEAD answers the status only.
        """
        self.s.set_value(2.0)
        response, body = self.s.request("HEAD", "/check/app/mysql/main")
        self.assertEqual((response.code, body), (429, b""))
        self.assertIsNone(header(response, "content-type"))

    def test_if_exists(self):
        """
        if-exists turns 404 into 200 (body too); plain check stays 404.
        """
        self.assertEqual(
            self.s.get("/check-if-exists/app/mysql/nosuch"),
            (200, b'{"StatusCode":200,"Value":0,"Threshold":0,"Message":"No such metric"}\n'),
        )
        self.assertEqual(
            self.s.get("/check-if-exists/app/pg/x")[0], 200
        )
        self.assertEqual(
            self.s.get("/check/app/pg/x"),
            (404, b'{"StatusCode":404,"Value":0,"Threshold":0,"Message":"No such metric"}\n'),
        )
        self.assertEqual(self.s.get("/check-if-exists/app/mysql/empty"),
                         (500, b'{"StatusCode":500,"Value":0,"Threshold":2,'
                               b'"Message":"Metric not collected yet"}\n'))

    def test_check_read(self):
        """
        check-read compares with the path's threshold; if-exists converts.
        """
        self.assertEqual(
            self.s.get("/check-read/app/mysql/main/0.25"),
            (429, b'{"StatusCode":429,"Value":0.5,"Threshold":0.25,"Message":"Threshold exceeded"}\n'),
        )
        self.assertEqual(self.s.get("/check-read/app/mysql/main/1e3")[0], 200)
        self.assertEqual(
            self.s.get("/check-read-if-exists/app/mysql/nosuch/1"),
            (200, b'{"StatusCode":200,"Value":0,"Threshold":1,"Message":"No such metric"}\n'),
        )

    def test_check_read_bad_threshold(self):
        """
        A threshold that is not a finite number above 0 answers 400 naming
        it (B17), on every check-read route.
        """
        for route in ("check-read", "check-read-if-exists"):
            for bad in ("0", "-1", "nan", "NaN", "inf", "+Inf", "abc", "", "1e400", "0x10"):
                code, body = self.s.get(f"/{route}/app/mysql/main/{bad}")
                self.assertEqual(code, 400, bad)
                self.assertIn(b'"Message":"threshold: ', body)
                self.assertEqual(self.s.head(f"/{route}/app/mysql/main/{bad}"), (400, b""))

    def test_empty_app(self):
        """
        An empty app segment is an empty app: 417.
        """
        self.assertEqual(
            self.s.get("/check//mysql/main"),
            (417, b'{"StatusCode":417,"Value":0.5,"Threshold":1,"Message":"no app indicated"}\n'),
        )

    def test_percent_2f(self):
        """
        Routing is on the decoded path: %2F separates segments.
        """
        self.assertEqual(self.s.get("/check/a%2Fx/mysql/main")[0], 404)
        self.assertEqual(self.s.get("/check/a/mysql%2Fmain")[0], 200)
        self.assertEqual(self.s.get("/check-read/a/mysql/main%2F0.1")[0], 429)

    def test_unknown_paths(self):
        """
        Other /check... paths are Go's text 404.
        """
        for path in ("/check", "/check/a", "/check/a/mysql", "/checks/a/b/c",
                     "/check/a/mysql/main/extra", "/check-read/a/mysql/main"):
            response, body = self.s.request("GET", path)
            self.assertEqual((response.code, body), (404, b"404 page not found\n"), path)
            self.assertEqual(header(response, "content-type"), b"text/plain; charset=utf-8")

    def test_trailing_slash_redirect(self):
        """
        A trailing slash redirects: 301 on GET, 307 otherwise.
        """
        response, _ = self.s.request("GET", "/check/a/mysql/main/?p=low")
        self.assertEqual(response.code, 301)
        self.assertEqual(header(response, "location"), b"/check/a/mysql/main?p=low")
        response, _ = self.s.request("HEAD", "/check/a/mysql/main/")
        self.assertEqual(response.code, 307)

    def test_methods(self):
        """
        OPTIONS answers 200 with Allow; other methods 405 with Allow.
        """
        response, body = self.s.request("OPTIONS", "/check/a/mysql/main")
        self.assertEqual((response.code, body), (200, b""))
        self.assertEqual(header(response, "allow"), b"GET, HEAD, OPTIONS")
        for method in ("POST", "PUT", "DELETE"):
            response, body = self.s.request(method, "/check/a/mysql/main")
            self.assertEqual(response.code, 405)
            self.assertEqual(header(response, "allow"), b"GET, HEAD, OPTIONS")

    def test_long_names(self):
        """
        Names of any length are checked normally (freno accepted them; a 400
        reads as "throttled forever" to a client): a long app gets its
        answer, a long unknown cluster or store type its 404.
        """
        for length in (129, 1000, 8000):
            app = "a" * length
            self.assertEqual(
                self.s.get(f"/check/{app}/mysql/main"),
                (200, b'{"StatusCode":200,"Value":0.5,"Threshold":1,"Message":""}\n'),
            )
            self.assertEqual(self.s.head(f"/check-read/{app}/mysql/main/0.1")[0], 429)
            self.assertEqual(self.s.get("/check/a/mysql/" + "m" * length)[0], 404)
            self.assertEqual(self.s.get(f"/check-if-exists/a/{app}/main")[0], 200)

    def test_not_leader(self):
        """
        A non-leader answers 500 "not leader" on every check route, and still
        records the app.
        """
        self.s.consensus.set_leader(False)
        for path in ("/check/a/mysql/main", "/check-if-exists/a/mysql/nosuch",
                     "/check-read/a/mysql/main/1", "/check-read-if-exists/a/pg/x/1"):
            self.assertEqual(
                self.s.get(path),
                (500, b'{"StatusCode":500,"Value":0,"Threshold":0,"Message":"not leader"}\n'),
            )
        code, body = self.s.get("/recent-apps")
        self.assertIn(b'"a/127.0.0.1"', body)

    def test_throttled_app(self):
        """
        A throttled app is 417 App denied.
        """
        self.s.get("/throttle-app/a")
        self.assertEqual(
            self.s.get("/check/a/mysql/main"),
            (417, b'{"StatusCode":417,"Value":0,"Threshold":0,"Message":"App denied"}\n'),
        )

    def test_low_priority_window(self):
        """
        C{?p=low} gets 417 within one second of a normal client's 429, and
        the request's own flag does not leak into others.
        """
        self.s.set_value(2.0)
        self.assertEqual(self.s.get("/check/lp/mysql/main?p=low")[0], 429)
        self.assertEqual(self.s.get("/check/n/mysql/main")[0], 429)
        self.assertEqual(self.s.get("/check/lp/mysql/main?p=low")[0], 417)
        self.assertEqual(self.s.get("/check/lp/mysql/main?p=lowish")[0], 429)
        self.s.clock.advance(1.0)
        self.s.set_value(2.0)
        self.assertEqual(self.s.get("/check/lp/mysql/main?p=low")[0], 429)

    def test_forwarded_for(self):
        """
        The recent-apps key uses X-Forwarded-For verbatim, else the peer.
        """
        self.s.get("/check/a/mysql/main", headers={"X-Forwarded-For": "10.0.0.1, 10.0.0.2"})
        code, body = self.s.get("/recent-apps")
        self.assertIn(b'"a/10.0.0.1, 10.0.0.2"', body)

    def test_counts(self):
        """
        Checks are counted with freno's names and the labeled series.
        """
        self.s.get("/check/a/mysql/main")
        self.s.get("/check-if-exists/a/mysql/nosuch")
        counters = variables(self.s.stats).counters
        self.assertEqual(counters["check.a.mysql.main.total"], 1)
        self.assertEqual(counters["check.any.error"], 1)
        self.assertEqual(self.s.stats.value(CHECKS, ("a", "mysql", "other", "404")), 1)

    def test_metric_error(self):
        """
        A metric error is a 500 CheckResult with its text.
        """
        self.s.set_value(0.0, "Metric not collected yet")
        self.assertEqual(
            self.s.get("/check/a/mysql/main"),
            (500, b'{"StatusCode":500,"Value":0,"Threshold":1,"Message":"Metric not collected yet"}\n'),
        )

    def test_site(self):
        """
        The site is a L{FrenoSite} that shows no tracebacks and does not log
        the check path or the status page's polling.
        """
        self.assertIsInstance(self.s.site, FrenoSite)
        self.assertFalse(self.s.site.displayTracebacks)
        logged = []
        self.patch(Site, "log", lambda site, request: logged.append(request.path))
        for path in (b"/check/a/mysql/main", b"/check-read/a/b/c/1", b"/lb-check",
                     b"/dashboard/state.json", b"/api/v1/history", b"/dashboard", b"/api/v1/status"):
            request = DummyRequest([])
            request.path = path
            self.s.site.log(request)
        # the status page's polling is not logged either; the page is (D79)
        self.assertEqual(logged, [b"/lb-check", b"/dashboard", b"/api/v1/status"])
