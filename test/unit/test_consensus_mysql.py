"""
Unit tests for the MySQL consensus backend (L{freno.consensus.mysql.service}),
driven by L{task.Clock} over the in-memory backend store, which plays one
database shared by several nodes.
"""

import attr
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import Config
from freno.consensus.commands import InvalidCommand
from freno.consensus.interface import ConsensusError, IConsensusService, ISharedDomainServices
from freno.consensus.audit import Applied
from freno.consensus.mysql.control_tables import Written
from freno.consensus.state import AppThrottle
from freno.consensus.mysql.service import MySQLBackendConsensus, backend_domain
from freno.consensus.mysql.memory import MemoryBackendStore
from freno.consensus.mysql.store import (
    SCHEMA,
    TIMESTAMP_MAX,
    TOMBSTONE,
    AppRow,
    IBackendStore,
    Tables,
    MySQLBackendStore,
    db_expiry,
)
from freno.consensus.gauges import RaftGauges
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry

CONFIG = Config(
    listen_port=8087,
    domain="dc1:prod",
    backend_mysql_host="127.0.0.1",
    backend_mysql_schema="freno_backend",
)


class Cluster:
    """
    Nodes sharing one in-memory backend on one clock.
    """

    def __init__(self, test, count=2, **kwargs):
        self.clock = Clock()
        self.store = MemoryBackendStore(self.clock)
        self.stats = Registry()
        self.nodes = []
        self.events = []
        for i in range(count):
            node = MySQLBackendConsensus(
                self.clock,
                attr.evolve(CONFIG, listen_port=8000 + i),
                registry=self.stats if i == 0 else None,
                store=self.store,
                hostname="h",
                **kwargs,
            )
            node.add_leadership_observer(lambda leader, i=i: self.events.append((i, leader)))
            self.nodes.append(node)
        self.test = test

    def start(self, *indexes):
        for i in indexes or range(len(self.nodes)):
            self.nodes[i].startService()

    def stop(self, i):
        d = self.nodes[i].stopService()
        self.test.successResultOf(d)

    def stop_all(self):
        for node in self.nodes:
            if node.running:
                self.test.successResultOf(node.stopService())

    def leaders(self):
        return [i for i, n in enumerate(self.nodes) if n.is_leader()]

    def advance(self, seconds, step=0.1):
        for _ in range(int(round(seconds / step))):
            self.clock.advance(step)


class InterfaceTests(SynchronousTestCase):
    """
    The service and both stores provide their interfaces.
    """

    def test_consensus(self):
        """
        L{MySQLBackendConsensus} provides L{IConsensusService} and the
        optional L{ISharedDomainServices}.
        """
        node = MySQLBackendConsensus(Clock(), CONFIG, store=MemoryBackendStore(Clock()))
        verifyObject(IConsensusService, node)
        verifyObject(ISharedDomainServices, node)

    def test_stores(self):
        """
        Both stores provide L{IBackendStore}.
        """
        verifyObject(IBackendStore, MemoryBackendStore(Clock()))
        store = MySQLBackendStore(MemoryReactorClock(), "127.0.0.1", 1, "s", "u", "")
        verifyObject(IBackendStore, store)
        store.close()

    def test_from_config(self):
        """
        Without a store, the C{BackendMySQL*} settings build a L{MySQLBackendStore}.
        """
        node = MySQLBackendConsensus(MemoryReactorClock(), CONFIG, hostname="x")
        self.assertIsInstance(node._store, MySQLBackendStore)
        node._store.close()

    def test_schema_file(self):
        """
        C{conf/mysql-backend-schema.sql} holds exactly the DDL the service runs.
        """
        import os

        path = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "mysql-backend-schema.sql")
        with open(path) as f:
            text = f.read()
        from freno.consensus.mysql.control_tables import CONTROL_SCHEMA, SEED_SEQUENCE

        for statement in SCHEMA + CONTROL_SCHEMA:
            self.assertIn(statement + ";", text)
        self.assertIn(" ".join(SEED_SEQUENCE.split()).lower(), " ".join(text.split()).lower())
        self.assertIn("expires_at TIMESTAMP NULL DEFAULT NULL", text)

    def test_bad_intervals(self):
        """
        A lease shorter than two election intervals, or not whole seconds, is refused.
        """
        store = MemoryBackendStore(Clock())
        for kwargs in ({"lease_seconds": 1}, {"lease_seconds": 2.5}, {"lease_seconds": 0}):
            self.assertRaises(
                ValueError, MySQLBackendConsensus, Clock(), CONFIG, store=store, **kwargs
            )


