"""
Membership changes of a live raft group of C{twistd freno} processes
(L{freno.consensus.raft.changes}): a fourth node joins under a steady check
load and a node leaves, with no lost command and no failed check at the
leader; a restarted node follows the membership its raft log holds, not its
stale configuration file; a member renamed (removed, restarted under a new
address on its own data) rejoins once added; a member whose name is
re-pointed to another address (through a hosts file the test rewrites,
C{RaftHostsFile}) is reached again without restarting the others.

Slow (tens of seconds). Every wait is a poll with a deadline; every process
is stopped by pid.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from typing import Dict, List, Optional

from twisted.trial.unittest import SynchronousTestCase

from freno.client.cli import main as cli_main
from freno.sandbox.cluster import constant_store
from freno.sandbox.nodes import FrenoGroup, FrenoNode, wait_for
from freno.sandbox.processes import free_port
from test.support import start_sandbox

CHECK = "/check/membership-test/mysql/main"
#: Seconds a membership change may take: the catch-up wait, the commit, and some.
CHANGE_TIMEOUT = 15.0


def apps(node) -> Dict[str, dict]:
    status, body = node.get("/throttled-apps", timeout=2.0)
    return json.loads(body) if status == 200 else {}


def members(node) -> Optional[dict]:
    status, body = node.request("GET", "/api/v1/members", timeout=2.0)
    return body if status == 200 else None


def addresses(node) -> List[str]:
    view = members(node)
    return sorted(m["address"] for m in view["members"]) if view else []


class CheckLoad(threading.Thread):
    """
    A steady load of C{HEAD /check} on one node (every C{interval}
    seconds), counting every answer that is not 200.
    """

    def __init__(self, node, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.interval = interval
        self.stopping = threading.Event()
        self.answers = 0
        self.failures: List[tuple] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            status, _ = self.node.get(CHECK, method="HEAD", timeout=2.0)
            self.answers += 1
            if status != 200:
                self.failures.append((time.monotonic(), status))
            time.sleep(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


class CommandLoad(threading.Thread):
    """
    Throttle commands to one node, one every C{interval} seconds, each for
    a new app; records which were acknowledged and which were not.
    """

    def __init__(self, node, prefix: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.prefix = prefix
        self.interval = interval
        self.stopping = threading.Event()
        self.acknowledged: List[str] = []
        self.refused: List[tuple] = []

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            app = f"{self.prefix}-{n}"
            n += 1
            status, body = self.node.request(
                "POST", "/api/v1/throttles", {"app": app, "ttl": "1h"}, timeout=8.0
            )
            if status == 200:
                self.acknowledged.append(app)
            else:
                self.refused.append((app, status, body))
            time.sleep(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)


class MembershipProcessTests(SynchronousTestCase):
    """
    Members join, leave, restart and move.
    """

    def group(self, **kwargs) -> FrenoGroup:
        group = FrenoGroup(os.path.abspath(self.mktemp()), size=3, **kwargs)
        self.addCleanup(group.stop)
        group.start()
        return group

    def joiner(self, group: FrenoGroup, name: str = "node3", **extra) -> FrenoNode:
        """
        A node started with C{RaftJoin} and the group's members as
        C{RaftNodes} (it runs as a learner until added).
        """
        workdir = os.path.join(group.workdir, name)
        config = {
            "ListenPort": free_port(),
            "RaftBind": f"127.0.0.1:{free_port()}",
            "RaftDataDir": os.path.join(workdir, "raft"),
            "RaftNodes": [n.raft_address for n in group.nodes],
            "RaftJoin": True,
            "RaftPassword": group.raft_password,
            "Stores": group.nodes[0].config["Stores"],
        }
        config.update(extra)
        node = FrenoNode(name, workdir, config)
        self.addCleanup(node.stop)
        node.start()
        node.wait_ready(20)
        return node

    def change(self, node, method: str, path: str, body=None) -> dict:
        status, answer = node.request(method, path, body, timeout=CHANGE_TIMEOUT)
        self.assertEqual(status, 200, f"{method} {path}: {status} {answer}\n{node.log_tail()}")
        return answer

    def test_join_and_leave_under_load(self):
        """
        A fourth node joins a live group and a follower leaves it while
        clients check the leader every 10 ms and throttle an app every 50
        ms: every check answers 200, every command is acknowledged, and
        every acknowledged command is on every remaining member, the new
        one included (those sent while it was a learner too). The changes
        are in the audit log.
        """
        sandbox = start_sandbox(self, replicas=0)
        group = self.group(store=constant_store(sandbox))
        group.wait_leader(20)
        # The new node's process starts first: starting Python and Twisted
        # is the heaviest thing here, and on a starved machine it can delay
        # a heartbeat enough for an election that has nothing to do with
        # membership. It runs as a learner, receiving the log, meanwhile.
        new = self.joiner(group)
        wait_for(lambda: (members(new) or {}).get("self_learner"), 20, what="the new node to be a learner")
        leader = group.wait_leader(20)
        wait_for(lambda: leader.get(CHECK)[0] == 200, 15, what="/check 200 on the leader")
        checks = CheckLoad(leader)
        commands = CommandLoad(leader, "app")
        checks.start()
        commands.start()
        self.addCleanup(checks.stop)
        self.addCleanup(commands.stop)
        wait_for(lambda: len(commands.acknowledged) >= 5, 20, what="commands before the join")

        checks_before = checks.answers
        answer = self.change(leader, "POST", "/api/v1/members", {"address": new.raft_address, "reason": "grow"})
        self.assertIn(new.raft_address, answer["members"])
        self.assertIsInstance(answer["audit_id"], int)
        wait_for(
            lambda: (members(new) or {}).get("self_learner") is False,
            20,
            what="the new node to run as a member",
        )
        before = len(commands.acknowledged)
        wait_for(lambda: len(commands.acknowledged) >= before + 5, 20, what="commands after the join")

        leaving = next(n for n in group.nodes if n is not leader)
        answer = self.change(leader, "DELETE", f"/api/v1/members/{leaving.raft_address}")
        self.assertNotIn(leaving.raft_address, answer["members"])
        before = len(commands.acknowledged)
        wait_for(lambda: len(commands.acknowledged) >= before + 5, 20, what="commands after the removal")
        wait_for(lambda: checks.answers >= checks_before + 100, 30, what="100 checks over the changes")
        commands.stop()
        checks.stop()

        self.assertEqual(commands.refused, [])
        self.assertEqual(checks.failures, [], f"{len(checks.failures)} of {checks.answers} checks failed")
        remaining = [n for n in group.nodes if n is not leaving] + [new]
        expected = sorted(n.raft_address for n in remaining)
        wanted = set(commands.acknowledged)

        def replicated():
            return all(wanted <= set(apps(n)) and addresses(n) == expected for n in remaining)

        wait_for(replicated, 30, what="every acknowledged command and the new membership on every member")
        self.assertEqual(group.wait_leader(5, among=remaining), leader)
        status, audit = leader.request("GET", "/api/v1/audit?limit=1000")
        self.assertEqual(status, 200)
        routes = [r["route"] for r in audit["records"]]
        self.assertIn("POST /api/v1/members", routes)
        self.assertIn(f"DELETE /api/v1/members/{leaving.raft_address}", routes)

    def test_restart_follows_persisted_membership(self):
        """
        After a join and a removal, a member restarted with its original
        configuration file (the old RaftNodes) runs with the membership its
        raft log holds, and so does the joined node restarted with its
        RaftJoin configuration: both are members, and commands reach them.
        """
        group = self.group()
        leader = group.wait_leader(20)
        new = self.joiner(group)
        wait_for(lambda: (members(new) or {}).get("self_learner"), 20, what="a learner")
        self.change(leader, "POST", "/api/v1/members", {"address": new.raft_address})
        followers = [n for n in group.nodes if n is not leader]
        leaving, staying = followers
        self.change(leader, "DELETE", f"/api/v1/members/{leaving.raft_address}")
        leaving.stop()
        expected = sorted([leader.raft_address, staying.raft_address, new.raft_address])
        self.assertNotEqual(sorted(staying.config["RaftNodes"]), expected)  # a stale file

        for node in (staying, new):
            node.stop()
            node.start()
            node.wait_ready(20)
            wait_for(
                lambda: addresses(node) == expected and (members(node) or {}).get("self_learner") is False,
                30,
                what=f"{node.name} to run with the persisted membership",
            )
            current = group.wait_leader(20, among=[leader, staying, new])
            self.change(current, "POST", "/api/v1/throttles", {"app": f"after-{node.name}"})
            wait_for(lambda: f"after-{node.name}" in apps(node), 20, what="a command on the restarted node")
        # One leader among the three. (Not necessarily the same one: on a
        # loaded machine a restarted member may stand for election before
        # the leader reaches it; pysyncobj has no pre-vote.)
        group.wait_leader(20, among=[leader, staying, new])

    def test_renamed_member_rejoins(self):
        """
        A member removed and restarted under a new address, on its own data
        directory, comes back as a learner (its log does not list the new
        address) and is a member again once added (with C{freno-cli members
        add}, given a follower's URL first): commands reach it.
        """
        group = self.group()
        leader = group.wait_leader(20)
        renamed = next(n for n in group.nodes if n is not leader)
        self.change(leader, "POST", "/api/v1/throttles", {"app": "before-rename"})
        self.change(leader, "DELETE", f"/api/v1/members/{renamed.raft_address}")
        renamed.stop()
        renamed.config.update(
            RaftBind=f"127.0.0.1:{free_port()}",
            RaftNodes=addresses(leader),
            RaftJoin=True,
        )
        renamed.start()
        renamed.wait_ready(20)
        wait_for(lambda: (members(renamed) or {}).get("self_learner"), 20, what="the renamed node to be a learner")
        # Through freno-cli, given a follower first: it finds the leader.
        follower = next(n for n in group.nodes if n is not leader and n is not renamed)
        out, err = io.StringIO(), io.StringIO()
        code = cli_main(
            ["members", "add", renamed.raft_address, "--reason", "renamed"],
            {"FRENO_URL": f"{follower.url},{leader.url}"},
            out,
            err,
        )
        self.assertEqual(code, 0, err.getvalue())
        self.assertIn(f"added {renamed.raft_address}", out.getvalue())
        wait_for(
            lambda: (members(renamed) or {}).get("self_learner") is False,
            20,
            what="the renamed node to run as a member",
        )
        self.change(leader, "POST", "/api/v1/throttles", {"app": "after-rename"})
        wait_for(
            lambda: {"before-rename", "after-rename"} <= set(apps(renamed)), 20, what="both commands on the renamed node"
        )
        self.assertIn(renamed.raft_address, addresses(leader))
        self.assertEqual(len(addresses(leader)), 3)

    def refusal(self, node, method, path, body=None):
        """
        C{(status, error code, error)} of a request that should be refused.
        """
        status, answer = node.request(method, path, body, timeout=CHANGE_TIMEOUT)
        error = (answer or {}).get("error") or {}
        return status, error.get("code"), error

    def test_refusals(self):
        """
        Bad input, a follower, a learner that is not there and removing
        the leader get clear 4xx answers, and change nothing.
        """
        group = self.group()
        leader = group.wait_leader(20)
        follower = next(n for n in group.nodes if n is not leader)
        before = addresses(leader)
        self.assertEqual(self.refusal(leader, "POST", "/api/v1/members", {"address": "no-port"})[:2], (400, "invalid_parameter"))
        def follower_refusal():
            # A follower that has not heard from the leader yet (a loaded
            # machine) refuses without naming it: poll until it names one.
            answer = self.refusal(follower, "POST", "/api/v1/members", {"address": "127.0.0.1:1"})
            return answer if answer[2].get("leader") else None

        status, code, error = wait_for(follower_refusal, 20, interval=0.2, what="a refusal naming the leader")
        self.assertEqual((status, code, error.get("leader")), (409, "not_leader", leader.raft_address))
        self.assertEqual(
            self.refusal(leader, "POST", "/api/v1/members", {"address": "127.0.0.1:1"})[:2], (409, "learner_not_ready")
        )
        self.assertEqual(self.refusal(leader, "DELETE", f"/api/v1/members/{leader.raft_address}")[:2], (409, "is_leader"))
        self.assertEqual(self.refusal(leader, "DELETE", "/api/v1/members/127.0.0.1:2")[:2], (404, "not_member"))
        self.assertEqual(addresses(leader), before)
        self.assertEqual(group.wait_leader(5), leader)


class ReaddressedMemberTests(SynchronousTestCase):
    """
    Members named by host name, resolved through a hosts file the test
    rewrites (C{RaftHostsFile}).
    """

    def test_member_moves_to_a_new_address(self):
        """
        C{node-a.test} (dialled by both other members, whose names sort
        after it) stops, its name is re-pointed from 127.0.0.1 to 127.0.0.2
        and it starts there: the others reach it again without a restart,
        and it takes commands. (127.0.0.2 is loopback too: a second address
        is the only way to move a member on one machine.)
        """
        workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        hosts = os.path.join(workdir, "hosts")
        names = ["node-a.test", "node-b.test", "node-c.test"]
        ports = [free_port() for _ in names]
        ips = {name: "127.0.0.1" for name in names}

        def write_hosts():
            with open(hosts + ".new", "w") as f:
                f.write("".join(f"{ips[n]} {n}\n" for n in names))
            os.replace(hosts + ".new", hosts)

        write_hosts()
        raft = [f"{n}:{p}" for n, p in zip(names, ports)]
        nodes = []
        for index, name in enumerate(names):
            config = {
                "ListenPort": free_port(),
                "RaftBind": raft[index],
                "RaftListenAddress": f"{ips[name]}:{ports[index]}",
                "RaftHostsFile": hosts,
                "RaftDataDir": os.path.join(workdir, name, "raft"),
                "RaftNodes": raft,
                "RaftPassword": "test-secret-of-the-group",
                "Stores": {"MySQL": {}},
            }
            node = FrenoNode(name, os.path.join(workdir, name), config)
            self.addCleanup(node.stop)
            nodes.append(node)
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready(20)
        moving = nodes[0]

        def connected(node, address):
            view = members(node) or {"members": []}
            return any(m["address"] == address and m["reachable"] for m in view["members"])

        others = nodes[1:]
        wait_for(lambda: all(connected(n, raft[0]) for n in others), 30, what="node-a reachable")
        moving.stop()
        ips["node-a.test"] = "127.0.0.2"
        write_hosts()
        moving.config["RaftListenAddress"] = f"127.0.0.2:{ports[0]}"
        leader = wait_for(
            lambda: next((n for n in others if n.is_leader()), None), 20, what="a leader among the others"
        )
        moving.start()
        moving.wait_ready(20)
        wait_for(
            lambda: all(connected(n, raft[0]) for n in others),
            30,
            what="both others to reach node-a at its new address",
        )
        status, _ = leader.request("POST", "/api/v1/throttles", {"app": "after-move"}, timeout=8.0)
        self.assertEqual(status, 200)
        wait_for(lambda: "after-move" in apps(moving), 20, what="the command on the moved node")
