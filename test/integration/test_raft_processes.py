"""
Process-level raft tests: real C{twistd freno} processes on loopback
(L{freno.sandbox.nodes}), killed, frozen and restarted by pid.

Slow integration tests (about a minute for the module). The state checks go
through the HTTP API (C{/leader-check}, C{/raft/leader}, C{/throttle-app},
C{/throttled-apps}, C{/skipped-hosts}); C{/check} needs a MySQL host: a
sandbox primary that the test starts, probed with a constant metric query
(L{freno.sandbox.cluster.constant_store}).
"""

from __future__ import annotations

import json
import os
import shutil
import time

from twisted.trial.unittest import SynchronousTestCase

from freno.sandbox.cluster import constant_store
from freno.sandbox.nodes import FrenoGroup, wait_for
from test.support import start_sandbox

CHECK = "/check/raft-test/mysql/main"
#: Seconds a control command may take: the 5 s commit bound, and some.
COMMAND_TIMEOUT = 8.0


def listing(node, path: str) -> dict:
    """
    The JSON C{path} answers on C{node}, or C{{}} when it does not answer
    200 within 5 s (a busy machine can hold an answer past a second).
    """
    status, body = node.get(path, timeout=5.0)
    return json.loads(body) if status == 200 else {}


def apps(node):
    return listing(node, "/throttled-apps")


def hosts(node):
    return listing(node, "/skipped-hosts")


def ok(response) -> bool:
    return response[0] == 200


class RaftProcessTests(SynchronousTestCase):
    """
    A raft group of C{twistd freno} processes.
    """

    def group(self, size: int = 3, **kwargs) -> FrenoGroup:
        group = FrenoGroup(os.path.abspath(self.mktemp()), size=size, **kwargs)
        self.addCleanup(group.stop)
        group.start()
        return group

    def command(self, node, path: str) -> None:
        """
        Send the control command C{path} to C{node} and assert it was
        acknowledged (200).
        """
        status, body = node.get(path, timeout=COMMAND_TIMEOUT)
        self.assertEqual(status, 200, f"{node.name} {path}: {status} {body!r}\n{node.log_tail()}")

    def everywhere(self, group, names=(), skipped=(), nodes=None, timeout=5.0):
        nodes = [n for n in (nodes or group.nodes) if n.running()]

        def present():
            return all(
                set(names) <= set(apps(n)) and set(skipped) <= set(hosts(n))
                for n in nodes
            )

        wait_for(present, timeout, what=f"{names} {skipped} on every node")

    def test_commands_on_every_node(self):
        """
        One leader that every node names; throttles sent to the leader and to
        a follower both show on every node.
        """
        group = self.group()
        leader = group.wait_leader()
        expected = {(200, json.dumps(leader.raft_address).encode() + b"\n")}
        wait_for(
            lambda: {n.get("/raft/leader") for n in group.nodes} == expected,
            5,
            what="every node to name the leader",
        )
        self.assertEqual(group.leaders(), [leader])
        follower = next(n for n in group.nodes if n is not leader)
        self.command(leader, "/throttle-app/via-leader/ttl/60/ratio/0.5")
        self.command(follower, "/throttle-app/via-follower")
        self.command(follower, "/skip-host/db1/ttl/60")
        self.everywhere(group, ["via-leader", "via-follower"], ["db1"])

    def test_sigkill_leader(self):
        """
        After SIGKILL of the leader a new one is elected with every throttle
        and skip, and answers /check with 200.
        """
        sandbox = start_sandbox(self, replicas=0)
        group = self.group(store=constant_store(sandbox))
        leader = group.wait_leader()
        wait_for(lambda: ok(leader.get(CHECK)), 10, what="/check 200 on the leader")
        self.command(leader, "/throttle-app/kept/ttl/60")
        self.command(leader, "/skip-host/db9/ttl/60")
        leader.kill()
        killed = time.monotonic()
        others = [n for n in group.nodes if n is not leader]
        new = group.wait_leader(among=others, timeout=10)
        wait_for(lambda: ok(new.get(CHECK)), 10, what="/check 200 on the new leader")
        self.assertLess(time.monotonic() - killed, 5.0)
        self.assertIn("kept", apps(new))
        self.assertIn("db9", hosts(new))

    def test_sigstop_leader(self):
        """
        A frozen leader is replaced; on SIGCONT its first answer is already
        404 (its lease ran out), it rejoins as a follower, and there is never
        more than one node answering /leader-check 200 afterwards.
        """
        group = self.group()
        leader = group.wait_leader()
        self.command(leader, "/throttle-app/before-freeze")
        leader.freeze()
        frozen = time.monotonic()
        others = [n for n in group.nodes if n is not leader]
        new = group.wait_leader(among=others, timeout=10)
        self.command(new, "/throttle-app/during-freeze")
        wait_for(lambda: time.monotonic() - frozen > 2.0, 3)
        leader.thaw()
        self.assertEqual(leader.get("/leader-check")[0], 404)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            claims = [n for n in group.nodes if n.is_leader()]
            self.assertLessEqual(len(claims), 1)
        state = leader.get("/raft/state")
        self.assertEqual(state, (200, b'"Follower"\n'))
        self.everywhere(group, ["before-freeze", "during-freeze"])

    def test_full_restart_and_empty_data_dir(self):
        """
        Killing every node and starting them again restores the state; a node
        restarted with an empty data dir catches up.
        """
        group = self.group()
        leader = group.wait_leader()
        follower = next(n for n in group.nodes if n is not leader)
        # A follower forwards commands only once it knows the leader.
        wait_for(lambda: ok(follower.get("/raft/leader")), 5, what="the follower to see the leader")
        for i in range(5):
            self.command(leader if i % 2 else follower, f"/throttle-app/app{i}")
        self.command(follower, "/skip-host/db1/ttl/60")
        for node in group.nodes:
            node.kill()
        for node in group.nodes:
            node.start()
        for node in group.nodes:
            node.wait_ready()
        group.wait_leader()
        names = [f"app{i}" for i in range(5)]
        self.everywhere(group, names, ["db1"], timeout=10)

        victim = group.nodes[0]
        victim.kill()
        shutil.rmtree(victim.config["RaftDataDir"])
        victim.start()
        victim.wait_ready()
        self.everywhere(group, names, ["db1"], nodes=[victim], timeout=10)

    def test_single_node_survives_restart(self):
        """
        A single node (RaftNodes []) keeps a throttle across a restart.
        """
        group = self.group(size=1)
        node = group.nodes[0]
        wait_for(node.is_leader, 10, what="self-election")
        self.command(node, "/throttle-app/solo/ttl/60/ratio/0.3")
        node.kill()
        node.start()
        node.wait_ready()
        wait_for(lambda: "solo" in apps(node), 5, what="the throttle after restart")
        self.assertEqual(apps(node)["solo"]["Ratio"], 0.3)
        wait_for(node.is_leader, 10, what="self-election")

    def test_five_nodes_lose_two(self):
        """
        Five nodes elect, lose two (the leader among them) and keep serving.
        """
        group = self.group(size=5)
        leader = group.wait_leader()
        self.command(leader, "/throttle-app/five")
        gone = [leader, next(n for n in group.nodes if n is not leader)]
        for node in gone:
            node.kill()
        rest = [n for n in group.nodes if n not in gone]
        new = group.wait_leader(among=rest, timeout=10)
        follower = next(n for n in rest if n is not new)
        wait_for(lambda: ok(follower.get("/raft/leader")), 5, what="a follower to see the leader")
        self.command(follower, "/throttle-app/after")
        self.everywhere(group, ["five", "after"], nodes=rest)
