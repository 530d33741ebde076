# -*- test-case-name: test.unit.test_http_rest,test.unit.test_http_openapi -*-
"""
L{RestAPI}: the control plane's REST API under C{/api/v1}, beside freno's
routes (C{docs/api.md} and C{docs/openapi.json} document it; a test checks
the OpenAPI file against L{RestAPI.app}'s routes).

    GET    /api/v1/status              leader, term, members, clusters
    GET    /api/v1/throttles           active throttles
    POST   /api/v1/throttles           throttle an app        (role: throttle)
    DELETE /api/v1/throttles/{app}     unthrottle             (role: throttle)
    GET    /api/v1/skips               active skips
    POST   /api/v1/skips               skip a host            (role: operator)
    DELETE /api/v1/skips/{host}        recover                (role: operator)
    GET    /api/v1/policies            per-app policies
    PUT    /api/v1/policies/{app}      set a policy           (operator; admin to exempt)
    DELETE /api/v1/policies/{app}      remove a policy        (operator; admin if exempt)
    GET    /api/v1/audit               the audit log          (audit, when restricted)
    GET    /api/v1/history             the leader's recent cluster values (the status page)

A mutation answers only once its command is committed and applied on the
node that answered (any node accepts it; raft forwards to the leader), with
the resulting entry and the id of its audit record. A removal is always
committed (and audited), even for a name this node does not have: the node
that answers may lag behind the command that created it, and a removal it
skipped would be acknowledged and lost (D6). C{"removed"} says whether this
node had an active entry just before.
Errors are C{{"error": {"status", "code", "message", "field"?}}}: 400
C{invalid_parameter} naming the field, 401 C{unauthenticated} (with
C{WWW-Authenticate: Bearer}), 403 C{forbidden} naming the role needed, 404
C{not_found}, 405 C{method_not_allowed} (with C{Allow}), 503
C{not_leader}/C{no_quorum}/C{commit_timeout} (with C{Retry-After}: the
command could not be committed now; C{commit_timeout} means its outcome is
unknown), 500 C{internal}.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from klein import Klein
from twisted.internet.defer import inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from werkzeug.routing import BaseConverter

from freno.consensus.commands import (
    InvalidCommand,
    LimitReached,
    RemovePolicy,
    SetPolicy,
    SkipHost,
    ThrottleApp,
    UnthrottleApp,
    RecoverHost,
    check_ratio,
    policy_key,
)
from freno.consensus.interface import (
    IConsensusService,
)
from freno.http.auth import Authenticator
from freno.http.control import audit_context, log_committed
from freno.http.rest_errors import (
    install_common_errors,
    invalid_command,
    openapi_routes,
)
from freno.http.rest_io import (
    RestError,
    audit_json,
    bool_field,
    invalid,
    json_response,
    name_field,
    number_field,
    parse_ttl,
    policy_json,
    query_int,
    query_number,
    query_text,
    read_json_object,
    skip_json,
    text_field,
    throttle_json,
)
from freno.probe.metrics import AggregatedMetrics
from freno.throttle.checker import DEFAULT_SKIP_TTL_MINUTES, Throttler

#: The prefix of every REST route.
PREFIX = b"/api/v1"
#: The largest audit page.
MAX_AUDIT_PAGE = 1000

#: The fields each request body may hold (C{docs/openapi.json} documents
#: the same; a test checks it).
THROTTLE_FIELDS = ("app", "store", "ratio", "ttl", "reason")
SKIP_FIELDS = ("host", "ttl", "reason")
POLICY_FIELDS = ("store", "threshold", "exempt", "reason")


def node_json(consensus: IConsensusService) -> dict:
    """
    The consensus part of C{GET /api/v1/status} (also the status page's):
    C{node}, C{leader}, C{is_leader}, C{term}, C{state}, C{healthy},
    C{backend} and C{members}.
    """
    control = consensus.control_status()
    return {
        "node": consensus.status().ServiceID,
        "leader": consensus.leader() or None,
        "is_leader": consensus.is_leader(),
        "term": control.term,
        "state": consensus.state_description(),
        "healthy": consensus.is_healthy(),
        "backend": control.backend,
        "members": [
            {"id": m.id, "self": m.is_self, "leader": m.leader, "reachable": m.reachable}
            for m in control.members
        ],
    }


class _Name(BaseConverter):
    """
    One non-empty path segment.
    """

    regex = "[^/]+"


def _klein() -> Klein:
    app = Klein()
    app.url_map.strict_slashes = False
    app.url_map.converters["name"] = _Name
    return app


class RestAPI:
    """
    The C{/api/v1} routes.

    @param clock: the time source (expiries, audit times, ages).
    @param throttler: sends commands (limit checks) and knows the built-in
        throttles.
    @param consensus: the replicated state and leadership.
    @param metrics: the aggregated metrics, for the status.
    @param thresholds: cluster name to C{ThrottleThreshold}.
    @param authenticator: the tokens.
    @param restrict_audit_log: C{RestrictAuditLog}.
    @param hosts: cluster name to its number of hosts (C{None}: unknown).
    @param history: the history document's bytes given C{since} (or
        C{None}), cached per second
        (L{freno.http.dashboard.views.DashboardViews.history_bytes}), or
        C{None} (404).
    """

    app = _klein()
    _log = Logger()

    def __init__(
        self,
        *,
        clock: IReactorTime,
        throttler: Throttler,
        consensus: IConsensusService,
        metrics: AggregatedMetrics,
        thresholds,
        authenticator: Optional[Authenticator] = None,
        restrict_audit_log: bool = False,
        hosts: Optional[Callable[[str], Optional[int]]] = None,
        history: Optional[Callable[[Optional[float]], bytes]] = None,
    ) -> None:
        self._clock = clock
        self._throttler = throttler
        self._consensus = consensus
        self._metrics = metrics
        self._thresholds = dict(thresholds)
        self._auth = authenticator if authenticator is not None else Authenticator()
        self._restrict_audit = restrict_audit_log
        self._hosts = hosts
        self._history = history

    # -- status -------------------------------------------------------------

    @app.route("/api/v1/status", methods=["GET"])
    def status(self, request):
        """
        The node, its leader, the members and every cluster's value.
        """
        consensus = self._consensus
        now = self._clock.seconds()
        clusters = []
        for name in sorted(self._thresholds):
            metric = self._metrics.get(name)
            hosts = self._hosts(name) if self._hosts is not None else None
            clusters.append(
                {
                    "name": name,
                    "value": metric.value if metric is not None and metric.error is None else None,
                    "threshold": self._thresholds[name],
                    "age_ms": None if metric is None else int((now - metric.measured_at) * 1000),
                    "error": None if metric is None else metric.error,
                    "hosts": hosts,
                }
            )
        return json_response(
            request,
            200,
            {
                **node_json(consensus),
                "clusters": clusters,
                "time_unix": now,
            },
        )

    # -- history -------------------------------------------------------------

    @app.route("/api/v1/history", methods=["GET"])
    def history(self, request):
        """
        The leader's ring buffer of every cluster's value (one point a
        second, 15 minutes; no points on a follower), cached per second;
        C{?since=<time_unix>}: only the points after that time. Readable
        from other origins, as the status page follows the leader.
        """
        if self._history is None:
            raise RestError(404, "not_found", "no history on this node")
        since = query_number(request, "since")
        body = self._history(since)
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"access-control-allow-origin", b"*")
        request.setHeader(b"content-length", b"%d" % (len(body),))
        return body

    # -- throttles -----------------------------------------------------------

    @app.route("/api/v1/throttles", methods=["GET"])
    def list_throttles(self, request):
        """
        Active throttles (the built-in C{abusing-app} included), by key.
        """
        now = self._clock.seconds()
        apps = self._throttler.throttled_apps()
        throttles = [throttle_json(k, apps[k]) for k in sorted(apps) if apps[k].active(now)]
        return json_response(request, 200, {"throttles": throttles})

    @app.route("/api/v1/throttles", methods=["POST"])
    @inlineCallbacks
    def throttle(self, request):
        """
        Throttle an app: C{{"app", "store", "ratio", "ttl", "reason"}}.
        """
        caller = self._auth.require(request, "throttle")
        body = read_json_object(request, THROTTLE_FIELDS)
        app = name_field(body.get("app"), "app")
        store = name_field(body.get("store"), "store", optional=True)
        ratio = number_field(body.get("ratio"), "ratio")
        if ratio is not None:
            check_ratio(ratio)
        ttl = parse_ttl(body.get("ttl"))
        reason = text_field(body.get("reason"), "reason")
        key = policy_key(app, store)
        self._throttler.refuse_builtin(key)
        now = self._clock.seconds()
        expire_at = None if ttl is None else now + ttl
        params = {
            "app": app, "store": store, "ratio": ratio, "ttl": body.get("ttl"),
            "expires_at_unix": expire_at,
        }
        context = audit_context(self._clock, caller, request, params, reason)
        applied = yield self._throttler.submit(ThrottleApp(key, expire_at, ratio, context))
        log_committed(context, applied)
        entry = self._consensus.throttled_apps().get(key)
        shown = throttle_json(key, entry) if entry is not None else None
        return json_response(request, 200, {"throttle": shown, "audit_id": applied.audit_id})

    @app.route("/api/v1/throttles/<name:app>", methods=["DELETE"])
    @inlineCallbacks
    def unthrottle(self, request, app):
        """
        Remove C{app}'s throttle (C{?store=} for a store-scoped one).
        """
        caller = self._auth.require(request, "throttle")
        app = name_field(app, "app")
        store = name_field(query_text(request, "store"), "store", optional=True)
        reason = query_text(request, "reason")
        key = policy_key(app, store)
        self._throttler.refuse_builtin(key)
        entry = self._consensus.throttled_apps().get(key)
        had = entry is not None and entry.active(self._clock.seconds())
        context = audit_context(self._clock, caller, request, {"app": app, "store": store}, reason)
        applied = yield self._throttler.submit(UnthrottleApp(key, context))
        log_committed(context, applied)
        return json_response(request, 200, {"removed": had, "audit_id": applied.audit_id})

    # -- skips ---------------------------------------------------------------

    @app.route("/api/v1/skips", methods=["GET"])
    def list_skips(self, request):
        """
        Active skips, by host.
        """
        now = self._clock.seconds()
        skipped = self._consensus.skipped_hosts()
        meta = self._consensus.skip_meta()
        skips = [
            skip_json(h, skipped[h], meta.get(h)) for h in sorted(skipped) if skipped[h] > now
        ]
        return json_response(request, 200, {"skips": skips})

    @app.route("/api/v1/skips", methods=["POST"])
    @inlineCallbacks
    def skip(self, request):
        """
        Skip a host: C{{"host", "ttl", "reason"}} (no TTL: 60 minutes).
        """
        caller = self._auth.require(request, "skip")
        body = read_json_object(request, SKIP_FIELDS)
        host = name_field(body.get("host"), "host")
        ttl = parse_ttl(body.get("ttl"))
        reason = text_field(body.get("reason"), "reason")
        if ttl is None:
            ttl = DEFAULT_SKIP_TTL_MINUTES * 60.0
        expire_at = self._clock.seconds() + ttl
        params = {"host": host, "ttl": body.get("ttl"), "expires_at_unix": expire_at}
        context = audit_context(self._clock, caller, request, params, reason)
        applied = yield self._throttler.submit(SkipHost(host, expire_at, context))
        log_committed(context, applied)
        expiry = self._consensus.skipped_hosts().get(host, expire_at)
        shown = skip_json(host, expiry, self._consensus.skip_meta().get(host))
        return json_response(request, 200, {"skip": shown, "audit_id": applied.audit_id})

    @app.route("/api/v1/skips/<name:host>", methods=["DELETE"])
    @inlineCallbacks
    def recover(self, request, host):
        """
        Stop skipping C{host}.
        """
        caller = self._auth.require(request, "skip")
        host = name_field(host, "host")
        reason = query_text(request, "reason")
        expiry = self._consensus.skipped_hosts().get(host)
        had = expiry is not None and expiry > self._clock.seconds()
        context = audit_context(self._clock, caller, request, {"host": host}, reason)
        applied = yield self._throttler.submit(RecoverHost(host, context))
        log_committed(context, applied)
        return json_response(request, 200, {"removed": had, "audit_id": applied.audit_id})

    # -- policies ------------------------------------------------------------

    @app.route("/api/v1/policies", methods=["GET"])
    def list_policies(self, request):
        """
        Every policy, by key.
        """
        policies = self._consensus.policies()
        return json_response(
            request, 200, {"policies": [policy_json(policies[k]) for k in sorted(policies)]}
        )

    @app.route("/api/v1/policies/<name:app>", methods=["PUT"])
    @inlineCallbacks
    def set_policy(self, request, app):
        """
        Set C{app}'s policy: C{{"store", "threshold", "exempt", "reason"}}.
        """
        caller = self._auth.require(request, "policy")
        app = name_field(app, "app")
        body = read_json_object(request, POLICY_FIELDS)
        store = name_field(body.get("store"), "store", optional=True)
        threshold = number_field(body.get("threshold"), "threshold")
        if threshold is not None and threshold <= 0:
            raise invalid("threshold", "must be greater than 0")
        exempt = bool_field(body.get("exempt"), "exempt")
        reason = text_field(body.get("reason"), "reason")
        key = policy_key(app, store)
        existing = self._consensus.policies().get(key)
        if exempt or (existing is not None and existing.exempt):
            caller = self._auth.require(request, "admin")
        if not exempt and threshold is not None and store is not None:
            store_threshold = self._thresholds.get(store)
            if store_threshold is not None and threshold > store_threshold:
                raise invalid(
                    "threshold",
                    f"{threshold:g} is above store {store}'s threshold {store_threshold:g}: "
                    "only a stricter threshold applies; mark the app exempt (admin) to allow it",
                )
        params = {"app": app, "store": store, "threshold": threshold, "exempt": exempt}
        context = audit_context(self._clock, caller, request, params, reason)
        applied = yield self._throttler.submit(SetPolicy(key, app, store, threshold, exempt, context))
        log_committed(context, applied)
        policy = self._consensus.policies().get(key)
        shown = policy_json(policy) if policy is not None else None
        return json_response(request, 200, {"policy": shown, "audit_id": applied.audit_id})

    @app.route("/api/v1/policies/<name:app>", methods=["DELETE"])
    @inlineCallbacks
    def remove_policy(self, request, app):
        """
        Remove C{app}'s policy (C{?store=} for a store-scoped one).
        """
        caller = self._auth.require(request, "policy")
        app = name_field(app, "app")
        store = name_field(query_text(request, "store"), "store", optional=True)
        reason = query_text(request, "reason")
        key = policy_key(app, store)
        existing = self._consensus.policies().get(key)
        if existing is not None and existing.exempt:
            caller = self._auth.require(request, "admin")
        context = audit_context(self._clock, caller, request, {"app": app, "store": store}, reason)
        applied = yield self._throttler.submit(RemovePolicy(key, context))
        log_committed(context, applied)
        return json_response(
            request, 200, {"removed": existing is not None, "audit_id": applied.audit_id}
        )

    # -- audit ---------------------------------------------------------------

    @app.route("/api/v1/audit", methods=["GET"])
    @inlineCallbacks
    def audit(self, request):
        """
        The audit records after C{?since=} (default 0), at most C{?limit=}
        (default 100, at most 1000).
        """
        if self._restrict_audit:
            self._auth.require(request, "audit")
        since = query_int(request, "since", 0, 0, 2**63 - 1)
        limit = query_int(request, "limit", 100, 1, MAX_AUDIT_PAGE)
        page = yield self._consensus.audit_log(since, limit)
        return json_response(
            request,
            200,
            {
                "records": [audit_json(r) for r in page.records],
                "next": page.next,
                "oldest": page.oldest,
            },
        )

    # -- errors --------------------------------------------------------------

    @app.handle_errors(InvalidCommand)
    def _invalid(self, request, failure):
        error = failure.value
        why = str(error)
        if isinstance(error, LimitReached) and error.audit_id is not None:
            why += f" (audit {error.audit_id})"
        return invalid_command(request, self._auth.identify(request).actor, error, why)


install_common_errors(RestAPI.app, "REST request", "command")


def rest_routes() -> Sequence[tuple]:
    """
    Every C{(method, path)} the REST API routes, paths in OpenAPI form
    (C{/api/v1/throttles/{app}}), HEAD left out.
    """
    return openapi_routes(RestAPI.app)


class RestResource(Resource):
    """
    The leaf resource serving L{RestAPI} (every method goes to Klein).

    @param api: the Klein app's instance.
    """

    isLeaf = True

    def __init__(self, api: RestAPI) -> None:
        super().__init__()
        self._klein = api.app.resource()

    def render(self, request):
        return self._klein.render(request)
