"""
Tests for the status page's routes (L{freno.http.dashboard.page}) through
the whole site in memory: the redirect, the self-contained page, its JSON
and bad requests.
"""

from __future__ import annotations

import re

from twisted.trial.unittest import SynchronousTestCase

from freno.http.dashboard.page import page_html
from test.unit.answer_harness import Node, cluster, host


class PageTests(SynchronousTestCase):
    """
    The routes.
    """

    def setUp(self):
        self.node = Node(self, [cluster("main")], {"main": [host("db1")]}, {host("db1"): 0.1})

    def test_root_redirects(self):
        """
        C{/} and C{/dashboard/} redirect to C{/dashboard}.
        """
        for path in ("/", "/dashboard/"):
            response, _ = self.node.request("GET", path)
            self.assertEqual(response.code, 302)
            self.assertEqual(response.headers.getRawHeaders(b"location"), [b"/dashboard"])

    def test_page(self):
        """
        The page is one HTML answer with its CSS and script inline, loading
        nothing from elsewhere (a Content-Security-Policy says so too).
        """
        response, body = self.node.request("GET", "/dashboard")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"text/html; charset=utf-8"])
        self.assertIn(b"default-src 'none'", response.headers.getRawHeaders(b"content-security-policy")[0])
        text = body.decode("utf-8")
        self.assertNotIn("/*CSS*/", text)
        self.assertNotIn("/*JS*/", text)
        self.assertIn("/dashboard/state.json", text)
        self.assertEqual(re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", text), [])
        self.assertEqual(re.findall(r"""url\(\s*["']?(?!#)""", text), [])
        self.assertNotIn("@import", text)
        self.assertEqual(body, page_html())

    def test_head_and_options(self):
        """
        HEAD answers like GET without a body; OPTIONS names the methods.
        """
        response, body = self.node.request("HEAD", "/dashboard/state.json")
        self.assertEqual((response.code, body), (200, b""))
        response, _ = self.node.request("OPTIONS", "/dashboard")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"allow"), [b"GET, HEAD, OPTIONS"])

    def test_bad_requests(self):
        """
        Other methods answer 405, unknown paths 404, and the page keeps
        being served.
        """
        for method in ("POST", "PUT", "DELETE"):
            self.assertEqual(self.node.request(method, "/dashboard/state.json")[0].code, 405)
            self.assertEqual(self.node.request(method, "/api/v1/history")[0].code, 405)
        for path in ("/dashboard/nope", "/dashboard/clusters/", "/dashboard/clusters/x.json",
                     "/dashboard/clusters/%ff.json", "/dashboardx"):
            self.assertEqual(self.node.request("GET", path)[0].code, 404, path)
        self.assertEqual(self.node.request("GET", "/dashboard")[0].code, 200)
        self.assertEqual(self.node.request("GET", "/dashboard/clusters/main.json")[0].code, 200)
