"""
Tests for L{freno.http.api}: every non-check route of docs/compatibility.md in memory.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.interface import NotLeaderError
from freno.metrics.catalogue import PROBE_LATENCY
from freno.http.api import HELP
from test.unit.test_http_check import Service, header

OK = b'{"StatusCode":200,"Message":"OK"}\n'


class HealthRouteTests(SynchronousTestCase):
    """
    Health, leadership, hostname, help and memcache routes.
    """

    def setUp(self):
        self.s = Service(self)

    def test_lb_check(self):
        """
        /lb-check, /_ping and /status are always OK; HEAD has no body.
        """
        for path in ("/lb-check", "/_ping", "/status"):
            response, body = self.s.request("GET", path)
            self.assertEqual((response.code, body), (200, OK))
            self.assertEqual(header(response, "content-type"), b"application/json")
            response, body = self.s.request("HEAD", path)
            self.assertEqual((response.code, body), (200, b""))
            self.assertIsNone(header(response, "content-type"))

    def test_leader_check(self):
        """
        /leader-check follows is_leader() at once.
        """
        self.assertEqual(self.s.get("/leader-check"), (200, b'"HTTP 200"\n'))
        self.s.consensus.set_leader(False)
        self.assertEqual(self.s.get("/leader-check"), (404, b'"HTTP 404"\n'))
        self.assertEqual(self.s.head("/leader-check"), (404, b""))

    def test_leader_and_state(self):
        """
        /raft/leader and /consensus/leader give the leader or 500 with no
        body; the state routes the state description.
        """
        for path in ("/raft/leader", "/consensus/leader"):
            self.assertEqual(self.s.get(path), (200, b'"local"\n'))
        for path in ("/raft/state", "/consensus/state"):
            self.assertEqual(self.s.get(path), (200, b'"Leader"\n'))
        self.s.consensus.set_leader(False)
        self.assertEqual(self.s.get("/raft/leader"), (500, b""))
        self.assertEqual(self.s.get("/consensus/state"), (200, b'"Follower"\n'))

    def test_consensus_status(self):
        """
        /consensus/status is the status object in freno's field order.
        """
        code, body = self.s.get("/consensus/status")
        self.assertEqual(code, 200)
        self.assertEqual(
            body,
            b'{"ServiceID":"local","Healthy":true,"IsLeader":true,"Leader":"local",'
            b'"State":"Leader","Domain":"","ShareDomain":"","ShareDomainServices":null,'
            b'"ShareDomainServicesList":null,"HealthyDomainServicesList":null}\n',
        )

    def test_hostname(self):
        """
        /hostname is the host name as a JSON string, HEAD with its length.
        """
        self.assertEqual(self.s.get("/hostname"), (200, b'"node1"\n'))
        response, body = self.s.request("HEAD", "/hostname")
        self.assertEqual((response.code, body), (200, b""))

    def test_help(self):
        """
        /help lists freno's 31 patterns in order.
        """
        code, body = self.s.get("/help")
        self.assertEqual(json.loads(body), HELP)
        self.assertEqual(len(HELP), 31)

    def test_memcache(self):
        """
        /config/memcache answers GET only; HEAD is 405 with Allow.
        """
        self.assertEqual(
            self.s.get("/config/memcache"),
            (200, b'{"MemcacheServers":["m1:11211"],"MemcachePath":"freno"}\n'),
        )
        response, _ = self.s.request("HEAD", "/config/memcache")
        self.assertEqual(response.code, 405)
        self.assertEqual(header(response, "allow"), b"GET, OPTIONS")
        response, _ = self.s.request("OPTIONS", "/config/memcache")
        self.assertEqual(header(response, "allow"), b"GET, OPTIONS")

    def test_not_found(self):
        """
        Unknown paths are Go's text 404, whatever the method.
        """
        for method in ("GET", "HEAD", "POST"):
            response, body = self.s.request(method, "/nosuch")
            self.assertEqual(response.code, 404)
            self.assertEqual(header(response, "x-content-type-options"), b"nosniff")
        self.assertEqual(self.s.get("/nosuch"), (404, b"404 page not found\n"))
        # / is the status page's redirect (D77), not freno's 404.
        self.assertEqual(self.s.get("/"), (302, b""))

    def test_methods(self):
        """
        Wrong methods are 405 with Allow, OPTIONS 200 with Allow.
        """
        response, body = self.s.request("POST", "/throttle-app/a")
        self.assertEqual((response.code, body), (405, b"Method Not Allowed\n"))
        self.assertEqual(header(response, "allow"), b"GET, HEAD, OPTIONS")
        self.assertNotIn("a", self.s.consensus.throttled_apps())
        response, body = self.s.request("OPTIONS", "/lb-check")
        self.assertEqual((response.code, body), (200, b""))
        self.assertEqual(header(response, "allow"), b"GET, HEAD, OPTIONS")

    def test_trailing_slash(self):
        """
        A trailing slash after a known path redirects.
        """
        response, body = self.s.request("GET", "/lb-check/")
        self.assertEqual(response.code, 301)
        self.assertEqual(header(response, "location"), b"/lb-check")
        self.assertEqual(body, b'<a href="/lb-check">Moved Permanently</a>.\n\n')
        response, body = self.s.request("POST", "/lb-check/")
        self.assertEqual(response.code, 307)


class MetricsRouteTests(SynchronousTestCase):
    """
    /aggregated-metrics, /metrics-health, /debug/vars.
    """

    def setUp(self):
        self.s = Service(self)

    def test_aggregated_metrics(self):
        """
        Values with six decimals, three with brief=true, errors prefixed.
        """
        self.s.metrics.set("empty", self.s.metrics.get("main").__class__(
            0.0, "No hosts found", self.s.clock.seconds()))
        self.assertEqual(
            self.s.get("/aggregated-metrics"),
            (200, b'{"mysql/empty":"error: No hosts found","mysql/main":"0.500000"}\n'),
        )
        self.assertEqual(
            self.s.get("/aggregated-metrics?brief=true")[1],
            b'{"mysql/empty":"error: No hosts found","mysql/main":"0.500"}\n',
        )

    def test_metrics_health(self):
        """
        LastHealthyAt comes from the store; the age is whole seconds.
        """
        self.s.clock.advance(2.5)
        self.assertEqual(
            self.s.get("/metrics-health"),
            (200, b'{"mysql/main":{"LastHealthyAt":"2023-11-14T22:13:20Z","SecondsSinceLastHealthy":2}}\n'),
        )

    def test_debug_vars(self):
        """
        /debug/vars and /debug/metrics are the expvar document with freno's
        names, including the render-time gauges.
        """
        self.s.get("/check/a/mysql/main")
        self.s.get("/throttle-app/b")
        for path in ("/debug/vars", "/debug/metrics"):
            response, body = self.s.request("GET", path)
            self.assertEqual(header(response, "content-type"), b"application/json; charset=utf-8")
            self.assertTrue(body.startswith(b"{\n") and body.endswith(b"\n}\n"))
            data = json.loads(body)
            self.assertEqual(data["check.a.mysql.main.total"], 1)
            self.assertEqual(data["throttled_states.b"], 1)
            self.assertEqual(data["throttled_states.abusing-app"], 1)
            self.assertEqual(data["aggregated.mysql.main"], 0.5)
            self.assertIn("cmdline", data)
        self.s.get("/unthrottle-app/b")
        self.assertEqual(json.loads(self.s.get("/debug/vars")[1])["throttled_states.b"], 0)

    def test_debug_vars_timer(self):
        """
        Timers are expanded into go-metrics' fields, in nanoseconds.
        """
        self.s.stats.timer(PROBE_LATENCY).observe(0.002, ("main", "db1:3306"))
        data = json.loads(self.s.get("/debug/vars")[1])
        self.assertEqual(data["probes.latency.count"], 1)
        self.assertEqual(data["probes.latency.max"], 2000000)
        self.assertIn("probes.latency.99-percentile", data)


class ThrottleRouteTests(SynchronousTestCase):
    """
    /throttle-app (four forms), /unthrottle-app, /throttled-apps.
    """

    def setUp(self):
        self.s = Service(self)

    def apps(self):
        return json.loads(self.s.get("/throttled-apps")[1])

    def test_forms(self):
        """
        The four forms set TTL and ratio as freno; store_name scopes the key.
        """
        self.assertEqual(self.s.get("/throttle-app/a"), (200, OK))
        self.assertEqual(self.s.get("/throttle-app/b/ratio/0.5")[0], 200)
        self.assertEqual(self.s.get("/throttle-app/c/ttl/30")[0], 200)
        self.assertEqual(self.s.get("/throttle-app/d/ttl/30/ratio/0.25?store_name=main")[0], 200)
        self.assertEqual(
            self.s.get("/throttled-apps")[1],
            b'{"a":{"ExpireAt":"0001-01-01T00:00:00Z","Ratio":1},'
            b'"abusing-app":{"ExpireAt":"2033-11-11T22:13:20Z","Ratio":1},'
            b'"b":{"ExpireAt":"0001-01-01T00:00:00Z","Ratio":0.5},'
            b'"c":{"ExpireAt":"2023-11-14T22:43:20Z","Ratio":1},'
            b'"d/main":{"ExpireAt":"2023-11-14T22:43:20Z","Ratio":0.25}}\n',
        )

    def test_head_changes_state(self):
        """
        Control routes act on HEAD too (freno), answering status only.
        """
        self.assertEqual(self.s.head("/throttle-app/a"), (200, b""))
        self.assertIn("a", self.s.consensus.throttled_apps())

    def test_ttl_expiry(self):
        """
        A TTL'd throttle disappears when it expires (Clock-driven).
        """
        self.s.get("/throttle-app/c/ttl/1")
        self.assertEqual(self.s.get("/check/c/mysql/main")[0], 417)
        self.s.clock.advance(60)
        self.s.set_value(0.5)
        self.assertNotIn("c", self.apps())
        self.assertEqual(self.s.get("/check/c/mysql/main")[0], 200)

    def test_unthrottle(self):
        """
        Unthrottle removes only the exact key; unknown keys are OK.
        """
        self.s.get("/throttle-app/a")
        self.s.get("/throttle-app/a?store_name=main")
        self.assertEqual(self.s.get("/unthrottle-app/a"), (200, OK))
        self.assertEqual(sorted(self.apps()), ["a/main", "abusing-app"])
        self.assertEqual(self.s.get("/unthrottle-app/a?store_name=main")[0], 200)
        self.assertEqual(self.s.get("/unthrottle-app/nosuch"), (200, OK))

    def test_abusing_app(self):
        """
        abusing-app cannot be unthrottled (400, clear message) and stays.
        """
        code, body = self.s.get("/unthrottle-app/abusing-app")
        self.assertEqual(code, 400)
        self.assertIn(b"built-in", body)
        self.assertIn("abusing-app", self.apps())

    def test_bad_input(self):
        """
        Bad TTLs, ratios and names answer 400 naming the parameter and change
        nothing.
        """
        cases = {
            "/throttle-app/a/ratio/1.5": b"ratio: must be in [0..1] range; got 1.5",
            "/throttle-app/a/ratio/nan": b"ratio: must be a finite number: 'nan'",
            "/throttle-app/a/ratio/-0.1": b"ratio: must be in [0..1] range; got -0.1",
            "/throttle-app/a/ttl/abc": b"ttlMinutes: not an integer: 'abc'",
            "/throttle-app/a/ttl/1.5": b"ttlMinutes: not an integer: '1.5'",
            "/throttle-app/a/ttl/153722868": b"ttlMinutes: must be at most 52560000 (100 years)",
            "/throttle-app/a/ttl/9223372036854775808": b"ttlMinutes: out of range: '9223372036854775808'",
            "/throttle-app/a/ttl/5/ratio/x": b"ratio: not a number: 'x'",
            "/throttle-app/": b"app: must not be empty",
            "/throttle-app/a?store_name=%FF": b"store_name: not valid UTF-8",
        }
        for path, message in cases.items():
            code, body = self.s.get(path)
            self.assertEqual(code, 400, path)
            self.assertEqual(json.loads(body), {"StatusCode": 400, "Message": message.decode()})
            self.assertEqual(self.s.head(path), (400, b""))
        self.assertEqual(list(self.apps()), ["abusing-app"])

    def test_negative_ttl(self):
        """
        A negative TTL unthrottles.
        """
        self.s.get("/throttle-app/a")
        self.assertEqual(self.s.get("/throttle-app/a/ttl/-1"), (200, OK))
        self.assertNotIn("a", self.apps())

    def test_consensus_error(self):
        """
        A consensus failure answers 500 with its text; nothing changes.
        """
        self.s.consensus.reject_commands = NotLeaderError()
        self.assertEqual(
            self.s.get("/throttle-app/a"),
            (500, b'{"StatusCode":500,"Message":"not leader"}\n'),
        )
        self.assertEqual(self.s.head("/skip-host/h"), (500, b""))

    def test_waits_for_commit(self):
        """
        The answer is written only once the command's Deferred fires.
        """
        from twisted.internet.defer import Deferred

        from freno.consensus.audit import Applied

        pending = Deferred()
        self.s.consensus.submit = lambda *a: pending
        d = self.s.treq.get("http://freno/throttle-app/a")
        self.assertNoResult(d)
        pending.callback(Applied(1))
        self.s.treq.flush()
        self.assertEqual(self.successResultOf(d).code, 200)


class RecentAppsRouteTests(SynchronousTestCase):
    """
    /recent-apps and /recent-apps/:lastMinutes.
    """

    def setUp(self):
        self.s = Service(self)

    def test_recent(self):
        """
        Keys are app/addr with epoch and whole minutes; lastMinutes filters.
        """
        self.s.get("/check/old/mysql/main")
        self.s.clock.advance(150)
        self.s.set_value(0.5)
        self.s.get("/check/new/mysql/main")
        self.assertEqual(
            self.s.get("/recent-apps")[1],
            b'{"new/127.0.0.1":{"CheckedAtEpoch":1700000150,"MinutesSinceChecked":0},'
            b'"old/127.0.0.1":{"CheckedAtEpoch":1700000000,"MinutesSinceChecked":2}}\n',
        )
        self.assertEqual(list(json.loads(self.s.get("/recent-apps/1")[1])), ["new/127.0.0.1"])
        self.assertEqual(len(json.loads(self.s.get("/recent-apps/0")[1])), 2)
        self.assertEqual(len(json.loads(self.s.get("/recent-apps/-5")[1])), 2)

    def test_bad_minutes(self):
        """
        A non-integer lastMinutes is 400.
        """
        code, body = self.s.get("/recent-apps/x")
        self.assertEqual(code, 400)
        self.assertIn(b"lastMinutes: not an integer", body)


class HostRouteTests(SynchronousTestCase):
    """
    /skip-host, /recover-host, /skipped-hosts.
    """

    def setUp(self):
        self.s = Service(self)

    def test_skip_and_recover(self):
        """
        Skip defaults to 60 minutes, a TTL sets minutes, recover removes,
        and expiry removes.
        """
        self.assertEqual(self.s.get("/skip-host/h1"), (200, OK))
        self.assertEqual(self.s.get("/skip-host/h2/ttl/5")[0], 200)
        self.assertEqual(
            self.s.get("/skipped-hosts")[1],
            b'{"h1":"2023-11-14T23:13:20Z","h2":"2023-11-14T22:18:20Z"}\n',
        )
        self.assertEqual(self.s.get("/recover-host/h1"), (200, OK))
        self.s.clock.advance(300)
        self.assertEqual(self.s.get("/skipped-hosts")[1], b"{}\n")

    def test_bad_ttl(self):
        """
        B1 fixed: a bad TTL answers one 400 and skips nothing.
        """
        for ttl in ("abc", "1.5", "52560001", "99999999999999999999"):
            code, body = self.s.get(f"/skip-host/h1/ttl/{ttl}")
            self.assertEqual(code, 400)
            self.assertEqual(body.count(b"\n"), 1)
            self.assertIn(b"ttlMinutes: ", body)
        self.assertEqual(dict(self.s.consensus.skipped_hosts()), {})

    def test_negative_ttl_recovers(self):
        """
        A negative TTL recovers the host.
        """
        self.s.get("/skip-host/h1")
        self.s.get("/skip-host/h1/ttl/-1")
        self.assertEqual(dict(self.s.consensus.skipped_hosts()), {})


class MetricsResourceTests(SynchronousTestCase):
    """
    build_site mounts the given metrics resource at /metrics.
    """

    def test_mounted(self):
        """
        /metrics is served by C{metrics_resource}; without one it is a 404.
        """
        from twisted.web.resource import Resource

        from freno.http.site import build_site

        class Metrics(Resource):
            isLeaf = True

            def render_GET(self, request):
                return b"freno_up 1\n"

        s = Service(self)
        self.assertEqual(s.get("/metrics")[0], 404)
        site = build_site(
            clock=s.clock, config=s.config, consensus=s.consensus, metrics=s.metrics,
            registry=s.stats, hostname="n", metrics_resource=Metrics(),
        )
        from treq.testing import StubTreq

        s.treq = StubTreq(site.resource)
        self.assertEqual(s.get("/metrics"), (200, b"freno_up 1\n"))
        for method, code in (("OPTIONS", 200), ("DELETE", 405), ("POST", 405), ("PUT", 405)):
            response = self.successResultOf(s.treq.request(method, "http://x/metrics"))
            self.assertEqual(response.code, code, method)
            self.assertEqual(
                response.headers.getRawHeaders(b"allow"), [b"GET, HEAD, OPTIONS"], method
            )
