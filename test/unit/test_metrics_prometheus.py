"""
Tests for L{freno.metrics.prometheus}: the output is parsed back with
C{prometheus_client}'s own parser.
"""

from __future__ import annotations

from typing import Dict

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase

from freno.metrics import catalogue as C
from freno.metrics.prometheus import (
    DROPPED_METRIC,
    MetricsResource,
    RegistryCollector,
    make_registry,
    quantile,
    sanitise,
)
from freno.metrics.registry import Registry


def parse(registry: Registry, **kwargs) -> Dict[str, object]:
    """
    Render C{registry} (without process metrics) and parse it back into
    C{{family name: family}}.
    """
    text = generate_latest(make_registry(registry, process=False, **kwargs)).decode("utf-8")
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(families, family: str, name: str, **labels) -> float:
    """
    The value of sample C{name} with exactly C{labels} in C{family}.
    """
    found = [
        s.value for s in families[family].samples if s.name == name and s.labels == labels
    ]
    assert len(found) == 1, (family, name, labels, families[family].samples)
    return found[0]


class SanitiseTests(SynchronousTestCase):
    """
    freno's dotted names become valid Prometheus names.
    """

    def test_sanitise(self) -> None:
        """
        Dots, dashes and other characters become underscores under the
        C{freno_vars_} prefix.
        """
        self.assertEqual(sanitise("check.any.total"), "freno_vars_check_any_total")
        self.assertEqual(sanitise("check.my-app.mysql.main.error"), "freno_vars_check_my_app_mysql_main_error")

    def test_quantile(self) -> None:
        """
        Nearest-rank quantiles.
        """
        values = [float(i) for i in range(1, 101)]
        self.assertEqual(quantile(values, 0.5), 50.0)
        self.assertEqual(quantile(values, 0.99), 99.0)
        self.assertEqual(quantile(values, 0.999), 100.0)
        self.assertEqual(quantile([3.0], 0.5), 3.0)


