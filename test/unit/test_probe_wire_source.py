"""
Tests for L{freno.probe.wire.source.NativeMetricSource} in memory: a scripted
server and C{task.Clock}.
"""

from __future__ import annotations


from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import ClusterSettings, ProbeSettings
from freno.hosts import HostKey
from freno.probe.interfaces import IMetricSource, ProbeError
from freno.probe.query import ProbeConnectError
from freno.probe.wire.protocol import DialError
from freno.probe.wire.source import BACKOFF_INITIAL, NativeMetricSource
from test.unit.test_probe_wire_helpers import FakeServer, err, packets, resultset

HOST = HostKey("db1", 3306)
CLUSTER = ClusterSettings(name="c1", user="u", password="p", metric_query="select v")
SLAVE_COLUMNS = ["Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master"]


class NativeMetricSourceTests(SynchronousTestCase):
    """
    L{NativeMetricSource} against L{FakeServer}.
    """

    def setUp(self):
        self.clock = Clock()
        self.server = FakeServer({"select v": resultset(["v"], [["1.5"]])})
        self.source = NativeMetricSource(
            self.clock, ProbeSettings(timeout=1.0), connector=self.server.connector(self.clock)
        )

    def test_interface(self):
        """
        The source provides L{IMetricSource}.
        """
        verifyObject(IMetricSource, self.source)

    def test_value_and_one_connection(self):
        """
        Probes return the value and reuse one connection per host, opened
        with the cluster's credentials and the whole timeout.
        """
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 1.5)
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 1.5)
        self.assertEqual(self.server.connects, [("u", "p", HOST, 1.0)])
        self.assertEqual(self.server.queries, ["select v", "select v"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connection_per_cluster_and_host(self):
        """
        Each (cluster, host) has its own connection.
        """
        other = ClusterSettings(name="c2", user="u2", password="p", metric_query="select v")
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.successResultOf(self.source.probe(CLUSTER, HostKey("db2", 3306)))
        self.successResultOf(self.source.probe(other, HOST))
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.assertEqual(len(self.server.connects), 3)
        self.assertEqual(self.server.connects[2][0], "u2")

    def test_unsupported_query(self):
        """
        An unsupported query fails without connecting.
        """
        cluster = ClusterSettings(name="c", metric_query="update x")
        f = self.failureResultOf(self.source.probe(cluster, HOST), ProbeError)
        self.assertEqual(str(f.value), "Unsupported metrics query type: update x")
        self.assertEqual(self.server.connections, [])

    def test_interpretation_shared(self):
        """
        Results are interpreted as by L{freno.probe.query}: NULL, several
        columns and show-global rows.
        """
        self.server.answers.update({
            "select null": resultset(["x"], [[None]]),
            "select 1, 2": resultset(["a", "b"], [["1", "2"]]),
            "show global status like 'threads_running'": resultset(
                ["Variable_name", "Value"], [["Threads_running", "7"]]
            ),
        })

        def probe(query):
            return self.source.probe(ClusterSettings(name=query, metric_query=query), HOST)

        self.assertEqual(str(self.failureResultOf(probe("select null"), ProbeError).value), "metric value is NULL")
        self.assertIn("exactly one column, got 2", str(self.failureResultOf(probe("select 1, 2"), ProbeError).value))
        self.assertEqual(self.successResultOf(probe("show global status like 'threads_running'")), 7.0)

    def test_replication_fallback(self):
        """
        The replication query tries C{SHOW REPLICA STATUS}, falls back to
        C{SHOW SLAVE STATUS} on a syntax error within the same probe, and
        keeps using it on that connection.
        """
        self.server.answers.update({
            "SHOW REPLICA STATUS": [err(1064, "You have an error in your SQL syntax")],
            "SHOW SLAVE STATUS": resultset(SLAVE_COLUMNS, [["Yes", "Yes", "3"]]),
        })
        cluster = ClusterSettings(name="r", metric_query="")
        self.assertEqual(self.successResultOf(self.source.probe(cluster, HOST)), 3.0)
        self.assertEqual(self.successResultOf(self.source.probe(cluster, HOST)), 3.0)
        self.assertEqual(
            self.server.queries, ["SHOW REPLICA STATUS", "SHOW SLAVE STATUS", "SHOW SLAVE STATUS"]
        )

    def test_replication_errors(self):
        """
        Not a replica, and replication not running, are freno's errors.
        """
        self.server.answers["SHOW REPLICA STATUS"] = resultset(SLAVE_COLUMNS, [])
        cluster = ClusterSettings(name="r", metric_query="")
        f = self.failureResultOf(self.source.probe(cluster, HOST), ProbeError)
        self.assertEqual(str(f.value), "not a replica (SHOW SLAVE STATUS returned no rows)")
        self.server.answers["SHOW REPLICA STATUS"] = resultset(SLAVE_COLUMNS, [["No", "Yes", None]])
        f = self.failureResultOf(self.source.probe(cluster, HOST), ProbeError)
        self.assertEqual(
            str(f.value), "replication not running; Slave_IO_Running=No, Slave_SQL_Running=Yes"
        )

    def test_server_error_keeps_connection(self):
        """
        A server error is readable and keeps the connection.
        """
        self.server.answers["select v"] = [err(1146, "Table 'meta.heartbeat' doesn't exist", "42S02")]
        f = self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertEqual(str(f.value), "Error 1146: Table 'meta.heartbeat' doesn't exist")
        self.server.answers["select v"] = resultset(["v"], [["2"]])
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 2.0)
        self.assertEqual(len(self.server.connects), 1)

    def test_dial_error_backoff(self):
        """
        A failed connect is a L{ProbeConnectError} "dial tcp host:port:
        ..."; the host is not retried before the backoff, which doubles,
        and a success resets it.
        """
        attempts = []

        def refuse(cluster, host, timeout):
            attempts.append(host)
            return fail(DialError("Connection was refused by other side: 111: Connection refused"))

        source = NativeMetricSource(self.clock, ProbeSettings(timeout=1.0), connector=refuse)
        f = self.failureResultOf(source.probe(CLUSTER, HOST), ProbeConnectError)
        self.assertEqual(
            str(f.value),
            "dial tcp db1:3306: Connection was refused by other side: 111: Connection refused",
        )
        self.failureResultOf(source.probe(CLUSTER, HOST), ProbeConnectError)
        self.assertEqual(len(attempts), 1)
        self.clock.advance(BACKOFF_INITIAL)
        self.failureResultOf(source.probe(CLUSTER, HOST), ProbeConnectError)
        self.assertEqual(len(attempts), 2)
        self.clock.advance(BACKOFF_INITIAL)
        self.failureResultOf(source.probe(CLUSTER, HOST), ProbeConnectError)
        self.assertEqual(len(attempts), 2)
        self.clock.advance(BACKOFF_INITIAL)
        source._connector = self.server.connector(self.clock)
        self.assertEqual(self.successResultOf(source.probe(CLUSTER, HOST)), 1.5)
        (state,) = source._hosts.values()
        self.assertEqual(state.failures, 0)

    def test_timeout_drops_and_backs_off(self):
        """
        A probe unanswered within the timeout fails then with the adbapi
        source's text; its connection is dropped; the next connect waits
        for the backoff; then a fresh connection answers.
        """
        self.server.answers["select v"] = None
        d = self.source.probe(CLUSTER, HOST)
        f = self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertIn("previous probe of db1:3306 still running", str(f.value))
        self.clock.advance(0.999)
        self.assertNoResult(d)
        self.clock.advance(0.001)
        f = self.failureResultOf(d, ProbeError)
        self.assertEqual(str(f.value), "probe of db1:3306 timed out after 1s")
        self.assertTrue(self.server.connections[0].transport.aborted)
        self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertEqual(len(self.server.connects), 1)
        self.clock.advance(BACKOFF_INITIAL)
        self.server.answers["select v"] = resultset(["v"], [["4"]])
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 4.0)
        self.assertEqual(len(self.server.connects), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connect_consumes_deadline(self):
        """
        Connect and query share one deadline: the query gets what the
        connect left.
        """
        pending = Deferred()
        source = NativeMetricSource(
            self.clock, ProbeSettings(timeout=1.0), connector=lambda c, h, t: pending
        )
        self.server.answers["select v"] = None
        d = source.probe(CLUSTER, HOST)
        self.clock.advance(0.7)
        pending.callback(self.server.connect(self.clock))
        self.clock.advance(0.29)
        self.assertNoResult(d)
        self.clock.advance(0.011)
        self.assertIn("timed out after 1s", str(self.failureResultOf(d, ProbeError).value))

    def test_idle_connection_closed_by_server(self):
        """
        A connection the server closed while idle is reopened at the next
        probe without a failure or backoff.
        """
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.server.connections[0].dataReceived(packets([err(1927, "Connection was killed", "70100")]))
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 1.5)
        self.assertEqual(len(self.server.connects), 2)

    def test_garbage_drops_and_backs_off(self):
        """
        Garbage from the server fails the probe with a protocol error and
        drops the connection.
        """
        self.server.answers["select v"] = [b"\x01", b"garbage"]
        f = self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertIn("MySQL protocol error from db1:3306", str(f.value))
        self.assertTrue(self.server.connections[0].transport.aborted)
        self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertEqual(len(self.server.connects), 1)

    def test_access_denied(self):
        """
        Authentication failure is the server's error, with backoff.
        """
        self.server.auth_reply = [err(1045, "Access denied for user 'u'@'x' (using password: YES)", "28000")]
        f = self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertEqual(str(f.value), "Error 1045: Access denied for user 'u'@'x' (using password: YES)")
        self.assertNotIsInstance(f.value, ProbeConnectError)
        self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertEqual(len(self.server.connects), 1)

    def test_collation(self):
        """
        A collation is set after connecting, once per connection; a bad
        collation name is refused without sending it.
        """
        self.server.answers["SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"] = [b"\x00\x00\x00\x02\x00\x00\x00"]
        cluster = ClusterSettings(name="c", collation="utf8mb4_unicode_ci", metric_query="select v")
        self.successResultOf(self.source.probe(cluster, HOST))
        self.successResultOf(self.source.probe(cluster, HOST))
        self.assertEqual(
            self.server.queries, ["SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci", "select v", "select v"]
        )
        bad = ClusterSettings(name="b", collation="x; drop table t", metric_query="select v")
        f = self.failureResultOf(self.source.probe(bad, HOST), ProbeError)
        self.assertEqual(str(f.value), "invalid collation 'x; drop table t'")
        self.assertEqual(len(self.server.queries), 3)

    def test_discard(self):
        """
        Discarding closes the connection (COM_QUIT); the next probe
        reconnects. Discarding during a probe closes after it.
        """
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.source.discard("c1", HOST)
        self.assertEqual(self.server.quits, 1)
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.assertEqual(len(self.server.connects), 2)
        self.server.answers["select v"] = None
        d = self.source.probe(CLUSTER, HOST)
        self.source.discard("c1", HOST)
        self.assertTrue(self.server.connections[1].usable)
        self.clock.advance(1.0)
        self.failureResultOf(d, ProbeError)
        self.assertFalse(self.server.connections[1].usable)

    def test_close(self):
        """
        C{close} closes every connection, after running probes; later
        probes fail.
        """
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.server.answers["select v"] = None
        d = self.source.probe(CLUSTER, HostKey("db2", 3306))
        closed = self.source.close()
        self.assertNoResult(closed)
        self.assertEqual(self.server.quits, 1)
        self.clock.advance(1.0)
        self.failureResultOf(d, ProbeError)
        self.successResultOf(closed)
        self.assertEqual(str(self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError).value),
                         "metric source is closed")
        self.assertEqual(self.clock.getDelayedCalls(), [])


    def test_close_waits_for_discarded(self):
        """
        C{close} also waits for hosts discarded while their probe ran (the
        service discards every host before closing the source).
        """
        self.server.answers["select v"] = None
        d = self.source.probe(CLUSTER, HOST)
        self.source.discard("c1", HOST)
        closed = self.source.close()
        self.assertNoResult(closed)
        self.clock.advance(1.0)
        self.failureResultOf(d, ProbeError)
        self.successResultOf(closed)
        self.assertFalse(self.server.connections[0].usable)
        self.assertEqual(self.source._closing, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


