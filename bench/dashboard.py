# -*- test-case-name: test.unit.test_bench_dashboard -*-
"""
The status page's cost on the leader: C{python -m bench.dashboard [--rounds
N] [--seconds S] [--soak S] [--json PATH]}.

The deployment C{make run} builds (a MariaDB replication sandbox with two
replicas and a heartbeat writer, three C{twistd freno} nodes in a raft
group probing the replicas as cluster C{main}), and simulated open pages:
each page is a thread with its own keep-alive connection to the leader that,
once a second, asks what the real page asks (C{/dashboard/state.json},
C{/api/v1/history}, the whole buffer once and then C{?since=} the last
point it holds, and C{/dashboard/clusters/main.json}), each page at its
own phase within the second.

    - CPU: each round measures the leader's CPU time (user + system, from
      C{/proc/<pid>/stat}) over C{--seconds} of wall time with 0, 1 and 10
      pages open, in that order; the extra CPU of 10 pages (and of 1) is
      paired per round against 0 pages in the same round.
    - Memory: a soak of C{--soak} seconds with 10 pages open samples the
      leader's resident set (C{VmRSS}) every few seconds; its growth from
      the first sample to the last, and over the soak's second half, is
      reported (the history buffer is preallocated, the JSON cached per
      second: nothing should grow).

Every page request that does not answer 200 is counted; a round with such
failures is a miss and gives no CPU figure. Medians over the rounds are
printed; C{--json PATH} writes every round's figures (for C{bench.all}).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Dict, List, Sequence, Tuple

from bench.report import Metric, Target

#: The history route (asked whole once, then C{?since=} the last point held).
HISTORY = "/api/v1/history"
#: What a page asks once a second.
PATHS = ("/dashboard/state.json", HISTORY, "/dashboard/clusters/main.json")
#: Page counts measured each round.
PAGES = (0, 1, 10)
#: Target: the extra CPU of ten open pages, % of one core.
EXTRA_CPU_TARGET = 2.0
#: Target: resident-set growth over the soak's second half, MiB.
RSS_GROWTH_TARGET = 2.0
#: Seconds between resident-set samples during the soak.
RSS_EVERY = 5.0


def cpu_seconds(pid: int) -> float:
    """
    C{pid}'s CPU time so far (user + system), in seconds.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_kib(pid: int) -> int:
    """
    C{pid}'s resident set size, KiB.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ValueError(f"no VmRSS for {pid}")


class Pages:
    """
    C{count} simulated pages polling C{port} once a second until
    L{stop}; C{requests} and C{failures} count their requests.
    """

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.requests = 0
        self.failures: Dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._page, args=(i,), daemon=True) for i in range(count)
        ]

    def start(self) -> "Pages":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _fail(self, kind: str) -> None:
        with self._lock:
            self.failures[kind] = self.failures.get(kind, 0) + 1

    def _page(self, index: int) -> None:
        phase = index / max(1, self.count)
        start = time.monotonic() + phase
        conn = None
        tick = 0
        last = None
        while not self._stop.is_set():
            wait = start + tick - time.monotonic()
            tick += 1
            if wait > 0 and self._stop.wait(wait):
                break
            for path in PATHS:
                history = path == HISTORY
                if history and last is not None:
                    path = f"{HISTORY}?since={last}"
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                    conn.request("GET", path)
                    response = conn.getresponse()
                    body = response.read()
                    with self._lock:
                        self.requests += 1
                    if response.status != 200:
                        self._fail(f"HTTP {response.status}")
                    elif history:
                        last = last_point(json.loads(body), last)
                except (OSError, http.client.HTTPException) as e:
                    self._fail(type(e).__name__)
                    if conn is not None:
                        conn.close()
                    conn = None
        if conn is not None:
            conn.close()


def last_point(document: dict, last):
    """
    The time of the newest point in a history C{document}, or C{last}
    when it has none newer.
    """
    for cluster in document["clusters"]:
        if cluster["points"]:
            t = cluster["points"][-1][0]
            if last is None or t > last:
                last = t
    return last


def measure_cpu(pid: int, port: int, pages: int, seconds: float) -> Dict[str, float]:
    """
    The leader's CPU (% of one core) over C{seconds} with C{pages} pages
    open (after a 2 s warm-up), and the pages' request counts.
    """
    load = Pages(port, pages).start()
    try:
        time.sleep(2.0)
        requests0 = load.requests
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        requests = load.requests - requests0
    finally:
        load.stop()
    return {
        "pages": pages,
        "cpu_pct": 100.0 * (cpu1 - cpu0) / (wall1 - wall0),
        "requests": requests,
        "errors": sum(load.failures.values()),
        "error_kinds": dict(load.failures),
        "load_average": os.getloadavg()[0],
    }


def soak(pid: int, port: int, pages: int, seconds: float) -> Dict[str, object]:
    """
    C{pages} pages open for C{seconds}; the leader's resident set sampled
    every L{RSS_EVERY} seconds.
    """
    load = Pages(port, pages).start()
    samples: List[Tuple[float, int]] = []
    began = time.monotonic()
    try:
        while True:
            now = time.monotonic() - began
            samples.append((round(now, 1), rss_kib(pid)))
            if now >= seconds:
                break
            time.sleep(min(RSS_EVERY, max(0.1, seconds - now)))
    finally:
        load.stop()
    return {
        "pages": pages,
        "seconds": seconds,
        "rss_kib": samples,
        "requests": load.requests,
        "errors": sum(load.failures.values()),
        "error_kinds": dict(load.failures),
    }


def growth_mib(samples: Sequence[Sequence[float]], from_half: bool = False) -> float:
    """
    Resident-set growth, MiB, from the first sample (or the one at half
    the run) to the last.
    """
    if from_half:
        end = samples[-1][0]
        first = next(s for s in samples if s[0] >= end / 2)
    else:
        first = samples[0]
    return (samples[-1][1] - first[1]) / 1024.0


def metrics(data: dict) -> Tuple[List[Metric], List[str]]:
    """
    The figures of a C{--json} file, for C{bench.all}: rounds with failed
    page requests are a miss judged on every round and give no CPU
    figures.

    @raise ValueError: there are no rounds.
    """
    rounds = data["rounds"]
    if not rounds:
        raise ValueError("no rounds")
    out: List[Metric] = []
    notes: List[str] = []
    clean = [r for r in rounds if not any(m["errors"] for m in r)]
    for i, r in enumerate(rounds):
        for m in r:
            if m["errors"]:
                notes.append(
                    f"round {i + 1}, {m['pages']} pages: {m['errors']} failed page requests "
                    f"({', '.join(f'{k}: {v}' for k, v in sorted(m['error_kinds'].items()))}); "
                    "its CPU figures are left out."
                )
    by = [{m["pages"]: m for m in r} for r in clean]
    if not data.get("same_leader", True):
        notes.append("Leadership moved during the run: later figures may be another node's.")
    out.append(
        Metric(
            "failed page requests", "", [sum(m["errors"] for m in r) for r in rounds] + [data["soak"]["errors"]],
            Target("<=", 0), digits=0, every=True,
        )
    )
    for pages in PAGES:
        out.append(
            Metric(f"leader CPU, {pages} page{'' if pages == 1 else 's'} open", "% core",
                   [r[pages]["cpu_pct"] for r in by])
        )
    out.append(Metric("extra leader CPU, 1 page (paired with 0)", "% core",
                      [r[1]["cpu_pct"] - r[0]["cpu_pct"] for r in by]))
    out.append(Metric("extra leader CPU, 10 pages (paired with 0)", "% core",
                      [r[10]["cpu_pct"] - r[0]["cpu_pct"] for r in by], Target("<=", EXTRA_CPU_TARGET)))
    samples = data["soak"]["rss_kib"]
    out.append(Metric(f"leader RSS growth, {data['soak']['seconds']:g} s with 10 pages", "MiB",
                      [growth_mib(samples)]))
    out.append(Metric("leader RSS growth, the soak's second half", "MiB",
                      [growth_mib(samples, from_half=True)], Target("<=", RSS_GROWTH_TARGET)))
    notes.insert(0, f"{len(rounds)} rounds of {data['seconds']:g} s per page count; the leader's RSS went "
                    f"from {samples[0][1] / 1024:.1f} MiB to {samples[-1][1] / 1024:.1f} MiB during the soak.")
    return out, notes


def method(args: Sequence[str]) -> str:
    """
    How the benchmark runs, for BENCHMARKS.md.
    """
    args = list(args)

    def arg(name: str, default: str) -> str:
        return args[args.index(name) + 1] if name in args else default

    return f"""\
