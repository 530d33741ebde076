"""
L{freno.inventory.proxysql} against a ProxySQL stand-in: a real C{mariadbd}
(L{MySQLSandbox} with no replicas) serving a
C{stats.stats_mysql_connection_pool} table of ProxySQL's shape over the MySQL
protocol, through a real thread pool.
"""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import TestCase

from freno.config.model import ProxySQLSettings
from freno.hosts import HostKey
from freno.inventory.interfaces import InventoryError
from freno.inventory.proxysql import (
    ProxySQLSource,
)
from test.support import start_sandbox


class ProxySQLStandInTests(TestCase):
    """
    Integration: L{ProxySQLSource} against a real C{mariadbd} whose
    C{stats.stats_mysql_connection_pool} table has ProxySQL's shape, through
    a real thread pool. Each test starts its own sandbox server (a couple of
    seconds) and stops it by pid.
    """

    timeout = 60
    user, password = "proxyadmin", "proxy-secret"

    def setUp(self):
        self.sandbox = start_sandbox(self, replicas=0)
        primary = self.sandbox.primary
        for sql in (
            "CREATE DATABASE stats",
            "CREATE TABLE stats.stats_mysql_connection_pool (hostgroup INT, srv_host VARCHAR(255),"
            " srv_port INT, status VARCHAR(64))",
            f"CREATE USER '{self.user}'@'127.0.0.1' IDENTIFIED BY '{self.password}'",
            f"GRANT SELECT ON stats.* TO '{self.user}'@'127.0.0.1'",
        ):
            self.sandbox.query(primary, sql)
        self.pool = ThreadPool(minthreads=1, maxthreads=2, name="test-proxysql")
        self.pool.start()
        self.addCleanup(self.pool.stop)
        self.clock = Clock()

    def rows(self, *rows):
        self.sandbox.query(self.sandbox.primary, "DELETE FROM stats.stats_mysql_connection_pool")
        for row in rows:
            self.sandbox.query(
                self.sandbox.primary,
                "INSERT INTO stats.stats_mysql_connection_pool VALUES (%s, %s, %s, %s)",
                row,
            )

    def source(self, addresses, ttl=0):
        settings = ProxySQLSettings(addresses=tuple(addresses), user=self.user, password=self.password,
                                    hostgroup_id=10, ignore_server_ttl_secs=ttl)
        source = ProxySQLSource(settings, reactor, self.pool, clock=self.clock)
        self.addCleanup(source.close)
        return source

    @property
    def address(self):
        return f"127.0.0.1:{self.sandbox.primary.port}"

    @defer.inlineCallbacks
    def test_statuses_and_ttl(self):
        """
        ONLINE and SHUNNED_REPLICATION_LAG rows of the hostgroup are kept,
        OFFLINE_SOFT and SHUNNED are not, other hostgroups are ignored; a
        server back ONLINE stays out until the TTL passes on the clock.
        """
        self.rows((10, "r1", 3306, "ONLINE"), (10, "r2", 3307, "SHUNNED_REPLICATION_LAG"),
                  (10, "r3", 3306, "OFFLINE_SOFT"), (10, "r4", 3306, "SHUNNED"), (20, "other", 3306, "ONLINE"))
        source = self.source([self.address], ttl=5)
        hosts = yield source.hosts()
        self.assertEqual(hosts, [HostKey("r1", 3306), HostKey("r2", 3307)])
        self.rows((10, "r1", 3306, "ONLINE"), (10, "r3", 3306, "ONLINE"), (10, "r4", 3306, "ONLINE"))
        self.clock.advance(4)
        hosts = yield source.hosts()
        self.assertEqual(hosts, [HostKey("r1", 3306)])
        self.clock.advance(1)
        hosts = yield source.hosts()
        self.assertEqual(hosts, [HostKey("r1", 3306), HostKey("r3", 3306), HostKey("r4", 3306)])

    @defer.inlineCallbacks
    def test_failover_first_address_down(self):
        """
        With the first (sorted) address down, the source connects to the
        second; the configured order is irrelevant and unchanged.
        """
        self.rows((10, "r1", 3306, "ONLINE"))
        addresses = [self.address, "127.0.0.1:1"]
        source = self.source(addresses)
        start = reactor.seconds()
        hosts = yield source.hosts()
        self.assertEqual(hosts, [HostKey("r1", 3306)])
        self.assertEqual(source.connected_address, self.address)
        self.assertEqual(list(source.settings.addresses), addresses)
        self.assertLess(reactor.seconds() - start, 5)

    @defer.inlineCallbacks
    def test_all_down_and_wrong_password(self):
        """
        No reachable address, or a refused login, fails with a masked DSN.
        """
        error = yield self.assertFailure(self.source(["127.0.0.1:1"]).hosts(), InventoryError)
        self.assertIn(f"mysql://{self.user}:*****@127.0.0.1:1/stats", str(error))
        settings = ProxySQLSettings(addresses=(self.address,), user=self.user, password="wrong", hostgroup_id=10)
        source = ProxySQLSource(settings, reactor, self.pool)
        error = yield self.assertFailure(source.hosts(), InventoryError)
        self.assertIn("Access denied", str(error))
        self.assertNotIn(self.password, str(error))

    @defer.inlineCallbacks
    def test_connect_timeout(self):
        """
        An address that accepts TCP but never speaks MySQL is abandoned
        after the connect timeout, and the next address is used.
        """
        import socket

        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        self.addCleanup(silent.close)
        silent_address = f"127.0.0.1:{silent.getsockname()[1]}"
        self.rows((10, "r1", 3306, "ONLINE"))
        # "127.0.0.1:..." sorts before "localhost:...": the silent one is tried first.
        real = f"localhost:{self.sandbox.primary.port}"
        source = self.source([real, silent_address])
        start = reactor.seconds()
        hosts = yield source.hosts()
        elapsed = reactor.seconds() - start
        self.assertEqual(hosts, [HostKey("r1", 3306)])
        self.assertEqual(source.connected_address, real)
        self.assertTrue(0.4 < elapsed < 3.5, elapsed)
