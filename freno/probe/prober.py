# -*- test-case-name: test.unit.test_probe_prober -*-
"""
L{Prober}: probes every host of every cluster on a C{LoopingCall}
(C{ProbeSettings.interval}, freno: 50 ms) and reports each result.

A host whose previous probe is still in flight is skipped, not queued (the
in-flight set replaces freno's per-probe CAS flag). The tick deliberately
does I{not} return the probes' Deferreds: the C{LoopingCall} must keep its
rhythm for every other host while one host hangs (each probe is bounded by
the source's timeout instead). The tick itself never raises: a failure to
start one probe is logged and counted for that host only.

Each round is spread over L{SLICES} ticks of C{interval / SLICES}: every host
belongs to one slice and is probed once per interval, but the probes leave in
small batches instead of one burst per interval, which keeps the reactor's
lag low with many hosts (200 hosts at 50 ms was a 200-probe burst every
tick). Ten slices: a slice's sends and its answers run back to back on the
reactor (about 60 us a probe with the native source), so the slice size
bounds the reactor's longest busy stretch; 20 probes a slice at 200 hosts
keep it near 1.5 ms, where 40 (five slices) made it 4-5 ms. L{Prober.start} still probes every host at once (a new leader wants
its first values now). A slice that falls behind (a stalled reactor) is
probed once, never in a catch-up burst, and keeps its phase: its next
round is at its own next multiple of the interval, not "now + interval"
(which, after a stall longer than a round such as the first round's
connection set-up, used to leave every slice due at the same moment, so
the whole round went out in one burst again for good).

C{CacheMillis}: a valid result is reused for that long, keyed by
C{(cluster, host, query)} (freno keyed by host and query only;
docs/decisions.md, D22).
Errors are never cached. A cached answer is delivered as measured when it
is served: the cache is the user's explicit allowance for older data, so
it does not trip the freshness bound. Cached answers do not count in
C{probes.*}, as freno.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Set, Tuple

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from freno.config.model import ClusterSettings
from freno.hosts import HostKey
from freno.probe.aggregate import HostResult
from freno.probe.interfaces import IMetricSource, ProbeError
from freno.probe.query import ProbeConnectError
from freno.metrics import catalogue
from freno.metrics.registry import Registry

ResultCallback = Callable[[str, HostKey, HostResult], None]

#: How many ticks one probe round is spread over.
SLICES = 10


class Prober:
    """
    Probes the current targets every C{interval} seconds.

    @param clock: the time source and scheduler.
    @param source: the metric source.
    @param interval: seconds between probe rounds.
    @param on_result: called as C{on_result(cluster_name, host, result)} on
        the reactor thread for each result (including cached ones).
    @param registry: where the probe counters and latencies go.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        source: IMetricSource,
        interval: float,
        on_result: ResultCallback,
        registry: Registry,
    ) -> None:
        self._clock = clock
        self._source = source
        self._interval = interval
        self._on_result = on_result
        self._probes = registry.counter(catalogue.PROBES)
        self._errors = registry.counter(catalogue.PROBE_ERRORS)
        self._latency = registry.timer(catalogue.PROBE_LATENCY)
        self._targets: Dict[str, Tuple[ClusterSettings, Tuple[HostKey, ...]]] = {}
        self._in_flight: Set[Tuple[str, HostKey]] = set()
        self._cache: Dict[Tuple[str, HostKey, str], Tuple[float, float]] = {}
        self._labels: Dict[Tuple[str, HostKey], tuple] = {}
        self._generation = 0
        #: cluster name to its hosts grouped by slice
        self._slices: Dict[str, Tuple[Tuple[HostKey, ...], ...]] = {}
        #: cluster name to the slice its first host goes to (spreads small clusters)
        self._offsets: Dict[str, int] = {}
        self._slice_due = [0.0] * SLICES
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    @property
    def running(self) -> bool:
        """
        Whether the loop runs.
        """
        return self._loop.running

    def set_targets(self, cluster: ClusterSettings, hosts: Iterable[HostKey]) -> None:
        """
        Probe C{hosts} for C{cluster} from now on, forgetting cached values
        of hosts that left.
        """
        hosts = tuple(hosts)
        self._targets[cluster.name] = (cluster, hosts)
        offset = self._offsets.setdefault(cluster.name, len(self._offsets) % SLICES)
        self._slices[cluster.name] = tuple(
            hosts[(slice_ - offset) % SLICES::SLICES] for slice_ in range(SLICES)
        )
        keep = set(hosts)
        for key in [k for k in self._cache if k[0] == cluster.name and k[1] not in keep]:
            del self._cache[key]

    def start(self) -> None:
        """
        Start probing now and every interval.
        """
        if not self._loop.running:
            now = self._clock.seconds()
            tick = self._interval / SLICES
            self._slice_due = [now + tick * (index + 1) for index in range(SLICES)]
            self.probe_all()
            self._loop.start(tick, now=False)

    def stop(self) -> None:
        """
        Stop probing, drop targets and caches; results of probes still in
        flight are ignored when they arrive.
        """
        if self._loop.running:
            self._loop.stop()
        self._generation += 1
        self._targets.clear()
        self._slices.clear()
        self._cache.clear()
        self._in_flight.clear()

    def _tick(self) -> None:
        """
        Probe the slices that are due.
        """
        now = self._clock.seconds()
        interval = self._interval
        tolerance = interval / SLICES / 2
        due = []
        for index, when in enumerate(self._slice_due):
            if when <= now + tolerance:
                due.append(index)
                when += interval
                if when <= now:
                    # Behind by a round or more: skip the missed rounds
                    # but keep the slice's phase, so that slices that
                    # fell behind together do not stay together.
                    when += interval * ((now - when) // interval + 1)
                self._slice_due[index] = when
        if not due:
            return
        for name, (cluster, _) in list(self._targets.items()):
            slices = self._slices[name]
            for index in due:
                if slices[index]:
                    self.probe_cluster(cluster, slices[index])

    def probe_all(self) -> None:
        """
        One round: start a probe for every host not already in flight.
        """
        for name, (cluster, hosts) in list(self._targets.items()):
            self.probe_cluster(cluster, hosts)

    def probe_cluster(self, cluster: ClusterSettings, hosts: Iterable[HostKey]) -> None:
        """
        Start a probe for each of C{hosts} of C{cluster} not in flight.
        """
        for host in hosts:
            try:
                self._probe(cluster, host)
            except Exception:
                self._log.failure(
                    "could not start probe of {host} in {cluster}",
                    host=str(host),
                    cluster=cluster.name,
                )

    def _probe(self, cluster: ClusterSettings, host: HostKey) -> None:
        name = cluster.name
        key = (name, host)
        if key in self._in_flight:
            return
        now = self._clock.seconds()
        if cluster.cache_millis > 0:
            cached = self._cache.get((name, host, cluster.metric_query))
            if cached is not None and cached[1] > now:
                self._on_result(name, host, HostResult(cached[0], None, now))
                return
        self._in_flight.add(key)
        generation = self._generation
        d = self._source.probe(cluster, host)
        d.addBoth(self._finished, cluster, host, now, generation)

    def _finished(self, outcome, cluster: ClusterSettings, host: HostKey, started: float, generation: int) -> None:
        if generation != self._generation:
            return None
        name = cluster.name
        self._in_flight.discard((name, host))
        now = self._clock.seconds()
        labels = self._labels.get((name, host))
        if labels is None:
            labels = self._labels[(name, host)] = (name, str(host))
        self._probes.inc(labels)
        self._latency.observe(now - started, labels)
        if isinstance(outcome, Failure):
            self._errors.inc(labels)
            error = outcome.value
            if not isinstance(error, ProbeError):
                self._log.failure(
                    "unexpected probe failure of {host} in {cluster}",
                    outcome,
                    host=str(host),
                    cluster=name,
                )
            result = HostResult(
                0.0,
                str(error) or type(error).__name__,
                now,
                dial_error=isinstance(error, ProbeConnectError),
            )
        else:
            result = HostResult(float(outcome), None, now)
            if cluster.cache_millis > 0:
                self._cache[(name, host, cluster.metric_query)] = (
                    result.value,
                    now + cluster.cache_millis / 1000.0,
                )
        if name in self._targets:
            try:
                self._on_result(name, host, result)
            except Exception:
                self._log.failure(
                    "handling probe result of {host} in {cluster} failed",
                    host=str(host),
                    cluster=name,
                )
        return None
