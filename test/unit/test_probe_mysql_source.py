"""
Tests for L{freno.probe.mysql_source} in memory: a scripted DB-API module on a
synchronous thread pool.
"""

from __future__ import annotations


from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import ClusterSettings, ProbeSettings
from freno.hosts import HostKey
from freno.probe.fake import SynchronousThreadPool, ThreadlessClock
from freno.probe.interfaces import IMetricSource, ProbeError
from freno.probe.mysql_source import (
    BACKOFF_INITIAL,
    HostConnectionPool,
    MySQLMetricSource,
    connect_kwargs,
    load_driver,
    readable_error,
)
from freno.probe.query import ProbeConnectError

HOST = HostKey("db1", 3306)


class Error(Exception):
    pass


class DatabaseError(Error):
    pass


class OperationalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class InterfaceError(Error):
    pass


class _Cursor:
    def __init__(self, conn):
        self.conn = conn
        self.description = None

    def execute(self, statement):
        self.conn.db.executed.append(statement)
        outcome = self.conn.db.next_outcome()
        if isinstance(outcome, Exception):
            raise outcome
        self.description = [("v",)]
        self._rows = [(outcome,)]

    def fetchall(self):
        return self._rows

    def close(self):
        pass


class _Conn:
    def __init__(self, db):
        self.db = db
        self.closed = False

    def cursor(self):
        return _Cursor(self)

    def close(self):
        self.closed = True


class FakeDBAPI:
    """
    A DB-API module: C{connect()} succeeds unless C{connect_error} is set;
    each execute takes the next of C{outcomes} (a value or an exception),
    repeating the last one.
    """

    Error = Error
    DatabaseError = DatabaseError
    OperationalError = OperationalError
    InterfaceError = InterfaceError

    def __init__(self):
        self.connects = []
        self.connections = []
        self.connect_error = None
        self.outcomes = [1.0]
        self.executed = []
        self.on_execute = None

    def next_outcome(self):
        if self.on_execute is not None:
            self.on_execute()
        if len(self.outcomes) > 1:
            return self.outcomes.pop(0)
        return self.outcomes[0]

    def connect(self, **kwargs):
        self.connects.append(kwargs)
        if self.connect_error is not None:
            raise self.connect_error
        conn = _Conn(self)
        self.connections.append(conn)
        return conn


CLUSTER = ClusterSettings(name="c1", user="u", password="p", metric_query="select v")


