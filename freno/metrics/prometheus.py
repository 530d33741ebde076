# -*- test-case-name: test.unit.test_metrics_prometheus,test.unit.test_metrics_exports -*-
"""
C{/metrics}: the registry in Prometheus' text format.

Built on C{prometheus_client}: L{RegistryCollector} is a custom collector
that reads the L{Registry} at scrape time (nothing is copied on the hot
paths), and L{MetricsResource} renders on the reactor thread.
(C{prometheus_client.twisted.MetricsResource} is not used: it renders in the
global reactor's thread pool, which would read the registry while the
reactor thread writes it.)

What is exported:
  - every family with a C{/metrics} name (L{freno.metrics.catalogue}) under
    that name with its labels, e.g.
    C{freno_checks_total{app,store_type,store_name,status}},
    C{freno_probe_latency_seconds{cluster,host}} (a summary),
    C{freno_aggregated_value{cluster}}, C{freno_raft_is_leader}, in the
    order the families were first recorded into, counters first, then
    gauges, then timers;
  - freno's own C{/debug/vars} names (L{freno.metrics.expvar.variables}),
    sanitised and prefixed with C{freno_vars_} so that they never collide
    with the series above: counter C{check.any.total} becomes
    C{freno_vars_check_any_total}, counter C{probes.error}
    C{freno_vars_probes_error_total}, gauge C{aggregated.mysql.main}
    C{freno_vars_aggregated_mysql_main}, timer C{probes.latency} the summary
    C{freno_vars_probes_latency_seconds}, and string C{raft.leader}
    C{freno_vars_raft_leader_info{value="..."} 1};
  - C{process_*} (CPU, memory, file descriptors) from
    C{prometheus_client}'s process collector.

Timers become summaries: C{_count}, C{_sum} (seconds) and the quantiles
0.5, 0.75, 0.95, 0.99 and 0.999 of the timer's reservoir of recent samples
(freno's percentiles).

Label cardinality is bounded by the writers (apps beyond a limit fold into
one label value, see L{freno.throttle.counters}); as a second line of defence
the collector exports at most C{max_series_per_metric} series of any one
metric and at most C{max_vars} C{freno_vars_*} metrics, and reports how many
it left out in the gauge C{freno_prometheus_dropped_series}.

L{freno.tap} builds the resource and L{freno.http.site} serves it at
C{/metrics}.
"""

from __future__ import annotations

import math
import re
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from twisted.web.resource import Resource
from twisted.web.server import Request

from freno.metrics import catalogue
from freno.metrics.expvar import variables
from freno.metrics.registry import COUNTER, GAUGE, TIMER, Registry, Reservoir

#: Quantiles of every summary (freno's percentiles).
QUANTILES: Tuple[float, ...] = (0.5, 0.75, 0.95, 0.99, 0.999)

#: Prefix of freno's own C{/debug/vars} names.
VARS_PREFIX = "freno_vars_"

DROPPED_METRIC = "freno_prometheus_dropped_series"

#: HELP text of the named families; others get a generic one.
DOCS: Dict[str, str] = {f.name: f.help for f in catalogue.families() if f.name is not None}
DOCS[DROPPED_METRIC] = "Series left out of this scrape by the cardinality caps."

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


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


def _labels(names: Tuple[str, ...], values: tuple) -> Optional[Dict[str, str]]:
    if len(names) != len(values):
        return None
    return {name: str(value) for name, value in zip(names, values)}


def _add_summary(family: Metric, name: str, labels: Dict[str, str], timer: Reservoir) -> None:
    ordered = sorted(timer.samples)
    for q in QUANTILES:
        family.add_sample(name, dict(labels, quantile=repr(q)), quantile(ordered, q))
    family.add_sample(name + "_count", labels, float(timer.count))
    family.add_sample(name + "_sum", labels, float(timer.total))