class IdentityTests(SynchronousTestCase):
    """
    Domain and service id follow freno.
    """

    def test_domain(self):
        """
        C{Domain} wins; otherwise C{DataCenter:Environment}, C{":"} if both are empty.
        """
        self.assertEqual(backend_domain(CONFIG), "dc1:prod")
        self.assertEqual(
            backend_domain(Config(data_center="dc2", environment="staging")), "dc2:staging"
        )
        self.assertEqual(backend_domain(Config()), ":")

    def test_service_id(self):
        """
        The service id is C{hostname:ListenPort}.
        """
        node = MySQLBackendConsensus(Clock(), CONFIG, store=MemoryBackendStore(Clock()), hostname="vm")
        self.assertEqual(node.service_id, "vm:8087")


class ElectionTests(SynchronousTestCase):
    """
    One leader per domain, lease-bounded.
    """

    def setUp(self):
        self.cluster = Cluster(self)
        self.addCleanup(self.cluster.stop_all)

    def test_one_leader(self):
        """
        Two nodes of one domain elect exactly one leader; both agree who it is.
        """
        c = self.cluster
        c.start()
        c.advance(3)
        self.assertEqual(c.leaders(), [0])
        self.assertEqual(c.events, [(0, True)])
        self.assertEqual([n.leader() for n in c.nodes], ["h:8000", "h:8000"])
        self.assertEqual([n.state_description() for n in c.nodes], ["Leader", "Healthy"])
        self.assertTrue(all(n.is_healthy() for n in c.nodes))
        self.assertEqual(variables(c.stats).gauges["backend.mysql.is_leader"], 1)
        self.assertEqual(variables(c.stats).gauges["backend.mysql.is_healthy"], 1)

    def test_reads_state_before_leading(self):
        """
        A node reads both tables before it reports itself leader.
        """
        c = self.cluster
        c.store.apps["a"] = (None, 0.5)
        c.store.hosts["db1"] = 10**9 + 3600
        c.clock.advance(10**9)
        seen = []
        c.nodes[0].add_leadership_observer(
            lambda leader: seen.append((dict(c.nodes[0].throttled_apps()), dict(c.nodes[0].skipped_hosts())))
        )
        c.start(0)
        self.assertEqual(len(seen), 1)
        apps, hosts = seen[0]
        self.assertEqual(apps["a"].ratio, 0.5)
        self.assertEqual(hosts, {"db1": 10**9 + 3600.0})

    def test_stop_releases(self):
        """
        A leader that stops tells its observers, releases the row, and the
        other node takes over within one election interval.
        """
        c = self.cluster
        c.start()
        c.advance(2)
        c.stop(0)
        self.assertEqual(c.events[-1], (0, False))
        c.advance(1.1)
        self.assertEqual(c.leaders(), [1])
        self.assertNotIn("h:8000", [row.service_id for row in c.store.election.values()])

    def test_crash_takes_over_after_lease(self):
        """
        Without releasing (a crash), the other node takes over only once the
        row is older than the lease.
        """
        c = Cluster(self, release_on_stop=False)
        self.addCleanup(c.stop_all)
        c.start()
        c.advance(2)
        c.stop(0)
        c.advance(5)
        self.assertEqual(c.leaders(), [])
        c.advance(1.5)
        self.assertEqual(c.leaders(), [1])

    def test_backend_error_steps_down(self):
        """
        B19 fixed: on backend errors the leader stays leader only until its
        lease (5 s - 1 s) from the last confirmed round runs out, then steps
        down and is unhealthy; it is never leader while another node is.
        """
        c = self.cluster
        c.start()
        c.advance(2)
        last_round = 2.0  # rounds at 0, 1, 2
        c.store.error = RuntimeError("(2013) Lost connection")
        c.advance(1.5)
        self.assertEqual(c.leaders(), [0])
        self.assertFalse(c.nodes[0].is_healthy())
        self.assertEqual(c.nodes[0].state_description(), "Leader")
        c.clock.advance(last_round + 4 - c.clock.seconds() - 0.01)
        self.assertEqual(c.leaders(), [0])
        c.clock.advance(0.02)
        self.assertEqual(c.leaders(), [])
        self.assertEqual(c.events[-1], (0, False))
        self.assertEqual(c.nodes[0].state_description(), "Unhealthy")
        self.assertEqual(c.nodes[0].leader(), "")
        self.assertEqual(variables(c.stats).gauges["backend.mysql.is_leader"], 0)

    def test_partitioned_leader_before_takeover(self):
        """
        When only the leader loses the backend, it steps down before the
        other node takes the row over: never two leaders.
        """
        c = self.cluster
        c.start()
        c.advance(2)
        store0 = c.nodes[0]._store
        broken = MemoryBackendStore(c.clock)
        broken.error = RuntimeError("unreachable")
        c.nodes[0]._store = broken
        for _ in range(100):
            c.clock.advance(0.1)
            self.assertLessEqual(len(c.leaders()), 1)
        self.assertEqual(c.leaders(), [1])
        c.nodes[0]._store = store0

    def test_hung_backend_steps_down(self):
        """
        A backend that never answers makes the leader step down on time too.
        """
        c = self.cluster
        c.start()
        c.advance(2)
        c.store.hold = True
        c.advance(4.5)
        self.assertEqual(c.leaders(), [])
        c.store.hold = False
        for d in c.store.pending:
            d.errback(RuntimeError("(2013) Lost connection during query"))
        c.store.pending = []

    def test_recovers(self):
        """
        After an outage the node that still holds the row leads again.
        """
        c = self.cluster
        c.start(0)
        c.advance(1)
        c.store.error = RuntimeError("down")
        c.advance(5)
        self.assertEqual(c.leaders(), [])
        c.store.error = None
        c.advance(1.1)
        self.assertEqual(c.leaders(), [0])
        self.assertEqual(c.events, [(0, True), (0, False), (0, True)])

    def test_force_leadership(self):
        """
        Under force-leadership, is_leader, the state description and status
        say leader (B19 decided); observers are not called; leader() names
        the row's holder.
        """
        c = Cluster(self, count=2)
        self.addCleanup(c.stop_all)
        forced = MySQLBackendConsensus(
            c.clock, attr.evolve(CONFIG, listen_port=9000), force_leadership=True,
            store=c.store, hostname="h",
        )
        events = []
        forced.add_leadership_observer(events.append)
        self.assertTrue(forced.is_leader())
        c.start(0)
        forced.startService()
        c.advance(2)
        self.assertTrue(forced.is_leader())
        self.assertEqual(forced.state_description(), "Leader")
        self.assertTrue(forced.status().IsLeader)
        self.assertEqual(forced.leader(), "h:8000")
        self.assertEqual(events, [])
        self.successResultOf(forced.stopService())

    def test_no_pending_calls_after_stop(self):
        """
        Stopping every node leaves no delayed call behind, and closes the store.
        """
        c = self.cluster
        c.start()
        c.advance(3)
        c.stop_all()
        self.assertEqual(c.clock.getDelayedCalls(), [])
        self.assertTrue(c.store.closed)


