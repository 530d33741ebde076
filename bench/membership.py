"""
Membership-change benchmark: C{python -m bench.membership [--rounds N]
[--json PATH]}.

A 3-node group of real C{twistd freno} processes on loopback, probing a
MariaDB sandbox with a constant metric (L{freno.sandbox.cluster.constant_store}),
under a steady client load on the leader: one client looping over a
C{HEAD /check}, a 5 ms pause and, every 50 ms, a throttle command (about 100
checks and 15 commands a second on a 2-core machine). Each round starts a fresh learner
(C{RaftJoin}), adds it (C{POST /api/v1/members}), waits until it runs as a
member, then removes it (C{DELETE /api/v1/members/{address}}) and stops it.

Reported, as medians over the rounds with their range:

    - C{add_s}: request to answer of the add (the catch-up check and the
      commit), and C{add_vs_command}: that over the median commit time of
      the throttle commands sent in the same round (the baseline);
    - C{promote_s}: answer to the new node reporting itself a member;
    - C{remove_s}: request to answer of the removal;

and, over the whole run: checks answered other than 200 (target 0), the
longest run of them, commands refused (target 0), and acknowledged commands
missing on a member at the end (target 0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List

from freno.sandbox.cluster import constant_store
from freno.sandbox.mysql import MySQLSandbox
from freno.sandbox.nodes import FrenoGroup, FrenoNode, wait_for
from freno.sandbox.processes import free_port

CHECK = "/check/bench-members/mysql/main"


class Load(threading.Thread):
    """
    One client on the leader: a check, a 5 ms pause, and a throttle command
    every 50 ms, in a loop.
    """

    def __init__(self, leader: FrenoNode) -> None:
        super().__init__(daemon=True)
        self.leader = leader
        self.stopping = threading.Event()
        self.checks = 0
        self.bad: List[float] = []
        self.acknowledged: List[str] = []
        self.refused: List[Any] = []
        self.command_times: List[tuple] = []
        self.check_times: List[float] = []

    def run(self) -> None:
        n = 0
        next_command = time.monotonic()
        while not self.stopping.is_set():
            status, _ = self.leader.get(CHECK, method="HEAD", timeout=2.0)
            self.checks += 1
            self.check_times.append(time.monotonic())
            if status != 200:
                self.bad.append(time.monotonic())
            if time.monotonic() >= next_command:
                app = f"bench-{n}"
                n += 1
                started = time.monotonic()
                status, body = self.leader.request("POST", "/api/v1/throttles", {"app": app, "ttl": "1h"}, timeout=8)
                took = time.monotonic() - started
                if status == 200:
                    self.acknowledged.append(app)
                    self.command_times.append((started, took))
                else:
                    self.refused.append((started, app, status, body))
                next_command = time.monotonic() + 0.05
            time.sleep(0.005)


def _learner(group: FrenoGroup, workdir: str, name: str) -> FrenoNode:
    config = {
        "ListenPort": free_port(),
        "RaftBind": f"127.0.0.1:{free_port()}",
        "RaftDataDir": os.path.join(workdir, name, "raft"),
        "RaftNodes": [n.raft_address for n in group.nodes],
        "RaftJoin": True,
        "RaftPassword": group.raft_password,
        "Stores": group.nodes[0].config["Stores"],
    }
    node = FrenoNode(name, os.path.join(workdir, name), config)
    node.start()
    node.wait_ready(30)
    wait_for(lambda: (node.request("GET", "/api/v1/members")[1] or {}).get("self_learner"), 20, what="a learner")
    return node


def _round(group: FrenoGroup, leader: FrenoNode, load: Load, workdir: str, index: int) -> Dict[str, float]:
    node = _learner(group, workdir, f"joiner{index}")
    try:
        started = time.monotonic()
        status, body = leader.request("POST", "/api/v1/members", {"address": node.raft_address}, timeout=20)
        added = time.monotonic()
        if status != 200:
            raise RuntimeError(f"add refused: {status} {body}")
        wait_for(
            lambda: (node.request("GET", "/api/v1/members", timeout=1)[1] or {}).get("self_learner") is False,
            20, 0.005, "the new node to run as a member",
        )
        promoted = time.monotonic()
        time.sleep(0.5)
        removing = time.monotonic()
        status, body = leader.request("DELETE", f"/api/v1/members/{node.raft_address}", timeout=20)
        removed = time.monotonic()
        if status != 200:
            raise RuntimeError(f"remove refused: {status} {body}")
    finally:
        node.stop()
    ended = time.monotonic()
    commands = [took for at, took in load.command_times if at >= started - 1.0]
    baseline = statistics.median(commands) if commands else float("nan")
    bad = [t for t in load.bad if started <= t <= ended]
    return {
        "add_s": added - started,
        "add_vs_command": (added - started) / baseline if commands else float("nan"),
        "promote_s": promoted - added,
        "remove_s": removed - removing,
        "command_s": baseline,
        "checks": sum(1 for t in load.check_times if started <= t <= ended),
        "checks_not_200": len(bad),
        "longest_gap_s": _longest_gap(bad),
        "commands_refused": sum(1 for r in load.refused if started <= r[0] <= ended),
    }


def _longest_gap(times: List[float]) -> float:
    """
    The longest run of consecutive bad answers (less than 50 ms apart), in
    seconds.
    """
    longest, start, last = 0.0, None, None
    for t in times:
        if last is None or t - last > 0.05:
            start = t
        last = t
        longest = max(longest, last - start)
    return longest


def method(args) -> str:
    """
    How the benchmark was run, for C{BENCHMARKS.md}.
    """
    args = list(args)
    rounds = args[args.index("--rounds") + 1] if "--rounds" in args else "5"
    return f"""\
