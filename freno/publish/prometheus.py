# -*- test-case-name: test.unit.test_publish_prometheus -*-
"""
C{/metrics}: everything in L{freno.stats.Stats}, in Prometheus' text format.

Built on C{prometheus_client}: L{StatsCollector} is a custom collector that
reads L{Stats} at scrape time (nothing is copied on the hot paths), and
L{MetricsResource} renders a registry on the reactor thread.
(C{prometheus_client.twisted.MetricsResource} is not used: it renders in the
global reactor's thread pool, which would read L{Stats} while the reactor
thread writes it.)

What is exported:
  - the labeled series (L{Stats.labeled}, L{Stats.labeled_gauges},
    L{Stats.labeled_timers}) under their own names, e.g.
    C{freno_checks_total{app,store_type,store_name,status}},
    C{freno_probe_latency_seconds{cluster,host}} (a summary),
    C{freno_aggregated_value{cluster}}, C{freno_raft_is_leader};
  - freno's own C{/debug/vars} names, sanitised and prefixed with
    C{freno_vars_} so that they never collide with the series above:
    counter C{check.any.total} becomes C{freno_vars_check_any_total},
    counter C{probes.error} C{freno_vars_probes_error_total}, gauge
    C{aggregated.mysql.main} C{freno_vars_aggregated_mysql_main}, timer
    C{probes.latency} the summary C{freno_vars_probes_latency_seconds}, and
    string C{raft.leader} C{freno_vars_raft_leader_info{value="..."} 1};
  - C{process_*} (CPU, memory, file descriptors) from
    C{prometheus_client}'s process collector.

Timers become summaries: C{_count}, C{_sum} (seconds) and the quantiles
0.5, 0.75, 0.95, 0.99 and 0.999 of the timer's reservoir of recent samples
(freno's percentiles).

Label cardinality is bounded by the writers (apps beyond a limit fold into
one label value, see L{freno.throttle}); as a second line of defence the
collector exports at most C{max_series_per_metric} series of any one metric
and at most C{max_vars} C{freno_vars_*} metrics, and reports how many it
left out in the gauge C{freno_prometheus_dropped_series}.

L{freno.tap} builds the resource and L{freno.http.site} serves it at
C{/metrics}.
"""

from __future__ import annotations

import math
import re
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from twisted.web.resource import Resource
from twisted.web.server import Request

from freno.stats import Stats, Timer

#: Quantiles of every summary (freno's percentiles).
QUANTILES: Tuple[float, ...] = (0.5, 0.75, 0.95, 0.99, 0.999)

#: Prefix of freno's own C{/debug/vars} names.
VARS_PREFIX = "freno_vars_"

DROPPED_METRIC = "freno_prometheus_dropped_series"

#: HELP text of the labeled series; others get a generic one.
DOCS: Dict[str, str] = {
    "freno_checks_total": "Checks answered, by app, store and HTTP status.",
    "freno_probes_total": "Probes of a host (non-cached reads).",
    "freno_probe_errors_total": "Probes of a host that failed.",
    "freno_probe_latency_seconds": "How long probes of a host took.",
    "freno_aggregated_value": "A cluster's aggregated metric (e.g. replication lag).",
    "freno_threshold": "A cluster's throttle threshold.",
    "freno_aggregated_age_seconds": "Age of a cluster's aggregated metric.",
    "freno_inventory_refreshes_total": "Inventory refreshes of a cluster.",
    "freno_inventory_glitches_total": "Inventory refreshes of a cluster that failed.",
    "freno_inventory_hosts": "Hosts in a cluster's inventory.",
    "freno_raft_is_leader": "1 while this node is the leader.",
    "freno_raft_term": "The current raft term.",
    "freno_raft_leader_changes_total": "Leadership changes this node saw.",
    "freno_raft_commit_latency_seconds": "How long control commands took to commit.",
    "freno_reactor_lag_seconds": "How late the reactor ran timed calls (recent samples).",
    "freno_memcache_writes_total": "Commands sent to a memcached server.",
    "freno_memcache_errors_total": "Failed commands and connection attempts to a memcached server.",
    DROPPED_METRIC: "Series left out of this scrape by the cardinality caps.",
}

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def sanitise(name: str) -> str:
    """
    A Prometheus metric name for freno's dotted C{name}:
    C{freno_vars_} plus C{name} with every character outside
    C{[a-zA-Z0-9_]} replaced by C{_}.
    """
    return VARS_PREFIX + _INVALID.sub("_", name)


