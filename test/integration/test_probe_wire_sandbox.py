"""
SLOW integration tests of L{freno.probe.wire.source.NativeMetricSource}
against a MariaDB replication sandbox (L{freno.sandbox.mysql}): real
C{mysql_native_password} authentication of the sandbox's probe user, the
heartbeat lag query on replicas, a frozen and a killed replica; and the
whole service-level suite of L{test.integration.test_probe_integration} re-run with the
native source in place of the adbapi one.

Each class starts one sandbox for all its tests (stopped after its last
test). Every wait is a poll with a deadline.
"""

from __future__ import annotations

import time

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

import test.integration.test_probe_integration as integration
from freno.config.model import ClusterSettings, ProbeSettings
from freno.hosts import HostKey
from freno.probe.interfaces import ProbeError
from freno.probe.query import ProbeConnectError
from freno.probe.wire.source import NativeMetricSource
from test.support import SharedSandboxMixin
from freno.sandbox.mysql import LAG_QUERY


class NativeSourceSandboxTests(SharedSandboxMixin, TestCase):
    """
    SLOW (about 15 s): L{NativeMetricSource} against real replicas.
    """

    timeout = 90
    sandbox_kwargs = {"replicas": 2, "heartbeat_interval": 0.02}

    def setUp(self):
        super().setUp()
        self.source = NativeMetricSource(reactor, ProbeSettings(timeout=1.0))
        self.addCleanup(self.source.close)
        self.connects = []
        connector = self.source._connector

        def counting(cluster, host, timeout):
            self.connects.append(time.monotonic())
            return connector(cluster, host, timeout)

        self.source._connector = counting

    def replica(self, index):
        return HostKey("127.0.0.1", self.sandbox.replicas[index].port)

    def cluster(self, query=LAG_QUERY, password=None, name="c"):
        return ClusterSettings(
            name=name,
            user=self.sandbox.user,
            password=self.sandbox.password if password is None else password,
            metric_query=query,
        )

    def restore(self, index):
        def undo():
            if self.sandbox.replicas[index].pid is None:
                self.sandbox.start_replica(index)
            self.sandbox.thaw(index)
            self.sandbox.wait_caught_up([index], timeout=20)

        return deferToThread(undo)

    @inlineCallbacks
    def probe_until(self, cluster, host, accept, timeout, what):
        """
        Probe every 50 ms until C{accept(outcome)}; return the outcome.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                outcome = yield self.source.probe(cluster, host)
            except ProbeError as e:
                outcome = e
            if accept(outcome):
                return outcome
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {outcome!r}")
            yield deferLater(reactor, 0.05, lambda: None)

    @inlineCallbacks
    def test_password_auth_and_lag(self):
        """
        The probe user authenticates with its password
        (mysql_native_password) and reads a sub-second heartbeat lag on
        each replica, on one connection per host.
        """
        for index in (0, 1):
            for _ in range(3):
                lag = yield self.source.probe(self.cluster(), self.replica(index))
                self.assertTrue(0 <= lag < 1.0, lag)
        self.assertEqual(len(self.connects), 2)

    @inlineCallbacks
    def test_replication_status(self):
        """
        The default query reads the replica's status (0 s behind); the
        primary is not a replica.
        """
        lag = yield self.source.probe(self.cluster(""), self.replica(0))
        self.assertLess(lag, 2.0)
        with self.assertRaises(ProbeError) as e:
            yield self.source.probe(
                self.cluster(""), HostKey("127.0.0.1", self.sandbox.primary.port)
            )
        self.assertEqual(str(e.exception), "not a replica (SHOW SLAVE STATUS returned no rows)")

    @inlineCallbacks
    def test_wrong_password(self):
        """
        A wrong password is the server's access-denied error.
        """
        with self.assertRaises(ProbeError) as e:
            yield self.source.probe(self.cluster(password="wrong"), self.replica(0))
        self.assertIn("Error 1045: Access denied for user 'freno'", str(e.exception))
        self.assertNotIsInstance(e.exception, ProbeConnectError)

    @inlineCallbacks
    def test_frozen_replica(self):
        """
        A frozen (SIGSTOPped) replica's probe times out within the timeout
        (1 s); the other replica answers meanwhile; after thaw the frozen one
        answers again on a new connection.
        """
        yield self.source.probe(self.cluster(), self.replica(0))
        self.addCleanup(self.restore, 0)
        self.sandbox.freeze(0)
        started = time.monotonic()
        with self.assertRaises(ProbeError) as e:
            yield self.source.probe(self.cluster(), self.replica(0))
        elapsed = time.monotonic() - started
        self.assertEqual(
            str(e.exception), f"probe of {self.replica(0)} timed out after 1s"
        )
        self.assertTrue(0.9 <= elapsed < 1.3, elapsed)
        lag = yield self.source.probe(self.cluster(), self.replica(1))
        self.assertLess(lag, 1.0)
        # While frozen, reconnects time out too (the kernel accepts TCP).
        outcome = yield self.probe_until(
            self.cluster(), self.replica(0),
            lambda o: isinstance(o, ProbeError) and "timed out" in str(o), 5, "reconnect timeout",
        )
        self.assertNotIsInstance(outcome, ProbeConnectError)
        self.sandbox.thaw(0)
        yield self.probe_until(
            self.cluster(), self.replica(0), lambda o: isinstance(o, float), 10, "thawed replica",
        )

    @inlineCallbacks
    def test_stopped_replica(self):
        """
        A killed replica is a dial error; reconnects back off (doubling, at
        most every 2 s) instead of dialing at the probe rate; after restart
        the probe succeeds again.
        """
        yield self.source.probe(self.cluster(), self.replica(0))
        self.addCleanup(self.restore, 0)
        yield deferToThread(self.sandbox.stop_replica, 0, False)
        self.connects.clear()
        errors = []
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            try:
                yield self.source.probe(self.cluster(), self.replica(0))
            except ProbeError as e:
                errors.append(e)
            yield deferLater(reactor, 0.02, lambda: None)
        self.assertTrue(all(isinstance(e, ProbeConnectError) for e in errors), errors)
        self.assertTrue(
            str(errors[-1]).startswith(f"dial tcp {self.replica(0)}: "), str(errors[-1])
        )
        self.assertIn("Connection refused", str(errors[-1]))
        # About 40 probes in 1.5 s, but dials only at 0, 0.1, 0.3, 0.7, 1.5 s.
        self.assertGreater(len(errors), 20)
        self.assertLessEqual(len(self.connects), 6)
        yield deferToThread(self.sandbox.start_replica, 0)
        yield self.probe_until(
            self.cluster(), self.replica(0), lambda o: isinstance(o, float), 10, "restarted replica",
        )


class NativeProbeSandboxTests(integration.ProbeSandboxTests):
    """
    SLOW (about a minute): L{test.integration.test_probe_integration}'s service-level
    tests, unchanged, with L{NativeMetricSource} as the metric source.
    """

    def setUp(self):
        self.patch(
            integration,
            "MySQLMetricSource",
            lambda clock, settings: NativeMetricSource(clock, settings),
        )
        return super().setUp()

    def start_service(self, clusters, **probe_kw):
        super().start_service(clusters, **probe_kw)
        self.assertIsInstance(self.service._source, NativeMetricSource)
