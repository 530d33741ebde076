"""
Both exports render exactly as they did before the metrics were unified
(docs/decisions.md, D62): the scripted events of L{test.unit.metrics_script}
are recorded once each, as the writers now record them, and C{/debug/vars}
and C{/metrics} are compared with the documents the three former modules
(C{freno/stats.py}, C{freno/http/expvar.py}, C{freno/publish/prometheus.py})
rendered for the same events, kept in C{test/unit/fixtures/metrics_before.json}.

The fixture was captured on the last commit with those modules by replaying
the same events as each writer recorded them there (the check counters
through the real L{CheckCounters}; the others with the writers' own calls,
twice per event where a writer recorded under both naming schemes), with the
same render-time sources and caps as L{render_script}.
"""

from __future__ import annotations

import json
import os
import re

from prometheus_client.exposition import generate_latest
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.metrics import catalogue as C
from freno.metrics.expvar import refresh_gauges, render_expvar
from freno.metrics.prometheus import make_registry
from freno.metrics.registry import Registry
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.throttle.counters import CheckCounters
from test.unit import metrics_script as S

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "metrics_before.json")


class _Throttle:
    def __init__(self, until: float) -> None:
        self.until = until

    def active(self, now: float) -> bool:
        return self.until > now


def record(registry: Registry, counters: CheckCounters, event: tuple) -> None:
    """
    Record one scripted event the way its writer does: one call.
    """
    kind, *f = event
    if kind == "check":
        counters.count(*f)
    elif kind == "probe":
        cluster, host, seconds, error = f
        labels = (cluster, host)
        registry.counter(C.PROBES).inc(labels)
        registry.timer(C.PROBE_LATENCY).observe(seconds, labels)
        if error:
            registry.counter(C.PROBE_ERRORS).inc(labels)
    elif kind == "lag":
        registry.timer(C.REACTOR_LAG).observe(f[0])
    elif kind == "raft":
        raft_leader, healthy, leader, consensus_leader, term = f
        registry.gauge(C.RAFT_IS_LEADER).set(1 if raft_leader else 0)
        registry.gauge(C.RAFT_IS_HEALTHY).set(1 if healthy else 0)
        registry.text(C.RAFT_LEADER).set(leader)
        registry.gauge(C.CONSENSUS_IS_LEADER).set(1 if consensus_leader else 0)
        registry.gauge(C.CONSENSUS_IS_HEALTHY).set(1 if healthy else 0)
        registry.gauge(C.RAFT_TERM).set(term)
    elif kind == "leader_change":
        registry.counter(C.RAFT_LEADER_CHANGES).inc()
    elif kind == "commit":
        registry.timer(C.RAFT_COMMIT_LATENCY).observe(f[0])
    elif kind == "httpcheck":
        registry.counter(C.HTTP_CHECKS).inc((f[0],))
    elif kind == "sharedomain":
        registry.counter(C.SHARED_DOMAIN_FETCHES).inc()
        if f[0]:
            registry.counter(C.SHARED_DOMAIN_FETCH_ERRORS).inc()
    elif kind == "refresh":
        registry.counter(C.INVENTORY_REFRESHES).inc((f[0],))
        registry.gauge(C.INVENTORY_HOSTS).set(f[1], (f[0],))
    elif kind == "glitch":
        registry.counter(C.INVENTORY_GLITCHES).inc((f[0],))
    elif kind == "memcache_write":
        registry.counter(C.MEMCACHE_WRITES).inc((f[0],))
    elif kind == "memcache_error":
        registry.counter(C.MEMCACHE_ERRORS).inc((f[0],))
    elif kind == "threshold":
        registry.gauge(C.THRESHOLD).set(f[1], (f[0],))
    elif kind == "aggregated":
        cluster, value, age = f
        if value is not None:
            registry.gauge(C.AGGREGATED_VALUE).set(value, (cluster,))
        registry.gauge(C.AGGREGATED_AGE).set(age, (cluster,))
    elif kind == "mysql_backend":
        registry.gauge(C.MYSQL_IS_LEADER).set(1 if f[0] else 0)
        registry.gauge(C.MYSQL_IS_HEALTHY).set(1 if f[1] else 0)
    else:  # pragma: no cover
        raise ValueError(kind)


def normalise(text: str) -> str:
    """
    C{text} with the process-dependent C{cmdline} and C{memstats} replaced.
    """
    text = re.sub(r'^"cmdline": .*?(,?)$', r'"cmdline": ["CMDLINE"]\1', text, flags=re.M)
    return re.sub(r'^"memstats": .*?(,?)$', r'"memstats": {"MaxRSS": 0}\1', text, flags=re.M)


def render_script() -> dict:
    """
    Record the script and render both exports as the fixture holds them.
    """
    registry = Registry()
    counters = CheckCounters(registry, S.CLUSTERS, max_apps=S.MAX_APPS)
    for event in S.EVENTS:
        record(registry, counters, event)
    clock = Clock()
    clock.advance(S.NOW)
    metrics = AggregatedMetrics(clock, {name: 1.0 for name in S.CLUSTERS}, 5.0)
    for cluster, (value, error, at, healthy) in S.AGGREGATED.items():
        metrics.set(cluster, ClusterMetric(value, error, at))
        metrics.last_healthy_at[cluster] = healthy

    def throttled(apps):
        return {key: _Throttle(until) for key, until in apps.items()}

    refresh_gauges(registry, throttled(S.THROTTLED_FIRST), metrics, S.NOW)
    first = normalise(render_expvar(registry, S.ELAPSED).decode())
    refresh_gauges(registry, throttled(S.THROTTLED_SECOND), metrics, S.NOW)
    second = normalise(render_expvar(registry, S.ELAPSED).decode())
    full = generate_latest(make_registry(registry, process=False)).decode()
    capped = generate_latest(
        make_registry(registry, max_series_per_metric=2, max_vars=5, process=False)
    ).decode()
    return {
        "debug_vars_first": first,
        "debug_vars_second": second,
        "metrics": full,
        "metrics_capped": capped,
    }


class ExportsUnchangedTests(SynchronousTestCase):
    """
    The scripted events render as the three former modules rendered them.
    """

    def setUp(self) -> None:
        with open(FIXTURE) as f:
            self.expected = json.load(f)
        self.rendered = render_script()

    def test_debug_vars(self) -> None:
        """
        C{/debug/vars} is byte for byte what it was, before and after the
        render-time gauges change (a throttled app gone reads 0).
        """
        self.assertEqual(self.rendered["debug_vars_first"], self.expected["debug_vars_first"])
        self.assertEqual(self.rendered["debug_vars_second"], self.expected["debug_vars_second"])
        self.assertIn('"check.any.total": 10,', self.rendered["debug_vars_first"])
        self.assertIn('"probes.latency.count": 1105,', self.rendered["debug_vars_first"])

    def test_metrics(self) -> None:
        """
        C{/metrics} is byte for byte what it was: the same families in the
        same order, the same series, labels and values.
        """
        self.assertEqual(self.rendered["metrics"], self.expected["metrics"])

    def test_metrics_capped(self) -> None:
        """
        Under tight caps the same series are left out and counted.
        """
        self.assertEqual(self.rendered["metrics_capped"], self.expected["metrics_capped"])
        self.assertIn("freno_prometheus_dropped_series 62.0", self.rendered["metrics_capped"])