class CollectorTests(SynchronousTestCase):
    """
    Every kind of family is exported with the right type, labels and value.
    """

    def test_labeled_counters(self) -> None:
        """
        Labeled counters keep their names (with C{_total}) and labels.
        """
        registry = Registry()
        checks = registry.counter(C.CHECKS)
        checks.inc(("gh-ost", "mysql", "main", "200"), 3)
        checks.inc(("gh-ost", "mysql", "main", "429"))
        registry.counter(C.MEMCACHE_WRITES).inc(("127.0.0.1:11211",), 7)
        families = parse(registry)
        self.assertEqual(families["freno_checks"].type, "counter")
        self.assertEqual(
            sample(families, "freno_checks", "freno_checks_total",
                   app="gh-ost", store_type="mysql", store_name="main", status="200"),
            3.0,
        )
        self.assertEqual(
            sample(families, "freno_checks", "freno_checks_total",
                   app="gh-ost", store_type="mysql", store_name="main", status="429"),
            1.0,
        )
        self.assertEqual(
            sample(families, "freno_memcache_writes", "freno_memcache_writes_total", server="127.0.0.1:11211"),
            7.0,
        )
        self.assertIn("memcached", families["freno_memcache_writes"].documentation)

    def test_labeled_gauges(self) -> None:
        """
        Labeled and unlabeled gauges are exported.
        """
        registry = Registry()
        registry.gauge(C.AGGREGATED_VALUE).set(0.25, ("main",))
        registry.gauge(C.THRESHOLD).set(1.0, ("main",))
        registry.gauge(C.RAFT_IS_LEADER).set(1)
        registry.gauge(C.RAFT_TERM).set(4)
        families = parse(registry)
        self.assertEqual(families["freno_aggregated_value"].type, "gauge")
        self.assertEqual(sample(families, "freno_aggregated_value", "freno_aggregated_value", cluster="main"), 0.25)
        self.assertEqual(sample(families, "freno_raft_is_leader", "freno_raft_is_leader"), 1.0)
        self.assertEqual(sample(families, "freno_raft_term", "freno_raft_term"), 4.0)

    def test_labeled_timers(self) -> None:
        """
        Labeled timers become summaries with count, sum and quantiles.
        """
        registry = Registry()
        latency = registry.timer(C.PROBE_LATENCY)
        for ms in range(1, 101):
            latency.observe(ms / 1000.0, ("main", "db1:3306"))
        families = parse(registry)
        family = "freno_probe_latency_seconds"
        self.assertEqual(families[family].type, "summary")
        self.assertEqual(sample(families, family, family + "_count", cluster="main", host="db1:3306"), 100.0)
        self.assertAlmostEqual(
            sample(families, family, family + "_sum", cluster="main", host="db1:3306"), 5.05
        )
        self.assertEqual(
            sample(families, family, family, cluster="main", host="db1:3306", quantile="0.5"), 0.05
        )
        self.assertEqual(
            sample(families, family, family, cluster="main", host="db1:3306", quantile="0.99"), 0.099
        )

    def test_freno_vars(self) -> None:
        """
        freno's dotted counters, gauges, timers and strings are exported
        under C{freno_vars_}, derived from the families.
        """
        registry = Registry()
        registry.counter(C.CHECKS).inc(("a", "mysql", "main", "200"), 3)
        registry.counter(C.CHECKS).inc(("a", "mysql", "main", "429"), 2)
        registry.counter(C.PROBES).inc(("main", "h:1"), 9)
        registry.gauge(C.AGGREGATED).set(0.3, ("main",))
        registry.gauge(C.RAFT_IS_LEADER).set(1)
        registry.timer(C.PROBE_LATENCY).observe(0.002, ("main", "h:1"))
        registry.text(C.RAFT_LEADER).set("127.0.0.1:10008")
        families = parse(registry)
        self.assertEqual(sample(families, "freno_vars_check_any", "freno_vars_check_any_total"), 5.0)
        self.assertEqual(sample(families, "freno_vars_check_any_error", "freno_vars_check_any_error_total"), 2.0)
        self.assertEqual(sample(families, "freno_vars_probes", "freno_vars_probes_total"), 9.0)
        self.assertEqual(sample(families, "freno_vars_aggregated_mysql_main", "freno_vars_aggregated_mysql_main"), 0.3)
        self.assertEqual(families["freno_vars_aggregated_mysql_main"].type, "gauge")
        self.assertEqual(sample(families, "freno_vars_raft_is_leader", "freno_vars_raft_is_leader"), 1.0)
        self.assertEqual(
            sample(families, "freno_vars_probes_latency_seconds", "freno_vars_probes_latency_seconds_count"), 1.0
        )
        self.assertEqual(
            sample(families, "freno_vars_raft_leader_info", "freno_vars_raft_leader_info", value="127.0.0.1:10008"),
            1.0,
        )
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 0.0)

    def test_no_collision_between_vars_and_labeled(self) -> None:
        """
        freno's C{probes.total} and the labeled C{freno_probes_total} are
        distinct metrics, from one family.
        """
        registry = Registry()
        registry.counter(C.PROBES).inc(("main", "h:1"), 4)
        registry.counter(C.PROBES).inc(("main", "h:2"), 5)
        families = parse(registry)
        self.assertEqual(sample(families, "freno_probes", "freno_probes_total", cluster="main", host="h:1"), 4.0)
        self.assertEqual(sample(families, "freno_vars_probes", "freno_vars_probes_total"), 9.0)

    def test_sanitised_collisions_dropped(self) -> None:
        """
        Two dotted names that sanitise to the same name export one series;
        the other is counted as dropped.
        """
        registry = Registry()
        registry.counter(C.HTTP_CHECKS).inc(("a-b",))
        registry.counter(C.HTTP_CHECKS).inc(("a_b",), 2)
        families = parse(registry)
        self.assertEqual(len(families["freno_vars_httpcheck_a_b"].samples), 1)
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 1.0)

    def test_series_cap(self) -> None:
        """
        At most C{max_series_per_metric} series of one metric are exported;
        the rest are counted in C{freno_prometheus_dropped_series}.
        """
        registry = Registry()
        for i in range(50):
            registry.counter(C.MEMCACHE_WRITES).inc((f"s{i}:11211",))
        families = parse(registry, max_series_per_metric=10)
        self.assertEqual(len(families["freno_memcache_writes"].samples), 10)
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 40.0)

    def test_vars_cap(self) -> None:
        """
        At most C{max_vars} C{freno_vars_*} metrics are exported.
        """
        registry = Registry()
        for i in range(30):
            registry.counter(C.HTTP_CHECKS).inc((f"x{i}",))
        families = parse(registry, max_vars=5)
        self.assertEqual(len([n for n in families if n.startswith("freno_vars_")]), 5)
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 25.0)

    def test_wrong_label_count_dropped(self) -> None:
        """
        A series whose label values do not match its family's labels is
        dropped, not rendered broken.
        """
        registry = Registry()
        registry.counter(C.MEMCACHE_WRITES).inc(("a:1", "extra"))
        registry.counter(C.MEMCACHE_WRITES).inc(("a:1",))
        families = parse(registry)
        self.assertEqual(len(families["freno_memcache_writes"].samples), 1)
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 1.0)

    def test_bad_caps(self) -> None:
        """
        Caps below 1 are refused.
        """
        self.assertRaises(ValueError, RegistryCollector, Registry(), 0)

    def test_family_order(self) -> None:
        """
        Named families come out counters first, then gauges, then timers,
        each in the order they were first recorded into.
        """
        registry = Registry()
        registry.gauge(C.THRESHOLD).set(1.0, ("main",))
        registry.counter(C.MEMCACHE_WRITES).inc(("a:1",))
        registry.timer(C.REACTOR_LAG).observe(0.0)
        registry.counter(C.PROBES).inc(("main", "h:1"))
        registry.counter(C.MEMCACHE_WRITES).inc(("b:1",))
        names = [f for f in parse(registry) if not f.startswith("freno_vars_")]
        self.assertEqual(
            names,
            ["freno_memcache_writes", "freno_probes", "freno_threshold",
             "freno_reactor_lag_seconds", DROPPED_METRIC],
        )

    @settings(max_examples=60, deadline=None)
    @given(
        app=st.text(min_size=0, max_size=30),
        outcome=st.text(min_size=1, max_size=30),
        value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    )
    def test_any_names_parse(self, app: str, outcome: str, value: float) -> None:
        """
        Whatever label values are recorded, the output parses and the
        labeled value survives the round trip.
        """
        registry = Registry()
        registry.counter(C.CHECKS).inc((app, "mysql", "main", "200"), 2)
        registry.counter(C.HTTP_CHECKS).inc((outcome,))
        registry.gauge(C.AGGREGATED).set(value, (outcome,))
        families = parse(registry)
        self.assertEqual(
            sample(families, "freno_checks", "freno_checks_total",
                   app=app, store_type="mysql", store_name="main", status="200"),
            2.0,
        )


