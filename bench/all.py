# -*- test-case-name: test.unit.test_bench_all -*-
"""
Every benchmark in one command: C{python -m bench.all [--quick] [--only
KEY,...] [--output PATH]} (C{make bench}).

It runs, one after the other and each in its own process (so a crash or a
hang of one is recorded and the others still run):

    - C{check}: C{bench.check_http} (the check path against a bare
      C{twisted.web} resource, wrk/hey);
    - C{probe}: C{bench.probe} (probing CPU, reactor lag, lag visibility),
      once per probe driver it offers;
    - C{failover}: C{bench.failover} (raft failover by SIGKILL and SIGSTOP,
      cold start of a group);
    - C{haproxy}: C{bench.haproxy_failover} (failover through HAProxy);
    - C{chaos}: C{bench.chaos} (a short chaos run);
    - C{commit}: C{bench.commit_latency} (raft commit latency with durable
      storage, syncing on and off).
    - C{control}: C{bench.control_latency} (follower command to the
      leader's C{/check}, MySQL backend and raft; the backend's query load).

It collects every round's figures (the C{--json} files of the benchmarks;
C{bench.probe}'s stdout, which it parses) and writes C{BENCHMARKS.md}
(L{bench.report.render}): the machine, each benchmark's method, and a table
of medians with their spread, targets and verdicts.

The full run takes 10 to 15 minutes on a 2-core machine. C{--quick} runs
each benchmark for a round or two (a smoke run of the whole pipeline, a
minute or two) and writes to a temporary directory unless C{--output} says
otherwise, so it never overwrites the committed C{BENCHMARKS.md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import attr

from bench import commit_latency
from bench.report import Metric, Section, Target, load_average, machine, render

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- turning each benchmark's output into metrics ---------------------------------


def check_metrics(data: dict) -> Tuple[List[Metric], List[str]]:
    """
    The check-path figures (C{bench.check_http --json}): per method, the
    check path and the bare resource, and the per-round ratio check/bare.
    """
    rounds = data["rounds"]
    metrics: List[Metric] = []
    for method in ("GET", "HEAD"):
        check, bare = rounds[f"check {method}"], rounds[f"bare {method}"]
        metrics += [
            Metric(f"{method} check path, throughput", "req/s", [r["rps"] for r in check], digits=0),
            Metric(f"{method} bare resource, throughput", "req/s", [r["rps"] for r in bare], digits=0),
            Metric(
                f"{method} ratio check / bare (paired rounds)",
                "",
                [c["rps"] / b["rps"] for c, b in zip(check, bare)],
                Target(">=", 0.70),
            ),
            Metric(f"{method} check path, p50 latency", "ms", [r["p50_ms"] for r in check]),
            Metric(f"{method} check path, p99 latency", "ms", [r["p99_ms"] for r in check]),
            Metric(f"{method} bare resource, p99 latency", "ms", [r["p99_ms"] for r in bare]),
        ]
    for method, rows in sorted(data.get("fixed_rate", {}).items()):
        metrics += [
            Metric(f"{method} at 2,000 req/s: achieved rate", "req/s", [r["rps"] for r in rows], digits=0),
            Metric(f"{method} at 2,000 req/s: p50 latency", "ms", [r["p50_ms"] for r in rows]),
            Metric(f"{method} at 2,000 req/s: p99 latency", "ms", [r["p99_ms"] for r in rows], Target("<", 10.0)),
        ]
    return metrics, []


_PROBE_RUN = re.compile(
    r"^N=(?P<n>\d+) run \d+ \(load average (?P<load>[\d.]+)\): (?P<pps>[\d.]+) probes/s, CPU (?P<cpu>[\d.]+)% of one core, "
    r"reactor lag p50 (?P<p50>[\d.]+) ms p99 (?P<p99>[\d.]+) ms max (?P<max>[\d.]+) ms, "
    r"errors (?P<errors>\d+)"
)
_PROBE_CROSSING = re.compile(
    r"crossing \d+: up agg (?P<up_agg>[-\d.]+) ms, 429 (?P<up_check>[-\d.]+) ms; "
    r"down agg (?P<down_agg>[-\d.]+) ms, 200 (?P<down_check>[-\d.]+) ms"
)


def probe_metrics(stdout: str) -> Tuple[List[Metric], List[str]]:
    """
    The probing figures, parsed from C{bench.probe}'s stdout (one line per
    load run and per lag crossing).

    @raise ValueError: when no load run line is found.
    """
    runs: Dict[int, List[Dict[str, float]]] = {}
    crossings: List[Dict[str, float]] = []
    for line in stdout.splitlines():
        m = _PROBE_RUN.search(line)
        if m:
            runs.setdefault(int(m["n"]), []).append(
                {k: float(v) for k, v in m.groupdict().items() if k != "n"}
            )
            continue
        m = _PROBE_CROSSING.search(line)
        if m:
            crossings.append({k: float(v) for k, v in m.groupdict().items()})
    if not runs:
        raise ValueError("no load-run line found in bench.probe's output")
    metrics: List[Metric] = []
    for n, rows in sorted(runs.items()):
        metrics += [
            Metric(f"{n} hosts: probes completed", "probes/s", [r["pps"] for r in rows], digits=0),
            Metric(f"{n} hosts: CPU", "% of a core", [r["cpu"] for r in rows], digits=1),
            Metric(
                f"{n} hosts: CPU per 1,000 probes/s",
                "% of a core",
                [r["cpu"] / (r["pps"] / 1000.0) for r in rows if r["pps"] > 0],
                Target("<=", 30.0),
                digits=1,
            ),
            Metric(f"{n} hosts: reactor lag p99", "ms", [r["p99"] for r in rows], Target("<", 5.0)),
            Metric(f"{n} hosts: reactor lag max", "ms", [r["max"] for r in rows], digits=1),
            Metric(f"{n} hosts: probe errors", "", [r["errors"] for r in rows], digits=0),
            Metric(f"{n} hosts: machine load average (1 min) at the run", "", [r["load"] for r in rows], digits=1),
        ]
    if crossings:
        metrics += [
            Metric("lag crosses threshold → aggregate above", "ms", [c["up_agg"] for c in crossings], digits=1),
            Metric(
                "lag crosses threshold → /check 429",
                "ms",
                [c["up_check"] for c in crossings],
                Target("<", 100.0),
                digits=1,
            ),
            Metric("lag back below → aggregate below", "ms", [c["down_agg"] for c in crossings], digits=1),
            Metric("lag back below → /check 200", "ms", [c["down_check"] for c in crossings], digits=1),
        ]
    return metrics, []


def failover_metrics(data: dict) -> Tuple[List[Metric], List[str]]:
    """
    The raft failover and cold-start figures (C{bench.failover --json}).
    """
    def values(kind: str, key: str) -> List[float]:
        return [s[key] for s in data.get(kind, [])]

    metrics = [
        Metric("SIGKILL leader → another node /leader-check 200", "s", values("kill", "leader_check"), digits=3),
        Metric(
            "SIGKILL leader → /check 200 on the new leader",
            "s",
            values("kill", "check"),
            Target("<=", 2.5),
            digits=3,
            note="original freno: 10.7 s",
        ),
        Metric("SIGSTOP leader → another node /leader-check 200", "s", values("stop", "leader_check"), digits=3),
        Metric("SIGSTOP leader → /check 200 on the new leader", "s", values("stop", "check"), digits=3),
        Metric(
            "cold start of 3 nodes → first /check 200",
            "s",
            values("cold", "check"),
            Target("<=", 3.0),
            digits=3,
            note="original freno: 10.2 s",
        ),
        Metric("cold start → all 3 nodes serve HTTP", "s", values("cold", "all_http_up"), digits=3),
    ]
    return metrics, []


def haproxy_metrics(data: dict) -> Tuple[List[Metric], List[str]]:
    """
    The failover-through-HAProxy figures (C{bench.haproxy_failover --json}).
    """
    metrics = [
        Metric(
            "non-200 window through HAProxy (kill → first 200)",
            "s",
            data["windows"],
            Target("<=", 3.0),
            digits=3,
            note="original freno (sample config): 10.6 s",
        ),
        Metric("non-200 answers per failover", "", data["errors"], digits=0),
        Metric(
            "200s served by a non-leader (whole run)",
            "",
            [data["non_leader_200"]],
            Target("<=", 0),
            digits=0,
        ),
    ]
    statuses = ", ".join(
        f"{'no answer' if k == '0' else k}: {v}" for k, v in data["statuses"].items()
    )
    notes = [f"{data['requests']} client requests through HAProxy; answers by status: {statuses}."]
    return metrics, notes


def chaos_metrics(data: dict) -> Tuple[List[Metric], List[str]]:
    """
    The chaos run's figures (C{bench.chaos --json}).
    """
    metrics: List[Metric] = []
    for kind, times in sorted(data["failover_times"].items()):
        metrics += [
            Metric(f"{kind} → another node /leader-check 200", "s", times["leader_check"], digits=3),
            Metric(f"{kind} → /check 200 on another node", "s", times["check"], digits=3),
        ]
    metrics += [
        Metric("violations (lost commands, 200s outside leadership)", "", [len(data["violations"])], Target("<=", 0), digits=0),
        Metric("acknowledged commands missing on the final leader", "", [data["missing_on_final_leader"]], Target("<=", 0), digits=0),
        Metric("acknowledged commands missing on some node", "", [data["missing_on_some_node"]], Target("<=", 0), digits=0),
        Metric("longest certain overlap of two nodes answering /check 200", "s", [data["longest_check_overlap"]], Target("<=", 2.0), digits=3),
    ]
    checks = ", ".join(f"{k}: {v}" for k, v in sorted(data["checks"].items()))
    notes = [
        f"{data['rounds_done']}/{data['rounds']} rounds ({data['kills']} kills, {data['freezes']} "
        f"freezes) in {data['elapsed']:.0f} s.",
        f"Commands sent {data['commands_sent']}, acknowledged {data['commands_acknowledged']}.",
        f"/check answers by status (sent to every node directly, followers included): {checks}.",
    ]
    notes += [f"violation: {v}" for v in data["violations"][:20]]
    return metrics, notes


def control_metrics(data: dict) -> Tuple[List[Metric], List[str]]:
    """
    The control-command figures (C{bench.control_latency --json}).
    """
    mysql, raft = data["mysql"], data["raft"]
    load = mysql["load"]
    metrics = [
        Metric(
            "MySQL backend: follower command acknowledged → leader /check 417",
            "s",
            [r["delay_s"] for r in mysql["rounds"]],
            Target("<", 1.0),
            digits=3,
            note="original freno: 9.8-9.9 s",
        ),
        Metric(
            "MySQL backend: Go-style table write → leader /check 417 (baseline, same run)",
            "s",
            [r["delay_s"] for r in mysql["baseline"]],
            digits=3,
        ),
        Metric(
            "raft: follower command acknowledged → leader /check 417",
            "s",
            [r["delay_s"] for r in raft],
            Target("<", 1.0),
            digits=4,
        ),
        Metric("MySQL backend: statements per second per node (idle)", "/s", [load["total_qps_per_node"]], digits=2),
        Metric("… of which change-counter reads", "/s", [load["change_counter_qps_per_node"]], digits=2),
    ]
    notes = [
        f"Backend load measured over {load['seconds']:.0f} s with {load['nodes']} nodes idle, from "
        "performance_schema statement digests of the backend schema."
    ]
    return metrics, notes


# -- the benchmarks ----------------------------------------------------------------


@attr.s(frozen=True, auto_attribs=True)
class Benchmark:
    """
    One benchmark to run: its module, its arguments (full and quick), how
    to describe it, and how to read its results (from the C{--json} file,
    or from stdout when C{uses_json} is false).
    """

    key: str
    title: str
    module: str
    full: Sequence[str]
    quick: Sequence[str]
    method: Callable[[Sequence[str]], str]
    parse: Callable
    uses_json: bool = True
    takes_workdir: bool = False
    timeout: float = 900.0


def _arg(args: Sequence[str], name: str, default: str) -> str:
    args = list(args)
    return args[args.index(name) + 1] if name in args else default


def _check_method(args):
    return f"""\
