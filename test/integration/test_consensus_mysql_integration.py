"""
Integration tests for the MySQL consensus backend against a sandbox primary
of our own (L{freno.sandbox.mysql}, root, no password; one per test class),
in a uniquely named database that each test creates and drops. Slow-ish:
real threads, real timeouts, a 2 s lease; the module takes about half a
minute.
"""

import math
import os
import time
import uuid

import attr
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from freno.config.model import Config
from freno.consensus.interface import ConsensusError
from freno.consensus.mysql.service import MySQLBackendConsensus
from freno.sandbox.processes import free_port
from test.support import SharedSandboxMixin, poll_on_reactor as wait_for

#: Short schedules: election 0.5 s, lease 2 s, health 0.5 s, state poll 1 s.
FAST = dict(
    election_interval=0.5,
    lease_seconds=2,
    health_interval=0.5,
    state_interval=1.0,
    purge_interval=1.0,
)


def sleep(seconds):
    """
    A Deferred that fires after C{seconds}.
    """
    return deferLater(reactor, seconds, lambda: None)


class BackendTestCase(SharedSandboxMixin, TestCase):
    """
    Creates a private database on the class's sandbox primary and builds
    nodes on it.
    """

    timeout = 60
    sandbox_kwargs = {"replicas": 0}

    def setUp(self):
        super().setUp()
        conn = self.admin()
        self.schema = f"freno_test_backend_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{self.schema}`")
        conn.close()
        self.addCleanup(self._drop)
        self.config = Config(
            domain="dc1:test",
            backend_mysql_host=self.sandbox.primary.host,
            backend_mysql_port=self.sandbox.primary.port,
            backend_mysql_schema=self.schema,
            backend_mysql_user="root",
        )

    def admin(self, database=None):
        """
        A root connection to the sandbox primary.
        """
        return self.sandbox.connect(self.sandbox.primary, database=database)

    def _drop(self):
        conn = self.admin()
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{self.schema}`")
        conn.close()

    def query(self, sql, args=()):
        """
        Run C{sql} in the test database; return all rows.
        """
        conn = self.admin(self.schema)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall()
        finally:
            conn.close()

    def node(self, port, config=None, start=True, **kwargs):
        """
        A started node with service id C{test:<port>}, stopped at cleanup.
        """
        options = dict(FAST)
        options.update(kwargs)
        node = MySQLBackendConsensus(
            reactor, attr.evolve(config or self.config, listen_port=port),
            hostname="test", **options,
        )
        if start:
            node.startService()

        def stop():
            if node.running:
                return node.stopService()

        self.addCleanup(stop)
        return node

    @inlineCallbacks
    def pair(self, **kwargs):
        """
        Two nodes of one domain, once exactly one of them leads; returns
        C{(leader, follower)}.
        """
        nodes = [self.node(18001, **kwargs), self.node(18002, **kwargs)]
        yield wait_for(
            lambda: sum(n.is_leader() for n in nodes) == 1, 10, "exactly one leader"
        )
        leader = [n for n in nodes if n.is_leader()][0]
        follower = [n for n in nodes if not n.is_leader()][0]
        return leader, follower


class ElectionIntegrationTests(BackendTestCase):
    """
    Leadership through the C{service_election} row.
    """

    @inlineCallbacks
    def test_one_leader(self):
        """
        Two nodes in one domain create the tables and elect exactly one
        leader, and stay so; both name it.
        """
        leader, follower = yield self.pair()
        tables = {row[0] for row in self.query("SHOW TABLES")}
        self.assertEqual(
            tables,
            {
                "service_election", "service_health", "throttled_apps", "skipped_hosts",
                "freno_audit", "freno_policies", "freno_sequence",
            },
        )
        yield wait_for(lambda: follower.leader() == leader.service_id, 5, "follower names leader")
        for _ in range(10):
            yield sleep(0.1)
            self.assertEqual([leader.is_leader(), follower.is_leader()], [True, False])
        self.assertEqual(leader.state_description(), "Leader")
        self.assertEqual(follower.state_description(), "Healthy")
        self.assertEqual(
            self.query("select service_id from service_election where domain='dc1:test'"),
            ((leader.service_id,),),
        )
        yield wait_for(
            lambda: sorted(leader.status().HealthyDomainServicesList or []) == ["test:18001", "test:18002"],
            5, "both nodes healthy in status",
        )

    @inlineCallbacks
    def test_stop_releases(self):
        """
        A leader that stops releases its row; the other leads within about
        one election interval.
        """
        leader, follower = yield self.pair()
        yield leader.stopService()
        start = time.monotonic()
        yield wait_for(follower.is_leader, 5, "takeover after release")
        self.assertLess(time.monotonic() - start, 1.5)

    @inlineCallbacks
    def test_crash_takes_over_after_lease(self):
        """
        A leader that stops without releasing (a crash) is replaced only once
        its row is older than the lease.
        """
        leader, follower = yield self.pair(release_on_stop=False)
        yield leader.stopService()
        start = time.monotonic()
        yield wait_for(follower.is_leader, 10, "takeover after the lease")
        elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 1.0)
        self.assertLess(elapsed, 5.0)

    @inlineCallbacks
    def test_unreachable_backend(self):
        """
        With the backend on a closed port the node is never leader, is
        unhealthy, and commands fail fast with the driver's error and change
        nothing.
        """
        config = attr.evolve(self.config, backend_mysql_port=free_port())
        node = self.node(18003, config=config)
        yield sleep(1.5)
        self.assertFalse(node.is_leader())
        self.assertFalse(node.is_healthy())
        self.assertEqual(node.state_description(), "Unhealthy")
        self.assertEqual(node.leader(), "")
        start = time.monotonic()
        failure = yield self.assertFailure(node.throttle_app("a", None, None), ConsensusError)
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertIn("2003", str(failure))
        yield self.assertFailure(node.skip_host("h", time.time() + 60), ConsensusError)
        yield self.assertFailure(node.unthrottle_app("a"), ConsensusError)
        yield self.assertFailure(node.recover_host("h"), ConsensusError)
        self.assertEqual(dict(node.throttled_apps()), {})
        self.assertEqual(dict(node.skipped_hosts()), {})


class StateIntegrationTests(BackendTestCase):
    """
    Throttled apps and skipped hosts through the tables.
    """

    @inlineCallbacks
    def test_throttle_on_follower(self):
        """
        A throttle answered by the follower is in the table, and on the
        leader within one poll; a permanent one is stored as NULL.
        """
        leader, follower = yield self.pair()
        expire_at = time.time() + 600.3
        yield follower.throttle_app("app1", expire_at, 0.25)
        yield follower.throttle_app("forever", None, None)
        rows = dict(
            (name, (expires, ratio)) for name, expires, ratio in self.query(
                "select app_name, unix_timestamp(expires_at), ratio from throttled_apps"
            )
        )
        self.assertEqual(rows["app1"], (math.ceil(expire_at), 0.25))
        self.assertEqual(rows["forever"], (None, 1.0))
        self.assertEqual(follower.throttled_apps()["app1"].expire_at, math.ceil(expire_at))
        yield wait_for(
            lambda: "app1" in leader.throttled_apps() and "forever" in leader.throttled_apps(),
            1.5, "the throttles on the leader",
        )
        self.assertEqual(leader.throttled_apps()["app1"].ratio, 0.25)
        self.assertEqual(leader.throttled_apps()["app1"].expire_at, math.ceil(expire_at))
        self.assertIsNone(leader.throttled_apps()["forever"].expire_at)

    @inlineCallbacks
    def test_skip_on_follower(self):
        """
        B12 fixed: a skip sent to the follower reaches the leader within one
        poll; so does recover.
        """
        leader, follower = yield self.pair()
        yield follower.skip_host("db7", time.time() + 3600)
        yield wait_for(lambda: "db7" in leader.skipped_hosts(), 1.5, "the skip on the leader")
        yield follower.recover_host("db7")
        self.assertNotIn("db7", follower.skipped_hosts())
        yield wait_for(lambda: "db7" not in leader.skipped_hosts(), 1.5, "the recover on the leader")

    @inlineCallbacks
    def test_negative_ttl_unthrottles(self):
        """
        B8 fixed: a throttle with an expiry in the past unthrottles on every
        node and is stored as that past time, not NULL.
        """
        leader, follower = yield self.pair()
        yield leader.throttle_app("app2", None, 1.0)
        yield wait_for(lambda: "app2" in follower.throttled_apps(), 1.5, "the throttle on the follower")
        yield follower.throttle_app("app2", time.time() - 60, None)
        self.assertNotIn("app2", follower.throttled_apps())
        yield wait_for(lambda: "app2" not in leader.throttled_apps(), 1.5, "the unthrottle on the leader")
        yield sleep(2.2)
        now = time.time()
        for node in (leader, follower):
            entry = node.throttled_apps().get("app2")
            self.assertTrue(entry is None or not entry.active(now))
        ((expires,),) = self.query("select unix_timestamp(expires_at) from throttled_apps where app_name='app2'")
        self.assertIsNotNone(expires)
        self.assertLess(expires, now)

    @inlineCallbacks
    def test_unthrottle_unknown(self):
        """
        Unthrottle of an app the node never saw still reaches the node that
        has it.
        """
        leader, follower = yield self.pair(state_interval=30.0)
        yield leader.throttle_app("app3", None, None)
        self.assertNotIn("app3", follower.throttled_apps())
        yield follower.unthrottle_app("app3")
        yield follower.unthrottle_app("never-throttled")
        self.assertEqual(
            len(self.query("select 1 from throttled_apps where expires_at <= now()")), 2
        )

    @inlineCallbacks
    def test_rows_written_by_go_freno(self):
        """
        Rows written by Go freno's statements read as freno meant them: a
        C{-1} ratio is "no ratio" (1.0 for a new entry), a relative TTL an
        absolute expiry, whatever the writer's session time zone.
        """
        node = self.node(18004, start=False)
        node.startService()
        yield wait_for(node.is_leader, 5, "leadership")
        conn = self.admin(self.schema)
        with conn.cursor() as cursor:
            cursor.execute("SET time_zone = '-07:00'")
            cursor.execute(
                "replace into throttled_apps (app_name, throttled_at, expires_at, ratio) "
                "values ('goapp', now(), now() + interval 10 minute, -1)"
            )
            cursor.execute(
                "replace into skipped_hosts (host_name, skipped_at, expires_at) "
                "values ('gohost', now(), now() + interval 60 minute)"
            )
        conn.close()
        yield wait_for(lambda: "goapp" in node.throttled_apps(), 2, "the Go-written throttle")
        entry = node.throttled_apps()["goapp"]
        self.assertEqual(entry.ratio, 1.0)
        self.assertLess(abs(entry.expire_at - (time.time() + 600)), 3)
        yield wait_for(lambda: "gohost" in node.skipped_hosts(), 2, "the Go-written skip")
        self.assertLess(abs(node.skipped_hosts()["gohost"] - (time.time() + 3600)), 3)
