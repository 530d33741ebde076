# -*- test-case-name: test.unit.test_probe_service,test.unit.test_explain -*-
"""
L{ProbeService}: probing, HTTP checks, inventory refresh and aggregation,
run only while this node leads.

L{freno.tap} builds it, with the metric source and the inventory, as the
C{probe} service.

Leadership (docs/decisions.md, D2):
    - on gaining it (or at start when already leader) probing starts at
      once for the hosts the inventory already knows, the inventory starts
      (and refreshes at once), and hosts that arrive are probed the moment
      they arrive: a new leader has real values within one probe round
      trip of learning its hosts, not after freno's 10 s;
    - on losing it, probing, HTTP checks and inventory refresh stop, every
      per-host result is dropped and the aggregated metrics are cleared, so
      nothing from an old term is ever reused; results of probes still in
      flight are ignored when they arrive.

Aggregation (L{freno.probe.aggregate}) runs for a cluster each time one of
its probe results arrives, so a crossing of the threshold reaches the check
path in the same reactor turn; also when its inventory or a host's HTTP
check changes. Skipped hosts are read from the consensus state at each
aggregation. L{ProbeService.host_states} tells the same aggregation host by
host (for C{/explain}). Hosts that leave the inventory lose their results at once and,
when the source has C{discard(cluster_name, host)} (the MySQL source and the
fake do), their connections; losing leadership discards every host.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from freno.config.model import ClusterSettings, Config
from freno.hosts import HostKey
from freno.inventory.interfaces import IInventory
from freno.probe.aggregate import AggregationRules, HostResult, aggregate
from freno.probe.breakdown import HostState, breakdown
from freno.probe.httpcheck import HttpChecker
from freno.probe.interfaces import IMetricSource
from freno.probe.metrics import AggregatedMetrics
from freno.probe.prober import Prober
from freno.metrics import catalogue
from freno.metrics.registry import Registry

_EMPTY: frozenset = frozenset()


class ProbeService(Service):
    """
    Leader-only probing and aggregation.

    @param clock: the reactor (time and scheduling only).
    @param config: the configuration (clusters and C{mysql.probe}).
    @param consensus: an L{IConsensusService} (leadership, skipped hosts).
    @param inventory: the L{IInventory} of every cluster.
    @param source: the L{IMetricSource}.
    @param metrics: where aggregated values go.
    @param registry: the metric registry.
    @param http_client: a treq-like client for HTTP checks; C{None}
        disables them (every host then counts as passing).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        config: Config,
        consensus,
        inventory: IInventory,
        source: IMetricSource,
        metrics: AggregatedMetrics,
        registry: Registry,
        http_client=None,
    ) -> None:
        self._clock = clock
        self._clusters: Dict[str, ClusterSettings] = dict(config.mysql.clusters)
        self._settings = config.mysql.probe
        self._consensus = consensus
        self._inventory = inventory
        self._source = source
        self._metrics = metrics
        self._thresholds = registry.gauge(catalogue.THRESHOLD)
        self._aggregated = registry.gauge(catalogue.AGGREGATED_VALUE)
        self._ages = registry.gauge(catalogue.AGGREGATED_AGE)
        store_dial = config.mysql.ignore_dial_tcp_errors
        self._rules = {
            name: AggregationRules(
                ignore_hosts_count=c.ignore_hosts_count,
                ignore_hosts_threshold=c.ignore_hosts_threshold,
                ignore_hosts=tuple(c.ignore_hosts),
                ignore_dial_tcp_errors=c.ignore_dial_tcp_errors or store_dial,
            )
            for name, c in self._clusters.items()
        }
        self._labels = {name: (name,) for name in self._clusters}
        self._hosts: Dict[str, Tuple[HostKey, ...]] = {}
        self._host_sets: Dict[str, frozenset] = {}
        self._results: Dict[str, Dict[HostKey, HostResult]] = {}
        self._leading = False
        self._prober = Prober(
            clock, source, self._settings.interval, self._on_result, registry
        )
        self._http: Optional[HttpChecker] = None
        if http_client is not None:
            self._http = HttpChecker(
                clock,
                http_client,
                self._settings.http_check_interval,
                self._aggregate,
                registry,
            )
        self._inventory_stopped: Deferred = succeed(None)
        inventory.add_observer(self._on_inventory)

    def startService(self) -> None:
        """
        Follow leadership; start probing now if already leader.
        """
        Service.startService(self)
        for name, cluster in self._clusters.items():
            self._thresholds.set(cluster.throttle_threshold, self._labels[name]
            )
        self._consensus.add_leadership_observer(self._on_leadership)
        if self._consensus.is_leader():
            self._gain()

    def stopService(self) -> Deferred:
        """
        Stop everything; the Deferred fires once the inventory loop has
        stopped and every connection is closed.
        """
        Service.stopService(self)
        try:
            self._consensus.remove_leadership_observer(self._on_leadership)
        except ValueError:
            pass
        self._lose()
        d = gatherResults(
            [self._inventory_stopped, maybeDeferred(self._source.close)],
            consumeErrors=True,
        )
        d.addErrback(
            lambda f: self._log.failure("probe service did not stop cleanly", f)
        )
        d.addCallback(lambda _: None)
        return d

    def _on_leadership(self, is_leader: bool) -> None:
        if not self.running:
            return
        if is_leader:
            self._gain()
        else:
            self._lose()

    def _gain(self) -> None:
        if self._leading:
            return
        self._leading = True
        self._log.info("leader: probing starts")
        for name in self._clusters:
            hosts = self._inventory.hosts(name)
            if hosts is not None:
                self._set_hosts(name, hosts, probe_new=False)
        self._prober.start()
        if self._http is not None:
            self._http.start()
        self._inventory.start()

    def _lose(self) -> None:
        if not self._leading:
            return
        self._leading = False
        self._log.info("not leader: probing stops")
        self._prober.stop()
        if self._http is not None:
            self._http.stop()
        self._inventory_stopped = maybeDeferred(self._inventory.stop)
        for name, hosts in self._hosts.items():
            for host in hosts:
                self._discard(name, host)
        self._hosts.clear()
        self._host_sets.clear()
        self._results.clear()
        self._metrics.clear()

    def _on_inventory(self, name: str, hosts) -> None:
        if not self._leading or name not in self._clusters:
            return
        self._set_hosts(name, hosts, probe_new=True)

    def _set_hosts(self, name: str, hosts, probe_new: bool) -> None:
        cluster = self._clusters[name]
        ordered = tuple(sorted(set(hosts)))
        old = set(self._hosts.get(name, ()))
        self._hosts[name] = ordered
        self._host_sets[name] = frozenset(ordered)
        results = self._results.setdefault(name, {})
        keep = set(ordered)
        for host in [h for h in results if h not in keep]:
            del results[host]
        for host in old - keep:
            self._discard(name, host)
        self._prober.set_targets(cluster, ordered)
        if self._http is not None:
            self._http.set_targets(cluster, ordered)
        self._aggregate(name)
        if probe_new and self._prober.running:
            self._prober.probe_cluster(cluster, [h for h in ordered if h not in old])

    def _discard(self, name: str, host: HostKey) -> None:
        # Optional extension of IMetricSource: close the connection of a
        # host that is no longer probed.
        discard = getattr(self._source, "discard", None)
        if discard is not None:
            try:
                discard(name, host)
            except Exception:
                self._log.failure("discarding {host} failed", host=str(host), cluster=name)

    def _on_result(self, name: str, host: HostKey, result: HostResult) -> None:
        if not self._leading:
            return
        if host not in self._host_sets.get(name, _EMPTY):
            return
        self._results[name][host] = result
        self._aggregate(name)

    def _aggregate(self, name: str) -> None:
        """
        Recompute cluster C{name}'s aggregated metric and publish it.
        """
        hosts = self._hosts.get(name)
        if hosts is None or not self._leading:
            return
        now = self._clock.seconds()
        not_found = _EMPTY
        if self._http is not None:
            not_found = self._http.not_found.get(name, _EMPTY)
        metric = aggregate(
            hosts,
            self._results.get(name, {}),
            self._rules[name],
            now,
            self._settings.freshness,
            self._consensus.skipped_hosts(),
            not_found,
        )
        self._metrics.set(name, metric)
        labels = self._labels[name]
        if metric.error is None:
            self._aggregated.set(metric.value, labels)
        self._ages.set(now - metric.measured_at, labels)

    def host_states(self, name: str) -> Tuple[HostState, ...]:
        """
        Cluster C{name}'s hosts as its aggregation sees them now
        (L{freno.probe.breakdown}), for C{/explain}; empty while not leading
        (nothing is probed) or before its host list is known.
        """
        hosts = self._hosts.get(name)
        if hosts is None or not self._leading:
            return ()
        not_found = _EMPTY
        if self._http is not None:
            not_found = self._http.not_found.get(name, _EMPTY)
        return breakdown(
            hosts,
            self._results.get(name, {}),
            self._rules[name],
            self._clock.seconds(),
            self._settings.freshness,
            self._consensus.skipped_hosts(),
            not_found,
        )

    def refresh_aggregates(self) -> None:
        """
        Recompute every cluster now (for example after a skip-host command).
        """
        for name in list(self._hosts):
            self._aggregate(name)