class GaugeTests(SynchronousTestCase):
    """
    The MySQL backend sets the consensus gauges raft sets (D64), besides its
    own C{backend.mysql.*}.
    """

    def gauges(self, registry):
        found = variables(registry).gauges
        return {
            name: found.get(name)
            for name in (
                "consensus.is_leader",
                "consensus.is_healthy",
                "backend.mysql.is_leader",
                "backend.mysql.is_healthy",
            )
        }

    def test_follow_leadership_and_health(self):
        """
        The gauges read 0 from construction, 1 once elected, and 0 again
        after the leader loses the backend and its lease.
        """
        c = Cluster(self, count=2)
        self.addCleanup(c.stop_all)
        self.assertEqual(set(self.gauges(c.stats).values()), {0})
        c.start()
        c.advance(3)
        self.assertEqual(c.leaders(), [0])
        self.assertEqual(set(self.gauges(c.stats).values()), {1})
        c.store.error = RuntimeError("(2013) Lost connection")
        c.advance(1.5)
        self.assertEqual(
            self.gauges(c.stats),
            {
                "consensus.is_leader": 1,
                "consensus.is_healthy": 0,
                "backend.mysql.is_leader": 1,
                "backend.mysql.is_healthy": 0,
            },
        )
        c.advance(5)
        self.assertEqual(set(self.gauges(c.stats).values()), {0})

    def test_follower(self):
        """
        A healthy follower reads not leader, healthy.
        """
        c = Cluster(self, count=2)
        self.addCleanup(c.stop_all)
        registry = Registry()
        follower = MySQLBackendConsensus(
            c.clock, attr.evolve(CONFIG, listen_port=9000), registry=registry,
            store=c.store, hostname="h",
        )
        c.start(0)
        c.advance(2)
        follower.startService()
        c.advance(2)
        self.assertEqual(c.leaders(), [0])
        self.assertEqual(
            self.gauges(registry),
            {
                "consensus.is_leader": 0,
                "consensus.is_healthy": 1,
                "backend.mysql.is_leader": 0,
                "backend.mysql.is_healthy": 1,
            },
        )
        self.successResultOf(follower.stopService())

    def test_forced(self):
        """
        Under force-leadership C{consensus.is_leader} is 1 from the start, as
        with raft; C{backend.mysql.is_leader} says who holds the row.
        """
        c = Cluster(self, count=1)
        self.addCleanup(c.stop_all)
        registry = Registry()
        forced = MySQLBackendConsensus(
            c.clock, attr.evolve(CONFIG, listen_port=9000), force_leadership=True,
            registry=registry, store=c.store, hostname="h",
        )
        self.assertEqual(self.gauges(registry)["consensus.is_leader"], 1)
        c.start(0)
        forced.startService()
        c.advance(2)
        gauges = self.gauges(registry)
        self.assertEqual((gauges["consensus.is_leader"], gauges["backend.mysql.is_leader"]), (1, 0))
        self.assertEqual(gauges["consensus.is_healthy"], 1)
        self.successResultOf(forced.stopService())

    def test_same_consensus_names_as_raft(self):
        """
        Both backends set the same C{consensus.*} names.
        """
        mysql = Registry()
        MySQLBackendConsensus(Clock(), CONFIG, registry=mysql, store=MemoryBackendStore(Clock()), hostname="h")
        raft = Registry()
        RaftGauges(raft).update(raft_leader=False, healthy=False, leader="", is_leader=False, term=None)

        def consensus_names(registry):
            return {n for n in variables(registry).gauges if n.startswith("consensus.")}

        self.assertEqual(consensus_names(mysql), consensus_names(raft))
        self.assertEqual(consensus_names(mysql), {"consensus.is_leader", "consensus.is_healthy"})


