# -*- test-case-name: test.unit.test_http_api,test.unit.test_explain -*-
"""
L{FrenoAPI}: the Klein app for every route except the four check routes
(those are L{freno.http.check_resource.CheckResource}), and L{ApiResource},
the leaf resource that puts it behind freno's method rules.

Routes, methods, status codes and JSON shapes follow freno
(docs/compatibility.md). Differences, each deliberate (docs/decisions.md):

    - Bad parameters (a TTL, ratio or C{lastMinutes} that is not a number,
      NaN, infinite or out of range; an empty name; a query value that is
      not UTF-8) answer
      C{400 {"StatusCode":400,"Message":"<param>: <problem>"}} and change
      nothing, where freno answered 500 (or, for skip-host, 500 I{and}
      skipped the host anyway): D4. Names may be of any length, as in freno;
      a command that would break a bound of the replicated state
      (L{freno.consensus.state}: key length, number of throttled apps or
      skipped hosts) or of the backend (the MySQL backend's 128-character
      columns) is a 400 naming the bound (L{InvalidCommand}; D48).
    - TTLs: see L{freno.throttle.checker} (permanent when absent, negative
      means unthrottle/recover, at most 100 years): D6.
    - Throttling or unthrottling the built-in C{abusing-app}: 400 (D7).
    - Consensus failures (L{ConsensusError}, e.g. C{not leader}): generic 500
      with the error text. The answer is written only after the command's
      Deferred fired, i.e. once the command is applied (D13).
    - C{/throttled-apps} and C{/skipped-hosts} leave out entries whose expiry
      has passed (freno showed them until its 5 s purge): D14.

Control (issue 11; L{freno.http.auth}, L{freno.http.control}):

    - With C{ControlTokens} configured, the mutation routes
      (C{/throttle-app/...}, C{/unthrottle-app/...}, C{/skip-host/...},
      C{/recover-host/...}; GET and HEAD alike, since freno mutates on both)
      need C{Authorization: Bearer <token>} with a role allowing them: 401 or
      403 otherwise, with freno's generic body plus an C{"error"} object
      (C{{"StatusCode":401,"Message":"...","error":{"status":401,"code":
      "unauthenticated","message":"..."}}}), and nothing changes.
    - C{"AllowGetMutations": false} turns those routes off: 405, with a
      message naming the REST route to use instead.
    - Every mutation carries an audit context (actor, route, parameters,
      the optional C{?reason=} query parameter); its answer is written after
      its audit record is committed. C{/unthrottle-app} and
      C{/recover-host} of a key this node does not know send no command (as
      freno's unthrottle), so nothing is audited for them.

One route is ours, not freno's: C{/explain/<app>/<storeType>/<storeName>}
(L{freno.http.explain}; not in freno's C{/help}), the per-host
breakdown of what a check would answer, as indented JSON; C{?p=low}
explains a low-priority check. It is never counted as a check.

Routing is on the percent-decoded path (C{%2F} separates segments, as in
freno), an empty segment is an empty parameter, unknown paths answer Go's
C{404 page not found}, a method a route does not take answers 405 with
C{Allow}, C{OPTIONS} answers 200 with C{Allow}, and a path that matches a
route only case-insensitively or with one trailing slash (C{/LB-CHECK},
C{/lb-check/}, C{/CHECK/a/mysql/main}) redirects to the canonical path, the
parameters' case kept (301 for GET, 307 otherwise; L{ROUTE_FIXER}, see
L{freno.http.fixpath}).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Optional, Sequence

import attr
from klein import Klein
from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter

from freno.consensus.interface import ConsensusError, IConsensusService
from freno.http.auth import Authenticator, AuthError, Caller
from freno.http.control import (
    GetMutationsDisabled,
    audit_context,
    error_generic_body,
    log_committed,
    log_refused,
)
from freno.http.fixpath import PathFixer
from freno.http.gojson import GoTime, Struct, go_json
from freno.http.params import (
    ParameterError,
    check_name,
    parse_int,
    parse_ratio,
)
from freno.http.responses import (
    JSON,
    TEXT,
    method_not_allowed,
    not_found,
    options,
    redirect,
    respond,
    respond_bad_parameter,
    respond_generic,
)
from freno.probe.metrics import AggregatedMetrics
from freno.metrics.expvar import refresh_gauges, render_expvar
from freno.metrics.registry import Registry
from freno.consensus.commands import AuditContext, InvalidCommand, LimitReached
from freno.throttle.checker import InvalidCheck, Throttler
from freno.http.explain import Explainer
from freno.throttle.flags import LOW_PRIORITY, STANDARD

#: freno's C{/help}: the registered path patterns in registration order.
HELP = [
    "/lb-check", "/_ping", "/status", "/leader-check", "/raft/leader",
    "/raft/state", "/consensus/leader", "/consensus/state", "/consensus/status",
    "/hostname", "/check/:app/:storeType/:storeName",
    "/check-if-exists/:app/:storeType/:storeName",
    "/check-read/:app/:storeType/:storeName/:threshold",
    "/check-read-if-exists/:app/:storeType/:storeName/:threshold",
    "/aggregated-metrics", "/metrics-health", "/throttle-app/:app",
    "/throttle-app/:app/ratio/:ratio", "/throttle-app/:app/ttl/:ttlMinutes",
    "/throttle-app/:app/ttl/:ttlMinutes/ratio/:ratio", "/unthrottle-app/:app",
    "/throttled-apps", "/recent-apps", "/recent-apps/:lastMinutes",
    "/skip-host/:hostName", "/skip-host/:hostName/ttl/:ttlMinutes",
    "/skipped-hosts", "/recover-host/:hostName", "/debug/vars",
    "/debug/metrics", "/help",
]
GH = ["GET", "HEAD"]
EXPVAR_TYPE = b"application/json; charset=utf-8"
#: Routes that take GET only (werkzeug always adds HEAD to a GET rule).
GET_ONLY = {"/config/memcache"}

class SegmentConverter(BaseConverter):
    """
    One path segment, possibly empty (freno's router matched empty segments).
    """

    regex = "[^/]*"


def _app_klein() -> Klein:
    app = Klein()
    app.url_map.merge_slashes = False
    app.url_map.converters["seg"] = SegmentConverter
    return app


def _query(request, name: bytes) -> str:
    values = request.args.get(name)
    if not values:
        return ""
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterError(name.decode("ascii"), "not valid UTF-8") from None


class FrenoAPI:
    """
    Every non-check route.

    @param clock: the time source.
    @param throttler: checks' state (recent apps, built-in throttles) and the
        control commands.
    @param consensus: leadership and the replicated maps.
    @param metrics: the aggregated metrics.
    @param registry: the metric registry, for C{/debug/vars}.
    @param hostname: C{/hostname}'s answer (C{""}: 500).
    @param memcache_servers: C{/config/memcache}'s C{MemcacheServers}.
    @param memcache_path: C{/config/memcache}'s C{MemcachePath}.
    @param authenticator: checks the mutation routes' tokens (default: none
        configured).
    @param allow_get_mutations: C{AllowGetMutations}.
    @param explainer: C{/explain}'s document builder.
    @param leader_check: whether C{/leader-check} passes (default: the
        consensus's C{is_leader}; a node wires
        L{freno.probe.warmth.LeaderWarmth.leader_check}).
    """

    app = _app_klein()
    _log = Logger()

    def __init__(
        self,
        *,
        clock: IReactorTime,
        throttler: Throttler,
        consensus: IConsensusService,
        metrics: AggregatedMetrics,
        registry: Registry,
        hostname: str,
        memcache_servers: Sequence[str] = (),
        memcache_path: str = "freno",
        authenticator: Optional[Authenticator] = None,
        allow_get_mutations: bool = True,
        explainer: Explainer,
        leader_check: Optional[Callable[[], bool]] = None,
    ) -> None:
        self._leader_check = leader_check if leader_check is not None else consensus.is_leader
        self._auth = authenticator if authenticator is not None else Authenticator()
        self._allow_get_mutations = allow_get_mutations
        self._clock = clock
        self._throttler = throttler
        self._consensus = consensus
        self._metrics = metrics
        self._registry = registry
        self._hostname = hostname
        self._memcache = Struct(
            (("MemcacheServers", list(memcache_servers)), ("MemcachePath", memcache_path))
        )
        self._started = clock.seconds()
        self._explainer = explainer

    # -- health and leadership ------------------------------------------

    @app.route("/lb-check", methods=GH)
    @app.route("/_ping", methods=GH)
    @app.route("/status", methods=GH)
    def lb_check(self, request):
        """
        Always healthy.
        """
        return respond_generic(request)

    @app.route("/leader-check", methods=GH)
    def leader_check(self, request):
        """
        200 C{"HTTP 200"} on the leader (once warm, D68), else 404
        C{"HTTP 404"} (body on GET).
        """
        status = 200 if self._leader_check() else 404
        if request.method != b"GET":
            return respond(request, status, b"", None)
        return respond(request, status, go_json(f"HTTP {status}"), TEXT)

    @app.route("/raft/leader", methods=GH)
    @app.route("/consensus/leader", methods=GH)
    def consensus_leader(self, request):
        """
        The leader's id as a JSON string, or 500 with no body if unknown.
        """
        return self._string(request, self._consensus.leader())

    @app.route("/raft/state", methods=GH)
    @app.route("/consensus/state", methods=GH)
    def consensus_state(self, request):
        """
        The consensus state description as a JSON string.
        """
        return respond(
            request, 200, go_json(self._consensus.state_description()), TEXT
        )

    @app.route("/consensus/status", methods=GH)
    def consensus_status(self, request):
        """
        freno's C{ConsensusServiceStatus} object.
        """
        status = self._consensus.status()
        fields = [(a.name, getattr(status, a.name)) for a in attr.fields(type(status))]
        fields = [(k, dict(v) if isinstance(v, Mapping) else v) for k, v in fields]
        return respond(request, 200, go_json(Struct(fields)), JSON)

    @app.route("/hostname", methods=GH)
    def hostname(self, request):
        """
        This host's name as a JSON string, or 500 with no body if unknown.
        """
        return self._string(request, self._hostname)

    def _string(self, request, text: str):
        if not text:
            return respond(request, 500, b"", None)
        return respond(request, 200, go_json(text), TEXT)

    # -- metrics ----------------------------------------------------------

    @app.route("/aggregated-metrics", methods=GH)
    def aggregated_metrics(self, request):
        """
        C{{"mysql/<cluster>": "<value>" | "error: <text>"}}; C{?brief=true}
        gives three decimals instead of six.
        """
        fmt = "%.3f" if _query(request, b"brief") == "true" else "%f"
        body = {
            "mysql/" + cluster: (
                "error: " + metric.error if metric.error is not None else fmt % metric.value
            )
            for cluster, metric in self._metrics.items()
        }
        return respond(request, 200, go_json(body), JSON)

    @app.route("/metrics-health", methods=GH)
    def metrics_health(self, request):
        """
        When each metric was last at or below its threshold (entries never
        expire, as in freno).
        """
        now = self._clock.seconds()
        body = {
            "mysql/" + cluster: Struct(
                (
                    ("LastHealthyAt", GoTime(at)),
                    ("SecondsSinceLastHealthy", int(now - at)),
                )
            )
            for cluster, at in self._metrics.last_healthy_at.items()
        }
        return respond(request, 200, go_json(body), JSON)

    @app.route("/debug/vars", methods=GH)
    @app.route("/debug/metrics", methods=GH)
    def debug_vars(self, request):
        """
        The expvar document (L{freno.metrics.expvar}).
        """
        now = self._clock.seconds()
        refresh_gauges(self._registry, self._throttler.throttled_apps(), self._metrics, now)
        body = render_expvar(self._registry, now - self._started)
        return respond(request, 200, body, EXPVAR_TYPE)

    @app.route("/help", methods=GH)
    def help(self, request):
        """
        The registered path patterns.
        """
        return respond(request, 200, go_json(HELP), JSON)

    @app.route("/config/memcache", methods=["GET"])
    def memcache_config(self, request):
        """
        The memcache settings (GET only).
        """
        if request.method != b"GET":
            return method_not_allowed(request, b"GET, OPTIONS")
        return respond(request, 200, go_json(self._memcache), JSON)

    # -- explanations ---------------------------------------------------------

    @app.route("/explain/<seg:app>/<seg:store_type>/<seg:store_name>", methods=GH)
    def explain(self, request, app, store_type, store_name):
        """
        What a check of C{app} on C{store_type}/C{store_name} would answer
        now, and why, host by host (L{freno.http.explain}).
        """
        flags = LOW_PRIORITY if _query(request, b"p") == "low" else STANDARD
        document = self._explainer.explain(app, store_type, store_name, flags)
        body = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
        return respond(request, 200, body.encode("utf-8", "surrogateescape") + b"\n", JSON)

    # -- throttles ----------------------------------------------------------

    @app.route("/throttle-app/<seg:app>", methods=GH)
    def throttle_app(self, request, app):
        """
        Throttle permanently with ratio 1 (or keep the existing ratio).
        """
        return self._throttle(request, app, None, None)

    @app.route("/throttle-app/<seg:app>/ratio/<seg:ratio>", methods=GH)
    def throttle_app_ratio(self, request, app, ratio):
        """
        Throttle permanently with C{ratio}.
        """
        return self._throttle(request, app, None, ratio)

    @app.route("/throttle-app/<seg:app>/ttl/<seg:ttl>", methods=GH)
    def throttle_app_ttl(self, request, app, ttl):
        """
        Throttle for C{ttl} minutes.
        """
        return self._throttle(request, app, ttl, None)

    @app.route("/throttle-app/<seg:app>/ttl/<seg:ttl>/ratio/<seg:ratio>", methods=GH)
    def throttle_app_ttl_ratio(self, request, app, ttl, ratio):
        """
        Throttle for C{ttl} minutes with C{ratio}.
        """
        return self._throttle(request, app, ttl, ratio)

    def _throttle(self, request, app, ttl_text: Optional[str], ratio_text: Optional[str]):
        caller = self._authorize(request, "throttle", "throttle")
        key, store = self._app_key(request, app)
        ttl = 0 if ttl_text is None else parse_int("ttlMinutes", ttl_text)
        ratio = None if ratio_text is None else parse_ratio(ratio_text)
        params = {"app": app, "store": store, "ttlMinutes": ttl, "ratio": ratio}
        context = self._context(request, caller, params)
        return self._command(request, context, self._throttler.throttle_app, key, ttl, ratio)

    @app.route("/unthrottle-app/<seg:app>", methods=GH)
    def unthrottle_app(self, request, app):
        """
        Remove a throttle (OK if there is none).
        """
        caller = self._authorize(request, "throttle", "unthrottle")
        key, store = self._app_key(request, app)
        context = self._context(request, caller, {"app": app, "store": store})
        return self._command(request, context, self._throttler.unthrottle_app, key)

    def _app_key(self, request, app: str):
        check_name("app", app)
        store = check_name("store_name", _query(request, b"store_name"), allow_empty=True)
        return (f"{app}/{store}" if store else app), (store or None)

    def _authorize(self, request, permission: str, kind: str) -> Caller:
        """
        Refuse the mutation if GET mutations are off or the caller may not
        use C{permission}; else who the caller is.
        """
        request.freno_mutation = True
        if not self._allow_get_mutations:
            raise GetMutationsDisabled(kind)
        return self._auth.require(request, permission)

    def _context(self, request, caller: Caller, params) -> AuditContext:
        reason = _query(request, b"reason") or None
        return audit_context(self._clock, caller, request, params, reason)

    @app.route("/throttled-apps", methods=GH)
    def throttled_apps(self, request):
        """
        C{{appKey: {"ExpireAt": time, "Ratio": float}}} for active throttles.
        """
        now = self._clock.seconds()
        body = {
            key: Struct((("ExpireAt", GoTime(t.expire_at)), ("Ratio", t.ratio)))
            for key, t in self._throttler.throttled_apps().items()
            if t.active(now)
        }
        return respond(request, 200, go_json(body), JSON)

    @app.route("/recent-apps", methods=GH)
    @app.route("/recent-apps/<seg:minutes>", methods=GH)
    def recent_apps(self, request, minutes: Optional[str] = None):
        """
        C{{"<app>/<addr>": {"CheckedAtEpoch": int, "MinutesSinceChecked": int}}},
        optionally only those checked within C{minutes} (0 or negative: all).
        """
        last = 0 if minutes is None else parse_int("lastMinutes", minutes)
        now = self._clock.seconds()
        body = {
            key: Struct(
                (
                    ("CheckedAtEpoch", int(at)),
                    ("MinutesSinceChecked", int((now - at) // 60)),
                )
            )
            for key, at in self._throttler.recent_apps.items(now, last)
        }
        return respond(request, 200, go_json(body), JSON)

    # -- hosts --------------------------------------------------------------

    @app.route("/skip-host/<seg:host>", methods=GH)
    @app.route("/skip-host/<seg:host>/ttl/<seg:ttl>", methods=GH)
    def skip_host(self, request, host, ttl: Optional[str] = None):
        """
        Skip a host for C{ttl} minutes (default 60; negative: recover).
        """
        caller = self._authorize(request, "skip", "skip")
        check_name("hostName", host)
        minutes = 0 if ttl is None else parse_int("ttlMinutes", ttl)
        context = self._context(request, caller, {"host": host, "ttlMinutes": minutes})
        return self._command(request, context, self._throttler.skip_host, host, minutes)

    @app.route("/recover-host/<seg:host>", methods=GH)
    def recover_host(self, request, host):
        """
        Stop skipping a host.
        """
        caller = self._authorize(request, "skip", "recover")
        check_name("hostName", host)
        context = self._context(request, caller, {"host": host})
        return self._command(request, context, self._throttler.recover_host, host)

    @app.route("/skipped-hosts", methods=GH)
    def skipped_hosts(self, request):
        """
        C{{hostName: expireAt}} for active skips.
        """
        now = self._clock.seconds()
        body = {
            host: GoTime(at)
            for host, at in self._consensus.skipped_hosts().items()
            if at > now
        }
        return respond(request, 200, go_json(body), JSON)

    def _command(self, request, context: AuditContext, command: Callable[..., Any], *args):
        def done(applied):
            if applied is not None and applied.audit_id is not None:
                log_committed(context, applied)
            return respond_generic(request)

        d = maybeDeferred(command, *args, context=context)
        d.addCallback(done)
        return d

    # -- errors -------------------------------------------------------------

    @app.handle_errors(ParameterError, InvalidCommand, InvalidCheck)
    def _bad_parameter(self, request, failure):
        if getattr(request, "freno_mutation", False):
            error = failure.value
            actor = self._auth.identify(request).actor
            if isinstance(error, LimitReached) and error.audit_id is not None:
                why = f"{error} (audit {error.audit_id})"
            else:
                why = str(error)
            log_refused(request, actor, 400, why)
        return respond_bad_parameter(request, failure.value)

    @app.handle_errors(AuthError)
    def _refused(self, request, failure):
        error = failure.value
        log_refused(request, error.actor, error.status, error.message)
        if error.status == 401:
            request.setHeader(b"www-authenticate", b'Bearer realm="freno"')
        if request.method != b"GET":
            return respond(request, error.status, b"", None)
        body = error_generic_body(error.status, error.code, error.message)
        return respond(request, error.status, body, JSON)

    @app.handle_errors(GetMutationsDisabled)
    def _get_mutations_disabled(self, request, failure):
        error = failure.value
        log_refused(request, self._auth.identify(request).actor, 405, str(error))
        request.setHeader(b"allow", b"")
        if request.method != b"GET":
            return respond(request, 405, b"", None)
        body = error_generic_body(405, "method_not_allowed", str(error))
        return respond(request, 405, body, JSON)

    @app.handle_errors(ConsensusError)
    def _consensus_failed(self, request, failure):
        self._log.warn(
            "command failed: {error}", error=str(failure.value), path=request.path
        )
        return respond_generic(request, 500, str(failure.value))

    @app.handle_errors(NotFound)
    def _not_found(self, request, failure):
        fixed = ROUTE_FIXER.fixed(request.path)
        if fixed is not None:
            return redirect(request, fixed)
        return not_found(request)

    @app.handle_errors(MethodNotAllowed)
    def _method_not_allowed(self, request, failure):
        return method_not_allowed(request, _allow_header(self.app, request.path))

    @app.handle_errors(Exception)
    def _internal_error(self, request, failure):
        self._log.failure("request failed", failure, path=request.path)
        return respond_generic(request, 500, "internal error")


#: Every route of this API (the Klein app's and the check routes, which all
#: appear in L{HELP}), for case-insensitive and trailing-slash redirects.
ROUTE_FIXER = PathFixer(HELP + [rule.rule for rule in FrenoAPI.app.url_map.iter_rules()])


def _decoded(path: bytes) -> Optional[str]:
    from urllib.parse import unquote_to_bytes

    try:
        return unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _allowed(app: Klein, path: bytes) -> list:
    text = _decoded(path)
    if text is None:
        return []
    try:
        return app.url_map.bind("localhost").allowed_methods(text)
    except Exception:
        return []


def _allow_header(app: Klein, path: bytes) -> bytes:
    text = _decoded(path) or ""
    methods = set(_allowed(app, path)) | {"OPTIONS"}
    if text in GET_ONLY:
        methods.discard("HEAD")
    return ", ".join(sorted(methods)).encode("ascii")


class ApiResource(Resource):
    """
    The root resource for every non-check path: GET and HEAD go to the Klein
    app; other methods get 404 (unknown path), 200 with C{Allow} (OPTIONS)
    or 405 with C{Allow}.

    @param api: the Klein app's instance.
    """

    isLeaf = True

    def __init__(self, api: FrenoAPI) -> None:
        super().__init__()
        self._api = api
        self._klein = api.app.resource()

    def render(self, request):
        path = request.path
        if _decoded(path) is None:
            return respond_generic(request, 400, "path: not valid UTF-8")
        method = request.method
        if method == b"GET" or method == b"HEAD":
            return self._klein.render(request)
        if not _allowed(self._api.app, path):
            fixed = ROUTE_FIXER.fixed(path)
            if fixed is not None:
                return redirect(request, fixed)
            return not_found(request)
        allow = _allow_header(self._api.app, path)
        if method == b"OPTIONS":
            return options(request, allow)
        return method_not_allowed(request, allow)
