"""
Client benchmark: C{python -m bench.client_check [--rounds N] [--checks N]
[--json PATH]}.

What a script pays per check with L{freno.client.FrenoClient}, against one
real C{twistd freno} node probing a MariaDB sandbox (one replica), checks
answered 200. Each round runs C{--checks} sequential checks three ways, in
the same process and order:

    - C{reused}: one client, its keep-alive connection reused (the default);
    - C{fresh}: the same client code with a new transport per check, so every
      check opens a TCP connection (what reuse saves);
    - C{urllib}: C{urllib.request.urlopen} per check, for reference (what a
      script without the library typically does).

It prints medians over C{--rounds} (default 5) of checks per second and of
the p50/p99 latency of one check, and the per-round ratio reused / fresh.
No target: the figures say what connection reuse buys on this machine.
Not run by C{bench.all} (yet): run it on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from typing import Callable, Dict, List

from freno.client import FrenoClient
from freno.client.http import HTTPTransport

APP, CLUSTER = "bench-client", "main"


def _percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(check: Callable[[], bool], checks: int) -> Dict[str, float]:
    latencies = []
    started = time.perf_counter()
    for _ in range(checks):
        t = time.perf_counter()
        if not check():
            raise RuntimeError("a check was not allowed")
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    return {
        "rps": checks / elapsed,
        "p50_ms": _percentile(latencies, 0.5) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def _urllib_check(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/check/{APP}/mysql/{CLUSTER}", timeout=2) as response:
        response.read()
        return response.status == 200


def run(rounds: int, checks: int) -> Dict[str, List[Dict[str, float]]]:
    """
    Start a sandbox and a node, run the rounds, stop everything.
    """
    from freno.sandbox.cluster import store_for
    from freno.sandbox.mysql import MySQLSandbox
    from freno.sandbox.nodes import FrenoGroup, wait_for

    results: Dict[str, List[Dict[str, float]]] = {"reused": [], "fresh": [], "urllib": []}
    workdir = tempfile.mkdtemp(prefix="freno-bench-client-")
    sandbox = MySQLSandbox(os.path.join(workdir, "mysql"), replicas=1)
    group = None
    try:
        sandbox.start()
        group = FrenoGroup(os.path.join(workdir, "freno"), size=1, store=store_for(sandbox))
        group.start()
        url = group.wait_leader(30).url
        client = FrenoClient(url)
        wait_for(lambda: client.check(APP, CLUSTER).allowed, 30, what="/check 200")

        def fresh() -> bool:
            transport = HTTPTransport()
            try:
                return FrenoClient(url, transport=transport).check(APP, CLUSTER).allowed
            finally:
                transport.close()

        for index in range(rounds):
            results["reused"].append(_measure(lambda: client.check(APP, CLUSTER).allowed, checks))
            results["fresh"].append(_measure(fresh, checks))
            results["urllib"].append(_measure(lambda: _urllib_check(url), checks))
            print(f"round {index + 1}: " + ", ".join(
                f"{k} {v[-1]['rps']:.0f}/s p50 {v[-1]['p50_ms']:.2f} ms" for k, v in results.items()
            ), flush=True)
        client.close()
    finally:
        if group is not None:
            group.stop()
        sandbox.stop()
    return results


def main(argv=None) -> int:
    """
    Run the benchmark and print medians.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--json", default=None, help="write every round's figures to this file")
    args = parser.parse_args(argv)
    try:
        results = run(args.rounds, args.checks)
    except Exception as e:  # a benchmark that errs reports a miss, never a number
        print(f"MISS: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for name, rows in results.items():
        print(
            f"{name:7s} median {statistics.median(r['rps'] for r in rows):7.0f} checks/s, "
            f"p50 {statistics.median(r['p50_ms'] for r in rows):.2f} ms, "
            f"p99 {statistics.median(r['p99_ms'] for r in rows):.2f} ms "
            f"(rounds: {', '.join(format(r['rps'], '.0f') for r in rows)})"
        )
    ratios = [r["rps"] / f["rps"] for r, f in zip(results["reused"], results["fresh"])]
    print(f"reused / fresh throughput: median {statistics.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": results, "ratio_reused_fresh": ratios}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