class StatusTests(SynchronousTestCase):
    """
    C{status()} and the shared-domain services come from cached rounds.
    """

    def test_status(self):
        """
        status() has freno's fields; the lists come from the last health round.
        """
        clock = Clock()
        store = MemoryBackendStore(clock)
        nodes = [
            MySQLBackendConsensus(
                clock, attr.evolve(CONFIG, domain=domain, share_domain="shared", listen_port=port),
                store=store, hostname="vm",
            )
            for domain, port in (("dc1:prod", 18411), ("dc1:prod", 18421), ("dc2:prod", 18431))
        ]
        for n in nodes:
            n.startService()
        for _ in range(30):
            clock.advance(0.1)
        calls = len(store.calls)
        status = nodes[0].status()
        self.assertEqual(len(store.calls), calls)
        self.assertEqual(status.ServiceID, "vm:18411")
        self.assertTrue(status.Healthy)
        self.assertTrue(status.IsLeader)
        self.assertEqual(status.Leader, "vm:18411")
        self.assertEqual(status.State, "Leader")
        self.assertEqual(status.Domain, "dc1:prod")
        self.assertEqual(status.ShareDomain, "shared")
        self.assertEqual(status.ShareDomainServices, {"dc2:prod": "vm:18431"})
        self.assertEqual(status.ShareDomainServicesList, ["vm:18411", "vm:18431"])
        self.assertEqual(sorted(status.HealthyDomainServicesList), ["vm:18411", "vm:18421"])
        self.assertEqual(nodes[0].shared_domain_services(), {"dc2:prod": "vm:18431"})
        for n in nodes:
            self.successResultOf(n.stopService())

    def test_no_share_domain(self):
        """
        Without a ShareDomain, ShareDomainServices is null and the list holds only this node.
        """
        clock = Clock()
        node = MySQLBackendConsensus(clock, CONFIG, store=MemoryBackendStore(clock), hostname="vm")
        node.startService()
        status = node.status()
        self.assertIsNone(status.ShareDomainServices)
        self.assertEqual(status.ShareDomainServicesList, ["vm:8087"])
        self.assertEqual(node.shared_domain_services(), {})
        self.successResultOf(node.stopService())


