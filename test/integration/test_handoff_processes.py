"""
Leadership hand-off with real C{twistd freno} processes on loopback
(C{docs/handoff.md}): SIGTERM of the leader, the transfer API and
C{freno-cli leadership transfer}, and a rolling restart behind the real
HAProxy with the project's C{haproxy.cfg} under a light client load.

[slow, real processes] The assertions are on counts and orderings, never on
timings: "faster than an election timeout" is shown by the new leader being
elected while the old process is still running (it serves through its
window after the hand-off), in the next term.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from freno.sandbox.nodes import FrenoGroup, wait_for
from test.skips import binary_or_skip

#: Seconds a control command may take: the 5 s commit bound, and some.
COMMAND_TIMEOUT = 8.0
#: Seconds a SIGTERMed leader may take to exit: the 3 s hand-off bound, the
#: 2.5 s window, and plenty for a loaded machine.
STOP_TIMEOUT = 30.0


def status(node):
    code, body = node.request("GET", "/api/v1/status", timeout=1.0)
    return body if code == 200 and isinstance(body, dict) else {}


class HandoffProcessTests(SynchronousTestCase):
    """
    A 3-node raft group of processes (no MySQL: no clusters, so a leader is
    warm at once).
    """

    def group(self, **kwargs) -> FrenoGroup:
        group = FrenoGroup(os.path.abspath(self.mktemp()), size=3, **kwargs)
        for node in group.nodes:
            node.extra_args = ["--verbose"]  # the hand-off's own log lines
        self.addCleanup(group.stop)
        group.start(30)
        return group

    def others_follow_another(self, group, old):
        """
        The leader every other running node names, when they agree on one
        that is not C{old}; else C{None}.
        """
        others = [n for n in group.nodes if n is not old and n.running()]
        named = {status(n).get("leader") for n in others}
        if len(named) == 1:
            leader = named.pop()
            if leader and leader != old.raft_address:
                return leader
        return None

    def test_sigterm_of_the_leader_hands_off(self):
        """
        SIGTERM of the leader: it hands off (its log says so) and another
        node is elected in the next term while the old process still runs
        (serving its window), so without waiting for an election timeout;
        every acknowledged throttle is on the new leader, and the old
        process exits by itself, cleanly.
        """
        group = self.group()
        leader = group.wait_leader(30)
        term = status(leader)["term"]
        names = [f"handoff-{i}" for i in range(10)]
        for name in names:
            code, body = leader.get(f"/throttle-app/{name}/ttl/60/ratio/1", timeout=COMMAND_TIMEOUT)
            self.assertEqual(code, 200, body)
        leader._signal(15)  # SIGTERM
        new = wait_for(lambda: self.others_follow_another(group, leader), 20, what="a new leader")
        successor = [n for n in group.nodes if n.raft_address == new][0]
        self.assertEqual(status(successor)["term"], term + 1)
        leader.process.wait(STOP_TIMEOUT)
        with open(leader.log_path, errors="replace") as f:
            log = f.read()
        self.assertIn("leadership hand-off transferred", log)
        self.assertIn(f"leader {new})", log)
        self.assertIn(leader.process.returncode, (0, -15), leader.log_tail())
        with open(os.path.join(leader.workdir, f"{leader.name}.stderr"), errors="replace") as f:
            self.assertNotIn("Traceback", f.read())
        with open(leader.log_path, errors="replace") as f:
            self.assertNotIn("Traceback", f.read())
        code, body = successor.get("/throttled-apps")
        self.assertEqual(code, 200)
        self.assertLessEqual(set(names), set(json.loads(body)))

    def test_transfer_api_and_cli(self):
        """
        C{POST /api/v1/leadership/transfer} on the leader moves leadership
        to the member asked for and is in the audit log; a follower answers
        409; C{freno-cli leadership transfer} moves it again.
        """
        from freno.client.cli import main

        group = self.group()
        leader = group.wait_leader(30)
        target = [n for n in group.nodes if n is not leader][0]
        code, body = target.request("POST", "/api/v1/leadership/transfer", {}, timeout=COMMAND_TIMEOUT)
        self.assertEqual((code, body["error"]["code"]), (409, "not_leader"), body)
        code, body = leader.request(
            "POST", "/api/v1/leadership/transfer", {"to": "nobody:1"}, timeout=COMMAND_TIMEOUT
        )
        self.assertEqual((code, body["error"]["field"]), (400, "to"), body)
        code, body = leader.request(
            "POST",
            "/api/v1/leadership/transfer",
            {"to": target.raft_address, "reason": "test"},
            timeout=COMMAND_TIMEOUT,
        )
        self.assertEqual(code, 200, body)
        self.assertEqual((body["from"], body["to"]), (leader.raft_address, target.raft_address))
        wait_for(lambda: status(target).get("is_leader") and status(target).get("state") == "Leader",
                 20, what="the target to lead")
        code, audit = target.request("GET", "/api/v1/audit")
        self.assertEqual(code, 200)
        record = [r for r in audit["records"] if r["id"] == body["audit_id"]][0]
        self.assertEqual(record["route"], "POST /api/v1/leadership/transfer")
        self.assertEqual(record["reason"], "test")
        # The old leader goes back to being a follower after its window.
        wait_for(lambda: not leader.is_leader() and status(leader).get("state") == "Follower",
                 20, what="the old leader to follow")

        out, err = io.StringIO(), io.StringIO()
        urls = ",".join(n.url for n in group.nodes)
        code = main(["leadership", "transfer", "--url", urls, "--json"], {}, out, err)
        self.assertEqual(code, 0, err.getvalue())
        answer = json.loads(out.getvalue())
        self.assertEqual(answer["from"], target.raft_address)
        self.assertNotEqual(answer["to"], target.raft_address)


class RollingRestartTests(SynchronousTestCase):
    """
    [slow] A rolling restart of a 3-node group behind the real HAProxy,
    under a light client load, gives clients only 200s.
    """

    def test_rolling_restart_behind_haproxy(self):
        """
        Every node restarted in turn (SIGTERM, start, healthy), the leader
        last: every client request through HAProxy got a 200.
        """
        binary_or_skip("haproxy")
        binary_or_skip("mariadbd")
        from bench.rolling_restart import CHECK_PATH, PacedLoad, rolling_restart
        from freno.sandbox.cluster import constant_store
        from freno.sandbox.haproxy import HAProxy
        from freno.sandbox.mysql import MySQLSandbox

        workdir = tempfile.mkdtemp(prefix="freno-rolling-")
        self.addCleanup(shutil.rmtree, workdir, True)
        sandbox = MySQLSandbox(os.path.join(workdir, "mysql"), replicas=0)
        self.addCleanup(sandbox.stop)
        sandbox.start()
        store = constant_store(sandbox)
        # A value stays fresh for 5 s (default 0.5 s): on an overloaded
        # machine a probe may come late, and a stale value answers 500 in
        # steady state too; this test is about leadership moving.
        store["MetricFreshnessMillis"] = 5000
        group = FrenoGroup(os.path.join(workdir, "freno"), size=3, store=store)
        self.addCleanup(group.stop)
        group.start(30)
        group.wait_leader(30)
        haproxy = HAProxy.in_front_of(group, workdir)
        self.addCleanup(haproxy.stop)
        haproxy.start()
        haproxy.wait_status(CHECK_PATH)
        load = PacedLoad(haproxy.client_port, rate=20, threads=2, deadline=time.monotonic() + 300)
        load.start()
        self.addCleanup(load.stop)
        start = time.monotonic()
        lines = []
        rolling_restart(group, log=lines.append)
        log = "\n".join(lines)
        time.sleep(1.0)
        answers = load.between(start, time.monotonic())
        load.stop()
        statuses = {}
        for a in answers:
            statuses[a.status] = statuses.get(a.status, 0) + 1
        self.assertGreater(statuses.get(200, 0), 0)
        others = [(round(a.started - start, 3), a.status, a.detail) for a in answers if a.status != 200]
        self.assertEqual(statuses, {200: statuses[200]}, f"answers other than 200: {others}\n{log}")
