"""
Control-command latency benchmark: C{python -m bench.control_latency
[--rounds N] [--baseline-rounds M] [--load-seconds S] [--json PATH]}.

How long a command acknowledged by a follower takes to hold on the leader's
C{/check} (issue 11: within 1 s on both backends), and what the MySQL
backend's change counter costs the database.

    - C{mysql}: two C{twistd freno} nodes on the MySQL backend, whose tables
      live in a sandbox primary (another sandbox primary is the probed host,
      a constant metric). Each round sends a throttle to the follower
      (alternately C{GET /throttle-app/<app>} and C{POST /api/v1/throttles},
      with a token) and, from the moment the follower answered 200, polls the
      leader's C{/check/<app>/mysql/main} every 5 ms until it answers 417.
    - C{baseline}: the same delay for a throttle written into
      C{throttled_apps} the way a Go freno node writes it (no audit record,
      so the change counter does not move): what freno's 10 s poll gives,
      measured in the same run.
    - C{load}: the backend's statements per second and per node while idle,
      from MariaDB's C{performance_schema} digests of the backend schema
      (the sandbox runs with C{--performance-schema=ON}), split into the
      change-counter reads and everything else.
    - C{raft}: the same rounds on a 3-node raft group of processes.

Medians and maxima over the rounds. C{--json PATH} writes every round's
figures there (for C{bench.all}).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any, Dict, List

from freno.sandbox.mysql import MySQLSandbox
from freno.sandbox.nodes import FrenoGroup, FrenoNode, wait_for
from freno.sandbox.processes import free_port

TOKEN = "bench-0123456789abcdef-token"
TOKENS = {"bench": {"Token": TOKEN, "Role": "admin"}}
POLL = 0.005


def _store(probe: MySQLSandbox) -> Dict[str, Any]:
    return {
        "User": probe.user,
        "Password": probe.password,
        "MetricQuery": "select 0.5",
        "ThrottleThreshold": 1.0,
        "Clusters": {"main": {"StaticHostsSettings": {"Hosts": [probe.primary.hostport]}}},
    }


def _check(node: FrenoNode, app: str) -> int:
    return node.get(f"/check/{app}/mysql/main", timeout=0.5)[0]


def _leader(nodes: List[FrenoNode]) -> FrenoNode:
    def one():
        leaders = [n for n in nodes if n.is_leader()]
        return leaders[0] if len(leaders) == 1 else None

    return wait_for(one, 30, what="one leader")


def _until_denied(leader: FrenoNode, app: str, started: float, timeout: float = 30.0) -> float:
    deadline = started + timeout
    while time.monotonic() < deadline:
        if _check(leader, app) == 417:
            return time.monotonic() - started
        time.sleep(POLL)
    raise TimeoutError(f"{app} never held on the leader's /check")


def _rounds(leader: FrenoNode, followers: List[FrenoNode], rounds: int, prefix: str) -> List[Dict[str, float]]:
    results = []
    for i in range(rounds):
        follower = followers[i % len(followers)]
        app = f"{prefix}{i}-{uuid.uuid4().hex[:6]}"
        sent = time.monotonic()
        if i % 2:
            status, _ = follower.request("GET", f"/throttle-app/{app}", token=TOKEN)
            route = "freno"
        else:
            status, _ = follower.request("POST", "/api/v1/throttles", {"app": app}, TOKEN)
            route = "rest"
        acknowledged = time.monotonic()
        if status != 200:
            raise RuntimeError(f"the follower answered {status} to the throttle of {app}")
        delay = _until_denied(leader, app, acknowledged)
        results.append({"route": route, "ack_s": acknowledged - sent, "delay_s": delay})
        print(f"{prefix} round {i}: {route} ack {1000 * (acknowledged - sent):.1f} ms, "
              f"leader /check 417 after {1000 * delay:.1f} ms", flush=True)
        time.sleep(0.3)
    return results


def _digests(backend: MySQLSandbox, schema: str) -> Dict[str, int]:
    rows = backend.query(
        backend.primary,
        "select digest_text, count_star from performance_schema.events_statements_summary_by_digest "
        "where schema_name = %s",
        (schema,),
    )
    return {text or "": int(count) for text, count in rows}


def run_mysql(workdir: str, probe: MySQLSandbox, backend: MySQLSandbox, args) -> Dict[str, Any]:
    schema = f"freno_bench_{uuid.uuid4().hex[:8]}"
    backend.query(backend.primary, f"CREATE DATABASE `{schema}`")
    nodes = []
    for i in range(2):
        config = {
            "ListenPort": free_port(),
            "Domain": "bench",
            "BackendMySQLHost": "127.0.0.1",
            "BackendMySQLPort": backend.primary.port,
            "BackendMySQLSchema": schema,
            "BackendMySQLUser": "root",
            "ControlTokens": TOKENS,
            "Stores": {"MySQL": _store(probe)},
        }
        nodes.append(FrenoNode(f"mysql{i}", os.path.join(workdir, f"mysql{i}"), config))
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready(30)
        leader = _leader(nodes)
        follower = next(n for n in nodes if n is not leader)
        wait_for(lambda: _check(leader, "warmup") == 200, 30, what="/check 200 on the leader")
        time.sleep(1.0)
        rounds = _rounds(leader, [follower], args.rounds, "mysql")

        baseline = []
        for i in range(args.baseline_rounds):
            app = f"goapp{i}-{uuid.uuid4().hex[:6]}"
            conn = backend.connect(backend.primary, database=schema)
            try:
                with conn.cursor() as cursor:
                    cursor.execute(
                        "replace into throttled_apps (app_name, throttled_at, expires_at, ratio) "
                        "values (%s, now(), now() + interval 10 minute, -1)",
                        (app,),
                    )
                written = time.monotonic()
            finally:
                conn.close()
            delay = _until_denied(leader, app, written)
            baseline.append({"delay_s": delay})
            print(f"baseline round {i}: Go-style write, leader /check 417 after {1000 * delay:.1f} ms", flush=True)

        backend.query(backend.primary, "truncate table performance_schema.events_statements_summary_by_digest")
        time.sleep(args.load_seconds)
        digests = _digests(backend, schema)
        total = sum(digests.values())
        watch = sum(c for text, c in digests.items() if "freno_sequence" in text and text.lower().startswith("select"))
        reads = sum(c for text, c in digests.items() if "FROM `throttled_apps`" in text or "from throttled_apps" in text.lower())
        per_node = len(nodes) * args.load_seconds
        load = {
            "seconds": args.load_seconds,
            "nodes": len(nodes),
            "total_qps_per_node": total / per_node,
            "change_counter_qps_per_node": watch / per_node,
            "other_qps_per_node": (total - watch) / per_node,
            "state_reads_per_node": reads / per_node,
            "digests": digests,
        }
        print(
            f"backend load while idle: {load['total_qps_per_node']:.2f} statements/s per node, of which the change "
            f"counter {load['change_counter_qps_per_node']:.2f}/s and everything else "
            f"{load['other_qps_per_node']:.2f}/s (election, health, 10 s state poll)", flush=True,
        )
        return {"rounds": rounds, "baseline": baseline, "load": load}
    finally:
        for node in nodes:
            node.stop()


def run_raft(workdir: str, probe: MySQLSandbox, args) -> List[Dict[str, float]]:
    group = FrenoGroup(os.path.join(workdir, "raft"), size=3, store=_store(probe),
                       extra_config={"ControlTokens": TOKENS})
    try:
        group.start(30)
        leader = group.wait_leader(30)
        followers = [n for n in group.nodes if n is not leader]
        wait_for(lambda: _check(leader, "warmup") == 200, 30, what="/check 200 on the leader")
        wait_for(
            lambda: all((f.request("GET", "/api/v1/status")[1] or {}).get("leader") == leader.raft_address
                        for f in followers),
            30, what="the followers to name the leader",
        )
        return _rounds(leader, followers, args.rounds, "raft")
    finally:
        group.stop()


def summarize(values: List[float]) -> str:
    return f"median {1000 * statistics.median(values):.1f} ms, max {1000 * max(values):.1f} ms (n={len(values)})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--baseline-rounds", type=int, default=3)
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="freno-bench-control-")
    probe = MySQLSandbox(replicas=0)
    backend = MySQLSandbox(replicas=0, mariadbd_args=("--performance-schema=ON",))
    try:
        probe.start()
        backend.start()
        mysql = run_mysql(workdir, probe, backend, args)
        raft = run_raft(workdir, probe, args)
    finally:
        backend.stop()
        probe.stop()
    print("MySQL backend, follower command -> leader /check 417: "
          + summarize([r["delay_s"] for r in mysql["rounds"]]))
    if mysql["baseline"]:
        print("MySQL backend, Go-style table write (no change counter) -> leader /check 417: "
              + summarize([r["delay_s"] for r in mysql["baseline"]]))
    print("raft, follower command -> leader /check 417: " + summarize([r["delay_s"] for r in raft]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mysql": mysql, "raft": raft}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