class CommandTests(SynchronousTestCase):
    """
    Commands write the backend first, then apply the row read back.
    """

    def setUp(self):
        self.cluster = Cluster(self, state_interval=10.0)
        self.addCleanup(self.cluster.stop_all)
        self.cluster.clock.advance(1000)
        self.cluster.start()
        self.cluster.advance(1)
        self.leader, self.follower = self.cluster.nodes

    def test_throttle_reaches_leader(self):
        """
        A throttle sent to the follower is in the table when answered and on
        the leader within one poll.
        """
        c = self.cluster
        self.assertEqual(self.successResultOf(self.follower.throttle_app("a", 5000.4, 0.5)), Applied())
        self.assertEqual(c.store.apps["a"], (5001, 0.5))
        self.assertEqual(self.follower.throttled_apps()["a"].expire_at, 5001.0)
        self.assertNotIn("a", self.leader.throttled_apps())
        c.advance(10)
        self.assertEqual(self.leader.throttled_apps()["a"].ratio, 0.5)
        self.assertEqual(self.leader.throttled_apps()["a"].expire_at, 5001.0)

    def test_permanent(self):
        """
        B9 fixed: no expiry is NULL and stays permanent on every node.
        """
        c = self.cluster
        self.successResultOf(self.follower.throttle_app("a", None, None))
        self.assertEqual(c.store.apps["a"], (None, 1.0))
        c.advance(20)
        self.assertIsNone(self.leader.throttled_apps()["a"].expire_at)

    def test_expiring_row_is_not_permanent(self):
        """
        B9 fixed: a row expiring right at a poll is dropped, not made permanent.
        """
        c = self.cluster
        self.successResultOf(self.leader.throttle_app("a", c.clock.seconds() + 9.5, None))
        c.advance(10)
        for _ in range(4):
            c.advance(2.5)
            now = c.clock.seconds()
            for node in c.nodes:
                entry = node.throttled_apps().get("a")
                self.assertTrue(entry is None or not entry.active(now), (now, entry))

    def test_negative_ttl_unthrottles(self):
        """
        B8 fixed: an expiry in the past unthrottles everywhere, never permanently.
        """
        c = self.cluster
        self.successResultOf(self.leader.throttle_app("a", None, 1.0))
        c.advance(10)
        self.assertIn("a", self.follower.throttled_apps())
        self.successResultOf(self.follower.throttle_app("a", c.clock.seconds() - 60, None))
        self.assertNotIn("a", self.follower.throttled_apps())
        c.advance(10)
        self.assertNotIn("a", self.leader.throttled_apps())
        c.advance(30)
        self.assertNotIn("a", self.leader.throttled_apps())

    def test_ratio_kept(self):
        """
        A throttle without a ratio keeps the active row's ratio; a new or
        expired one gets 1.0.
        """
        c = self.cluster
        self.successResultOf(self.leader.throttle_app("a", None, 0.3))
        self.successResultOf(self.follower.throttle_app("a", 9999.0, None))
        self.assertEqual(self.follower.throttled_apps()["a"], self.follower.state.apps["a"])
        self.assertEqual(self.follower.throttled_apps()["a"].ratio, 0.3)
        self.successResultOf(self.follower.throttle_app("b", None, None))
        self.assertEqual(self.follower.throttled_apps()["b"].ratio, 1.0)
        self.successResultOf(self.follower.throttle_app("c", c.clock.seconds() + 1, 0.2))
        c.advance(2)
        self.successResultOf(self.follower.throttle_app("c", None, None))
        self.assertEqual(self.follower.throttled_apps()["c"].ratio, 1.0)

    def test_unthrottle_unknown_app(self):
        """
        B12 fixed: unthrottle on a node that does not know the app still
        writes a tombstone, and the node that has it drops it.
        """
        c = self.cluster
        self.leader.state.apps["local"] = AppThrottle(None, 1.0)
        self.successResultOf(self.follower.unthrottle_app("local"))
        self.assertEqual(c.store.apps["local"][0], TOMBSTONE)
        c.advance(10)
        self.assertNotIn("local", self.leader.throttled_apps())

    def test_skip_reaches_leader(self):
        """
        B12 fixed: a skip on the follower reaches the leader within one poll;
        recover likewise.
        """
        c = self.cluster
        self.successResultOf(self.follower.skip_host("db1", c.clock.seconds() + 3600))
        self.assertIn("db1", self.follower.skipped_hosts())
        c.advance(10)
        self.assertIn("db1", self.leader.skipped_hosts())
        self.successResultOf(self.follower.recover_host("db1"))
        self.assertNotIn("db1", self.follower.skipped_hosts())
        c.advance(10)
        self.assertNotIn("db1", self.leader.skipped_hosts())

    def test_expired_entries_purged(self):
        """
        Entries disappear on their own once expired.
        """
        c = self.cluster
        self.successResultOf(self.leader.throttle_app("a", c.clock.seconds() + 3, None))
        self.successResultOf(self.leader.skip_host("h", c.clock.seconds() + 3))
        c.advance(6)
        self.assertEqual(dict(self.leader.throttled_apps()), {})
        self.assertEqual(dict(self.leader.skipped_hosts()), {})

    def test_failure_changes_nothing(self):
        """
        A backend error fails the command with the driver's text and changes nothing.
        """
        c = self.cluster
        c.store.error = RuntimeError("(1142) INSERT command denied")
        for d in (
            self.follower.throttle_app("a", None, None),
            self.follower.skip_host("h", 5000.0),
            self.follower.unthrottle_app("a"),
            self.follower.recover_host("h"),
        ):
            f = self.failureResultOf(d, ConsensusError)
            self.assertIn("INSERT command denied", str(f.value))
        self.assertEqual(dict(self.follower.throttled_apps()), {})
        self.assertEqual(dict(self.follower.skipped_hosts()), {})
        c.store.error = None
        self.assertEqual(c.store.apps, {})

    def test_driver_error_text(self):
        """
        A PyMySQL-style C{(code, message)} error reads as C{(code) message}.
        """
        self.cluster.store.error = RuntimeError(2003, "Can't connect to MySQL server")
        f = self.failureResultOf(self.follower.throttle_app("a", None, None), ConsensusError)
        self.assertEqual(str(f.value), "MySQL backend write failed: (2003) Can't connect to MySQL server")

    def test_bad_input(self):
        """
        Bad names, ratios and expiries are refused before any SQL.
        """
        c = self.cluster
        calls = len(c.store.calls)
        cases = [
            self.follower.throttle_app("", None, None),
            self.follower.throttle_app("a" * 129, None, None),
            self.follower.throttle_app("a", None, float("nan")),
            self.follower.throttle_app("a", None, 1.5),
            self.follower.throttle_app("a", None, -0.1),
            self.follower.throttle_app("a", float("inf"), None),
            self.follower.throttle_app("a", float("nan"), None),
            self.follower.throttle_app(None, None, None),
            self.follower.skip_host("", 5000.0),
            self.follower.skip_host("h", float("nan")),
            self.follower.skip_host("h", None),
            self.follower.unthrottle_app(""),
        ]
        for d in cases:
            self.failureResultOf(d, ConsensusError)
        self.assertEqual(len(c.store.calls), calls)
        self.assertEqual(dict(self.follower.throttled_apps()), {})

    def test_names_longer_than_the_columns(self):
        """
        A throttle or skip of a name longer than the tables' 128-character
        columns is refused with L{InvalidCommand} naming the column, before
        any SQL; unthrottling or recovering such a name is a success without
        SQL (the tables cannot hold it). 128 characters still fit.
        """
        c = self.cluster
        calls = len(c.store.calls)
        f = self.failureResultOf(self.follower.throttle_app("a" * 129, None, None), InvalidCommand)
        self.assertEqual(
            str(f.value),
            "app: longer than 128 characters (the MySQL backend's throttled_apps.app_name column)",
        )
        f = self.failureResultOf(self.follower.skip_host("h" * 1000, 5000.0), InvalidCommand)
        self.assertIn("hostName: longer than 128 characters", str(f.value))
        self.successResultOf(self.follower.unthrottle_app("a" * 8000))
        self.successResultOf(self.follower.recover_host("x" * 200))
        self.assertEqual(len(c.store.calls), calls)
        self.successResultOf(self.follower.throttle_app("a" * 128, None, None))
        self.assertIn("a" * 128, self.follower.throttled_apps())

    def test_poll_does_not_undo_command(self):
        """
        A poll that read the table before a command landed does not undo the
        command locally.
        """
        c = self.cluster
        c.store.hold = True
        self.follower._poll_state()
        poll = c.store.pending.pop()
        d = self.follower.throttle_app("a", None, 0.7)
        command = c.store.pending.pop()
        c.store.hold = False
        command.callback(Written(AppRow("a", None, 0.7)))
        self.successResultOf(d)
        poll.callback(Tables([AppRow("a", 1.0, 0.1)], [], []))
        self.assertEqual(self.follower.throttled_apps()["a"].ratio, 0.7)
        self.assertIsNone(self.follower.throttled_apps()["a"].expire_at)
        c.advance(10)
        self.assertEqual(self.follower.throttled_apps()["a"].ratio, 0.7)

    def test_stop_waits_for_commands(self):
        """
        stopService waits for commands in flight before closing the store.
        """
        c = self.cluster
        c.store.hold = True
        d = self.follower.throttle_app("a", None, None)
        pending = c.store.pending.pop()
        stopped = self.follower.stopService()
        self.assertNoResult(stopped)
        self.assertFalse(c.store.closed)
        c.store.hold = False
        pending.callback(Written(AppRow("a", None, 1.0)))
        self.successResultOf(d)
        self.successResultOf(stopped)
        self.assertTrue(c.store.closed)


