# -*- test-case-name: test.unit.test_dashboard_page -*-
"""
L{DashboardResource}: the status page and its JSON, on every node.

    GET /                               302 to /dashboard
    GET /dashboard                      the page (HTML with its CSS and script inline)
    GET /dashboard/state.json           L{DashboardViews.state}
    GET /dashboard/clusters/<name>.json L{DashboardViews.cluster} (404 with the REST
                                        API's error object for a cluster not configured)

(C{GET /api/v1/history} is a REST route, L{freno.http.rest}.) The page is
one self-contained answer: no CDN, fonts or scripts from elsewhere, as
deployments are often air-gapped; its parts are package data
(C{static/}), read and joined once. Its JSON carries
C{Access-Control-Allow-Origin: *} so that a page whose node died can read
another member's state and follow the new leader (it is the read-only
status C{/api/v1/status} shows to anyone); nothing is cached by browsers or
proxies (C{Cache-Control: no-store}).
"""

from __future__ import annotations

from importlib import resources
from typing import Optional
from urllib.parse import unquote

from twisted.web.resource import Resource

from freno.http.dashboard.views import DashboardViews
from freno.http.responses import method_not_allowed, not_found, options, respond
from freno.http.rest_io import RestError, error_response

#: Where the page lives.
PATH = b"/dashboard"
#: The methods every route here takes.
ALLOW = b"GET, HEAD, OPTIONS"
HTML = b"text/html; charset=utf-8"
JSON = b"application/json"
#: The page's Content-Security-Policy: nothing from elsewhere, except the
#: JSON of other members (C{connect-src}), which the page reads to follow
#: the leader.
CSP = (
    b"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    b"img-src data:; connect-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def page_html() -> bytes:
    """
    The page: C{static/dashboard.html} with C{static/dashboard.css} and
    C{static/dashboard.js} put inline.
    """
    static = resources.files("freno.http.dashboard").joinpath("static")
    html = static.joinpath("dashboard.html").read_text("utf-8")
    css = static.joinpath("dashboard.css").read_text("utf-8")
    js = static.joinpath("dashboard.js").read_text("utf-8")
    return html.replace("/*CSS*/", css).replace("/*JS*/", js).encode("utf-8")


class DashboardResource(Resource):
    """
    The leaf serving the routes of the module docstring.

    @param views: the JSON documents.
    @param html: the page (default: L{page_html}).
    """

    isLeaf = True

    def __init__(self, views: DashboardViews, html: Optional[bytes] = None) -> None:
        super().__init__()
        self._views = views
        self._html = html if html is not None else page_html()

    def render(self, request):
        path = request.path
        method = request.method
        known = path == b"/" or path == PATH or path == PATH + b"/" or path.startswith(PATH + b"/")
        if not known:
            return not_found(request)
        if method == b"OPTIONS":
            return options(request, ALLOW)
        if method not in (b"GET", b"HEAD"):
            return method_not_allowed(request, ALLOW)
        if path == b"/" or path == PATH + b"/":
            request.setHeader(b"location", PATH)
            return respond(request, 302, b"", None)
        if path == PATH:
            request.setHeader(b"cache-control", b"no-store")
            request.setHeader(b"content-security-policy", CSP)
            request.setHeader(b"x-content-type-options", b"nosniff")
            return respond(request, 200, self._html, HTML)
        rest = path[len(PATH) + 1:]
        if rest == b"state.json":
            return self._json(request, self._views.state_bytes())
        if rest.startswith(b"clusters/") and rest.endswith(b".json"):
            name = unquote(rest[len(b"clusters/"):-len(b".json")].decode("utf-8", "replace"))
            body = self._views.cluster_bytes(name)
            if body is None:
                request.setHeader(b"cache-control", b"no-store")
                request.setHeader(b"access-control-allow-origin", b"*")
                return error_response(request, RestError(404, "not_found", f"no such cluster: {name}"))
            return self._json(request, body)
        return not_found(request)

    def _json(self, request, body: bytes) -> bytes:
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"access-control-allow-origin", b"*")
        return respond(request, 200, body, JSON)
