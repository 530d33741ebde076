"""
Tests for L{freno.probe.service.ProbeService} and L{freno.probe.httpcheck},
with a Clock, the fake metric source, the fake inventory, local consensus
and StubTreq.
"""

from __future__ import annotations

from klein import Klein
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings, ProbeSettings
from freno.consensus.local import LocalConsensus
from freno.hosts import HostKey
from freno.inventory.fake import FakeInventory
from freno.probe.aggregate import NOT_COLLECTED
from freno.probe.fake import FakeMetricSource
from freno.probe.httpcheck import check_url
from freno.probe.metrics import AggregatedMetrics
from freno.probe.service import ProbeService
from freno.metrics.catalogue import AGGREGATED_VALUE, THRESHOLD
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry

A = HostKey("a", 3306)
B = HostKey("b", 3306)
C = HostKey("c", 3306)


def make_config(**cluster_kw):
    clusters = {
        "c1": ClusterSettings(name="c1", throttle_threshold=1.0, **cluster_kw),
        "c2": ClusterSettings(name="c2", throttle_threshold=1.0),
    }
    return Config(
        mysql=MySQLStoreSettings(
            clusters=clusters,
            probe=ProbeSettings(interval=0.05, freshness=0.5, http_check_interval=5.0),
        )
    )


class Harness:
    def __init__(self, test, leader=True, http_client=None, **cluster_kw):
        self.clock = Clock()
        self.clock.advance(1000)
        self.config = make_config(**cluster_kw)
        self.consensus = LocalConsensus(self.clock, leader=leader)
        self.inventory = FakeInventory({"c1": [A, B]})
        self.source = FakeMetricSource(self.clock)
        self.metrics = AggregatedMetrics(self.clock, {"c1": 1.0, "c2": 1.0}, 0.5)
        self.stats = Registry()
        self.service = ProbeService(
            self.clock, self.config, self.consensus, self.inventory, self.source,
            self.metrics, self.stats, http_client=http_client,
        )
        for host in (A, B, C):
            self.source.set_value(host, 0.1)
        test.addCleanup(self.stop)

    def stop(self):
        if self.service.running:
            self.service.stopService()

    def value(self, cluster="c1"):
        metric = self.metrics.get(cluster)
        return None if metric is None else (metric.error or metric.value)


class ProbeServiceTests(SynchronousTestCase):
    """
    Leader-only probing and aggregation.
    """

    def test_leader_probes_at_once(self):
        """
        A leader probes known hosts as soon as it starts and the aggregate is
        there at once; the inventory is started.
        """
        h = Harness(self)
        h.source.set_value(B, 0.7)
        h.service.startService()
        self.assertTrue(h.inventory.running)
        self.assertEqual(h.value(), 0.7)
        self.assertIsNone(h.metrics.get("c2"))
        self.assertEqual(h.stats.value(AGGREGATED_VALUE, ("c1",)), 0.7)
        self.assertEqual(h.stats.value(THRESHOLD, ("c1",)), 1.0)

    def test_new_hosts_probed_when_they_arrive(self):
        """
        Hosts arriving from the inventory are probed immediately, not at the
        next tick.
        """
        h = Harness(self)
        h.service.startService()
        h.source.set_value(C, 3.0)
        h.inventory.set_hosts("c2", [C])
        self.assertEqual(h.value("c2"), 3.0)

    def test_threshold_crossing_reaches_metrics_on_result(self):
        """
        A probe result recomputes the aggregate in the same turn.
        """
        h = Harness(self)
        h.service.startService()
        h.source.set_value(A, 5.0)
        h.source.set_delay(A, 0.01)
        h.clock.advance(0.05)
        self.assertEqual(h.value(), 0.1)
        h.clock.advance(0.01)
        self.assertEqual(h.value(), 5.0)

    def test_follower_does_not_probe(self):
        """
        A follower probes nothing until it becomes leader; losing leadership
        stops probing and clears metrics; regaining starts afresh.
        """
        h = Harness(self, leader=False)
        h.service.startService()
        h.clock.advance(1)
        self.assertEqual(h.source.calls, [])
        self.assertFalse(h.inventory.running)
        h.consensus.set_leader(True)
        self.assertEqual(h.value(), 0.1)
        h.consensus.set_leader(False)
        self.assertIsNone(h.metrics.get("c1"))
        self.assertFalse(h.inventory.running)
        calls = len(h.source.calls)
        h.clock.advance(1)
        self.assertEqual(len(h.source.calls), calls)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_old_term_results_ignored(self):
        """
        A probe of the old term that answers after leadership was lost and
        regained does not count.
        """
        h = Harness(self)
        h.source.hold(A)
        h.service.startService()
        h.consensus.set_leader(False)
        h.source.set_value(A, 9.0)
        h.consensus.set_leader(True)
        h.source.release(A, count=1)
        self.assertEqual(h.value(), NOT_COLLECTED)
        h.source.release(A)
        self.assertEqual(h.value(), 9.0)

    def test_stale_host(self):
        """
        A host that stops answering becomes stale after the freshness bound,
        and the whole cluster's aggregate is refused as stale too.
        """
        h = Harness(self)
        h.service.startService()
        h.source.hold(A)
        h.clock.pump([0.05] * 12)
        self.assertIn("Metric is stale: last value of a:3306", h.value())
        h.source.hold(B)
        h.clock.pump([0.05] * 12)
        self.assertIn("Metric is stale", h.value())

    def test_ignore_hosts_count_static(self):
        """
        IgnoreHostsCount applies to static-host clusters (B6).
        """
        h = Harness(self, ignore_hosts_count=1)
        h.source.set_value(A, 5.0)
        h.service.startService()
        self.assertEqual(h.value(), 0.1)

    def test_skip_takes_effect_at_next_result(self):
        """
        A skipped host is left out at the next aggregation, and recovering
        it brings it back.
        """
        h = Harness(self)
        h.source.set_value(A, 5.0)
        h.service.startService()
        self.assertEqual(h.value(), 5.0)
        h.consensus.skip_host("a", h.clock.seconds() + 60)
        h.clock.advance(0.05)
        self.assertEqual(h.value(), 0.1)
        h.consensus.recover_host("a")
        h.service.refresh_aggregates()
        self.assertEqual(h.value(), 5.0)

    def test_host_leaving_is_pruned(self):
        """
        A host that leaves the inventory no longer counts.
        """
        h = Harness(self)
        h.source.set_value(A, 5.0)
        h.service.startService()
        h.inventory.set_hosts("c1", [B])
        self.assertEqual(h.value(), 0.1)
        self.assertEqual(set(h.service._results["c1"]), {B})
        self.assertEqual(h.source.discarded, [("c1", A)])
        h.consensus.set_leader(False)
        self.assertEqual(h.source.discarded, [("c1", A), ("c1", B)])

    def test_stop_service(self):
        """
        stopService closes the source and leaves no timers.
        """
        h = Harness(self)
        h.service.startService()
        self.successResultOf(h.service.stopService())
        self.assertTrue(h.source.closed)
        self.assertFalse(h.inventory.running)
        self.assertEqual(h.clock.getDelayedCalls(), [])


