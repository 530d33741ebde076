# -*- test-case-name: test.unit.test_probe_service -*-
"""
L{HttpChecker}: freno's HTTP checks. Every
C{ProbeSettings.http_check_interval} (freno: 5 s), each host of a cluster
with C{HttpCheckPort > 0} gets C{GET http://<host>:<HttpCheckPort>/<path>}
with a 1 s timeout. Only a 404 matters: such a host is left out of
aggregation until a check answers otherwise. A transport error counts as
500 (C{httpcheck.error}); clusters without a port count C{httpcheck.skip}
per host, as freno.

Differences from freno (docs/decisions.md, D24): leading slashes of
C{HttpCheckPath} are stripped (freno's plain C{/} join produced C{//path});
IPv6 literals are bracketed; response bodies are always read to the end. A
host whose previous check is still running is skipped.

The HTTP client is injected: anything with treq's C{get(url, ...)} returning
treq responses (C{treq} itself, a C{treq.client.HTTPClient}, or
C{treq.testing.StubTreq} in tests).
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Set, Tuple

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freno.config.model import ClusterSettings
from freno.hosts import HostKey
from freno.metrics import catalogue
from freno.metrics.registry import Registry

HTTP_CHECK_TIMEOUT = 1.0


def check_url(cluster: ClusterSettings, host: HostKey) -> str:
    """
    The HTTP-check URL of C{host} in C{cluster}.
    """
    hostname = host.hostname
    if ":" in hostname and not hostname.startswith("["):
        hostname = f"[{hostname}]"
    path = cluster.http_check_path.lstrip("/")
    return f"http://{hostname}:{cluster.http_check_port}/{path}"


class HttpChecker:
    """
    Runs HTTP checks and remembers which hosts answered 404.

    @param clock: the scheduler (timeouts and the loop).
    @param http_client: treq-like client (see the module docstring).
    @param interval: seconds between rounds.
    @param on_change: called as C{on_change(cluster_name)} when a host of
        that cluster enters or leaves the 404 set.
    @param registry: where the HTTP check outcomes are counted.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        http_client,
        interval: float,
        on_change: Callable[[str], None],
        registry: Registry,
    ) -> None:
        self._clock = clock
        self._client = http_client
        self._interval = interval
        self._on_change = on_change
        self._outcomes = registry.counter(catalogue.HTTP_CHECKS)
        self._targets: Dict[str, Tuple[ClusterSettings, Tuple[HostKey, ...]]] = {}
        self._in_flight: Set[Tuple[str, HostKey]] = set()
        self.not_found: Dict[str, Set[HostKey]] = {}
        self._generation = 0
        self._loop = LoopingCall(self.check_all)
        self._loop.clock = clock

    def set_targets(self, cluster: ClusterSettings, hosts: Iterable[HostKey]) -> None:
        """
        Check C{hosts} of C{cluster} from now on; forget hosts that left.
        """
        hosts = tuple(hosts)
        self._targets[cluster.name] = (cluster, hosts)
        gone = self.not_found.get(cluster.name, set()) - set(hosts)
        if gone:
            self.not_found[cluster.name] -= gone

    def start(self) -> None:
        """
        Check now and every interval.
        """
        if not self._loop.running:
            self._loop.start(self._interval, now=True)

    def stop(self) -> None:
        """
        Stop checking and forget every result.
        """
        if self._loop.running:
            self._loop.stop()
        self._generation += 1
        self._targets.clear()
        self._in_flight.clear()
        self.not_found.clear()

    def check_all(self) -> None:
        """
        One round over every host of every cluster.
        """
        for name, (cluster, hosts) in list(self._targets.items()):
            self.check_cluster(cluster, hosts)

    def check_cluster(self, cluster: ClusterSettings, hosts: Iterable[HostKey]) -> None:
        """
        Check each of C{hosts} of C{cluster} (not already being checked).
        """
        for host in hosts:
            if cluster.http_check_port <= 0:
                self._outcomes.inc(("skip",))
                continue
            key = (cluster.name, host)
            if key in self._in_flight:
                continue
            try:
                self._check(cluster, host)
            except Exception:
                self._in_flight.discard(key)
                self._log.failure(
                    "could not start HTTP check of {host} in {cluster}",
                    host=str(host),
                    cluster=cluster.name,
                )

    def _check(self, cluster: ClusterSettings, host: HostKey) -> None:
        key = (cluster.name, host)
        self._in_flight.add(key)
        generation = self._generation
        url = check_url(cluster, host)
        d = self._client.get(url)
        d.addTimeout(HTTP_CHECK_TIMEOUT, self._clock)

        def consume(response):
            body = response.content()
            body.addTimeout(HTTP_CHECK_TIMEOUT, self._clock)
            body.addBoth(lambda _: response.code)
            return body

        def failed(failure):
            self._log.warn(
                "HTTP check {url} failed: {error}",
                url=url,
                error=failure.getErrorMessage(),
                host=str(host),
                cluster=cluster.name,
            )
            return None

        d.addCallback(consume)
        d.addErrback(failed)
        d.addCallback(self._record, cluster.name, host, generation)

    def _record(self, code, name: str, host: HostKey, generation: int) -> None:
        if generation != self._generation:
            return
        self._in_flight.discard((name, host))
        if code is None:
            self._outcomes.inc(("error",))
            code = 500
        else:
            self._outcomes.inc((code,))
        if name not in self._targets or host not in self._targets[name][1]:
            return
        hosts = self.not_found.setdefault(name, set())
        was = host in hosts
        if code == 404:
            hosts.add(host)
        else:
            hosts.discard(host)
        if was != (code == 404):
            try:
                self._on_change(name)
            except Exception:
                self._log.failure("HTTP check change handler failed", cluster=name)
