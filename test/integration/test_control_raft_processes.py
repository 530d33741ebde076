"""
The control plane on a raft group of real C{twistd freno} processes
(L{freno.sandbox.nodes}), with tokens configured, probing a real MariaDB
(L{freno.sandbox.mysql.MySQLSandbox}: one primary whose constant metric
query answers 0.5 against a threshold of 1).

One scenario per test (each starts its own group; about a minute for the
module): mutations on followers and on the leader through freno's GET
routes and the REST API, refused requests changing nothing, per-app
policies changing the leader's C{/check}, then SIGKILL of every node, a
restart, a failover, and a member restarted with an empty data directory;
after each, every node's audit log is complete and in commit order.
"""

from __future__ import annotations

import os
import shutil

from twisted.trial.unittest import SynchronousTestCase

from freno.sandbox.nodes import FrenoGroup, wait_for
from test.support import SharedSandboxMixin

OPS = "ops-0123456789abcdef-token"
DEPLOY = "deploy-0123456789abcdef-token"
TOKENS = {
    "ops": {"Token": "${FRENO_TEST_OPS_TOKEN}", "Role": "admin"},
    "deploy": {"Token": DEPLOY, "Role": "throttle"},
}
ENV = {"FRENO_TEST_OPS_TOKEN": OPS}


def check(node, app):
    return node.get(f"/check/{app}/mysql/main")[0]


def audit(node):
    """
    Every audit record of C{node} (paged), or C{None} if it does not answer.
    """
    records, since = [], 0
    while True:
        status, body = node.request("GET", f"/api/v1/audit?since={since}&limit=7")
        if status != 200:
            return None
        records.extend(body["records"])
        if not body["records"]:
            return records
        since = body["next"]


def summary(records):
    return [(r["id"], r["actor"], r["route"], r["outcome"]) for r in records or ()]


