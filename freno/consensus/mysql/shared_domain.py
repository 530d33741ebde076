# -*- test-case-name: test.unit.test_consensus_mysql_shared_domain -*-
"""
L{SharedDomainHealth}: freno's shared-domain health, the collector behind
step 9 of the check algorithm (L{freno.throttle.checker}).

With the MySQL consensus backend, domains that name the same C{ShareDomain}
watch each other: while this node is leader, every second it fetches
C{GET http://<service_id>/metrics-health} from the leader of each other
domain sharing its C{ShareDomain} (the consensus service's
C{shared_domain_services()}, served from its cache), merges the answers with
L{aggregate} (per metric, the entry with the largest
C{SecondsSinceLastHealthy}, freno's C{MetricHealthMap.Aggregate}) and keeps
each merged metric for C{ttl} seconds (5 s). The check path asks
L{SharedDomainHealth.seconds_since_healthy}; a metric whose peers report
C{>= 1} makes every app except C{freno} get 429 (see
L{freno.throttle.checker}).

L{freno.tap} builds it with the MySQL backend and a C{ShareDomain}, and
hands it to the site's L{freno.throttle.checker.Throttler}. C{http_client} is
anything with treq's C{get(url)} returning treq responses (a
C{treq.client.HTTPClient}, or C{treq.testing.StubTreq} in tests).

It fails open, as freno: a peer that cannot be reached, answers anything
but 200, answers something that is not freno's metrics-health JSON (an
object of objects with a numeric C{SecondsSinceLastHealthy}), or does not
answer (headers and body) within C{timeout}, is logged and ignored for that
round; entries that no round refreshed for C{ttl} seconds disappear. Response
bodies are always read to the end. A round that is still running when the
next is due delays it (the tick returns its Deferred), so rounds never
overlap. A consensus service without L{ISharedDomainServices} (raft) leaves
the service idle: no loop runs.

Counters (C{/debug/vars}, not in freno): C{sharedomain.fetch.total} and
C{sharedomain.fetch.error}.
"""

from __future__ import annotations

import json
import math
from typing import Dict, Mapping, Optional, Tuple

import attr
from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freno.consensus.interface import ISharedDomainServices
from freno.metrics import catalogue
from freno.metrics.registry import Registry

#: freno's path for a node's own metric health.
METRICS_HEALTH_PATH = "/metrics-health"


@attr.s(frozen=True, auto_attribs=True, slots=True)
class MetricHealth:
    """
    One metric's health as C{/metrics-health} reports it.

    @ivar seconds_since_last_healthy: freno's C{SecondsSinceLastHealthy}.
    @ivar last_healthy_at: freno's C{LastHealthyAt} text, as received
        (informational only).
    """

    seconds_since_last_healthy: float
    last_healthy_at: Optional[str] = None


class MetricHealthError(ValueError):
    """
    A C{/metrics-health} body is not freno's shape.
    """


def aggregate(
    into: Dict[str, MetricHealth], other: Mapping[str, MetricHealth]
) -> Dict[str, MetricHealth]:
    """
    freno's C{MetricHealthMap.Aggregate}: merge C{other} into C{into},
    keeping per metric the entry with the larger C{SecondsSinceLastHealthy}
    (metrics only in C{other} are added). Mutates and returns C{into}.
    """
    for name, health in other.items():
        current = into.get(name)
        if current is None or current.seconds_since_last_healthy < health.seconds_since_last_healthy:
            into[name] = health
    return into