class RegistryCollector:
    """
    A C{prometheus_client} collector reading a L{Registry} at scrape time.

    @param registry: the registry to read.
    @param max_series_per_metric: most series exported for one metric.
    @param max_vars: most C{freno_vars_*} metrics exported.
    """

    def __init__(self, registry: Registry, max_series_per_metric: int = 1000, max_vars: int = 2000) -> None:
        if max_series_per_metric < 1 or max_vars < 0:
            raise ValueError("series caps must be positive")
        self._registry = registry
        self._max_series = max_series_per_metric
        self._max_vars = max_vars

    def collect(self) -> Iterator[Metric]:
        """
        Every metric family, read from the registry now.
        """
        registry = self._registry
        families = _Families(self._max_series)
        self._named(families, registry)
        self._vars(families, variables(registry))
        dropped = families.family(DROPPED_METRIC, "gauge")
        if dropped is not None:
            dropped.add_sample(DROPPED_METRIC, {}, float(families.dropped))
        return iter(list(families.families.values()))

    def _named(self, families: _Families, registry: Registry) -> None:
        handles = [h for h in registry.recorded() if h.family.name is not None]
        for kind in (COUNTER, GAUGE, TIMER):
            for handle in handles:
                if handle.family.kind == kind:
                    self._family(families, handle)

    @staticmethod
    def _family(families: _Families, handle) -> None:
        family = handle.family
        kind = family.kind
        if kind == COUNTER:
            name = _strip_total(family.name)
            exported = families.family(name, "counter")
        elif kind == GAUGE:
            name = family.name
            exported = families.family(name, "gauge")
        else:
            name = family.name
            exported = families.family(name, "summary")
        for labels, value in list(handle.series.items()):
            label_map = _labels(family.labels, labels)
            if exported is None or label_map is None:
                families.dropped += 1
            elif families.admit(name):
                if kind == COUNTER:
                    exported.add_sample(name + "_total", label_map, float(value))
                elif kind == GAUGE:
                    exported.add_sample(name, label_map, float(value))
                else:
                    _add_summary(exported, name, label_map, value)

    def _vars(self, families: _Families, found) -> None:
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

        for dotted, value in sorted(found.counters.items()):
            name = _strip_total(sanitise(dotted))
            family = take(name, "counter", dotted)
            if family is not None:
                family.add_sample(name + "_total", {}, float(value))
        for dotted, value in sorted(found.gauges.items()):
            name = sanitise(dotted)
            family = take(name, "gauge", dotted)
            if family is not None:
                family.add_sample(name, {}, float(value))
        for dotted, timer in sorted(found.timers.items()):
            name = sanitise(dotted) + "_seconds"
            family = take(name, "summary", dotted)
            if family is not None:
                _add_summary(family, name, {}, timer)
        for dotted, text in sorted(found.strings.items()):
            name = sanitise(dotted)
            family = take(name, "info", dotted)
            if family is not None:
                family.add_sample(name + "_info", {"value": text}, 1.0)


def make_registry(
    registry: Registry,
    max_series_per_metric: int = 1000,
    max_vars: int = 2000,
    process: bool = True,
) -> CollectorRegistry:
    """
    A C{prometheus_client} registry holding a L{RegistryCollector} for
    C{registry} and, with C{process}, the C{process_*} metrics of this
    process.
    """
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(RegistryCollector(registry, max_series_per_metric, max_vars))
    if process:
        ProcessCollector(registry=collectors)
    return collectors


class MetricsResource(Resource):
    """
    The C{/metrics} resource: a registry in the Prometheus text format (or
    OpenMetrics, when the scraper asks for it in C{Accept}), rendered on the
    reactor thread.

    @param source: a L{Registry} (exported through L{make_registry} with its
        defaults) or a ready C{CollectorRegistry}.
    """

    isLeaf = True

    def __init__(self, source: Union[Registry, CollectorRegistry]) -> None:
        super().__init__()
        self._registry = make_registry(source) if isinstance(source, Registry) else source

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