class RaftControlProcessTests(SharedSandboxMixin, SynchronousTestCase):
    """
    A 3-node raft group of processes with C{ControlTokens}.
    """

    sandbox_kwargs = {"replicas": 0}

    def group(self) -> FrenoGroup:
        store = {
            "User": self.sandbox.user,
            "Password": self.sandbox.password,
            "MetricQuery": "select 0.5",
            "ThrottleThreshold": 1.0,
            "Clusters": {"main": {"StaticHostsSettings": {"Hosts": [self.sandbox.primary.hostport]}}},
        }
        group = FrenoGroup(
            os.path.abspath(self.mktemp()), size=3, store=store, extra_config={"ControlTokens": TOKENS}
        )
        for node in group.nodes:
            node.env = ENV
        self.addCleanup(group.stop)
        group.start()
        return group

    def settled(self, group, among=None, timeout=15.0):
        """
        Wait for one leader that every running node (of C{among}) names and
        is connected to; return it.
        """
        leader = group.wait_leader(timeout=timeout, among=among)
        nodes = [n for n in (among or group.nodes) if n.running()]

        def named():
            return all((n.request("GET", "/api/v1/status")[1] or {}).get("leader") == leader.raft_address for n in nodes)

        wait_for(named, timeout, what="every node to name the leader")
        return leader

    def audit_everywhere(self, group, expected, nodes=None, timeout=15.0):
        """
        Wait until every (running) node's audit log is exactly C{expected}.
        """
        nodes = [n for n in (nodes or group.nodes) if n.running()]
        wait_for(
            lambda: all(summary(audit(n)) == expected for n in nodes),
            timeout,
            what=f"the audit log {expected} on {[n.name for n in nodes]}",
        )

    def test_audit_survives_everything(self):
        """
        Every mutation, through either API, on a follower or the leader,
        appears once in every node's audit log in commit order, after a
        full restart, a failover and an empty data directory; refused
        requests change nothing and are not in it.
        """
        group = self.group()
        leader = self.settled(group)
        follower = next(n for n in group.nodes if n is not leader)
        wait_for(lambda: check(leader, "probe") == 200, 15, what="/check 200 on the leader")

        # Refused: nothing changes anywhere.
        self.assertEqual(follower.get("/throttle-app/x")[0], 401)
        self.assertEqual(leader.request("POST", "/api/v1/throttles", {"app": "x"})[0], 401)
        self.assertEqual(follower.request("POST", "/api/v1/skips", {"host": "h"}, DEPLOY)[0], 403)
        self.assertEqual(leader.request("POST", "/api/v1/throttles", {"app": "x", "ttl": "soon"}, OPS)[0], 400)

        expected = []

        def mutated(node, actor, route, status_body):
            status, body = status_body
            self.assertEqual(status, 200, (route, body))
            expected.append((len(expected) + 1, actor, route, "applied"))
            if isinstance(body, dict) and "audit_id" in body and body["audit_id"] is not None:
                self.assertEqual(body["audit_id"], len(expected))

        def get(node, path, token):
            status, body = node.request("GET", path, token=token)
            return status, body

        mutated(follower, "token:deploy", "GET /throttle-app/f1", get(follower, "/throttle-app/f1", DEPLOY))
        mutated(leader, "token:ops", "POST /api/v1/throttles",
                leader.request("POST", "/api/v1/throttles", {"app": "l1", "ttl": "2h", "reason": "test"}, OPS))
        mutated(follower, "token:ops", "POST /api/v1/skips",
                follower.request("POST", "/api/v1/skips", {"host": "h1"}, OPS))
        mutated(leader, "token:ops", "GET /skip-host/h2/ttl/30", get(leader, "/skip-host/h2/ttl/30", OPS))
        mutated(follower, "token:ops", "PUT /api/v1/policies/strict",
                follower.request("PUT", "/api/v1/policies/strict", {"store": "main", "threshold": 0.3}, OPS))
        mutated(follower, "token:deploy", "DELETE /api/v1/throttles/f1",
                follower.request("DELETE", "/api/v1/throttles/f1", token=DEPLOY))

        # Policies and throttles sent to a follower hold on the leader's /check.
        wait_for(lambda: check(leader, "strict") == 429, 5, what="the policy on the leader's /check")
        self.assertEqual(check(leader, "other"), 200)
        self.assertEqual(check(leader, "l1"), 417)
        mutated(follower, "token:deploy", "POST /api/v1/throttles",
                follower.request("POST", "/api/v1/throttles", {"app": "now"}, DEPLOY))
        wait_for(lambda: check(leader, "now") == 417, 5, what="the follower's throttle on the leader's /check")
        self.audit_everywhere(group, expected)

        # Kill every node, restart: the log is complete everywhere.
        for node in group.nodes:
            node.kill()
        group.start()
        leader = self.settled(group)
        self.audit_everywhere(group, expected)
        wait_for(lambda: check(leader, "strict") == 429, 15, what="the policy after a full restart")

        # Failover: kill the leader, mutate through a follower of the new one.
        leader.kill()
        rest = [n for n in group.nodes if n is not leader]
        new = self.settled(group, among=rest)
        other = next(n for n in rest if n is not new)
        mutated(other, "token:ops", "GET /unthrottle-app/l1", get(other, "/unthrottle-app/l1", OPS))
        self.audit_everywhere(group, expected, nodes=rest)
        leader.start()
        leader.wait_ready()
        self.audit_everywhere(group, expected)

        # A member restarted with an empty data directory catches up.
        victim = group.nodes[0]
        victim.kill()
        shutil.rmtree(victim.config["RaftDataDir"])
        victim.start()
        victim.wait_ready()
        self.audit_everywhere(group, expected, nodes=[victim], timeout=20)
        self.assertEqual(victim.request("GET", "/api/v1/policies")[1]["policies"][0]["key"], "strict/main")

    def test_follower_throttle_on_leader_check(self):
        """
        A throttle acknowledged by a follower already holds on the leader's
        very next C{/check}: the leader applies an entry when it commits it,
        before it tells the follower, which answers only after applying it.
        """
        group = self.group()
        leader = self.settled(group)
        followers = [n for n in group.nodes if n is not leader]
        wait_for(lambda: check(leader, "probe") == 200, 15, what="/check 200 on the leader")
        for i in range(6):
            follower = followers[i % 2]
            if i % 2:
                status, _ = follower.request("GET", f"/throttle-app/r{i}", token=DEPLOY)
            else:
                status, _ = follower.request("POST", "/api/v1/throttles", {"app": f"r{i}"}, DEPLOY)
            self.assertEqual(status, 200)
            self.assertEqual(check(leader, f"r{i}"), 417)
