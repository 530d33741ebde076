# -*- test-case-name: test.unit.test_http_api,test.integration.test_http_protocol,test.unit.test_check_headers,test.unit.test_explain,test.unit.test_http_fast_check -*-
"""
L{build_site}: the whole HTTP service as one C{twisted.web} L{Site}.
L{freno.tap} builds it and serves it on C{ListenPort}.

Its connections are, by default, L{FastCheckChannel}s: they answer GET and
HEAD on the check routes themselves and hand everything else to the plain
C{twisted.web} channel, which serves this site as described below
(L{freno.http.fast_check}; C{"CheckFastPath": false} turns that off).

The root, L{FrenoRoot}, is a leaf that dispatches on the raw path without
traversal: a path starting with C{/check} goes straight to the
L{CheckResource} (the hot path), C{/metrics} to C{metrics_resource} when
given, C{/api/v1} and below to the REST API (L{freno.http.rest}), C{/} and
C{/dashboard} and below to the status page (L{freno.http.dashboard}),
everything else to the Klein app behind L{ApiResource}. (It is a
resource rather than a C{Site.getResourceFor} override so that
C{StubTreq(site.resource)} tests exactly what is served.) Requests on the check path are not access-logged (logging
cost about 40% of throughput), nor the status page's polling; every other request is. Tracebacks are never
shown to clients (C{displayTracebacks = False}).
"""

from __future__ import annotations

import random as _random
from typing import Callable, Optional, Sequence, Tuple

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from freno.config.model import Config
from freno.consensus.interface import IConsensusService
from freno.inventory.interfaces import IInventory
from freno.http.api import ApiResource, FrenoAPI
from freno.http.auth import Authenticator
from freno.http.check_headers import LeaderHeader
from freno.http.check_resource import CheckResource
from freno.http.check_bytes import CheckAnswerBytes
from freno.http.fast_check import FastCheckChannel
from freno.http.protocol import FrenoChannel, FrenoRequest
from freno.http.responses import method_not_allowed, options
from freno.http.rest import PREFIX as REST_PREFIX, RestAPI, RestResource
from freno.http.rest_members import MembersAPI, MembersResource, owns as members_path
from freno.http.rest_leadership import (
    PREFIX as LEADERSHIP_PREFIX,
    LeadershipAPI,
    LeadershipResource,
)
from freno.consensus.membership import IMembership
from freno.probe.metrics import AggregatedMetrics
from freno.metrics.registry import Registry
from freno.throttle.checker import SharedDomainSource, Throttler
from freno.http.explain import Explainer, HostStates
from freno.http.dashboard.page import PATH as DASHBOARD_PATH, DashboardResource
from freno.http.dashboard.parts import DashboardParts
from freno.http.dashboard.views import DashboardViews

CHECK_PREFIX = b"/check"
#: The status page's polling (three requests a second per open page) is not
#: access-logged; the page itself is (D79).
DASHBOARD_JSON_PREFIX = DASHBOARD_PATH + b"/"
HISTORY_PATH = REST_PREFIX + b"/history"
#: The methods C{/metrics} takes (the same rules as every other route).
METRICS_ALLOW = b"GET, HEAD, OPTIONS"


