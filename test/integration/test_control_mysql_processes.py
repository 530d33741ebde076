"""
The control plane on the MySQL backend with real C{twistd freno}
processes: two nodes of one domain whose backend tables live in a sandbox
primary (L{freno.sandbox.mysql.MySQLSandbox}), which they also probe (a
constant metric of 0.5 against a threshold of 1).

Commands sent to the follower, through freno's GET routes and the REST API,
hold on the leader's C{/check} long before the 10 s state poll could bring
them (the change counter does); the audit log is the same complete log on
both nodes, in commit order, before and after both nodes are killed and
restarted; per-app policies change the leader's C{/check}. The 1 s target
itself is measured by C{bench/control_latency.py}.
"""

from __future__ import annotations

import os
import uuid

from twisted.trial.unittest import SynchronousTestCase

from freno.sandbox.nodes import FrenoNode, wait_for
from freno.sandbox.processes import free_port
from test.support import SharedSandboxMixin

OPS = "ops-0123456789abcdef-token"
DEPLOY = "deploy-0123456789abcdef-token"
TOKENS = {"ops": {"Token": OPS, "Role": "admin"}, "deploy": {"Token": DEPLOY, "Role": "throttle"}}

#: Well under the 10 s state poll that was freno's only way across.
ACROSS = 5.0


def check(node, app):
    return node.get(f"/check/{app}/mysql/main")[0]


def audit(node):
    status, body = node.request("GET", "/api/v1/audit?limit=1000")
    if status != 200:
        return None
    return [(r["id"], r["actor"], r["route"], r["outcome"]) for r in body["records"]]


class MySQLControlProcessTests(SharedSandboxMixin, SynchronousTestCase):
    """
    Two C{twistd freno} nodes on the MySQL backend.
    """

    sandbox_kwargs = {"replicas": 0}

    def nodes(self):
        schema = f"freno_{uuid.uuid4().hex[:10]}"
        self.sandbox.query(self.sandbox.primary, f"CREATE DATABASE `{schema}`")
        self.addCleanup(self.sandbox.query, self.sandbox.primary, f"DROP DATABASE IF EXISTS `{schema}`")
        workdir = os.path.abspath(self.mktemp())
        nodes = []
        for i in range(2):
            config = {
                "ListenPort": free_port(),
                "Domain": "test",
                "BackendMySQLHost": "127.0.0.1",
                "BackendMySQLPort": self.sandbox.primary.port,
                "BackendMySQLSchema": schema,
                "BackendMySQLUser": "root",
                "ControlTokens": TOKENS,
                "Stores": {
                    "MySQL": {
                        "User": self.sandbox.user,
                        "Password": self.sandbox.password,
                        "MetricQuery": "select 0.5",
                        "ThrottleThreshold": 1.0,
                        "Clusters": {"main": {"StaticHostsSettings": {"Hosts": [self.sandbox.primary.hostport]}}},
                    }
                },
            }
            nodes.append(FrenoNode(f"node{i}", os.path.join(workdir, f"node{i}"), config))
        for node in nodes:
            self.addCleanup(node.stop)
            node.start()
        for node in nodes:
            node.wait_ready()
        return nodes

    def leader_of(self, nodes):
        def one():
            leaders = [n for n in nodes if n.is_leader()]
            return leaders[0] if len(leaders) == 1 else None

        return wait_for(one, 20, what="one leader")

    def test_control_plane(self):
        """
        Follower commands hold on the leader's C{/check} within a few
        seconds; refused requests change nothing; the audit log is complete
        and the same on both nodes, also after both were killed.
        """
        nodes = self.nodes()
        leader = self.leader_of(nodes)
        follower = next(n for n in nodes if n is not leader)
        wait_for(lambda: check(leader, "probe") == 200, 20, what="/check 200 on the leader")

        self.assertEqual(follower.get("/throttle-app/x")[0], 401)
        self.assertEqual(follower.request("POST", "/api/v1/throttles", {"app": "x"})[0], 401)
        self.assertEqual(follower.request("PUT", "/api/v1/policies/x", {"threshold": 0.1}, DEPLOY)[0], 403)

        expected = []
        for i in range(4):
            if i % 2:
                status, _ = follower.request("GET", f"/throttle-app/m{i}", token=DEPLOY)
                route = f"GET /throttle-app/m{i}"
            else:
                status, body = follower.request("POST", "/api/v1/throttles", {"app": f"m{i}"}, DEPLOY)
                route = "POST /api/v1/throttles"
                self.assertEqual(body["audit_id"], len(expected) + 1)
            self.assertEqual(status, 200)
            expected.append((len(expected) + 1, "token:deploy", route, "applied"))
            wait_for(lambda: check(leader, f"m{i}") == 417, ACROSS, what=f"m{i} on the leader's /check")

        status, body = follower.request("PUT", "/api/v1/policies/strict", {"store": "main", "threshold": 0.3}, OPS)
        self.assertEqual((status, body["policy"]["threshold"]), (200, 0.3))
        expected.append((len(expected) + 1, "token:ops", "PUT /api/v1/policies/strict", "applied"))
        wait_for(lambda: check(leader, "strict") == 429, ACROSS, what="the policy on the leader's /check")
        self.assertEqual(check(leader, "other"), 200)

        status, _ = follower.request("POST", "/api/v1/skips", {"host": "db9", "ttl": "10m"}, OPS)
        self.assertEqual(status, 200)
        expected.append((len(expected) + 1, "token:ops", "POST /api/v1/skips", "applied"))
        wait_for(
            lambda: [s["host"] for s in leader.request("GET", "/api/v1/skips")[1]["skips"]] == ["db9"],
            ACROSS, what="the skip on the leader",
        )
        status, _ = leader.request("DELETE", "/api/v1/throttles/m0", token=DEPLOY)
        expected.append((len(expected) + 1, "token:deploy", "DELETE /api/v1/throttles/m0", "applied"))
        wait_for(lambda: check(follower, "m0") == 500, ACROSS, what="the follower to drop m0")  # not leader: 500

        for node in nodes:
            self.assertEqual(audit(node), expected)

        for node in nodes:
            node.kill()
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        leader = self.leader_of(nodes)
        for node in nodes:
            self.assertEqual(audit(node), expected)
        wait_for(lambda: check(leader, "strict") == 429, 20, what="the policy after a restart")
        self.assertEqual(check(leader, "m1"), 417)
        self.assertEqual(check(leader, "m0"), 200)