A 3-node raft group of real `twistd freno` processes on loopback probing a MariaDB sandbox (a constant
metric), under one client looping on the leader over `HEAD /check`, a 5 ms pause and, every 50 ms, a
throttle command. {rounds} rounds, each: start a fresh node with `RaftJoin` (a learner), add it
(`POST /api/v1/members`), wait until it runs as a member, remove it (`DELETE /api/v1/members/{{address}}`),
stop it. The add is compared with the median commit of the throttle commands of the same round.
Targets (issue 14): no answer other than 200 at the leader and no refused command during a round, and
no acknowledged command missing on any member at the end."""


def metrics(data: dict):
    """
    The figures of a C{--json} file as L{bench.report.Metric}s, and notes:
    a round whose checks or commands failed gives no latency figures.
    """
    from bench.report import Metric, Target

    rounds = data["rounds"]
    clean = [r for r in rounds if not r["checks_not_200"] and not r["commands_refused"]]
    notes = [
        f"round {i + 1}: {r['checks_not_200']} checks not 200, {r['commands_refused']} commands refused; "
        "its latencies are left out."
        for i, r in enumerate(rounds)
        if r["checks_not_200"] or r["commands_refused"]
    ]
    result = [
        Metric("checks at the leader answered other than 200, per round", "", [r["checks_not_200"] for r in rounds],
               Target("<=", 0), digits=0, every=True),
        Metric("commands refused, per round", "", [r["commands_refused"] for r in rounds],
               Target("<=", 0), digits=0, every=True),
        Metric("acknowledged commands missing on a member at the end", "",
               [data["summary"]["commands_missing"]], Target("<=", 0), digits=0, every=True),
        Metric("add a caught-up learner: request → committed answer", "s", [r["add_s"] for r in clean], digits=3),
        Metric("add, as a multiple of a throttle command's commit (same round)", "×",
               [r["add_vs_command"] for r in clean], digits=1),
        Metric("committed → the new node runs as a member", "s", [r["promote_s"] for r in clean], digits=3),
        Metric("remove a member: request → committed answer", "s", [r["remove_s"] for r in clean], digits=3),
        Metric("checks at the leader per round", "", [r["checks"] for r in rounds], digits=0),
    ]
    return result, notes


def main(argv=None) -> int:
    """
    Run the rounds and print medians.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None, help="write every round's figures to this file")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="freno-membership-")
    sandbox = MySQLSandbox(os.path.join(workdir, "mysql"), replicas=0)
    sandbox.start()
    group = FrenoGroup(os.path.join(workdir, "group"), size=3, store=constant_store(sandbox))
    load = None
    try:
        group.start(30)
        leader = group.wait_leader(30)
        wait_for(lambda: leader.get(CHECK)[0] == 200, 20, what="/check 200 on the leader")
        load = Load(leader)
        load.start()
        time.sleep(1.0)
        rounds = [_round(group, leader, load, workdir, i) for i in range(args.rounds)]
        time.sleep(0.5)
        load.stopping.set()
        load.join(15)
        wanted = set(load.acknowledged)
        missing = 0
        for node in group.nodes:
            status, body = node.get("/throttled-apps", timeout=5)
            have = set(json.loads(body)) if status == 200 else set()
            missing += len(wanted - have)
    finally:
        if load is not None:
            load.stopping.set()
        group.stop()
        sandbox.stop()
    summary = {
        "checks": load.checks,
        "checks_not_200": len(load.bad),
        "longest_gap_s": _longest_gap(load.bad),
        "commands": len(load.acknowledged) + len(load.refused),
        "commands_refused": len(load.refused),
        "commands_missing": missing,
    }
    for key in ("add_s", "add_vs_command", "promote_s", "remove_s", "command_s", "checks", "checks_not_200"):
        values = [r[key] for r in rounds]
        print(f"{key:16} median {statistics.median(values):.4f}  range {min(values):.4f}..{max(values):.4f}")
    for key, value in summary.items():
        print(f"{key:16} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rounds, "summary": summary}, f, indent=1)
    ok = summary["checks_not_200"] == 0 and summary["commands_refused"] == 0 and summary["commands_missing"] == 0
    print("targets (0 non-200 checks, 0 refused or lost commands):", "met" if ok else "MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