class FrenoRoot(Resource):
    """
    The root: dispatches on the raw path without traversal. A path starting
    with C{/check} goes to the check resource, C{/metrics} to the metrics
    resource if any, everything else to the API resource.

    @param api_resource: the root for every non-check path.
    @param check_resource: the resource for C{/check*}.
    @param metrics_resource: the resource for C{/metrics}, or C{None}.
    @param rest_resource: the resource for C{/api/v1} and below, or C{None}.
    @param members_resource: the resource for C{/api/v1/members} and below
        (L{freno.http.rest_members}), or C{None}.
    @param dashboard_resource: the resource for C{/}, C{/dashboard} and
        below (the status page), or C{None}.
    """

    isLeaf = True

    def __init__(
        self,
        api_resource: IResource,
        check_resource: IResource,
        metrics_resource: Optional[IResource] = None,
        rest_resource: Optional[IResource] = None,
        members_resource: Optional[IResource] = None,
        dashboard_resource: Optional[IResource] = None,
    ) -> None:
        super().__init__()
        self.api_resource = api_resource
        self.check_resource = check_resource
        self.metrics_resource = metrics_resource
        self.rest_resource = rest_resource
        self.members_resource = members_resource
        self.dashboard_resource = dashboard_resource

    def render(self, request):
        path = request.path
        if path.startswith(CHECK_PREFIX):
            return self.check_resource.render(request)
        if self.metrics_resource is not None and path == b"/metrics":
            method = request.method
            if method == b"GET" or method == b"HEAD":
                return self.metrics_resource.render(request)
            if method == b"OPTIONS":
                return options(request, METRICS_ALLOW)
            return method_not_allowed(request, METRICS_ALLOW)
        if self.members_resource is not None and members_path(path):
            return self.members_resource.render(request)
        if self.rest_resource is not None and (
            path == REST_PREFIX or path.startswith(REST_PREFIX + b"/")
        ):
            return self.rest_resource.render(request)
        if self.dashboard_resource is not None and (
            path == b"/" or path == DASHBOARD_PATH or path.startswith(DASHBOARD_PATH + b"/")
        ):
            return self.dashboard_resource.render(request)
        return self.api_resource.render(request)


class RestRoutes(Resource):
    """
    The C{/api/v1} tree: each prefix of C{parts} (C{/api/v1/leadership})
    to its own resource, everything else to C{default} (L{RestResource}).
    """

    isLeaf = True

    def __init__(self, default: IResource, parts: Sequence[Tuple[bytes, IResource]]) -> None:
        super().__init__()
        self._default = default
        self._parts = tuple(parts)

    def render(self, request):
        path = request.path
        for prefix, resource in self._parts:
            if path == prefix or path.startswith(prefix + b"/"):
                return resource.render(request)
        return self._default.render(request)


class FrenoSite(Site):
    """
    A L{Site} that hands C{/check*} straight to the check resource (no
    traversal), writes no access log for it (nor for the status page's
    polling: C{/dashboard/...} and C{/api/v1/history}) and never shows
    tracebacks. Its root must be a L{FrenoRoot}.

    Its connections are L{FastCheckChannel}s when C{fast_check} is true (the
    check routes answered without C{twisted.web}'s per-request machinery,
    everything else handed to the plain channel; L{freno.http.fast_check}),
    else plain L{FrenoChannel}s (HTTP/1.1 with request-head limits answered
    414/431); its requests are L{FrenoRequest}s (standard reason phrases),
    see L{freno.http.protocol}.

    @param resource: the root, a L{FrenoRoot}.
    @param fast_check: serve the check routes through L{FastCheckChannel}.
    """

    displayTracebacks = False
    protocol = FrenoChannel
    requestFactory = FrenoRequest

    def __init__(self, resource: FrenoRoot, *args, fast_check: bool = False, **kwargs) -> None:
        super().__init__(resource, *args, **kwargs)
        check = resource.check_resource
        #: The fast channel's response renderer, query and head caches.
        self.check_bytes = CheckAnswerBytes(check.clock, check.leader)
        self.check_queries: dict = {}
        self.check_heads: dict = {}
        if fast_check:
            self.protocol = FastCheckChannel

    def getResourceFor(self, request):
        # The hot path skips traversal (and its copy of prepath) entirely.
        if request.path.startswith(CHECK_PREFIX):
            request.site = self
            request.sitepath = []
            return self.resource.check_resource
        return super().getResourceFor(request)

    def log(self, request):
        path = request.path
        if path.startswith(CHECK_PREFIX) or path.startswith(DASHBOARD_JSON_PREFIX) or path == HISTORY_PATH:
            return
        super().log(request)