def quantile(sorted_samples: Sequence[float], q: float) -> float:
    """
    The nearest-rank C{q}-quantile of C{sorted_samples} (NaN when empty).
    """
    n = len(sorted_samples)
    if n == 0:
        return math.nan
    index = min(n - 1, max(0, int(math.ceil(q * n)) - 1))
    return sorted_samples[index]


def _strip_total(name: str) -> str:
    return name[: -len("_total")] if name.endswith("_total") else name


class _Families:
    """
    The metric families of one scrape, enforcing unique names and the
    per-metric series cap.
    """

    def __init__(self, max_series: int) -> None:
        self._max_series = max_series
        self.families: Dict[str, Metric] = {}
        self._series: Dict[str, int] = {}
        self._taken: Set[str] = set()
        self.dropped = 0

    def family(self, name: str, typ: str, doc: Optional[str] = None) -> Optional[Metric]:
        """
        The family C{name} of type C{typ}; C{None} when the name is taken by
        a family of another type or would clash with one's samples.
        """
        existing = self.families.get(name)
        if existing is not None:
            return existing if existing.type == typ else None
        sample_names = self._sample_names(name, typ)
        if name in self._taken or any(s in self._taken for s in sample_names):
            return None
        try:
            family = Metric(name, doc or DOCS.get(name) or DOCS.get(name + "_total") or "freno metric", typ)
        except ValueError:
            return None
        self._taken.add(name)
        self._taken.update(sample_names)
        self.families[name] = family
        self._series[name] = 0
        return family

    @staticmethod
    def _sample_names(name: str, typ: str) -> List[str]:
        if typ == "counter":
            return [name + "_total", name + "_created"]
        if typ == "summary":
            return [name + "_count", name + "_sum", name + "_created"]
        if typ == "info":
            return [name + "_info"]
        return [name]

    def admit(self, name: str) -> bool:
        """
        Count one more series of C{name}; C{False} (and counted as dropped)
        beyond the cap.
        """
        if self._series[name] >= self._max_series:
            self.dropped += 1
            return False
        self._series[name] += 1
        return True


def _labels(labels: Iterable[Tuple[str, object]]) -> Optional[Dict[str, str]]:
    out = {}
    for name, value in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__") or name == "quantile":
            return None
        out[name] = str(value)
    return out


def _add_summary(family: Metric, name: str, labels: Dict[str, str], timer: Timer) -> None:
    ordered = sorted(timer.samples)
    for q in QUANTILES:
        family.add_sample(name, dict(labels, quantile=repr(q)), quantile(ordered, q))
    family.add_sample(name + "_count", labels, float(timer.count))
    family.add_sample(name + "_sum", labels, float(timer.total))


