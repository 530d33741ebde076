"""
Property tests (hypothesis) over every route's parameters: the service never
answers with a traceback or an unexpected 5xx, bad input gets a 4xx JSON
message naming the parameter, and a rejected command changes nothing.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from test.unit.test_http_check import Service

SEGMENT = st.one_of(
    st.text(max_size=140),
    st.sampled_from(["", "0", "-1", "1.5", "nan", "inf", "-inf", "1e400", "+5",
                     "9223372036854775808", "52560001", "0.5", "a" * 129, "%", "..", "."]),
)
ROUTES = [
    "/check/{0}/{1}/{2}", "/check-if-exists/{0}/{1}/{2}",
    "/check-read/{0}/{1}/{2}/{3}", "/check-read-if-exists/{0}/{1}/{2}/{3}",
    "/throttle-app/{0}", "/throttle-app/{0}/ratio/{1}", "/throttle-app/{0}/ttl/{1}",
    "/throttle-app/{0}/ttl/{1}/ratio/{2}", "/unthrottle-app/{0}", "/recent-apps/{0}",
    "/skip-host/{0}", "/skip-host/{0}/ttl/{1}", "/recover-host/{0}", "/{0}", "/{0}/{1}",
    "/aggregated-metrics?brief={0}", "/throttle-app/a?store_name={0}",
]
#: Statuses a route may answer with arbitrary input.
#: 302: / redirects to the status page (D77).
ALLOWED = {200, 301, 302, 307, 400, 404, 405, 417, 429}


def encode(segment: str) -> str:
    return quote(segment.encode("utf-8", "surrogatepass"), safe="")


class FuzzTests(SynchronousTestCase):
    """
    Arbitrary parameters on every route.
    """

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        route=st.sampled_from(ROUTES),
        segments=st.lists(SEGMENT, min_size=4, max_size=4),
        method=st.sampled_from(["GET", "HEAD", "POST", "OPTIONS"]),
        raw=st.booleans(),
    )
    def test_never_crashes(self, route, segments, method, raw):
        """
        Every answer is an expected status; 4xx bodies on GET are JSON naming
        a parameter or Go's texts; a 4xx leaves the state unchanged.
        """
        s = Service(self)
        s.get("/throttle-app/keep/ttl/5")
        before = (dict(s.consensus.throttled_apps()), dict(s.consensus.skipped_hosts()))
        parts = [encode(x) if not raw else x.replace("?", "").replace("#", "") for x in segments]
        path = route.format(*parts)
        try:
            path.encode("ascii")
        except UnicodeEncodeError:
            path = route.format(*map(encode, segments))
        response, body = s.request(method, path)
        self.assertIn(response.code, ALLOWED, (path, body))
        self.assertNotIn(b"Traceback", body)
        if 400 <= response.code < 500:
            after = (dict(s.consensus.throttled_apps()), dict(s.consensus.skipped_hosts()))
            self.assertEqual(after, before, path)
            if response.code == 400 and method == "GET":
                message = json.loads(body)["Message"]
                self.assertRegex(message, r"^(app|storeType|storeName|threshold|ratio|"
                                 r"ttlMinutes|lastMinutes|hostName|store_name|brief|path): ")
        self.flushLoggedErrors()

    @settings(max_examples=200, deadline=None)
    @given(ratio=st.floats(), ttl=st.integers())
    def test_throttle_numbers(self, ratio, ttl):
        """
        Any ratio/TTL either applies exactly or is a 400 that changes nothing.
        """
        s = Service(self)
        code, body = s.get(f"/throttle-app/a/ttl/{ttl}/ratio/{ratio!r}")
        apps = s.consensus.throttled_apps()
        valid_ratio = 0 <= ratio <= 1
        valid_ttl = abs(ttl) <= 52560000
        if valid_ratio and valid_ttl:
            self.assertEqual(code, 200)
            if ttl > 0:
                self.assertEqual(apps["a"].ratio, ratio)
            elif ttl < 0:
                self.assertNotIn("a", apps)
        else:
            self.assertEqual(code, 400, body)
            self.assertEqual(dict(apps), {})
