# -*- test-case-name: test.unit.test_http_check,test.unit.test_names,test.unit.test_check_headers,test.unit.test_multistore -*-
"""
L{CheckResource}: the hot path, a lean C{twisted.web} leaf resource for
C{/check}, C{/check-if-exists}, C{/check-read} and C{/check-read-if-exists}.

L{freno.http.site.FrenoSite} hands it every request whose path starts with
C{/check}, without resource traversal; it writes no access log.

Routing is on the percent-decoded path, as freno's router did: C{%2F} acts as
a separator, so C{/check/a%2Fx/mysql/c} is a 404 (an app name never contains
C{/} and cannot collide with a store-scoped key C{app/store}), while
C{/check/a/mysql%2Fc} is C{/check/a/mysql/c}. An empty segment is an empty
parameter (C{/check//mysql/c} answers 417 C{no app indicated}).

Answers:

    - GET: the check's status, C{Content-Type: application/json}, the
      L{CheckResult} JSON, C{Content-Length}.
    - HEAD: the status only, C{Content-Length: 0}.
    - Both carry the check-answer headers (C{X-Freno-Reason},
      C{X-Freno-Value}, ..., C{Retry-After} on 429 and 417;
      L{freno.http.check_headers}).
    - A store name naming several stores (C{/check/app/mysql/c1,c2}) is a
      multi-store check (L{Throttler.stores_of}); more than
      L{MAX_STORES <freno.throttle.checker.MAX_STORES>} stores is a 400
      naming C{storeName}.
    - A bad check-read threshold (0, negative, NaN, infinite, not a number):
      400 with a generic JSON body naming the parameter (freno: 500, or
      silently ignored; docs/decisions.md, D4 and D5). Names may be of any
      length, as in freno (a request line longer than 16 KiB is refused with
      414 by L{freno.http.protocol.FrenoChannel}; D48); a path that is not
      UTF-8 is 400.
    - C{OPTIONS}: 200 with C{Allow: GET, HEAD, OPTIONS}; other methods: 405.
    - Any other C{/check...} path: Go's text 404; a path that is a check
      route but for the case of its fixed segments or a trailing slash
      (C{/check-READ/a/mysql/main/1}, C{/check/a/mysql/main/}) redirects to
      the canonical path, the parameters' case kept (301 for GET, 307
      otherwise), as freno's router (L{freno.http.fixpath}). Paths that do
      not start with C{/check} exactly (C{/CHECK/...}) are the API
      resource's, which redirects them the same way.

C{remote_addr} (for recent apps) is the first C{X-Forwarded-For} header value
verbatim, as freno (D10: recent apps are informational), cut to
L{MAX_FORWARDED_FOR} characters; else the peer's host (IPv4 or IPv6, fixing
freno's IPv6 cut).

Parsed routes are cached by raw path (bounded in count, and only paths of
at most L{_CACHED_PATH_LENGTH} bytes, so that long names cannot fill memory).
"""

from __future__ import annotations


from typing import Dict, Optional, Tuple
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource

from freno.http.check_headers import LeaderHeader, write_check_headers
from freno.http.fixpath import PathFixer
from freno.http.params import ParameterError, parse_threshold
from freno.http.responses import (
    JSON,
    check_result_body,
    generic_body,
    method_not_allowed,
    not_found,
    options,
    redirect,
    respond,
    respond_generic,
)
from freno.throttle.checker import InvalidCheck, Throttler
from freno.throttle.result import CheckResult
from freno.throttle.flags import (
    LOW_PRIORITY,
    LOW_PRIORITY_OK_IF_NOT_EXISTS,
    OK_IF_NOT_EXISTS,
    STANDARD,
    CheckFlags,
)

ALLOW = b"GET, HEAD, OPTIONS"
#: Route name to (path segments including the leading empty one, if-exists).
_ROUTES = {
    "check": (5, False),
    "check-if-exists": (5, True),
    "check-read": (6, False),
    "check-read-if-exists": (6, True),
}
_FLAGS = {
    (False, False): STANDARD,
    (True, False): LOW_PRIORITY,
    (False, True): OK_IF_NOT_EXISTS,
    (True, True): LOW_PRIORITY_OK_IF_NOT_EXISTS,
}
#: The check routes' patterns, for redirects.
CHECK_FIXER = PathFixer(
    [f"/{name}/:app/:storeType/:storeName" + ("/:threshold" if count == 6 else "")
     for name, (count, _) in _ROUTES.items()]
)
#: The bound on the cache of parsed paths.
_ROUTE_CACHE_SIZE = 4096
#: Longer paths are parsed at each request rather than cached.
_CACHED_PATH_LENGTH = 512
#: The most characters of C{X-Forwarded-For} kept for recent apps.
MAX_FORWARDED_FOR = 128