class HttpApp:
    app = Klein()

    def __init__(self):
        self.codes = {}
        self.requests = []

    @app.route("/<path:rest>")
    def check(self, request, rest):
        host = request.getRequestHostname().decode()
        self.requests.append((host, rest))
        request.setResponseCode(self.codes.get(host, 200))
        return b"ok"


class HttpCheckTests(SynchronousTestCase):
    """
    HTTP checks: a 404 removes a host from aggregation.
    """

    def test_url(self):
        """
        The URL joins host, port and path with one slash; IPv6 is bracketed.
        """
        cluster = ClusterSettings(name="c", http_check_port=8080, http_check_path="/health")
        self.assertEqual(check_url(cluster, A), "http://a:8080/health")
        self.assertEqual(check_url(cluster, HostKey("::1", 3306)), "http://[::1]:8080/health")

    def test_not_found_excluded(self):
        """
        A host answering 404 leaves aggregation; answering 200 again brings
        it back; stats count the codes.
        """
        web = HttpApp()
        web.codes["a"] = 404
        h = Harness(self, http_client=StubTreq(web.app.resource()),
                    http_check_port=9999, http_check_path="check")
        h.source.set_value(A, 5.0)
        h.service.startService()
        self.assertEqual(h.value(), 0.1)
        self.assertEqual(variables(h.stats).counters["httpcheck.404"], 1)
        self.assertEqual(web.requests, [("a", "check"), ("b", "check")])
        web.codes["a"] = 200
        h.clock.advance(5.0)
        self.assertEqual(h.value(), 5.0)
        self.assertEqual(variables(h.stats).counters["httpcheck.200"], 3)

    def test_transport_error(self):
        """
        A failing request counts as an error (500) and the host stays in.
        """
        class Broken:
            def get(self, url):
                return Deferred.fromCoroutine(self._fail())

            async def _fail(self):
                raise ConnectionRefusedError()

        h = Harness(self, http_client=Broken(), http_check_port=9999)
        h.source.set_value(A, 5.0)
        h.service.startService()
        self.assertEqual(variables(h.stats).counters["httpcheck.error"], 2)
        self.assertEqual(h.value(), 5.0)

    def test_timeout(self):
        """
        A check that never answers times out after 1 s and counts as an error.
        """
        class Hanging:
            def get(self, url):
                return Deferred()

        h = Harness(self, http_client=Hanging(), http_check_port=9999)
        h.service.startService()
        h.clock.advance(1.0)
        self.assertEqual(variables(h.stats).counters["httpcheck.error"], 2)

    def test_skip_counted(self):
        """
        Without a port nothing is requested and httpcheck.skip counts.
        """
        h = Harness(self, http_client=object())
        h.service.startService()
        self.assertEqual(variables(h.stats).counters["httpcheck.skip"], 2)