class ExpiryTests(SynchronousTestCase):
    """
    L{db_expiry} rounds up and clamps into C{TIMESTAMP}'s range.
    """

    def test_rounding(self):
        """
        Fractions round up; whole seconds are kept.
        """
        self.assertEqual(db_expiry(1000.0), 1000)
        self.assertEqual(db_expiry(1000.01), 1001)

    def test_clamp(self):
        """
        Past the 2038 limit becomes the limit; before 1970 becomes the tombstone.
        """
        self.assertEqual(db_expiry(1e12), TIMESTAMP_MAX)
        self.assertEqual(db_expiry(-5.0), TOMBSTONE)
        self.assertEqual(db_expiry(0), TOMBSTONE)

    def test_invalid(self):
        """
        Non-finite values are refused.
        """
        for value in (float("nan"), float("inf"), None, "10", True):
            self.assertRaises(ValueError, db_expiry, value)


class PropertyTests(SynchronousTestCase):
    """
    Any arguments either apply exactly what the table holds, or fail with
    L{ConsensusError} and change nothing.
    """

    @given(
        key=st.one_of(st.text(max_size=140), st.none(), st.integers()),
        expire_at=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
        ratio=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    )
    @settings(max_examples=200, deadline=None)
    def test_throttle_any_arguments(self, key, expire_at, ratio):
        """
        throttle_app with arbitrary arguments.
        """
        clock = Clock()
        clock.advance(10**9)
        store = MemoryBackendStore(clock)
        node = MySQLBackendConsensus(clock, CONFIG, store=store, hostname="h")
        d = node.throttle_app(key, expire_at, ratio)
        result = []
        d.addBoth(result.append)
        (outcome,) = result
        if isinstance(outcome, Failure):
            self.assertIsInstance(outcome.value, ConsensusError)
            self.assertEqual(store.apps, {})
            self.assertEqual(dict(node.throttled_apps()), {})
        else:
            expires, stored_ratio = store.apps[key]
            entry = node.throttled_apps().get(key)
            if expires is not None and expires <= clock.seconds():
                self.assertIsNone(entry)
            else:
                self.assertEqual(entry, AppThrottle(None if expires is None else float(expires), stored_ratio))
                self.assertTrue(expires is None or 1 <= expires <= TIMESTAMP_MAX)
                self.assertTrue(0 <= stored_ratio <= 1)

    @given(
        hostname=st.one_of(st.text(max_size=140), st.none()),
        expire_at=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    )
    @settings(max_examples=100, deadline=None)
    def test_skip_any_arguments(self, hostname, expire_at):
        """
        skip_host with arbitrary arguments.
        """
        clock = Clock()
        store = MemoryBackendStore(clock)
        node = MySQLBackendConsensus(clock, CONFIG, store=store, hostname="h")
        result = []
        node.skip_host(hostname, expire_at).addBoth(result.append)
        (outcome,) = result
        if isinstance(outcome, Failure):
            self.assertIsInstance(outcome.value, ConsensusError)
            self.assertEqual(store.hosts, {})
        else:
            self.assertTrue(1 <= store.hosts[hostname] <= TIMESTAMP_MAX)


class SampleConfigTests(SynchronousTestCase):
    """
    C{conf/freno.conf.mysql-backend.json} configures this backend.
    """

    def test_sample(self):
        """
        The sample selects the MySQL backend, with domain C{DataCenter:Environment}.
        """
        import os

        from freno.config.loader import load_config

        path = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "freno.conf.mysql-backend.json")
        config = load_config(path, {"FRENO_DC": "dc9", "FRENO_BACKEND_PASSWORD": "secret"})
        self.assertEqual(config.consensus_kind, "mysql")
        node = MySQLBackendConsensus(Clock(), config, store=MemoryBackendStore(Clock()), hostname="vm")
        self.assertEqual((node.domain, node.service_id), ("dc9:production", "vm:8087"))
