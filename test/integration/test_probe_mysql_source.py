"""
Real probes of L{freno.probe.mysql_source.MySQLMetricSource} against a real
MariaDB.
"""

from __future__ import annotations

import socket

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


def _mariadb_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 3306), 0.5).close()
        return True
    except OSError:
        return False


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RealMariaDBTests(TestCase):
    """
    Real probes against the local MariaDB (127.0.0.1:3306, root) with a
    real thread pool. Integration; a few hundred milliseconds.
    """

    if not _mariadb_up():
        skip = "no MariaDB on 127.0.0.1:3306"

    def setUp(self):
        self.source = MySQLMetricSource(
            reactor, ProbeSettings(timeout=1.0, thread_pool_size=2)
        )
        self.addCleanup(self.source.close)
        self.host = HostKey("127.0.0.1", 3306)

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
                self.cluster("select 1"), HostKey("127.0.0.1", _free_port())
            )
        self.assertIn("dial tcp 127.0.0.1:", str(e.exception))
        self.assertIn("Connection refused", str(e.exception))