The deployment `make run` builds (a MariaDB sandbox with two replicas and a heartbeat writer; three `twistd freno`
nodes in a raft group probing the replicas as cluster `main`) and simulated open status pages: each is a thread with
its own keep-alive connection to the leader asking, once a second at its own phase, what the real page asks
(`/dashboard/state.json`, `/api/v1/history` whole once and then `?since=` its last point, `/dashboard/clusters/main.json`). {arg('--rounds', '4')} rounds; each
measures the leader's CPU time (user + system, `/proc/<pid>/stat`) over {arg('--seconds', '15')} s with 0, 1 and 10
pages open (after a 2 s warm-up each); the extra CPU of 1 and 10 pages is paired per round against 0 pages. Then a
soak of {arg('--soak', '240')} s with 10 pages samples the leader's resident set every {RSS_EVERY:g} s. A round with a
failed page request is a miss and gives no CPU figure. Targets: 10 open pages cost the leader at most
{EXTRA_CPU_TARGET:g} % of one core more than none (the JSON is built once a second whoever asks: D79); the resident
set grows by at most {RSS_GROWTH_TARGET:g} MiB over the soak's second half."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--soak", type=float, default=240.0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not args.seconds > 0 or not args.soak > 0:
        parser.error("--rounds must be >= 1, --seconds and --soak > 0")

    from freno.sandbox.cluster import store_for
    from freno.sandbox.mysql import MySQLSandbox
    from freno.sandbox.nodes import FrenoGroup
    from freno.sandbox.processes import wait_for

    workdir = tempfile.mkdtemp(prefix="freno-bench-dashboard-")
    sandbox = MySQLSandbox(replicas=2)
    group = None
    try:
        sandbox.start()
        group = FrenoGroup(os.path.join(workdir, "freno"), size=3, store=store_for(sandbox))
        group.start()
        leader = group.wait_leader(30)
        wait_for(lambda: leader.get("/check/bench/mysql/main")[0] == 200, 30, what="/check 200")
        rounds = []
        for i in range(args.rounds):
            row = [measure_cpu(leader.pid, leader.http_port, pages, args.seconds) for pages in PAGES]
            rounds.append(row)
            print(f"round {i + 1}: " + ", ".join(
                f"{m['pages']} pages {m['cpu_pct']:.2f} % ({m['requests']} requests, {m['errors']} failed)"
                for m in row), flush=True)
        soaked = soak(leader.pid, leader.http_port, 10, args.soak)
        samples = soaked["rss_kib"]
        print(f"soak: {soaked['seconds']:g} s with 10 pages, {soaked['requests']} requests, "
              f"{soaked['errors']} failed; RSS {samples[0][1]} -> {samples[-1][1]} KiB "
              f"(second half {growth_mib(samples, True):+.2f} MiB)", flush=True)
        still_leader = group.leaders() == [leader]
        if not still_leader:
            print("warning: leadership moved during the run", flush=True)
    finally:
        if group is not None:
            group.stop()
        sandbox.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    extra = [r[2]["cpu_pct"] - r[0]["cpu_pct"] for r in rounds]
    print(f"extra leader CPU of 10 pages: median {statistics.median(extra):.2f} % of one core "
          f"(min {min(extra):.2f}, max {max(extra):.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"rounds": rounds, "seconds": args.seconds, "soak": soaked, "same_leader": still_leader},
                f, indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
