"""
SLOW integration tests of L{freno.probe}: a real L{ProbeService} with the
real L{MySQLMetricSource}, on the real reactor, against a MariaDB
replication sandbox (a primary and two replicas with a heartbeat).

One sandbox serves every test of the class (started by the first C{setUp},
stopped after the last test); each test undoes its faults with
C{addCleanup}. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import time
from typing import Dict, Sequence, Tuple

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings, ProbeSettings
from freno.consensus.local import LocalConsensus
from freno.hosts import HostKey
from freno.inventory.fake import FakeInventory
from freno.probe.metrics import AggregatedMetrics
from freno.probe.mysql_source import MySQLMetricSource
from freno.probe.service import ProbeService
from test.support import SharedSandboxMixin, poll_on_reactor
from freno.sandbox.mysql import LAG_QUERY
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry

THRESHOLD = 1.0


def wait_for(predicate, timeout: float, what: str, interval: float = 0.01):
    """
    Poll C{predicate} on the reactor until true, failing after C{timeout};
    fires with the monotonic time it was first seen true.
    """
    return poll_on_reactor(predicate, timeout, what, interval).addCallback(lambda _: time.monotonic())


class ProbeSandboxTests(SharedSandboxMixin, TestCase):
    """
    SLOW (about a minute): probing real replicas.
    """

    timeout = 120
    sandbox_kwargs = {"replicas": 2, "heartbeat_interval": 0.02}

    def setUp(self):
        super().setUp()
        self.r0 = HostKey("localhost", self.sandbox.replicas[0].port)
        self.r1 = HostKey("127.0.0.1", self.sandbox.replicas[1].port)

    def restore(self, index):
        """
        Undo every fault on replica C{index} and wait until it caught up.
        """
        def undo():
            sandbox = self.sandbox
            if sandbox.replicas[index].pid is None:
                sandbox.start_replica(index)
            sandbox.thaw(index)
            sandbox.remove_lag(index)
            sandbox.wait_caught_up([index], timeout=20)

        return deferToThread(undo)

    def start_service(
        self,
        clusters: Dict[str, Tuple[Sequence[HostKey], dict]],
        **probe_kw,
    ):
        """
        Run a leader L{ProbeService} over C{clusters} (name to hosts and
        cluster settings).
        """
        settings = {}
        for name, (hosts, kw) in clusters.items():
            kw = dict(kw)
            kw.setdefault("metric_query", LAG_QUERY)
            settings[name] = ClusterSettings(
                name=name,
                user=self.sandbox.user,
                password=self.sandbox.password,
                throttle_threshold=THRESHOLD,
                **kw,
            )
        probe = ProbeSettings(**{"interval": 0.05, "timeout": 1.0, "freshness": 0.5, **probe_kw})
        config = Config(mysql=MySQLStoreSettings(clusters=settings, probe=probe))
        self.consensus = LocalConsensus(reactor, leader=True)
        self.metrics = AggregatedMetrics(
            reactor, {n: THRESHOLD for n in clusters}, probe.freshness
        )
        self.stats = Registry()
        inventory = FakeInventory({n: h for n, (h, _) in clusters.items()})
        source = MySQLMetricSource(reactor, probe)
        self.service = ProbeService(
            reactor, config, self.consensus, inventory, source, self.metrics, self.stats
        )
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def value(self, cluster="main"):
        metric = self.metrics.get(cluster)
        if metric is None:
            return None
        return metric.error if metric.error is not None else metric.value

    def low(self, cluster="main"):
        v = self.value(cluster)
        return isinstance(v, float) and v <= THRESHOLD

    def high(self, cluster="main"):
        v = self.value(cluster)
        return isinstance(v, float) and v > THRESHOLD

    @inlineCallbacks
    def test_lag_crosses_threshold_and_back(self):
        """
        No lag is below the threshold; growing lag on one replica is above
        it within moments of the crossing; removing it comes back.
        """
        self.start_service({"main": ([self.r0, self.r1], {})})
        yield wait_for(self.low, 3, "low lag")
        self.addCleanup(self.restore, 0)
        self.sandbox.inject_lag(0)
        crossed = yield wait_for(
            lambda: self.sandbox.lag(self.sandbox.replicas[0]) > THRESHOLD, 5,
            "real lag above threshold", interval=0.005,
        )
        seen = yield wait_for(self.high, 2, "aggregate above threshold", interval=0.005)
        self.assertLess(seen - crossed, 0.5)
        self.sandbox.remove_lag(0)
        yield wait_for(self.low, 10, "back below threshold")

    @inlineCallbacks
    def test_ignore_hosts_count(self):
        """
        IgnoreHostsCount 1 tolerates one lagging replica, not two.
        """
        self.start_service({"main": ([self.r0, self.r1], {"ignore_hosts_count": 1})})
        yield wait_for(self.low, 3, "low lag")
        self.addCleanup(self.restore, 0)
        self.addCleanup(self.restore, 1)
        self.sandbox.inject_lag(0)
        yield deferLater(reactor, 2.0, lambda: None)
        self.assertTrue(self.low(), self.value())
        self.sandbox.inject_lag(1)
        yield wait_for(self.high, 5, "two lagging replicas above threshold")

    @inlineCallbacks
    def test_ignore_hosts_threshold(self):
        """
        With IgnoreHostsThreshold above the lag, the budget does not drop the
        lagging replica.
        """
        self.start_service(
            {"main": ([self.r0, self.r1], {"ignore_hosts_count": 1, "ignore_hosts_threshold": 100.0})}
        )
        yield wait_for(self.low, 3, "low lag")
        self.addCleanup(self.restore, 0)
        self.sandbox.inject_lag(0)
        yield wait_for(self.high, 5, "lag above threshold despite the budget")

    @inlineCallbacks
    def test_ignore_hosts_and_skip(self):
        """
        IgnoreHosts leaves a replica out; skipping a host leaves it out at
        once and recovering brings it back.
        """
        self.start_service(
            {
                "ignored": ([self.r0, self.r1], {"ignore_hosts": (f"localhost:{self.r0.port}",)}),
                "main": ([self.r0, self.r1], {}),
            }
        )
        yield wait_for(self.low, 3, "low lag")
        self.addCleanup(self.restore, 0)
        self.sandbox.inject_lag(0)
        yield wait_for(self.high, 5, "lag above threshold")
        self.assertTrue(self.low("ignored"), self.value("ignored"))
        yield self.consensus.skip_host("localhost", time.time() + 60)
        yield wait_for(self.low, 0.5, "skipped host left out")
        yield self.consensus.recover_host("localhost")
        yield wait_for(self.high, 0.5, "recovered host back")

    @inlineCallbacks
    def test_killed_replica(self):
        """
        A killed replica is a dial error, the cluster's error unless
        IgnoreDialTcpErrors; after restart it counts again.
        """
        self.start_service(
            {
                "main": ([self.r0, self.r1], {}),
                "lenient": ([self.r0, self.r1], {"ignore_dial_tcp_errors": True}),
            }
        )
        yield wait_for(self.low, 3, "low lag")
        self.addCleanup(self.restore, 0)
        self.sandbox.stop_replica(0, graceful=False)
        yield wait_for(
            lambda: isinstance(self.value(), str) and "dial tcp" in self.value(), 3,
            "dial error",
        )
        self.assertIn("Connection refused", self.value())
        # Each cluster's connection to the killed replica first fails with
        # a lost connection, then (after the reconnect backoff) with the
        # dial error; "lenient" is probed in another slice than "main", so
        # it may reach its dial error a tick later.
        yield wait_for(lambda: self.low("lenient"), 1, "lenient ignoring the dial error")
        yield deferToThread(self.sandbox.start_replica, 0)
        yield wait_for(self.low, 10, "restarted replica counts again")

    @inlineCallbacks
    def test_frozen_replica(self):
        """
        A frozen replica's probes time out within the timeout; the other
        cluster keeps being probed on time and the reactor stays responsive;
        after thaw it counts again.
        """
        self.start_service(
            {"main": ([self.r0, self.r1], {}), "other": ([self.r1], {})}
        )
        yield wait_for(lambda: self.low() and self.low("other"), 3, "low lag")
        self.addCleanup(self.restore, 0)
        lateness = []
        ages = []
        last = [time.monotonic()]

        def tick():
            now = time.monotonic()
            lateness.append(now - last[0] - 0.01)
            last[0] = now
            metric = self.metrics.get("other")
            ages.append(time.time() - metric.measured_at)

        loop = LoopingCall(tick)
        loop.start(0.01)
        self.addCleanup(lambda: loop.running and loop.stop())
        self.sandbox.freeze(0)
        frozen = time.monotonic()
        errored = yield wait_for(lambda: isinstance(self.value(), str), 2, "frozen host error")
        self.assertLess(errored - frozen, 1.2)
        yield wait_for(
            lambda: "timed out" in self.value() or "Lost connection" in self.value(),
            2, "timeout error",
        )
        yield deferLater(reactor, 1.5, lambda: None)
        loop.stop()
        # Anything waiting on the frozen host would show up as a full probe
        # timeout (1 s) of lateness or age; half of that leaves room for a
        # busy 2-core machine's scheduling (tens of milliseconds, at times
        # more), which is not what this test is about (bench.probe measures
        # reactor lag).
        self.assertLess(max(ages), 0.5, "other cluster was not probed on time")
        self.assertLess(sorted(lateness)[int(len(lateness) * 0.99)], 0.5)
        self.sandbox.thaw(0)
        yield wait_for(self.low, 10, "thawed replica counts again")

    @inlineCallbacks
    def test_custom_metric_cached(self):
        """
        C{show global status like 'threads_running'} works, and CacheMillis
        limits real probes.
        """
        self.start_service(
            {"main": ([self.r1], {"metric_query": "show global status like 'threads_running'", "cache_millis": 500})}
        )
        yield wait_for(lambda: isinstance(self.value(), float), 3, "a value")
        self.assertGreaterEqual(self.value(), 1.0)
        before = variables(self.stats).counters["probes.total"]
        yield deferLater(reactor, 1.0, lambda: None)
        probes = variables(self.stats).counters["probes.total"] - before
        self.assertLessEqual(probes, 3)
        self.assertGreaterEqual(probes, 1)

    @inlineCallbacks
    def test_replication_status_default_query(self):
        """
        With no MetricQuery, replicas report their replication lag and the
        primary is "not a replica".
        """
        primary = HostKey("127.0.0.1", self.sandbox.primary.port)
        self.start_service(
            {"main": ([self.r0, self.r1], {"metric_query": ""}), "primary": ([primary], {"metric_query": ""})}
        )
        def collected(cluster):
            return self.value(cluster) not in (None, "Metric not collected yet")

        # The two clusters are probed in different slices of the round.
        yield wait_for(lambda: collected("main") and collected("primary"), 3, "values")
        self.assertEqual(self.value(), 0.0)
        self.assertEqual(self.value("primary"), "not a replica (SHOW SLAVE STATUS returned no rows)")