Two server processes on 127.0.0.1: the real site (`freno.http.site.build_site`, single node,
`LocalConsensus` leader, two clusters of three static hosts whose aggregated metrics a
`LoopingCall` refreshes every 50 ms) and, as the **baseline measured in the same run**, a bare
`twisted.web` leaf resource answering a JSON body of the same size (HEAD: status only). Each is
loaded with `wrk -t2 -c50` (50 keep-alive connections; HEAD through a Lua script) for
{_arg(args, '--duration', '5')} s per measurement, GET and HEAD on `/check/bench/mysql/c1`,
alternating check and bare, {_arg(args, '--rounds', '3')} rounds after a warm-up. The ratio
check/bare is computed per round (the two runs of a round are back to back) and its median
reported. Then fixed-rate runs, `hey -c 50 -q 40` (2,000 requests/s) for
{_arg(args, '--rate-duration', '10')} s per method against the check path,
{_arg(args, '--rate-rounds', '1')} rounds (hey reports latencies to 0.1 ms and includes its own
scheduling delays on the shared cores).
The load generator runs on the same 2 cores as the server, so absolute requests/s are bounded
by the machine, not by the server alone; the ratio is the meaningful figure. Targets (issue 2):
ratio ≥ 0.70; p99 < 10 ms at 2,000 requests/s."""


_DRIVERS = {
    "pymysql": "the `pymysql` metric source (PyMySQL through a 20-thread pool)",
    "native": "the `native` metric source (freno's own MySQL wire client on the reactor thread, no thread pool)",
}


def _probe_method(args):
    driver = _arg(args, "--driver", "pymysql")
    which = _DRIVERS.get(driver, f"the `{driver}` metric source")
    return f"""\
