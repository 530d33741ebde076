"""
Real probes of L{freno.probe.mysql_source.MySQLMetricSource} against a real
MariaDB: a sandbox primary (L{freno.sandbox.mysql}) that the tests start.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from freno.config.model import ClusterSettings, ProbeSettings
from freno.hosts import HostKey
from freno.probe.interfaces import ProbeError
from freno.probe.mysql_source import (
    MySQLMetricSource,
)
from freno.probe.query import ProbeConnectError
from freno.sandbox.processes import free_port
from test.support import SharedSandboxMixin


class RealMariaDBTests(SharedSandboxMixin, TestCase):
    """
    Real probes against a sandbox primary of our own (root, no password)
    with a real thread pool. Integration; the sandbox starts in a few
    seconds, the probes take a few hundred milliseconds.
    """

    sandbox_kwargs = {"replicas": 0}

    def setUp(self):
        super().setUp()
        self.source = MySQLMetricSource(
            reactor, ProbeSettings(timeout=1.0, thread_pool_size=2)
        )
        self.addCleanup(self.source.close)
        self.host = HostKey("127.0.0.1", self.sandbox.primary.port)

    def cluster(self, query):
        return ClusterSettings(name="real", user="root", metric_query=query)

    @inlineCallbacks
    def test_select(self):
        """
        A select of one number works.
        """
        value = yield self.source.probe(self.cluster("select 0.5"), self.host)
        self.assertEqual(value, 0.5)

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
    def test_null_and_not_a_replica(self):
        """
        NULL is an error; the primary is "not a replica".
        """
        with self.assertRaises(ProbeError) as e:
            yield self.source.probe(self.cluster("select NULL"), self.host)
        self.assertIn("NULL", str(e.exception))
        with self.assertRaises(ProbeError) as e:
            yield self.source.probe(self.cluster(""), self.host)
        self.assertEqual(
            str(e.exception), "not a replica (SHOW SLAVE STATUS returned no rows)"
        )

    @inlineCallbacks
    def test_refused(self):
        """
        A closed port is a dial error.
        """
        with self.assertRaises(ProbeConnectError) as e:
            yield self.source.probe(
                self.cluster("select 1"), HostKey("127.0.0.1", free_port())
            )
        self.assertIn("dial tcp 127.0.0.1:", str(e.exception))
        self.assertIn("Connection refused", str(e.exception))
