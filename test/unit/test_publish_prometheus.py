"""
Tests for L{freno.publish.prometheus}: the output is parsed back with
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

from freno.publish.prometheus import (
    DROPPED_METRIC,
    MetricsResource,
    StatsCollector,
    make_registry,
    quantile,
    sanitise,
)
from freno.stats import Stats


def parse(stats: Stats, **kwargs) -> Dict[str, object]:
    """
    Render C{stats} (without process metrics) and parse it back into
    C{{family name: family}}.
    """
    text = generate_latest(make_registry(stats, process=False, **kwargs)).decode("utf-8")
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
    Every kind of stat is exported with the right type, labels and value.
    """

    def test_labeled_counters(self) -> None:
        """
        Labeled counters keep their names (with C{_total}) and labels.
        """
        stats = Stats()
        labels = (("app", "gh-ost"), ("store_type", "mysql"), ("store_name", "main"), ("status", "200"))
        stats.incr_labeled("freno_checks_total", labels, 3)
        stats.incr_labeled("freno_checks_total", labels[:3] + (("status", "429"),))
        stats.incr_labeled("freno_memcache_writes_total", (("server", "127.0.0.1:11211"),), 7)
        families = parse(stats)
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
        Labeled and unlabeled gauges (C{labels=()}) are exported.
        """
        stats = Stats()
        stats.set_gauge_labeled("freno_aggregated_value", (("cluster", "main"),), 0.25)
        stats.set_gauge_labeled("freno_threshold", (("cluster", "main"),), 1.0)
        stats.set_gauge_labeled("freno_raft_is_leader", (), 1)
        stats.set_gauge_labeled("freno_raft_term", (), 4)
        families = parse(stats)
        self.assertEqual(families["freno_aggregated_value"].type, "gauge")
        self.assertEqual(sample(families, "freno_aggregated_value", "freno_aggregated_value", cluster="main"), 0.25)
        self.assertEqual(sample(families, "freno_raft_is_leader", "freno_raft_is_leader"), 1.0)
        self.assertEqual(sample(families, "freno_raft_term", "freno_raft_term"), 4.0)

    def test_labeled_timers(self) -> None:
        """
        Labeled timers become summaries with count, sum and quantiles.
        """
        stats = Stats()
        labels = (("cluster", "main"), ("host", "db1:3306"))
        for ms in range(1, 101):
            stats.observe_labeled("freno_probe_latency_seconds", labels, ms / 1000.0)
        families = parse(stats)
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
        under C{freno_vars_}.
        """
        stats = Stats()
        stats.incr("check.any.total", 5)
        stats.incr("check.any.error", 2)
        stats.incr("probes.total", 9)
        stats.set_gauge("aggregated.mysql.main", 0.3)
        stats.set_gauge("raft.is_leader", 1)
        stats.observe("probes.latency", 0.002)
        stats.set_string("raft.leader", "127.0.0.1:10008")
        families = parse(stats)
        self.assertEqual(sample(families, "freno_vars_check_any", "freno_vars_check_any_total"), 5.0)
        self.assertEqual(sample(families, "freno_vars_check_any_error", "freno_vars_check_any_error_total"), 2.0)
        self.assertEqual(sample(families, "freno_vars_probes", "freno_vars_probes_total"), 9.0)
        self.assertEqual(sample(families, "freno_vars_aggregated_mysql_main", "freno_vars_aggregated_mysql_main"), 0.3)
        self.assertEqual(families["freno_vars_aggregated_mysql_main"].type, "gauge")
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
        distinct metrics.
        """
        stats = Stats()
        stats.incr("probes.total", 9)
        stats.incr_labeled("freno_probes_total", (("cluster", "main"), ("host", "h:1")), 4)
        families = parse(stats)
        self.assertEqual(sample(families, "freno_probes", "freno_probes_total", cluster="main", host="h:1"), 4.0)
        self.assertEqual(sample(families, "freno_vars_probes", "freno_vars_probes_total"), 9.0)

    def test_sanitised_collisions_dropped(self) -> None:
        """
        Two dotted names that sanitise to the same name export one series;
        the other is counted as dropped.
        """
        stats = Stats()
        stats.incr("check.a-b.total", 1)
        stats.incr("check.a_b.total", 2)
        families = parse(stats)
        self.assertEqual(len(families["freno_vars_check_a_b"].samples), 1)
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 1.0)

    def test_series_cap(self) -> None:
        """
        At most C{max_series_per_metric} series of one metric are exported;
        the rest are counted in C{freno_prometheus_dropped_series}.
        """
        stats = Stats()
        for i in range(50):
            stats.incr_labeled("freno_checks_total", (("app", f"app{i}"),))
        families = parse(stats, max_series_per_metric=10)
        self.assertEqual(len(families["freno_checks"].samples), 10)
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 40.0)

    def test_vars_cap(self) -> None:
        """
        At most C{max_vars} C{freno_vars_*} metrics are exported.
        """
        stats = Stats()
        for i in range(30):
            stats.incr(f"check.app{i}.total")
        families = parse(stats, max_vars=5)
        self.assertEqual(len([n for n in families if n.startswith("freno_vars_")]), 5)
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 25.0)

    def test_bad_label_names_dropped(self) -> None:
        """
        A series with an invalid label name is dropped, not rendered broken.
        """
        stats = Stats()
        stats.incr_labeled("freno_checks_total", (("bad-label", "x"),))
        stats.incr_labeled("freno_checks_total", (("app", "x"),))
        families = parse(stats)
        self.assertEqual(len(families["freno_checks"].samples), 1)
        self.assertEqual(sample(families, DROPPED_METRIC, DROPPED_METRIC), 1.0)

    def test_bad_caps(self) -> None:
        """
        Caps below 1 are refused.
        """
        self.assertRaises(ValueError, StatsCollector, Stats(), 0)

    @settings(max_examples=60, deadline=None)
    @given(
        app=st.text(min_size=0, max_size=30),
        dotted=st.text(min_size=1, max_size=30),
        value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    )
    def test_any_names_parse(self, app: str, dotted: str, value: float) -> None:
        """
        Whatever apps and names are in the stats, the output parses and the
        labeled value survives the round trip.
        """
        stats = Stats()
        stats.incr_labeled("freno_checks_total", (("app", app),), 2)
        stats.incr("check." + dotted + ".total")
        stats.set_gauge("aggregated." + dotted, value)
        families = parse(stats)
        self.assertEqual(sample(families, "freno_checks", "freno_checks_total", app=app), 2.0)


class ResourceTests(SynchronousTestCase):
    """
    The C{/metrics} resource.
    """

    def test_get(self) -> None:
        """
        GET answers the text format with its content type, including the
        process metrics.
        """
        stats = Stats()
        stats.incr_labeled("freno_raft_leader_changes_total", (), 2)
        treq = StubTreq(MetricsResource(stats))
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
        stats = Stats()
        stats.observe_labeled("freno_raft_commit_latency_seconds", (), 0.001)
        stats.incr_labeled("freno_checks_total", (("app", "a"),))
        treq = StubTreq(MetricsResource(make_registry(stats, process=False)))
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
        self.assertEqual(sample(families, "freno_checks", "freno_checks_total", app="a"), 1.0)
