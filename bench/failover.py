"""
Failover benchmark: C{python -m bench.failover [--rounds N] [--only kill|stop|cold]
[--json PATH]}.

Real C{twistd freno} processes on loopback (L{freno.sandbox.nodes}), with one
cluster C{main} whose only host is a MariaDB sandbox primary that the
benchmark starts and stops (L{freno.sandbox.mysql}) and a constant metric
query (L{freno.sandbox.cluster.constant_store}), so C{/check} answers 200 on
the leader once it has probed.

    - C{kill}: SIGKILL the leader of a 3-node group; time until another node
      answers C{/leader-check} 200, and until C{/check} answers 200 on it.
      The killed node is restarted before the next round.
    - C{stop}: the same with SIGSTOP; the frozen node is thawed (and must
      answer C{/leader-check} 404) before the next round.
    - C{cold}: launch 3 fresh nodes (new data dirs); time until the first
      C{/check} 200 from any of them (and, for reference, until all three
      processes serve HTTP: on a loaded machine process start-up dominates).

Medians over C{--rounds} (default 10). Targets (issue 5): kill to first
correct C{/check} on the new leader at most 2.5 s; cold start to first
C{/check} 200 at most 3 s. (The original freno: 10.7 s and 10.2 s.)
C{--json PATH} also writes every round's figures there (for C{bench.all}).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Dict, List

from freno.sandbox.cluster import constant_store
from freno.sandbox.mysql import MySQLSandbox
from freno.sandbox.nodes import FrenoGroup, FrenoNode, wait_for

CHECK = "/check/bench/mysql/main"
POLL = 0.01


def _check_ok(node: FrenoNode) -> bool:
    return node.get(CHECK, timeout=0.3)[0] == 200


def _leader_ok(node: FrenoNode) -> bool:
    return node.get("/leader-check", timeout=0.3)[0] == 200


def _until(predicate, timeout: float = 20.0) -> float:
    """
    Poll C{predicate} every 10 ms; return the monotonic time it held.
    """
    wait_for(predicate, timeout, POLL)
    return time.monotonic()


def _failover_round(group: FrenoGroup, how: str) -> Dict[str, float]:
    leader = group.wait_leader(timeout=20)
    _until(lambda: _check_ok(leader))
    others = [n for n in group.nodes if n is not leader]
    # let followers be connected and caught up before the fault
    _until(lambda: all(n.get("/raft/leader", timeout=0.3)[0] == 200 for n in others))
    # The clock starts at the signal, as in bench.haproxy_failover and
    # bench.chaos: kill() also reaps the process, which takes a moment.
    start = time.monotonic()
    (leader.kill if how == "kill" else leader.freeze)()
    found: List[FrenoNode] = []

    def new_leader():
        for n in others:
            if _leader_ok(n):
                found.append(n)
                return True
        return False

    t_leader = _until(new_leader)
    new = found[0]
    t_check = _until(lambda: _check_ok(new))
    if how == "kill":
        leader.start()
        leader.wait_ready(30)
    else:
        leader.thaw()
        if _leader_ok(leader):
            raise SystemExit("a thawed leader still answered /leader-check 200")
    _until(lambda: leader.get("/raft/leader", timeout=0.3)[0] == 200)
    return {"leader_check": t_leader - start, "check": t_check - start}


def _cold_round(workdir: str, store: dict) -> Dict[str, float]:
    group = FrenoGroup(workdir, size=3, store=store)
    start = time.monotonic()
    try:
        for node in group.nodes:
            node.start()
        t = _until(lambda: any(n.running() and _check_ok(n) for n in group.nodes), 30)
        http = _until(lambda: all(n.get("/lb-check", timeout=0.3)[0] == 200 for n in group.nodes))
        return {"check": t - start, "all_http_up": http - start}
    finally:
        group.stop()


def _report(name: str, samples: List[Dict[str, float]], targets: Dict[str, float]) -> None:
    for key in samples[0]:
        values = sorted(s[key] for s in samples)
        median = statistics.median(values)
        target = targets.get(key)
        verdict = "" if target is None else (" ok" if median <= target else " MISSED")
        print(
            f"{name:5s} {key:13s} median {median:6.3f}s  min {values[0]:6.3f}s  "
            f"max {values[-1]:6.3f}s  n={len(values)}"
            + (f"  target <= {target}s{verdict}" if target is not None else "")
        )
    sys.stdout.flush()


def main(argv=None) -> int:
    """
    Run the rounds and print medians.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--only", choices=["kill", "stop", "cold"], default=None)
    parser.add_argument("--json", default=None, help="write every round's figures to this file")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="freno-failover-")
    kinds = [args.only] if args.only else ["kill", "stop", "cold"]
    measured: Dict[str, List[Dict[str, float]]] = {}
    sandbox = MySQLSandbox(os.path.join(workdir, "mysql"), replicas=0)
    sandbox.start()  # its atexit hook stops it, should a round fail
    store = constant_store(sandbox)
    for how in kinds:
        if how == "cold":
            samples = [
                _cold_round(os.path.join(workdir, f"cold{i}"), store) for i in range(args.rounds)
            ]
            _report("cold", samples, {"check": 3.0})
            measured[how] = samples
            continue
        group = FrenoGroup(os.path.join(workdir, how), size=3, store=store)
        try:
            group.start(30)
            samples = [_failover_round(group, how) for _ in range(args.rounds)]
        finally:
            group.stop()
        _report(how, samples, {"check": 2.5} if how == "kill" else {})
        measured[how] = samples
    sandbox.stop()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(measured, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
