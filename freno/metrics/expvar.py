# -*- test-case-name: test.unit.test_metrics_exports,test.unit.test_http_api -*-
"""
C{/debug/vars} and C{/debug/metrics}: the registry rendered under freno's
names as Go's expvar JSON: C{{\\n}}, one C{"<name>": <json>} per variable in
sorted order joined by C{,\\n}, C{\\n}}\\n}.

L{variables} reads each family's C{/debug/vars} names
(L{freno.metrics.catalogue}) out of the registry: a counter's series adds to
each of its names (so C{check.any.total} sums every check series), a gauge's
series sets its name, a timer is its whole family, a text its string.

Timers are written as go-metrics' C{exp} package writes them: C{<name>.count},
C{.min}, C{.max}, C{.mean}, C{.std-dev}, the C{.50/.75/.95/.99/.999-percentile}
values (nanoseconds), and rates. The one-, five- and fifteen-minute rates are
approximated by the mean rate since start (we keep no moving averages).

Some of freno's gauges were fed by loops it ran every few seconds; they are
computed at render time instead, from the same sources, by L{refresh_gauges}
(docs/decisions.md, D17):

    - C{throttled_states.<appKey>}: 1 for each throttled app now, 0 for one
      seen before and gone (freno reset them every 5 s);
    - C{aggregated.mysql.<cluster>}: the aggregated value, unless it is an
      error;
    - C{check.mysql.<cluster>.seconds_since_healthy}: whole seconds since the
      metric was last at or below its threshold.

C{cmdline} is the process's argv, and C{memstats} is replaced by a small
object with the process's peak resident size.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Dict, Mapping

import attr

from freno.http.gojson import go_json_text, go_string
from freno.metrics import catalogue
from freno.metrics.registry import COUNTER, GAUGE, TEXT, TIMER, Registry, Reservoir
from freno.probe.metrics import AggregatedMetrics


@attr.s(frozen=True, auto_attribs=True)
class Variables:
    """
    The registry under freno's names, by kind.
    """

    counters: Dict[str, float]
    gauges: Dict[str, float]
    timers: Dict[str, Reservoir]
    strings: Dict[str, str]


def variables(registry: Registry) -> Variables:
    """
    Every C{/debug/vars} variable of C{registry} now.
    """
    counters: Dict[str, float] = {}
    gauges: Dict[str, float] = {}
    timers: Dict[str, Reservoir] = {}
    strings: Dict[str, str] = {}
    for handle in registry.recorded():
        family = handle.family
        names = family.vars
        if names is None:
            continue
        kind = family.kind
        if kind == COUNTER:
            for labels, value in list(handle.series.items()):
                for name in names(labels):
                    counters[name] = counters.get(name, 0) + value
        elif kind == GAUGE:
            for labels, value in list(handle.series.items()):
                gauges[names(labels)[0]] = value
        elif kind == TIMER:
            whole = handle.whole()
            if whole is not None:
                timers[names(())[0]] = whole
        elif kind == TEXT:
            strings[names(())[0]] = handle.series[()]
    return Variables(counters, gauges, timers, strings)


def _timer_vars(name: str, timer: Reservoir, elapsed: float) -> Dict[str, Any]:
    samples = sorted(timer.samples)
    ns = [s * 1e9 for s in samples]
    out: Dict[str, Any] = {f"{name}.count": timer.count}
    if ns:
        mean = sum(ns) / len(ns)
        variance = sum((x - mean) ** 2 for x in ns) / len(ns)
        out[f"{name}.min"] = int(ns[0])
        out[f"{name}.max"] = int(ns[-1])
        out[f"{name}.mean"] = mean
        out[f"{name}.std-dev"] = math.sqrt(variance)
    else:
        for key in ("min", "max"):
            out[f"{name}.{key}"] = 0
        out[f"{name}.mean"] = 0.0
        out[f"{name}.std-dev"] = 0.0
    for label, q in (("50", 0.5), ("75", 0.75), ("95", 0.95), ("99", 0.99), ("999", 0.999)):
        out[f"{name}.{label}-percentile"] = _percentile(ns, q)
    rate = timer.count / elapsed if elapsed > 0 else 0.0
    for label in ("one-minute", "five-minute", "fifteen-minute", "mean-rate"):
        out[f"{name}.{label}"] = rate
    return out


def _percentile(values, q: float) -> float:
    # go-metrics: position q*(n+1), linear interpolation.
    if not values:
        return 0.0
    pos = q * (len(values) + 1)
    if pos < 1:
        return float(values[0])
    if pos >= len(values):
        return float(values[-1])
    lower = values[int(pos) - 1]
    upper = values[int(pos)]
    return lower + (pos - math.floor(pos)) * (upper - lower)


def refresh_gauges(
    registry: Registry,
    throttled_apps: Mapping[str, Any],
    metrics: AggregatedMetrics,
    now: float,
) -> None:
    """
    Update the render-time gauges described in the module docstring.
    """
    states = registry.gauge(catalogue.THROTTLED_STATES)
    for labels in list(states.series):
        states.set(0, labels)
    for key, throttle in throttled_apps.items():
        if throttle.active(now):
            states.set(1, (key,))
    aggregated = registry.gauge(catalogue.AGGREGATED)
    for cluster, metric in metrics.items():
        if metric.error is None:
            aggregated.set(metric.value, (cluster,))
    since = registry.gauge(catalogue.SECONDS_SINCE_HEALTHY)
    for cluster, at in metrics.last_healthy_at.items():
        since.set(int(now - at), (cluster,))


def render_expvar(registry: Registry, elapsed: float) -> bytes:
    """
    The expvar document of C{registry}; C{elapsed} is the process age in
    seconds.
    """
    found = variables(registry)
    document: Dict[str, Any] = {"cmdline": list(sys.argv), "memstats": _memstats()}
    document.update(found.counters)
    document.update(found.gauges)
    document.update(found.strings)
    for name, timer in found.timers.items():
        document.update(_timer_vars(name, timer, elapsed))
    lines = [
        go_string(name) + ": " + go_json_text(document[name])
        for name in sorted(document)
    ]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8", "surrogateescape")


def _memstats() -> Dict[str, Any]:
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except (ImportError, OSError):  # pragma: no cover
        peak = 0
    return {"MaxRSS": peak}