class MySQLMetricSourceTests(SynchronousTestCase):
    """
    L{MySQLMetricSource} on a synchronous pool with a scripted driver.
    """

    def setUp(self):
        self.clock = ThreadlessClock()
        self.db = FakeDBAPI()
        self.pool = SynchronousThreadPool()
        self.source = MySQLMetricSource(
            self.clock, ProbeSettings(timeout=1.0), threadpool=self.pool, dbapi=self.db
        )

    def test_interface(self):
        """
        The source provides L{IMetricSource}.
        """
        verifyObject(IMetricSource, self.source)

    def test_value_and_one_connection(self):
        """
        Probes return the value and reuse one autocommit connection per host
        with the configured timeouts.
        """
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 1.0)
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 1.0)
        self.assertEqual(len(self.db.connects), 1)
        kw = self.db.connects[0]
        self.assertEqual(
            (kw["host"], kw["port"], kw["user"], kw["password"], kw["autocommit"]),
            ("db1", 3306, "u", "p", True),
        )
        self.assertEqual(
            (kw["connect_timeout"], kw["read_timeout"], kw["write_timeout"]),
            (1.0, 1.0, 1.0),
        )
        self.assertEqual(kw["database"], "information_schema")
        self.assertEqual(self.db.executed, ["select v", "select v"])

    def test_connection_per_host(self):
        """
        Each host has its own connection.
        """
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.successResultOf(self.source.probe(CLUSTER, HostKey("db2", 3306)))
        self.assertEqual([c["host"] for c in self.db.connects], ["db1", "db2"])

    def test_two_clusters_same_host(self):
        """
        Two clusters listing the same host probe it concurrently, each on
        its own connection.
        """
        pending = []

        class HeldPool(SynchronousThreadPool):
            def callInThreadWithCallback(self, onResult, func, *args, **kw):
                pending.append((onResult, func, args, kw))

        source = MySQLMetricSource(
            self.clock, ProbeSettings(), threadpool=HeldPool(), dbapi=self.db
        )
        other = ClusterSettings(name="c2", user="u", password="p", metric_query="select v")
        d1 = source.probe(CLUSTER, HOST)
        d2 = source.probe(other, HOST)
        for onResult, func, args, kw in pending:
            SynchronousThreadPool().callInThreadWithCallback(onResult, func, *args, **kw)
        self.assertEqual((self.successResultOf(d1), self.successResultOf(d2)), (1.0, 1.0))
        self.assertEqual(len(self.db.connects), 2)

    def test_unsupported_query(self):
        """
        An unsupported query fails without touching the database.
        """
        cluster = ClusterSettings(name="c", metric_query="update x")
        f = self.failureResultOf(self.source.probe(cluster, HOST), ProbeError)
        self.assertEqual(str(f.value), "Unsupported metrics query type: update x")
        self.assertEqual(self.db.connects, [])

    def test_connect_refused_backoff(self):
        """
        A refused connection is a L{ProbeConnectError} starting with
        "dial tcp"; the host is not retried before the backoff passes, and
        the backoff doubles.
        """
        self.db.connect_error = OperationalError(
            2003, "Can't connect to MySQL server on 'db1' ([Errno 111] Connection refused)"
        )
        f = self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeConnectError)
        self.assertTrue(str(f.value).startswith("dial tcp db1:3306: Can't connect"))
        self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeConnectError)
        self.assertEqual(len(self.db.connects), 1)
        self.clock.advance(BACKOFF_INITIAL)
        self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeConnectError)
        self.assertEqual(len(self.db.connects), 2)
        self.clock.advance(BACKOFF_INITIAL)
        self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeConnectError)
        self.assertEqual(len(self.db.connects), 2)
        self.clock.advance(BACKOFF_INITIAL)
        self.db.connect_error = None
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 1.0)
        self.assertEqual(len(self.db.connects), 3)

    def test_server_error_keeps_connection(self):
        """
        A server-side error (a bad table) keeps the connection and is
        readable.
        """
        self.db.outcomes = [ProgrammingError(1146, "Table 'meta.heartbeat' doesn't exist"), 2.0]
        f = self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertEqual(str(f.value), "Error 1146: Table 'meta.heartbeat' doesn't exist")
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 2.0)
        self.assertEqual(len(self.db.connects), 1)

    def test_lost_connection_reconnects(self):
        """
        A lost connection (client error 2013) is closed and replaced after
        the backoff.
        """
        self.db.outcomes = [OperationalError(2013, "Lost connection to MySQL server during query (timed out)"), 3.0]
        f = self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertIn("Lost connection", str(f.value))
        self.assertTrue(self.db.connections[0].closed)
        self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.clock.advance(BACKOFF_INITIAL)
        self.assertEqual(self.successResultOf(self.source.probe(CLUSTER, HOST)), 3.0)
        self.assertEqual(len(self.db.connects), 2)

    def test_timeout_and_busy(self):
        """
        A probe whose thread has not answered within the timeout fails then;
        the host counts as busy until the thread returns.
        """
        pending = []

        class HeldPool(SynchronousThreadPool):
            def callInThreadWithCallback(self, onResult, func, *args, **kw):
                pending.append((onResult, func, args, kw))

        source = MySQLMetricSource(
            self.clock, ProbeSettings(timeout=1.0), threadpool=HeldPool(), dbapi=self.db
        )
        d = source.probe(CLUSTER, HOST)
        self.assertNoResult(d)
        self.clock.advance(1.0)
        f = self.failureResultOf(d, ProbeError)
        self.assertEqual(str(f.value), "probe of db1:3306 timed out after 1s")
        f = self.failureResultOf(source.probe(CLUSTER, HOST), ProbeError)
        self.assertIn("still running", str(f.value))
        onResult, func, args, kw = pending.pop()
        SynchronousThreadPool().callInThreadWithCallback(onResult, func, *args, **kw)
        d = source.probe(CLUSTER, HOST)
        self.assertEqual(len(pending), 1)
        onResult, func, args, kw = pending.pop()
        SynchronousThreadPool().callInThreadWithCallback(onResult, func, *args, **kw)
        self.assertEqual(self.successResultOf(d), 1.0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_no_delayed_calls_left(self):
        """
        A completed probe leaves no timer behind.
        """
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_discard(self):
        """
        Discarding a host closes its connection; the next probe reconnects.
        """
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.source.discard("c1", HOST)
        self.assertTrue(self.db.connections[0].closed)
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.assertEqual(len(self.db.connects), 2)

    def test_close(self):
        """
        C{close} closes every connection; later probes fail.
        """
        self.successResultOf(self.source.probe(CLUSTER, HOST))
        self.successResultOf(self.source.close())
        self.assertTrue(self.db.connections[0].closed)
        self.failureResultOf(self.source.probe(CLUSTER, HOST), ProbeError)
        self.assertTrue(self.pool.started)


class HelpersTests(SynchronousTestCase):
    """
    Connection arguments, driver selection and error text.
    """

    def test_collation(self):
        """
        A collation is passed along; the charset defaults to utf8mb4.
        """
        cluster = ClusterSettings(name="c", collation="utf8mb4_unicode_ci")
        kw = connect_kwargs("pymysql", cluster, HOST, 0.5)
        self.assertEqual((kw["charset"], kw["collation"]), ("utf8mb4", "utf8mb4_unicode_ci"))
        self.assertNotIn("collation", connect_kwargs("pymysql", CLUSTER, HOST, 1))

    def test_mysqldb_whole_seconds(self):
        """
        MySQLdb takes whole seconds, rounded up.
        """
        kw = connect_kwargs("MySQLdb", CLUSTER, HOST, 0.5)
        self.assertEqual(kw["read_timeout"], 1)

    def test_load_driver(self):
        """
        C{pymysql} loads; an unknown name is a clear error.
        """
        self.assertEqual(load_driver("pymysql").__name__, "pymysql")
        e = self.assertRaises(ValueError, load_driver, "oracle")
        self.assertIn("unknown MySQL driver", str(e))

    def test_readable_error(self):
        """
        Unknown hosts are dial errors too; other exceptions name their type.
        """
        e = readable_error(OperationalError(2005, "Unknown MySQL server host 'x'"), HOST)
        self.assertIsInstance(e, ProbeConnectError)
        self.assertEqual(str(readable_error(RuntimeError("x"), HOST)), "RuntimeError: x")

    def test_pool_is_a_connection_pool(self):
        """
        L{HostConnectionPool} is an adbapi C{ConnectionPool}.
        """
        from twisted.enterprise.adbapi import ConnectionPool

        self.assertTrue(issubclass(HostConnectionPool, ConnectionPool))


