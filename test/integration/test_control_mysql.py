"""
Integration tests for the control plane on the MySQL backend: two
L{MySQLBackendConsensus} nodes in the trial reactor on a real MariaDB
(L{freno.sandbox.mysql.MySQLSandbox}, one primary, shared by the tests of
the class), each test in its own database.

They check the SQL of L{freno.consensus.mysql.control_tables} for real: one
transaction per audited command, ids in commit order under concurrent
writers on both nodes, the change counter bringing a follower's command to
the leader at once, policies through C{freno_policies}, the leader's purge,
and freno's four tables left exactly as Go freno expects them.
"""

from __future__ import annotations

import time
import uuid

import attr
from twisted.internet import reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.trial.unittest import TestCase

from freno.config.model import Config
from freno.consensus.commands import AuditContext, RemovePolicy, SetPolicy
from freno.consensus.interface import ConsensusError
from freno.consensus.mysql.service import MySQLBackendConsensus
from freno.consensus.mysql.store import SCHEMA
from freno.consensus.state import Policy
from test.support import SharedSandboxMixin, poll_on_reactor as wait_for

#: Short schedules: election 0.5 s, lease 2 s, health 0.5 s, state poll 10 s
#: (so that only the change counter can bring commands across quickly).
FAST = dict(
    election_interval=0.5,
    lease_seconds=2,
    health_interval=0.5,
    state_interval=10.0,
    purge_interval=1.0,
)


def ctx(actor="token:ops", **params):
    return AuditContext(time.time(), actor, "POST /api/v1/test", params, "integration")


