"""
Tests for L{freno.inventory.proxysql} in memory: status rules and the ignore
cache (freno's C{TestProxySQLGetServers}), DSN display, address order and
failover, with a scripted DB-API connection on a synchronous thread pool.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import ProxySQLSettings
from freno.hosts import HostKey
from freno.inventory.interfaces import IInventorySource, InventoryError
from freno.inventory.proxysql import (
    IgnoreCache,
    ProxySQLSource,
    display_dsn,
    is_configured,
    servers_query,
)


class SyncThreadPool:
    """
    A thread pool that runs work at once in the calling thread (buildbot's
    C{NonThreadPool}).
    """

    def callInThreadWithCallback(self, on_result, f, *args, **kwargs):
        try:
            result = f(*args, **kwargs)
        except BaseException:
            from twisted.python.failure import Failure

            on_result(False, Failure())
        else:
            on_result(True, result)


class SyncReactor(Clock):
    """
    A L{Clock} whose C{callFromThread} calls at once.
    """

    def callFromThread(self, f, *args, **kwargs):
        f(*args, **kwargs)


class FakeCursor:
    def __init__(self, connection):
        self.connection = connection

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def execute(self, sql):
        self.connection.queries.append(sql)
        if self.connection.error is not None:
            raise self.connection.error

    def fetchall(self):
        return self.connection.rows


class FakeConnection:
    """
    A DB-API connection answering every query with C{rows} (or raising C{error}).
    """

    def __init__(self, address, rows):
        self.address, self.rows, self.queries, self.error, self.closed = address, rows, [], None, False

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = True


SETTINGS = ProxySQLSettings(addresses=("b:6032", "a:6032"), user="freno", password="secret", hostgroup_id=123)


class ProxySQLUnitTests(SynchronousTestCase):
    """
    L{ProxySQLSource} with a scripted connection.
    """

    def setUp(self):
        self.reactor = SyncReactor()
        self.rows = []
        self.down = set()
        self.connects = []
        self.connections = []

    def connect(self, **kw):
        address = f"{kw['host']}:{kw['port']}"
        self.connects.append((address, kw))
        if address in self.down:
            raise OSError(f"connection refused: {address}")
        connection = FakeConnection(address, self.rows)
        self.connections.append(connection)
        return connection

    def source(self, settings=SETTINGS):
        return ProxySQLSource(settings, self.reactor, SyncThreadPool(), connect=self.connect)

    def test_interface(self):
        """
        L{ProxySQLSource} provides L{IInventorySource}.
        """
        verifyObject(IInventorySource, self.source())

    def test_query_and_statuses(self):
        """
        The exact admin query; ONLINE and SHUNNED_REPLICATION_LAG servers are kept.
        """
        self.rows[:] = [
            ("replica1", 3306, "OFFLINE_SOFT"),
            ("replica2", 3306, "ONLINE"),
            ("replica3", 3306, "SHUNNED"),
            ("replica4", 3307, "ONLINE"),
            ("replica5", "3306", "SHUNNED_REPLICATION_LAG"),
        ]
        hosts = self.successResultOf(self.source().hosts())
        self.assertEqual(hosts, [HostKey("replica2", 3306), HostKey("replica4", 3307), HostKey("replica5", 3306)])
        self.assertEqual(
            self.connections[0].queries,
            ["SELECT srv_host, srv_port, status FROM stats_mysql_connection_pool WHERE hostgroup=123"],
        )
        _, kw = self.connects[0]
        self.assertEqual((kw["database"], kw["connect_timeout"], kw["autocommit"]), ("stats", 0.5, True))

    def test_ignored(self):
        """
        An ONLINE server in the ignore cache is left out until its TTL (10 s
        default) expires; SHUNNED_REPLICATION_LAG clears the cache entry.
        """
        source = self.source()
        self.rows[:] = [("r1", 3306, "OFFLINE_SOFT"), ("r2", 3306, "SHUNNED"), ("r3", 3306, "ONLINE")]
        self.assertEqual(self.successResultOf(source.hosts()), [HostKey("r3", 3306)])
        self.rows[:] = [("r1", 3306, "ONLINE"), ("r2", 3306, "SHUNNED_REPLICATION_LAG"), ("r3", 3306, "ONLINE")]
        self.reactor.advance(9.9)
        self.assertEqual(self.successResultOf(source.hosts()), [HostKey("r2", 3306), HostKey("r3", 3306)])
        self.reactor.advance(0.1)
        self.assertEqual(
            self.successResultOf(source.hosts()), [HostKey("r1", 3306), HostKey("r2", 3306), HostKey("r3", 3306)]
        )

    def test_ignore_ttl_configured(self):
        """
        IgnoreServerTTLSecs sets the TTL; each non-ONLINE sighting restarts it.
        """
        source = self.source(ProxySQLSettings(addresses=("a:1",), user="u", password="p", hostgroup_id=1,
                                              ignore_server_ttl_secs=2))
        self.rows[:] = [("r1", 1, "OFFLINE_HARD")]
        self.successResultOf(source.hosts())
        self.reactor.advance(1.5)
        self.successResultOf(source.hosts())
        self.rows[:] = [("r1", 1, "ONLINE")]
        self.reactor.advance(1.5)
        self.assertEqual(self.successResultOf(source.hosts()), [])
        self.reactor.advance(0.5)
        self.assertEqual(self.successResultOf(source.hosts()), [HostKey("r1", 1)])

    def test_sorted_addresses_not_mutated(self):
        """
        Addresses are tried in sorted order; the settings are unchanged; the
        working connection is kept.
        """
        addresses = ["b:6032", "a:6032"]
        settings = ProxySQLSettings(addresses=addresses, user="u", password="p", hostgroup_id=1)
        source = self.source(settings)
        self.successResultOf(source.hosts())
        self.successResultOf(source.hosts())
        self.assertEqual([a for a, _ in self.connects], ["a:6032"])
        self.assertEqual(addresses, ["b:6032", "a:6032"])
        self.assertEqual(source.connected_address, "a:6032")

    def test_failover(self):
        """
        The first address down: the next one is used.
        """
        self.down.add("a:6032")
        source = self.source()
        self.successResultOf(source.hosts())
        self.assertEqual([a for a, _ in self.connects], ["a:6032", "b:6032"])
        self.assertEqual(source.connected_address, "b:6032")

    def test_all_down(self):
        """
        Every address down fails, naming each with the password masked.
        """
        self.down.update({"a:6032", "b:6032"})
        f = self.failureResultOf(self.source().hosts(), InventoryError)
        message = str(f.value)
        self.assertIn("mysql://freno:*****@a:6032/stats", message)
        self.assertIn("mysql://freno:*****@b:6032/stats", message)
        self.assertNotIn("secret", message)

    def test_query_error_forgets_connection(self):
        """
        A query error closes and forgets the connection, and fails; the next refresh reconnects.
        """
        source = self.source()
        self.successResultOf(source.hosts())
        self.connections[0].error = RuntimeError("gone away")
        f = self.failureResultOf(source.hosts(), InventoryError)
        self.assertIn("gone away", str(f.value))
        self.assertTrue(self.connections[0].closed)
        self.assertIsNone(source.connected_address)
        self.successResultOf(source.hosts())
        self.assertEqual(len(self.connects), 2)

    def test_malformed_rows(self):
        """
        Rows with a bad port, empty host or wrong shape fail; the cache is unchanged.
        """
        source = self.source()
        for rows in ([("h", "x", "ONLINE")], [("", 1, "ONLINE")], [("h", 1)], [("h", 0, "ONLINE")],
                     [(None, 1, "ONLINE")], [("h", True, "ONLINE")]):
            self.rows[:] = rows
            self.failureResultOf(source.hosts(), InventoryError)
        self.assertEqual(source._cache.expiries, {})

    def test_not_configured(self):
        """
        Settings without addresses, user, password or a hostgroup >= 1 fail
        without connecting.
        """
        for bad in (ProxySQLSettings(), ProxySQLSettings(addresses=("a",), user="u", password="p"),
                         ProxySQLSettings(addresses=("a",), user="u", hostgroup_id=1)):
            self.assertFalse(is_configured(bad))
            self.failureResultOf(self.source(bad).hosts(), InventoryError)
        self.assertEqual(self.connects, [])

    def test_dsn_and_query(self):
        """
        freno's display DSN and query text.
        """
        self.assertEqual(display_dsn("freno", "proxysql-123abcd.test:6032"),
                         "mysql://freno:*****@proxysql-123abcd.test:6032/stats")
        self.assertEqual(servers_query(321),
                         "SELECT srv_host, srv_port, status FROM stats_mysql_connection_pool WHERE hostgroup=321")

    def test_password_not_in_repr(self):
        """
        The settings' repr does not show the password.
        """
        self.assertNotIn("secret", repr(self.source()))

    @settings(max_examples=200, deadline=None)
    def test_unicode_digit_port(self):
        """
        A port of Unicode digits that are not decimal (C{"²"}) is a malformed
        row, not a crash.
        """
        self.assertRaises(InventoryError, IgnoreCache(10).select, [("h", "²", "ONLINE")], 0.0)

    @given(st.lists(st.one_of(
        st.tuples(st.one_of(st.text(max_size=4), st.none(), st.binary(max_size=3)),
                  st.one_of(st.integers(-2, 70000), st.text(max_size=4), st.none(), st.booleans()),
                  st.one_of(st.sampled_from(["ONLINE", "SHUNNED", "SHUNNED_REPLICATION_LAG", "OFFLINE_SOFT"]),
                            st.text(max_size=4), st.none())),
        st.lists(st.integers(), max_size=4)), max_size=6))
    def test_garbage_rows(self, rows):
        """
        Garbage rows give host keys or L{InventoryError}, never anything else.
        """
        try:
            hosts = IgnoreCache(10).select(rows, 0.0)
        except InventoryError:
            return
        self.assertTrue(all(isinstance(h, HostKey) for h in hosts))