def parse_metrics_health(body: bytes) -> Dict[str, MetricHealth]:
    """
    Parse a C{/metrics-health} body: a JSON object mapping metric names to
    objects with a finite numeric C{SecondsSinceLastHealthy} (and an optional
    C{LastHealthyAt}); other fields are ignored.

    @raise MetricHealthError: anything else (the whole body is refused, as
        Go's C{json.Unmarshal} refused it).
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise MetricHealthError(f"not JSON: {e}") from None
    if not isinstance(document, dict):
        raise MetricHealthError("not a JSON object")
    result: Dict[str, MetricHealth] = {}
    for name, entry in document.items():
        if not isinstance(entry, dict):
            raise MetricHealthError(f"{name}: not an object")
        seconds = entry.get("SecondsSinceLastHealthy")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
        ):
            raise MetricHealthError(f"{name}: SecondsSinceLastHealthy is not a number")
        at = entry.get("LastHealthyAt")
        result[name] = MetricHealth(float(seconds), at if isinstance(at, str) else None)
    return result


class SharedDomainHealth(Service):
    """
    Collects the other domains' metric health while this node is leader.

    @param clock: the scheduler and time source (loop, timeouts, TTLs).
    @param consensus: the consensus service; only its C{is_leader()} and, if
        it provides L{ISharedDomainServices}, its C{shared_domain_services()}
        are used.
    @param http_client: a treq-like client (see the module docstring).
    @param registry: where the fetch counters go.
    @param interval: seconds between rounds (freno: 1).
    @param ttl: seconds a merged entry is kept (freno: 5).
    @param timeout: seconds a peer has to answer, body included (freno: 1).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        consensus,
        http_client,
        registry: Registry,
        interval: float = 1.0,
        ttl: float = 5.0,
        timeout: float = 1.0,
    ) -> None:
        self._clock = clock
        self._consensus = consensus
        self._client = http_client
        self._fetches = registry.counter(catalogue.SHARED_DOMAIN_FETCHES)
        self._fetch_errors = registry.counter(catalogue.SHARED_DOMAIN_FETCH_ERRORS)
        self._interval = interval
        self._ttl = ttl
        self._timeout = timeout
        #: metric name -> (merged health, expires at).
        self._health: Dict[str, Tuple[MetricHealth, float]] = {}
        self._loop = LoopingCall(self.collect)
        self._loop.clock = clock
        self._loop_done: Optional[Deferred] = None

    @property
    def enabled(self) -> bool:
        """
        Whether the consensus service has shared domains at all (the MySQL
        backend); with raft the service stays idle.
        """
        return ISharedDomainServices.providedBy(self._consensus)

    def startService(self) -> None:
        """
        Start the collection loop (first round after one interval), unless
        the consensus service has no shared domains.
        """
        super().startService()
        if not self.enabled:
            return
        self._loop_done = self._loop.start(self._interval, now=False)
        self._loop_done.addErrback(
            lambda f: self._log.failure("shared-domain health loop died", f)
        )

    def stopService(self) -> Optional[Deferred]:
        """
        Stop the loop; the Deferred fires once a running round is over.
        """
        super().stopService()
        if self._loop.running:
            self._loop.stop()
        done, self._loop_done = self._loop_done, None
        return done

    # -- the check path ----------------------------------------------------

    def seconds_since_healthy(self, metric_name: str, now: float) -> Optional[float]:
        """
        The merged C{SecondsSinceLastHealthy} of C{metric_name} (e.g.
        C{mysql/main}) as of C{now}, or C{None} when no peer reported it
        within the TTL.
        """
        entry = self._health.get(metric_name)
        if entry is None:
            return None
        health, expires_at = entry
        if now >= expires_at:
            return None
        return health.seconds_since_last_healthy

    def health(self, now: float) -> Dict[str, MetricHealth]:
        """
        Every unexpired merged entry as of C{now} (for inspection and tests).
        """
        return {
            name: health
            for name, (health, expires_at) in self._health.items()
            if now < expires_at
        }

    # -- collection ----------------------------------------------------------

    def collect(self) -> Optional[Deferred]:
        """
        One round (the loop's tick): nothing unless leader; otherwise fetch
        every shared-domain service, merge and store. The Deferred never
        fails.
        """
        try:
            if not self._consensus.is_leader():
                return None
            services = self._consensus.shared_domain_services()
        except Exception:
            self._log.failure("could not read the shared-domain services")
            return None
        self._expire(self._clock.seconds())
        if not services:
            return None
        fetches = []
        for domain, service_id in sorted(services.items()):
            try:
                fetches.append(self._fetch(domain, service_id))
            except Exception:
                self._log.failure(
                    "could not fetch {service_id}", domain=domain, service_id=service_id
                )
        d = gatherResults(fetches)
        d.addCallback(self._store)
        d.addErrback(lambda f: self._log.failure("shared-domain health round failed", f))
        return d

    def _fetch(self, domain: str, service_id: str) -> Deferred:
        """
        GET one service's metrics-health; fires with its map, or C{None}
        after logging any failure.
        """
        url = f"http://{service_id}{METRICS_HEALTH_PATH}"
        self._fetches.inc()

        def read(response):
            body = response.content()
            if response.code != 200:
                body.addBoth(lambda _: _failed_status(response.code))
            return body

        d = self._client.get(url)
        d.addCallback(read)
        d.addCallback(parse_metrics_health)
        d.addTimeout(self._timeout, self._clock)

        def failed(failure):
            self._fetch_errors.inc()
            self._log.warn(
                "shared-domain health from {service_id} ignored: {error}",
                domain=domain,
                service_id=service_id,
                error=failure.getErrorMessage() or failure.type.__name__,
            )
            return None

        d.addErrback(failed)
        return d

    def _store(self, answers) -> None:
        merged: Dict[str, MetricHealth] = {}
        for answer in answers:
            if answer is not None:
                aggregate(merged, answer)
        expires_at = self._clock.seconds() + self._ttl
        for name, health in merged.items():
            self._health[name] = (health, expires_at)

    def _expire(self, now: float) -> None:
        for name in [n for n, (_, at) in self._health.items() if now >= at]:
            del self._health[name]


def _failed_status(code: int):
    raise MetricHealthError(f"HTTP status {code}")


__all__ = [
    "METRICS_HEALTH_PATH",
    "MetricHealth",
    "MetricHealthError",
    "SharedDomainHealth",
    "aggregate",
    "parse_metrics_health",
]