class ControlMySQLTests(SharedSandboxMixin, TestCase):
    """
    Two nodes of one domain on a sandbox primary.
    """

    sandbox_kwargs = {"replicas": 0}
    timeout = 90

    def setUp(self):
        super().setUp()
        self.schema = f"freno_control_{uuid.uuid4().hex[:10]}"
        self.sandbox.query(self.sandbox.primary, f"CREATE DATABASE `{self.schema}`")
        self.addCleanup(
            lambda: self.sandbox.query(self.sandbox.primary, f"DROP DATABASE IF EXISTS `{self.schema}`")
        )
        self.config = Config(
            domain="dc1:test",
            backend_mysql_host="127.0.0.1",
            backend_mysql_port=self.sandbox.primary.port,
            backend_mysql_schema=self.schema,
            backend_mysql_user="root",
            audit_log_size=1000,
        )

    def query(self, sql, args=()):
        connection = self.sandbox.connect(self.sandbox.primary, database=self.schema)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args or None)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def node(self, port, **kwargs):
        options = dict(FAST)
        options.update(kwargs)
        node = MySQLBackendConsensus(
            reactor, attr.evolve(self.config, listen_port=port), hostname="test", **options
        )
        node.startService()
        self.addCleanup(lambda: node.stopService() if node.running else None)
        return node

    @inlineCallbacks
    def pair(self, **kwargs):
        nodes = [self.node(19001, **kwargs), self.node(19002, **kwargs)]
        yield wait_for(lambda: sum(n.is_leader() for n in nodes) == 1, 10, "one leader")
        leader = [n for n in nodes if n.is_leader()][0]
        return leader, [n for n in nodes if n is not leader][0]

    @inlineCallbacks
    def test_follower_command_on_leader_at_once(self):
        """
        A throttle acknowledged by the follower is on the leader well within
        a second (the state poll is 10 s: only the change counter explains
        it), with its audit id, actor and reason.
        """
        leader, follower = yield self.pair()
        delays = []
        for i in range(5):
            applied = yield follower.throttle_app(f"app{i}", None, None, ctx(app=f"app{i}"))
            acknowledged = time.monotonic()
            yield wait_for(lambda: f"app{i}" in leader.throttled_apps(), 1.0, "the throttle on the leader")
            delays.append(time.monotonic() - acknowledged)
            meta = leader.throttled_apps()[f"app{i}"].meta
            self.assertEqual((meta.audit_id, meta.actor, meta.reason), (applied.audit_id, "token:ops", "integration"))
        self.assertLess(max(delays), 1.0)

    @inlineCallbacks
    def test_audit_in_commit_order(self):
        """
        Commands sent concurrently to both nodes get consecutive ids in
        commit order; both nodes read the same complete log; freno's four
        tables keep their columns.
        """
        leader, follower = yield self.pair()
        results = yield gatherResults(
            [
                (leader if i % 2 else follower).skip_host(f"h{i}", time.time() + 600, ctx(host=f"h{i}"))
                for i in range(20)
            ]
        )
        ids = sorted(r.audit_id for r in results)
        self.assertEqual(ids, list(range(1, 21)))
        pages = []
        for node in (leader, follower):
            page = yield node.audit_log(0, 1000)
            pages.append(page)
        self.assertEqual(pages[0], pages[1])
        self.assertEqual([r.id for r in pages[0].records], ids)
        self.assertEqual({r.params["host"] for r in pages[0].records}, {f"h{i}" for i in range(20)})
        page = yield follower.audit_log(15, 3)
        self.assertEqual(([r.id for r in page.records], page.next, page.oldest), ([16, 17, 18], 18, 1))
        columns = self.query(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = database() and table_name in "
            "('throttled_apps', 'skipped_hosts', 'service_election', 'service_health') "
            "order by table_name, ordinal_position"
        )
        self.assertEqual(
            [c for t, c in columns if t == "throttled_apps"],
            ["app_name", "throttled_at", "expires_at", "ratio"],
        )
        self.assertEqual(
            [c for t, c in columns if t == "skipped_hosts"], ["host_name", "skipped_at", "expires_at"]
        )

    @inlineCallbacks
    def test_policies(self):
        """
        A policy set on one node reaches the other within a second, with its
        meta; its removal too; both are audited.
        """
        leader, follower = yield self.pair()
        applied = yield follower.submit(SetPolicy("etl/main", "etl", "main", 0.25, True, ctx()))
        yield wait_for(lambda: "etl/main" in leader.policies(), 1.0, "the policy on the leader")
        self.assertEqual(leader.policies()["etl/main"], Policy("etl", "main", 0.25, True))
        self.assertEqual(leader.policies()["etl/main"].meta.audit_id, applied.audit_id)
        yield leader.submit(RemovePolicy("etl/main", ctx()))
        yield wait_for(lambda: not follower.policies(), 1.0, "the removal on the follower")
        page = yield leader.audit_log(0, 10)
        self.assertEqual(len(page.records), 2)

    @inlineCallbacks
    def test_purge_and_bound(self):
        """
        The leader deletes expired rows after the grace period (here 0 s);
        the audit table keeps only the last AuditLogSize records.
        """
        self.config = attr.evolve(self.config, audit_log_size=3)
        from freno.consensus.mysql import service

        self.patch(service, "ROW_PURGE_GRACE", 0)
        leader, follower = yield self.pair(row_purge_interval=0.5)
        yield follower.throttle_app("short", time.time() + 1, None, ctx())
        yield follower.throttle_app("long", time.time() + 600, None, ctx())
        for i in range(3):
            yield follower.unthrottle_app(f"nothing{i}", ctx())
        yield wait_for(
            lambda: {r[0] for r in self.query("select app_name from throttled_apps")} == {"long"},
            8, "the expired rows purged",
        )
        self.assertEqual([r[0] for r in self.query("select id from freno_audit order by id")], [3, 4, 5])

    @inlineCallbacks
    def test_missing_control_tables(self):
        """
        Without the control tables (a user that may not create them), the
        node still works on freno's tables; audited commands fail with a
        message saying what to do, and change nothing.
        """
        for statement in SCHEMA:
            self.query(statement)
        node = self.node(19003, create_tables=False)
        yield wait_for(node.is_leader, 10, "leadership")
        yield node.throttle_app("plain", None, None)
        failure = yield self.assertFailure(node.throttle_app("audited", None, None, ctx()), ConsensusError)
        self.assertIn("conf/mysql-backend-schema.sql", str(failure))
        self.assertEqual({r[0] for r in self.query("select app_name from throttled_apps")}, {"plain"})
        page = yield node.audit_log(0, 10)
        self.assertEqual(page.records, ())