A MariaDB sandbox (a primary, two replicas, heartbeat every 20 ms) and, in the benchmark's own
process on the real reactor, the real `ProbeService` with {which}. Load: N
hosts as N separate connections probed every 50 ms with freno's heartbeat lag query (N × 20
probes/s), N in {{{_arg(args, '--hosts', '50,200')}}}; after a 2 s warm-up,
{_arg(args, '--runs', '3')} runs of {_arg(args, '--duration', '8')} s each measure this process's
CPU time (all threads) over wall time, probes completed per second, and the reactor's lag (a
10 ms `callLater` chain measuring its own lateness). Lag visibility, under a 50-host background
load: lag is injected on a replica ({_arg(args, '--crossings', '5')} crossings); measured from
the moment the real lag crosses the 1 s threshold to the aggregated metric going above it and to
`HEAD /check` answering 429 (polled every 2 ms), and back. The load average at each run is
listed: the probing process competes with everything else on the 2 cores, and the reactor-lag
figures in particular move with it. Targets (issue 3): 1,000 probes/s at most 30 % of one core;
reactor lag p99 < 5 ms; crossing → 429 < 100 ms."""


def _failover_method(args):
    return f"""\
Three real `twistd freno` processes in a raft group on loopback, one cluster whose only host is
the shared MariaDB with a constant metric (`select 0`), so `/check` answers 200 on a leader
that has probed. {_arg(args, '--rounds', '10')} rounds each of: SIGKILL the leader (then restart
it), SIGSTOP the leader (then SIGCONT it); measured from the signal to another node answering
`/leader-check` 200 and to `/check` 200 on it (polled every 10 ms). Cold start: 3 fresh nodes
(new data dirs) launched together; measured from the launch to the first `/check` 200 from any
of them (process start-up is included). Targets (issue 5): kill → `/check` 200 ≤ 2.5 s; cold
start → `/check` 200 ≤ 3 s."""


def _haproxy_method(args):
    return f"""\