class StatsCollector:
    """
    A C{prometheus_client} collector reading a L{Stats} at scrape time.

    @param stats: the registry to read.
    @param max_series_per_metric: most series exported for one metric.
    @param max_vars: most C{freno_vars_*} metrics exported.
    """

    def __init__(self, stats: Stats, max_series_per_metric: int = 1000, max_vars: int = 2000) -> None:
        if max_series_per_metric < 1 or max_vars < 0:
            raise ValueError("series caps must be positive")
        self._stats = stats
        self._max_series = max_series_per_metric
        self._max_vars = max_vars

    def collect(self) -> Iterator[Metric]:
        """
        Every metric family, read from the stats now.
        """
        stats = self._stats
        families = _Families(self._max_series)
        self._labeled(families, stats)
        self._vars(families, stats)
        dropped = families.family(DROPPED_METRIC, "gauge")
        if dropped is not None:
            dropped.add_sample(DROPPED_METRIC, {}, float(families.dropped))
        return iter(list(families.families.values()))

    def _labeled(self, families: _Families, stats: Stats) -> None:
        for (metric, labels), value in list(stats.labeled.items()):
            name = _strip_total(metric)
            family = families.family(name, "counter")
            label_map = _labels(labels)
            if family is None or label_map is None:
                families.dropped += 1
            elif families.admit(name):
                family.add_sample(name + "_total", label_map, float(value))
        for (metric, labels), value in list(stats.labeled_gauges.items()):
            family = families.family(metric, "gauge")
            label_map = _labels(labels)
            if family is None or label_map is None:
                families.dropped += 1
            elif families.admit(metric):
                family.add_sample(metric, label_map, float(value))
        for (metric, labels), timer in list(stats.labeled_timers.items()):
            family = families.family(metric, "summary")
            label_map = _labels(labels)
            if family is None or label_map is None:
                families.dropped += 1
            elif families.admit(metric):
                _add_summary(family, metric, label_map, timer)

    def _vars(self, families: _Families, stats: Stats) -> None:
        budget = self._max_vars

        def take(name: str, typ: str, dotted: str) -> Optional[Metric]:
            nonlocal budget
            if budget <= 0 or name in families.families:
                # Over the cap, or two dotted names sanitised alike.
                families.dropped += 1
                return None
            family = families.family(name, typ, f"freno's /debug/vars {dotted!r}")
            if family is None:
                families.dropped += 1
                return None
            budget -= 1
            return family

        for dotted, value in sorted(stats.counters.items()):
            name = _strip_total(sanitise(dotted))
            family = take(name, "counter", dotted)
            if family is not None:
                family.add_sample(name + "_total", {}, float(value))
        for dotted, value in sorted(stats.gauges.items()):
            name = sanitise(dotted)
            family = take(name, "gauge", dotted)
            if family is not None:
                family.add_sample(name, {}, float(value))
        for dotted, timer in sorted(stats.timers.items()):
            name = sanitise(dotted) + "_seconds"
            family = take(name, "summary", dotted)
            if family is not None:
                _add_summary(family, name, {}, timer)
        for dotted, text in sorted(stats.strings.items()):
            name = sanitise(dotted)
            family = take(name, "info", dotted)
            if family is not None:
                family.add_sample(name + "_info", {"value": text}, 1.0)


def make_registry(
    stats: Stats,
    max_series_per_metric: int = 1000,
    max_vars: int = 2000,
    process: bool = True,
) -> CollectorRegistry:
    """
    A registry holding a L{StatsCollector} for C{stats} and, with
    C{process}, the C{process_*} metrics of this process.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(stats, max_series_per_metric, max_vars))
    if process:
        ProcessCollector(registry=registry)
    return registry


class MetricsResource(Resource):
    """
    The C{/metrics} resource: a registry in the Prometheus text format (or
    OpenMetrics, when the scraper asks for it in C{Accept}), rendered on the
    reactor thread.

    @param source: a L{Stats} (exported through L{make_registry} with its
        defaults) or a ready C{CollectorRegistry}.
    """

    isLeaf = True

    def __init__(self, source: Union[Stats, CollectorRegistry]) -> None:
        super().__init__()
        self._registry = make_registry(source) if isinstance(source, Stats) else source

    def render_GET(self, request: Request) -> bytes:
        """
        Render every metric now.
        """
        accept = request.getHeader(b"accept")
        encoder, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        body = encoder(self._registry)
        request.setHeader(b"Content-Type", content_type.encode("ascii"))
        return body

    render_HEAD = render_GET