def build_site(
    *,
    clock: IReactorTime,
    config: Config,
    consensus: IConsensusService,
    metrics: AggregatedMetrics,
    registry: Registry,
    hostname: str,
    metrics_resource: Optional[IResource] = None,
    memcache_servers: Optional[Sequence[str]] = None,
    memcache_path: Optional[str] = None,
    random: Callable[[], float] = _random.random,
    throttler: Optional[Throttler] = None,
    shared_domain: Optional[SharedDomainSource] = None,
    hosts: Optional[Callable[[str], Optional[int]]] = None,
    inventory: Optional[IInventory] = None,
    host_states: Optional[HostStates] = None,
    dashboard: Optional[DashboardParts] = None,
    leader_check: Optional[Callable[[], bool]] = None,
    fast_check: Optional[bool] = None,
) -> FrenoSite:
    """
    Build the HTTP service.

    @param memcache_servers: C{/config/memcache}'s servers (default: config).
    @param memcache_path: C{/config/memcache}'s path (default: config).
    @param throttler: an existing L{Throttler} to serve (default: a new one
        built from the other arguments).
    @param shared_domain: the shared-domain health source for the check
        algorithm (a L{freno.consensus.mysql.shared_domain.SharedDomainHealth}), or
        C{None}; used only when C{throttler} is not given.
    @param hosts: cluster name to its number of hosts, for
        C{/api/v1/status} (default: unknown).
    @param inventory: every cluster's host list and refresh status, for
        C{/explain} (C{None}: not shown).
    @param host_states: cluster name to its hosts' states
        (L{freno.probe.service.ProbeService.host_states}), for C{/explain}
        (C{None}: no host breakdown).
    @param dashboard: the status page's state, filled by a
        L{freno.http.dashboard.sampler.DashboardSampler} (default: fresh,
        empty parts).
    @param leader_check: whether C{/leader-check} passes (default: the
        consensus's C{is_leader}).
    @param fast_check: serve the check routes through the fast check
        protocol (default: C{config.check_fast_path}; L{FrenoSite}).
    """
    if throttler is None:
        throttler = Throttler(
            clock, config, consensus, metrics, registry, random, shared_domain=shared_domain
        )
    authenticator = Authenticator(config.control_tokens)
    explainer = Explainer(clock, config, throttler, consensus, metrics, inventory, host_states)
    if dashboard is None:
        dashboard = DashboardParts.for_config(config, consensus)
    views = DashboardViews(
        clock=clock,
        consensus=consensus,
        throttler=throttler,
        explainer=explainer,
        clusters={
            name: (c.throttle_threshold, c.resume_threshold)
            for name, c in config.mysql.clusters.items()
        },
        history=dashboard.history,
        leadership=dashboard.leadership,
        audit=dashboard.audit,
        listen_port=config.listen_port,
        urls=dict(config.dashboard_urls),
    )
    api = FrenoAPI(
        clock=clock,
        throttler=throttler,
        consensus=consensus,
        metrics=metrics,
        registry=registry,
        hostname=hostname,
        memcache_servers=(
            config.memcache_servers if memcache_servers is None else memcache_servers
        ),
        memcache_path=config.memcache_path if memcache_path is None else memcache_path,
        authenticator=authenticator,
        allow_get_mutations=config.allow_get_mutations,
        explainer=explainer,
        leader_check=leader_check,
    )
    rest = RestAPI(
        clock=clock,
        throttler=throttler,
        consensus=consensus,
        metrics=metrics,
        thresholds={name: c.throttle_threshold for name, c in config.mysql.clusters.items()},
        authenticator=authenticator,
        restrict_audit_log=config.restrict_audit_log,
        hosts=hosts,
        history=views.history_bytes,
    )
    check = CheckResource(throttler, clock, LeaderHeader.of(consensus))
    members = MembersAPI(
        clock=clock,
        membership=consensus if IMembership.providedBy(consensus) else None,
        authenticator=authenticator,
    )
    leadership = LeadershipAPI(clock=clock, consensus=consensus, authenticator=authenticator)
    rest_routes = RestRoutes(
        RestResource(rest), [(LEADERSHIP_PREFIX, LeadershipResource(leadership))]
    )
    root = FrenoRoot(
        ApiResource(api), check, metrics_resource, rest_routes, MembersResource(members),
        DashboardResource(views),
    )
    if fast_check is None:
        fast_check = config.check_fast_path
    return FrenoSite(root, reactor=clock, fast_check=fast_check)