class ResourceTests(SynchronousTestCase):
    """
    The C{/metrics} resource.
    """

    def test_get(self) -> None:
        """
        GET answers the text format with its content type, including the
        process metrics.
        """
        registry = Registry()
        registry.counter(C.RAFT_LEADER_CHANGES).inc(amount=2)
        treq = StubTreq(MetricsResource(registry))
        response = self.successResultOf(treq.get("http://freno/metrics"))
        self.assertEqual(response.code, 200)
        self.assertTrue(
            response.headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain; version=0.0.4")
        )
        body = self.successResultOf(response.text())
        families = {f.name: f for f in text_string_to_metric_families(body)}
        self.assertEqual(sample(families, "freno_raft_leader_changes", "freno_raft_leader_changes_total"), 2.0)
        self.assertIn("process_cpu_seconds", families)

    def test_openmetrics(self) -> None:
        """
        A scraper asking for OpenMetrics gets it, and it parses.
        """
        registry = Registry()
        registry.timer(C.RAFT_COMMIT_LATENCY).observe(0.001)
        registry.counter(C.CHECKS).inc(("a", "mysql", "main", "200"))
        treq = StubTreq(MetricsResource(make_registry(registry, process=False)))
        response = self.successResultOf(
            treq.get(
                "http://freno/metrics",
                headers={"Accept": "application/openmetrics-text; version=1.0.0"},
            )
        )
        self.assertIn(b"openmetrics", response.headers.getRawHeaders(b"content-type")[0])
        body = self.successResultOf(response.text())
        families = {f.name: f for f in openmetrics_families(body)}
        self.assertEqual(families["freno_raft_commit_latency_seconds"].type, "summary")
        self.assertEqual(sample(families, "freno_checks", "freno_checks_total",
                   app="a", store_type="mysql", store_name="main", status="200"),
            1.0,
        )
