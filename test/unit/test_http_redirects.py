"""
Tests for freno's router redirects (docs/decisions.md, D12): a path that
matches a route only case-insensitively, or with a trailing slash, redirects
to the canonical path (301 with a small HTML body on GET, 307 otherwise),
parameters kept as given. Through the whole site (StubTreq), and
L{PathFixer} on its own.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.http.api import HELP, ROUTE_FIXER
from freno.http.fixpath import PathFixer
from test.unit.test_http_check import Service, header


def html_body(location: bytes) -> bytes:
    """
    Go's redirect body for C{location} (HTML-escaped, as Go's C{htmlEscape}).
    """
    return b'<a href="%s">Moved Permanently</a>.\n\n' % (location.replace(b"&", b"&amp;"),)


#: A value for each parameter name in HELP.
SAMPLES = {
    "app": "MyApp", "storeType": "mysql", "storeName": "main", "threshold": "0.5",
    "ratio": "0.5", "ttlMinutes": "5", "lastMinutes": "10", "hostName": "Host1",
}


def sample(pattern: str) -> str:
    """
    C{pattern} with its parameters filled in.
    """
    return re.sub(r":(\w+)", lambda m: SAMPLES[m.group(1)], pattern)


def shout(pattern: str) -> str:
    """
    C{pattern} filled in, with its fixed segments upper-cased.
    """
    return "/".join(
        SAMPLES[s[1:]] if s.startswith(":") else s.upper() for s in pattern.split("/")
    )


class CaseRedirectTests(SynchronousTestCase):
    """
    Case-insensitive matches redirect.
    """

    def setUp(self):
        self.s = Service(self)

    def assertRedirect(self, method, path, location):
        response, body = self.s.request(method, path)
        expected = 301 if method == "GET" else 307
        self.assertEqual(response.code, expected, (method, path, body))
        self.assertEqual(header(response, "location"), location, (method, path))
        if method == "GET":
            self.assertEqual(body, html_body(location))
            self.assertEqual(header(response, "content-type"), b"text/html; charset=utf-8")
        else:
            self.assertEqual(body, b"")

    def test_fixed_route(self):
        """
        C{/LB-CHECK} redirects to C{/lb-check}: 301 with the HTML body on
        GET, 307 without a body on HEAD and other methods.
        """
        self.assertRedirect("GET", "/LB-CHECK", b"/lb-check")
        self.assertRedirect("HEAD", "/LB-CHECK", b"/lb-check")
        self.assertRedirect("POST", "/Lb-Check", b"/lb-check")
        self.assertRedirect("GET", "/Consensus/STATUS", b"/consensus/status")
        self.assertRedirect("GET", "/CONFIG/memcache", b"/config/memcache")

    def test_query_kept(self):
        """
        The query string follows the redirect.
        """
        self.assertRedirect("GET", "/LB-CHECK?a=1&b=2", b"/lb-check?a=1&b=2")

    def test_check_routes(self):
        """
        Check routes redirect whichever resource gets them (C{/CHECK...} is
        not on the check path, C{/check-READ...} is); the parameters keep
        their case, the query is kept.
        """
        self.assertRedirect(
            "GET", "/CHECK/MyApp/MySQL/Main?p=low", b"/check/MyApp/MySQL/Main?p=low"
        )
        self.assertRedirect("HEAD", "/Check/a/mysql/main", b"/check/a/mysql/main")
        self.assertRedirect(
            "GET", "/check-READ/a/mysql/main/0.5", b"/check-read/a/mysql/main/0.5"
        )
        self.assertRedirect(
            "HEAD", "/check-If-Exists/a/mysql/Main", b"/check-if-exists/a/mysql/Main"
        )
        self.assertRedirect(
            "GET", "/CHECK-READ-IF-EXISTS/a/mysql/main/2",
            b"/check-read-if-exists/a/mysql/main/2",
        )

    def test_every_route(self):
        """
        Every route of C{/help} with its fixed segments upper-cased
        redirects to the route, parameters as given; following the redirect
        answers without another redirect.
        """
        for pattern in HELP + ["/config/memcache"]:
            path = shout(pattern)
            if path == sample(pattern):
                continue
            self.assertRedirect("GET", path, sample(pattern).encode("ascii"))
            self.assertRedirect("HEAD", path, sample(pattern).encode("ascii"))
            code, _ = self.s.get(sample(pattern))
            self.assertNotIn(code, (301, 307, 404), pattern)

    def test_with_trailing_slash(self):
        """
        A wrong case and a trailing slash are fixed in one redirect.
        """
        self.assertRedirect("GET", "/LB-CHECK/", b"/lb-check")
        self.assertRedirect("GET", "/check-READ/a/mysql/main/0.5/", b"/check-read/a/mysql/main/0.5")
        self.assertRedirect("POST", "/THROTTLED-APPS/", b"/throttled-apps")

    def test_commands_not_applied(self):
        """
        A redirected command changes nothing until the client follows it.
        """
        self.assertRedirect(
            "GET", "/THROTTLE-APP/MyApp/TTL/5/RATIO/0.5", b"/throttle-app/MyApp/ttl/5/ratio/0.5"
        )
        self.assertRedirect("GET", "/Skip-Host/Host1", b"/skip-host/Host1")
        self.assertEqual(dict(self.s.consensus.throttled_apps()), {})
        self.assertEqual(dict(self.s.consensus.skipped_hosts()), {})
        self.assertEqual(self.s.get("/throttle-app/MyApp/ttl/5/ratio/0.5")[0], 200)
        self.assertEqual(self.s.consensus.throttled_apps()["MyApp"].ratio, 0.5)

    def test_encoded_parameters(self):
        """
        Parameters are matched decoded and sent back percent-encoded.
        """
        self.assertRedirect("GET", "/SKIP-HOST/a%20b", b"/skip-host/a%20b")
        self.assertRedirect("GET", "/SKIP-HOST/%C3%A9", b"/skip-host/%C3%A9")
        self.assertRedirect("GET", "/Recent-Apps/", b"/recent-apps/")
        self.assertRedirect("GET", "/CHECK//mysql/main", b"/check//mysql/main")

    def test_no_match(self):
        """
        Paths that match no route in any case stay Go's 404; canonical paths
        are served, not redirected.
        """
        for path in ("/LB-CHECKS", "/lb_check", "/CHECK/a/mysql", "/check-readx/a/b/c/1",
                     "/CHECK/a/mysql/main/extra", "/Check-Read/a/mysql/main", "/Raft",
                     "/THROTTLE-APP/a/TTL", "/%FF", "/DEBUG/VARS/x"):
            response, body = self.s.request("GET", path)
            if path == "/%FF":
                self.assertEqual(response.code, 400, path)
                continue
            self.assertEqual((response.code, body), (404, b"404 page not found\n"), path)
        self.assertEqual(self.s.get("/lb-check")[0], 200)
        self.assertEqual(self.s.get("/check/MyApp/mysql/main")[0], 200)
        # / redirects to the status page (D77), not freno's 404.
        self.assertEqual(self.s.get("/")[0], 302)


class PathFixerTests(SynchronousTestCase):
    """
    L{PathFixer} on its own.
    """

    def test_canonical_is_none(self):
        """
        A canonical path, a path matching nothing, and an undecodable path
        give C{None}.
        """
        fixer = PathFixer(["/lb-check", "/skip-host/:hostName"])
        for path in (b"/lb-check", b"/skip-host/X", b"/nothing", b"/", b"", b"/%ff", b"lb-check"):
            self.assertIsNone(fixer.fixed(path), path)

    def test_syntaxes(self):
        """
        httprouter (C{:name}) and werkzeug (C{<seg:name>}) parameters both
        take one whole segment, possibly empty.
        """
        fixer = PathFixer(["/a/:x/b", "/c/<seg:y>"])
        self.assertEqual(fixer.fixed(b"/A/Q/B"), b"/a/Q/b")
        self.assertEqual(fixer.fixed(b"/C/Zz"), b"/c/Zz")
        self.assertEqual(fixer.fixed(b"/C/"), b"/c/")
        self.assertEqual(fixer.fixed(b"/c/x/"), b"/c/x")
        self.assertIsNone(fixer.fixed(b"/A/Q/R/B"))

    def test_escaping(self):
        """
        The canonical path is escaped as Go's C{url.URL.String}: C{$&+,:;=@}
        stay, C{?}, C{#}, spaces and non-ASCII are escaped.
        """
        fixer = PathFixer(["/x/:p"])
        self.assertEqual(fixer.fixed(b"/X/a$&+,:;=@b"), b"/x/a$&+,:;=@b")
        self.assertEqual(fixer.fixed(b"/X/%3F%23%20%C3%A9"), b"/x/%3F%23%20%C3%A9")

    def test_every_api_route_known(self):
        """
        The API's fixer knows every route of C{/help} and C{/config/memcache}.
        """
        for pattern in HELP + ["/config/memcache"]:
            canonical = sample(pattern).encode("ascii")
            self.assertEqual(ROUTE_FIXER.fixed(shout(pattern).encode("ascii")), canonical)
            if pattern != "/recent-apps":  # /recent-apps/ is /recent-apps/:lastMinutes
                self.assertEqual(
                    ROUTE_FIXER.fixed(shout(pattern).encode("ascii") + b"/"), canonical, pattern
                )

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        pattern=st.sampled_from(HELP + ["/config/memcache"]),
        flips=st.lists(st.booleans(), min_size=60, max_size=60),
        parameter=st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/"),
            max_size=20,
        ),
        slash=st.booleans(),
    )
    def test_random_case(self, pattern, flips, parameter, slash):
        """
        Any case of a route's fixed segments, any parameter text, with or
        without a trailing slash: the redirect goes to the route with the
        parameters unchanged, and the target is never redirected again.
        """
        def flip(segment):
            return "".join(
                c.upper() if f else c.lower() for c, f in zip(segment, flips + [False] * 40)
            )

        segments = pattern.split("/")
        path = "/".join(parameter if s.startswith(":") else flip(s) for s in segments)
        canonical = "/".join(parameter if s.startswith(":") else s for s in segments)
        raw = quote(path, safe="/") + ("/" if slash else "")
        expected = quote(canonical, safe="/$&+,:;=@").encode("ascii")
        fixed = ROUTE_FIXER.fixed(raw.encode("ascii"))
        if pattern == "/recent-apps" and slash:
            # /recent-apps/ is /recent-apps/:lastMinutes with an empty value.
            self.assertEqual(fixed, None if path == canonical else b"/recent-apps/")
            return
        if path == canonical and not slash:
            self.assertIsNone(fixed)
        else:
            self.assertEqual(fixed, expected, raw)
        self.assertIsNone(ROUTE_FIXER.fixed(expected))


class RedirectBodyTests(SynchronousTestCase):
    """
    L{freno.http.responses.redirect}'s body escapes as Go's C{htmlEscape}.
    """

    def test_go_escapes(self):
        """
        C{& < > " '} become C{&amp; &lt; &gt; &#34; &#39;} in the body; the
        C{Location} header keeps the query as sent.
        """
        from twisted.web.test.requesthelper import DummyRequest

        from freno.http.responses import redirect

        request = DummyRequest([b"LB-CHECK"])
        request.method = b"GET"
        request.uri = b"/LB-CHECK?a=1&b='\"<>"
        body = redirect(request, b"/lb-check")
        self.assertEqual(request.responseCode, 301)
        self.assertEqual(
            request.responseHeaders.getRawHeaders(b"location"), [b"/lb-check?a=1&b='\"<>"]
        )
        self.assertEqual(
            body, b'<a href="/lb-check?a=1&amp;b=&#39;&#34;&lt;&gt;">Moved Permanently</a>.\n\n'
        )