Route = Tuple[bool, str, str, str, Optional[str]]


class NotARoute(Exception):
    """
    The path is no check route.
    """


def parse_check_path(path: bytes) -> Route:
    """
    Route a raw request path.

    @return: C{(if_exists, app, store_type, store_name, threshold_text)}
        (C{threshold_text} is C{None} for non-read routes).
    @raise NotARoute: not a check route.
    @raise ParameterError: not UTF-8.
    """
    try:
        text = unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterError("path", "not valid UTF-8") from None
    segments = text.split("/")
    route = _ROUTES.get(segments[1]) if len(segments) > 1 else None
    if route is None:
        raise NotARoute()
    count, if_exists = route
    if len(segments) != count:
        raise NotARoute()
    threshold = segments[5] if count == 6 else None
    return (if_exists, segments[2], segments[3], segments[4], threshold)


class CheckResource(Resource):
    """
    Answers the four check routes from a L{Throttler}.

    @param throttler: the check algorithm.
    @param clock: the time source (the data's age in the headers).
    @param leader: this node's C{X-Freno-Leader}.
    """

    isLeaf = True
    _log = Logger()

    def __init__(self, throttler: Throttler, clock: IReactorTime, leader: LeaderHeader) -> None:
        super().__init__()
        self._throttler = throttler
        self._clock = clock
        self._leader = leader
        self._routes: Dict[bytes, Route] = {}

    def render(self, request) -> bytes:
        try:
            return self.render_check(request)
        except Exception:
            self._log.failure("check request failed", path=request.path)
            request.setResponseCode(500)
            body = generic_body(500, "internal error")
            if request.method != b"GET":
                body = b""
            return respond(request, 500, body, JSON if body else None)

    @property
    def clock(self) -> IReactorTime:
        """
        The time source of the answers' headers.
        """
        return self._clock

    @property
    def leader(self) -> LeaderHeader:
        """
        This node's C{X-Freno-Leader}.
        """
        return self._leader

    def route(self, path: bytes) -> Route:
        """
        The route of a raw request path (cached).

        @raise NotARoute: not a check route.
        @raise ParameterError: not UTF-8.
        """
        route = self._routes.get(path)
        if route is None:
            route = parse_check_path(path)
            if len(path) <= _CACHED_PATH_LENGTH:
                if len(self._routes) >= _ROUTE_CACHE_SIZE:
                    self._routes.clear()
                self._routes[path] = route
        return route

    def evaluate(self, route: Route, low_priority: bool, remote_addr: str) -> CheckResult:
        """
        Evaluate one check of C{route} (counted and recorded by the
        throttler). Shared by this resource and the fast check protocol
        (L{freno.http.fast_check}), so both answer the same.

        @raise ParameterError: a bad check-read threshold.
        @raise InvalidCheck: a check the throttler refuses (too many stores).
        """
        if_exists, app, store_type, store_name, threshold_text = route
        if threshold_text is None:
            flags = _FLAGS[low_priority, if_exists]
        else:
            flags = CheckFlags(low_priority, if_exists, parse_threshold(threshold_text))
        return self._throttler.check(app, store_type, store_name, remote_addr, flags)

    def render_check(self, request) -> bytes:
        """
        Route, evaluate and answer one request (see the module docstring).
        """
        method = request.method
        try:
            route = self.route(request.path)
        except NotARoute:
            fixed = CHECK_FIXER.fixed(request.path)
            if fixed is not None:
                return redirect(request, fixed)
            return not_found(request)
        except ParameterError as e:
            return respond_generic(request, 400, str(e))
        if method != b"GET" and method != b"HEAD":
            if method == b"OPTIONS":
                return options(request, ALLOW)
            return method_not_allowed(request, ALLOW)
        low = request.args.get(b"p")
        try:
            result = self.evaluate(
                route, low is not None and low[0] == b"low", _remote_addr(request)
            )
        except (ParameterError, InvalidCheck) as e:
            return respond_generic(request, 400, str(e))
        request.setResponseCode(result.status_code)
        write_check_headers(request, result, self._clock.seconds(), self._leader)
        if method == b"HEAD":
            request.setHeader(b"content-length", b"0")
            return b""
        request.setHeader(b"content-type", JSON)
        return check_result_body(result)


def _remote_addr(request) -> str:
    forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for")
    if forwarded:
        return forwarded[0][:MAX_FORWARDED_FOR].decode("utf-8", "replace")
    address = request.getClientAddress()
    return getattr(address, "host", None) or "local"
