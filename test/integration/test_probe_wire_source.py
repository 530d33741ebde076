"""
Real probes of L{freno.probe.wire.source.NativeMetricSource} against a real
MariaDB: a sandbox primary (L{freno.sandbox.mysql}) that the tests start.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from freno.config.model import ClusterSettings, ProbeSettings
from freno.hosts import HostKey
from freno.probe.interfaces import ProbeError
from freno.probe.query import ProbeConnectError
from freno.probe.wire.source import NativeMetricSource
from freno.sandbox.processes import free_port
from test.support import SharedSandboxMixin


class RealMariaDBTests(SharedSandboxMixin, TestCase):
    """
    Real probes against a sandbox primary of our own (root, empty
    password), read-only. Integration; the sandbox starts in a few seconds,
    the probes take well under a second.
    """

    sandbox_kwargs = {"replicas": 0}

    def setUp(self):
        super().setUp()
        self.source = NativeMetricSource(reactor, ProbeSettings(timeout=1.0))
        self.addCleanup(self.source.close)
        self.host = HostKey("127.0.0.1", self.sandbox.primary.port)

    def cluster(self, query, **kw):
        return ClusterSettings(name="real", user="root", metric_query=query, **kw)

    @inlineCallbacks
    def test_select(self):
        """
        C{select 1} works over an empty-password handshake, twice on one
        connection.
        """
        self.assertEqual((yield self.source.probe(self.cluster("select 1"), self.host)), 1.0)
        self.assertEqual((yield self.source.probe(self.cluster("select 0.5"), self.host)), 0.5)
        self.assertEqual(len(self.source._hosts), 1)

    @inlineCallbacks
    def test_timestamp(self):
        """
        C{select unix_timestamp(now(6))} is a plausible time.
        """
        value = yield self.source.probe(self.cluster("select unix_timestamp(now(6))"), self.host)
        self.assertLess(abs(value - reactor.seconds()), 60)

    @inlineCallbacks
    def test_show_global(self):
        """
        C{show global status like 'threads_running'} gives a positive number.
        """
        value = yield self.source.probe(
            self.cluster("show global status like 'threads_running'"), self.host
        )
        self.assertGreaterEqual(value, 1.0)

    @inlineCallbacks
    def test_not_a_replica_and_errors(self):
        """
        C{show slave status} on a non-replica is "not a replica"; server
        errors are readable.
        """
        with self.assertRaises(ProbeError) as e:
            yield self.source.probe(self.cluster(""), self.host)
        self.assertEqual(str(e.exception), "not a replica (SHOW SLAVE STATUS returned no rows)")
        with self.assertRaises(ProbeError) as e:
            yield self.source.probe(self.cluster("select * from no_such_db.t"), self.host)
        self.assertEqual(str(e.exception), "Error 1146: Table 'no_such_db.t' doesn't exist")
        with self.assertRaises(ProbeError) as e:
            yield self.source.probe(self.cluster("select NULL"), self.host)
        self.assertIn("NULL", str(e.exception))

    @inlineCallbacks
    def test_collation(self):
        """
        A collation is accepted by the real server.
        """
        value = yield self.source.probe(
            self.cluster("select 2", collation="utf8mb4_unicode_ci"), self.host
        )
        self.assertEqual(value, 2.0)

    @inlineCallbacks
    def test_refused(self):
        """
        A closed port is a dial error.
        """
        with self.assertRaises(ProbeConnectError) as e:
            yield self.source.probe(self.cluster("select 1"), HostKey("127.0.0.1", free_port()))
        self.assertIn("dial tcp 127.0.0.1:", str(e.exception))
        self.assertIn("Connection refused", str(e.exception))