The recommended deployment as `make run` builds it: a MariaDB replication sandbox (a primary, two
replicas, heartbeat), three `twistd freno` nodes in a raft group probing the replicas, and the real
HAProxy (Debian's) with the top-level `haproxy.cfg`, ports adapted. A client load runs through
HAProxy for the whole run: 4 threads, each sending `GET /check/...` on a keep-alive connection
with a 10 ms pause. {_arg(args, '--rounds', '10')} rounds: 1 s of steady state, SIGKILL the
leader, wait for the first 200 through HAProxy, restart the killed node and wait until it follows
the new leader. The window is from the kill to the end of the first request that started after
the kill and got 200; a monitor polls every node's `/leader-check` every 50 ms to count 200s
served by a node that was not the leader (the test's definition, `test/test_haproxy_failover.py`).
Target (issue 6): median window ≤ 3 s."""


def _chaos_method(args):
    return f"""\
A short run of the chaos test (issue 5): three `twistd freno` nodes under a load of `/check`
requests to every node, `/leader-check` sampling, and control commands (`/throttle-app`,
`/skip-host`) with unique names; {_arg(args, '--rounds', '20')} rounds, each a SIGKILL (then
restart) or a SIGSTOP of 2.5–4 s (then SIGCONT) of the leader. Afterwards every node's state is
read and checked: no acknowledged command lost (on the final leader, or on any node after
catch-up), no `/check` 200 outside a node's own leadership, no two nodes answering 200 together
for longer than the 2 s deposition window. One run, so the counts have n = 1; the failover times
are over the rounds of each kind."""


def _control_method(args):
    return f"""\
Two `twistd freno` nodes on the MySQL backend (tables in a sandbox primary started with
`--performance-schema=ON`; another sandbox primary is the probed host, constant metric), then a
3-node raft group of processes on the same probed host. {_arg(args, '--rounds', '10')} rounds per
backend: a throttle sent to a follower (alternately `GET /throttle-app/<app>` and
`POST /api/v1/throttles`, with a token); from the follower's 200, the leader's
`/check/<app>/mysql/main` is polled every 5 ms until it answers 417. Baseline in the same run
({_arg(args, '--baseline-rounds', '3')} rounds): a throttle row written the way a Go freno node
writes it (no audit record, so no change-counter move), i.e. freno's 10 s poll. Load: every
statement the two idle nodes send to the backend schema over {_arg(args, '--load-seconds', '20')} s,
per node. Target (issue 11): within 1 s on both backends."""


def benchmarks(probe_drivers: Sequence[str] = ()) -> List[Benchmark]:
    """
    The benchmarks, in running order; C{bench.probe} once per driver in
    C{probe_drivers} (once, with its default, when empty).
    """
    probe_full = ["--runs", "4", "--duration", "8", "--hosts", "50,200", "--crossings", "5"]
    probe_quick = ["--runs", "1", "--duration", "2", "--hosts", "50", "--crossings", "1"]
    probes = [
        Benchmark(
            f"probe-{d}" if d else "probe",
            f"Probing, {d} driver" if d else "Probing",
            "bench.probe",
            probe_full + (["--driver", d] if d else []),
            probe_quick + (["--driver", d] if d else []),
            _probe_method,
            probe_metrics,
            uses_json=False,
        )
        for d in (probe_drivers or [""])
    ]
    return [
        Benchmark(
            "check",
            "Check path vs bare twisted.web",
            "bench.check_http",
            ["--rounds", "6", "--duration", "5", "--rate-duration", "8", "--rate-rounds", "3"],
            ["--rounds", "1", "--duration", "1", "--rate-duration", "1", "--rate-rounds", "1"],
            _check_method,
            check_metrics,
        ),
        *probes,
        Benchmark(
            "failover",
            "Raft failover and cold start",
            "bench.failover",
            ["--rounds", "10"],
            ["--rounds", "1"],
            _failover_method,
            failover_metrics,
        ),
        Benchmark(
            "haproxy",
            "Failover through HAProxy",
            "bench.haproxy_failover",
            ["--rounds", "15"],
            ["--rounds", "1"],
            _haproxy_method,
            haproxy_metrics,
        ),
        Benchmark(
            "chaos",
            "Chaos run",
            "bench.chaos",
            ["--rounds", "12"],
            ["--rounds", "2"],
            _chaos_method,
            chaos_metrics,
            takes_workdir=True,
        ),
        Benchmark(
            "commit",
            "Raft commit latency with durable storage",
            "bench.commit_latency",
            ["--rounds", "10", "--commands", "200"],
            ["--rounds", "1", "--commands", "20"],
            commit_latency.method,
            commit_latency.metrics,
            takes_workdir=True,
        ),
        Benchmark(
            "control",
            "Control commands: follower to leader's /check",
            "bench.control_latency",
            ["--rounds", "10", "--baseline-rounds", "3", "--load-seconds", "20"],
            ["--rounds", "2", "--baseline-rounds", "1", "--load-seconds", "3"],
            _control_method,
            control_metrics,
        ),
    ]


def probe_drivers() -> List[str]:
    """
    The drivers C{bench.probe --driver} accepts (its C{DRIVERS}), asked of
    a child process so that this one does not import the reactor; none if
    it has no such option.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from bench.probe import DRIVERS; print(','.join(DRIVERS))"],
            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=_env(),
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return [d.strip() for d in done.stdout.strip().split(",") if d.strip()]


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_one(bench: Benchmark, quick: bool, workdir: str) -> Section:
    """
    Run C{bench} in its own process, echoing its output, and read its figures.
    """
    args = list(bench.quick if quick else bench.full)
    json_path = os.path.join(workdir, f"{bench.key}.json")
    command = ["python", "-m", bench.module, *args]
    argv = [sys.executable, "-m", bench.module, *args]
    if bench.uses_json:
        argv += ["--json", json_path]
    if bench.takes_workdir:
        argv += ["--workdir", os.path.join(workdir, bench.key)]
    print(f"\n=== {bench.title}: {' '.join(command)}", flush=True)
    began = time.monotonic()
    lines: List[str] = []
    error: Optional[str] = None
    with open(os.path.join(workdir, f"{bench.key}.log"), "w") as log:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=REPO_ROOT, env=_env(),
        )

        def echo() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                log.write(line)
                print(f"  {line}", end="", flush=True)

        reader = threading.Thread(target=echo, daemon=True)
        reader.start()
        try:
            proc.wait(bench.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # by pid: our own child
            proc.wait()
            error = f"timed out after {bench.timeout:.0f} s"
        reader.join(10)
    seconds = time.monotonic() - began
    output = "".join(lines)
    metrics: List[Metric] = []
    notes: List[str] = []
    try:
        if bench.uses_json:
            if not os.path.exists(json_path):
                raise ValueError(f"no results written (exit status {proc.returncode})")
            with open(json_path) as f:
                metrics, notes = bench.parse(json.load(f))
        else:
            metrics, notes = bench.parse(output)
    except (ValueError, KeyError, TypeError) as e:
        tail = "\n".join(output.splitlines()[-25:])
        error = f"{error + '; ' if error else ''}{e}\n{tail}"
    return Section(
        bench.key, bench.title, " ".join(command), bench.method(args), metrics, notes, error, seconds
    )


def main(argv=None) -> int:
    """
    Run the benchmarks and write the report; exit status 1 if one failed
    to complete.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a round or two of each (smoke run)")
    parser.add_argument("--only", default="", help="comma-separated keys: check,probe,failover,haproxy,chaos,commit,control")
    parser.add_argument("--output", default=None, help="where to write the report")
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="freno-bench-")
    output = args.output or (
        os.path.join(workdir, "BENCHMARKS.md") if args.quick else os.path.join(REPO_ROOT, "BENCHMARKS.md")
    )
    selected = benchmarks(probe_drivers())
    if args.only:
        keys = {k.strip() for k in args.only.split(",") if k.strip()}
        unknown = keys - {b.key.split("-")[0] for b in selected}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        selected = [b for b in selected if b.key.split("-")[0] in keys]
    command = "python -m bench.all" + (" --quick" if args.quick else "") + (
        f" --only {args.only}" if args.only else ""
    )
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    began = time.monotonic()
    info = machine()
    load_start = load_average()
    sections = [run_one(b, args.quick, workdir) for b in selected]
    load_end = load_average()
    text = render(info, load_start, load_end, sections, command, started, time.monotonic() - began)
    with open(output, "w") as f:
        f.write(text)
    print(f"\nwrote {output} (logs and raw figures in {workdir})")
    failed = [s.title for s in sections if s.error is not None]
    if failed:
        print(f"did not complete: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
