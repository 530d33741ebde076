# -*- test-case-name: test.unit.test_bench_all -*-
"""
Every benchmark in one command: C{python -m bench.all [--quick] [--only
KEY,...] [--output PATH]} (C{make bench}).

It runs, one after the other and each in its own process (so a crash or a
hang of one is recorded and the others still run):

    - C{check}: C{bench.check_http} (the check path, on a single node and on
      the leader of a probing 3-node group, against a bare C{twisted.web}
      resource; a fixed rate; 200 clients opening a connection per request;
      saturation);
    - C{probe}: C{bench.probe} (probing CPU, failures, reactor lag, lag
      visibility), once per probe driver it offers, the default first;
    - C{failover}: C{bench.failover} (raft failover by SIGKILL and SIGSTOP,
      cold start of a group);
    - C{haproxy}: C{bench.haproxy_failover} (failover through HAProxy);
    - C{rolling}: C{bench.rolling_restart} (a rolling restart of a group
      behind HAProxy under load, and a SIGKILL of the leader to compare);
    - C{chaos}: C{bench.chaos} (a short chaos run);
    - C{commit}: C{bench.commit_latency} (raft commit latency with durable
      storage, syncing on and off);
    - C{control}: C{bench.control_latency} (follower command to the
      leader's C{/check}, MySQL backend and raft; the backend's query load);
    - C{hysteresis}: C{bench.hysteresis} (200/429 transitions per minute of
      a writer that backs off, with and without C{ResumeThreshold});
    - C{membership}: C{bench.membership} (a fourth member added and removed
      under load: failed checks and commands, latencies).
    - C{dashboard}: C{bench.dashboard} (the leader's CPU with 0, 1 and 10
      status pages open; its memory over a soak with 10).

It collects every round's figures (the C{--json} file of each benchmark,
read by L{bench.readers}) and writes C{BENCHMARKS.md}
(L{bench.report.render}): the machine, each benchmark's method, and a table
of medians with their spread, targets and verdicts.

A failure cannot become a result (L{judge}): a benchmark process that exits
non-zero, times out, writes no C{--json} file or one its reader cannot read
is a failed run, shown as failed in the summary with the reason and the tail
of its output, and none of its figures are reported. A benchmark exits 0
when it measured what it set out to (whether or not the figures meet their
targets: the report judges those) and non-zero when it could not. Errors
inside a completed run (failed probes, failed requests, answers other than
the 2xx that was due) are figures: the readers report them as misses judged
on every round and leave the erring rounds' other figures out.

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
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

import attr

from bench import commit_latency, dashboard, hysteresis, membership, readers, rolling_restart
from bench.report import Section, load_average, machine, render

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- the benchmarks ----------------------------------------------------------------


@attr.s(frozen=True, auto_attribs=True)
class Benchmark:
    """
    One benchmark to run: its module, its arguments (full and quick), how
    to describe it, and how to read its C{--json} results (a function of
    L{bench.readers}).
    """

    key: str
    title: str
    module: str
    full: Sequence[str]
    quick: Sequence[str]
    method: Callable[[Sequence[str]], str]
    parse: Callable
    takes_workdir: bool = False
    timeout: float = 900.0


def _arg(args: Sequence[str], name: str, default: str) -> str:
    args = list(args)
    return args[args.index(name) + 1] if name in args else default


def _check_method(args):
    from freno.config.model import ProbeSettings

    return f"""\
Four servers on 127.0.0.1, up for the whole run: the **baseline**, a bare `twisted.web` leaf
resource answering a JSON body of the same size (HEAD: status only), measured in the same run;
the check path alone (`freno.http.site.build_site` in its own process, single node,
`LocalConsensus` leader, two clusters of three static hosts whose aggregated metrics a
`LoopingCall` refreshes every 50 ms, no raft and no probing), with the fast check channel (the
default) and with `CheckFastPath` off (the twisted.web check path, for comparison); and **what
users run**: the
leader of a 3-node `twistd freno` group (raft, generated password) probing its two clusters
(each listing both replicas of a MariaDB sandbox with a heartbeat writer, freno's heartbeat
query, the default probe settings: the `{ProbeSettings().driver}` driver) on
`/check/x/mysql/main`. Each round loads each server in turn for
{_arg(args, '--duration', '5')} s, GET with `wrk -t1 -c50` and HEAD with `hey -c 50 -m HEAD` (50
keep-alive connections), {_arg(args, '--rounds', '3')} rounds after a 1 s warm-up of each; the
ratios to the bare resource are computed per round (the runs of a round are back to back) and
their median reported. Fixed rate: `hey -c 50 -q 40 -z {_arg(args, '--rate-duration', '8')}s`
(hey's rate limit is per worker: 2,000 requests/s in all; a worker waits for its answer before
its next request, so a slow answer delays the next one instead of queueing it), GET and HEAD, on
the leader and on the bare resource, {_arg(args, '--rate-rounds', '1')} rounds. 200 clients that
each open a new connection per request (issue 9):
`hey -n {_arg(args, '--backlog-requests', '16000')} -c 200 -disable-keepalive -m HEAD -o csv` on
the leader, {_arg(args, '--backlog-runs', '3')} runs (a fixed count instead of the issue's
`-z 8s`: hey's per-request CSV leaves failed requests out, and the shortfall from the count is
how many failed); slowest request, p99 and requests over 200 ms per run. Saturation (issue 15):
`wrk -t1 -c50` GET on the leader for {_arg(args, '--saturation', '60')} s while every node's
`/leader-check` is polled every 100 ms, a `GET /check` every 100 ms on its own connection records
what the leader answers, the raft term of every node is read from `/metrics` before and after,
the probe counters from the leader's `/debug/vars` before and after, and its reactor lag (the
`reactor.lag` timer of `freno.probe.reactor_lag`: a 20 ms `callLater` chain; percentiles over the
last 1,028 samples, about 20 s) three times during the load. A check refused as stale
(`Metric is stale`) would mean probing fell behind; a stale value is never answered 200 (the
check path refuses values older than `MetricFreshnessMillis`). Every load counts successes (2xx),
other answers and failed requests apart; a round with failures reports them as a miss and no
other figure. The load generators run on the same 2 cores as the servers, so absolute
requests/s are bounded by the machine; the ratios are the meaningful figures. Targets (issue 15,
which raised issue 2's): ratio ≥ 2 (applied to the single node and to the leader); p99 < 5 ms at
2,000 requests/s on the leader; no request over 200 ms with 200 new connections at a time (issue
9); under saturation no term change, reactor lag p99 under 20 ms, at least 95 % of the probes due
succeeding, none failing, no check refused as stale. `python -m bench.check_instructions` counts
the instructions of one check request with callgrind (fast channel, plain twisted.web path, bare
resource), a figure the machine's load does not move."""


_DRIVERS = {
    "pymysql": "the `pymysql` metric source (PyMySQL through a pool of {pool} threads)",
    "native": "the `native` metric source (freno's own MySQL wire client on the reactor thread, no thread pool)",
}


def default_driver() -> str:
    """
    The probe driver freno uses when C{ProbeDriver} is not set, read from
    the configuration model.
    """
    from freno.config.model import ProbeSettings

    return ProbeSettings().driver


def _probe_method(args):
    from freno.config.model import DEFAULT_PROBE_THREADS

    driver = _arg(args, "--driver", default_driver())
    pool = _arg(args, "--pool", str(DEFAULT_PROBE_THREADS))
    which = _DRIVERS.get(driver, f"the `{driver}` metric source").format(pool=pool)
    default = (
        "This is freno's default driver." if driver == default_driver()
        else f"freno's default driver is `{default_driver()}`; this one is chosen with `\"ProbeDriver\": \"{driver}\"`."
    )
    return f"""\
A MariaDB sandbox (a primary, two replicas, heartbeat every 20 ms) and, in the benchmark's own
process on the real reactor, the real `ProbeService` with {which}. {default} Load: N
hosts as N separate connections probed every 50 ms with freno's heartbeat lag query (N × 20
probes/s due), N in {{{_arg(args, '--hosts', '50,200')}}}; after a 2 s warm-up,
{_arg(args, '--runs', '3')} runs of {_arg(args, '--duration', '8')} s each measure this process's
CPU time (all threads) over wall time, probes that succeeded and probes that failed (apart, with
the failures by kind), and the reactor's lag (a 10 ms `callLater` chain measuring its own
lateness). A run with failed probes is a miss, and its CPU and lag figures are left out. Lag
visibility, under a 50-host background load: lag is injected on a replica
({_arg(args, '--crossings', '5')} crossings). The moment the real lag crosses the 1 s threshold is
bracketed by a lag read timed on both sides (and, on the way back, by the last read above and the
first read below, polled every 2 ms); measured from the start of the bracket (the earliest the
cause can have happened) to the aggregated metric going above it and to `HEAD /check` answering
429 (polled every 2 ms), and back. Only transitions after the cause count, so no figure is
negative, and each may overstate the true one by at most the bracket's width (listed); a crossing
whose effect is not seen after its cause is a failed crossing, a miss. The load average at each
run is listed: the probing process competes with everything else on the 2 cores, and the
reactor-lag figures in particular move with it. Targets (issue 3): 1,000 probes/s at most 30 %
of one core; reactor lag p99 < 5 ms; crossing → 429 < 100 ms; no failed probe; at least 95 % of
the probes due succeeding."""


def _failover_method(args):
    return f"""\
Three real `twistd freno` processes in a raft group on loopback, one cluster whose only host is
a MariaDB sandbox primary with a constant metric (`select 0`), so `/check` answers 200 on a leader
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
served by a node that was not the leader (the test's definition, `test/integration/test_haproxy_failover.py`).
Target (issue 6): median window ≤ 3 s."""


def _chaos_method(args):
    return f"""\
A short run of the chaos test (issue 5): three `twistd freno` nodes under a load of `/check`
requests to every node, `/leader-check` sampling, and control commands (`/throttle-app`,
`/skip-host` with unique names, and `/unthrottle-app`, `/recover-host` of some acknowledged ones);
{_arg(args, '--rounds', '20')} rounds, each a SIGKILL (then restart) or a SIGSTOP of 2.5–4 s
(then SIGCONT) of the leader. Afterwards every node's state is read and checked: no acknowledged
throttle or skip lost and none resurrected after its acknowledged unthrottle or recover (on the
final leader, or on any node after catch-up), no `/check` 200 outside a node's own leadership, no
two nodes answering 200 together for longer than the deposition window (the 1.5 s lease plus
0.25 s). One run, so the counts have n = 1; the failover times
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
per node. Target: within 1 s on both backends."""


def benchmarks(probe_drivers: Sequence[str] = ()) -> List[Benchmark]:
    """
    The benchmarks, in running order; C{bench.probe} once per driver in
    C{probe_drivers}, freno's default driver first and labelled so (once,
    with its default, when empty).
    """
    default = default_driver()
    drivers = sorted(probe_drivers, key=lambda d: d != default)
    probe_full = ["--runs", "4", "--duration", "8", "--hosts", "50,200", "--crossings", "5"]
    probe_quick = ["--runs", "1", "--duration", "2", "--hosts", "50", "--crossings", "1"]
    probes = [
        Benchmark(
            f"probe-{d}" if d else "probe",
            (f"Probing, {d} driver" + (" (the default)" if d == default else "")) if d else "Probing",
            "bench.probe",
            probe_full + (["--driver", d] if d else []),
            probe_quick + (["--driver", d] if d else []),
            _probe_method,
            readers.probe_metrics,
        )
        for d in (drivers or [""])
    ]
    return [
        Benchmark(
            "check",
            "Check path vs bare twisted.web",
            "bench.check_http",
            ["--rounds", "5", "--duration", "4", "--rate-duration", "8", "--rate-rounds", "2",
             "--backlog-runs", "4", "--backlog-requests", "16000", "--saturation", "60"],
            ["--rounds", "1", "--duration", "1", "--rate-duration", "1", "--rate-rounds", "1",
             "--backlog-runs", "1", "--backlog-requests", "2000", "--saturation", "5"],
            _check_method,
            readers.check_metrics,
            takes_workdir=True,
        ),
        *probes,
        Benchmark(
            "failover",
            "Raft failover and cold start",
            "bench.failover",
            ["--rounds", "10"],
            ["--rounds", "1"],
            _failover_method,
            readers.failover_metrics,
        ),
        Benchmark(
            "haproxy",
            "Failover through HAProxy",
            "bench.haproxy_failover",
            ["--rounds", "15"],
            ["--rounds", "1"],
            _haproxy_method,
            readers.haproxy_metrics,
        ),
        Benchmark(
            "rolling",
            "Rolling restart behind HAProxy",
            "bench.rolling_restart",
            ["--rounds", "5"],
            ["--rounds", "1"],
            rolling_restart.method,
            rolling_restart.metrics,
        ),
        Benchmark(
            "chaos",
            "Chaos run",
            "bench.chaos",
            ["--rounds", "12"],
            ["--rounds", "2"],
            _chaos_method,
            readers.chaos_metrics,
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
            readers.control_metrics,
        ),
        Benchmark(
            "hysteresis",
            "Hysteresis: 200↔429 transitions of a heavy writer",
            "bench.hysteresis",
            ["--seeds", "7", "--minutes", "5"],
            ["--seeds", "1", "--minutes", "0.5"],
            hysteresis.method,
            hysteresis.metrics,
        ),
        Benchmark(
            "membership",
            "Raft membership changes under load",
            "bench.membership",
            ["--rounds", "5"],
            ["--rounds", "1"],
            membership.method,
            membership.metrics,
        ),
        Benchmark(
            "dashboard",
            "Status page: the leader's CPU and memory with pages open",
            "bench.dashboard",
            ["--rounds", "4", "--seconds", "15", "--soak", "240"],
            ["--rounds", "1", "--seconds", "3", "--soak", "10"],
            dashboard.method,
            dashboard.metrics,
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


@attr.s(frozen=True, auto_attribs=True)
class Outcome:
    """
    What a benchmark process left behind.

    @ivar returncode: its exit status (C{None} if it was killed at its
        timeout).
    @ivar output: its stdout and stderr.
    @ivar results: the text of its C{--json} file, C{None} if it wrote none.
    @ivar timed_out: its timeout in seconds, when it was killed at it.
    @ivar seconds: how long it ran.
    """

    returncode: Optional[int]
    output: str
    results: Optional[str]
    timed_out: Optional[float] = None
    seconds: float = 0.0


def _tail(output: str, lines: int = 25) -> str:
    return "\n".join(output.splitlines()[-lines:])


def judge(bench: Benchmark, args: Sequence[str], outcome: Outcome) -> Section:
    """
    The report section of one benchmark process: its figures if it
    completed and its results could be read, else the reasons it failed
    (every one that applies) and the tail of its output, and no figures.
    """
    reasons: List[str] = []
    if outcome.timed_out is not None:
        reasons.append(f"timed out after {outcome.timed_out:.0f} s")
    elif outcome.returncode != 0:
        reasons.append(f"exited with status {outcome.returncode}")
    metrics: List = []
    notes: List[str] = []
    if outcome.results is None:
        reasons.append("wrote no results")
    else:
        try:
            metrics, notes = bench.parse(json.loads(outcome.results))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, ZeroDivisionError) as e:
            reasons.append(f"its results could not be read ({type(e).__name__}: {e})")
    error = None
    if reasons:
        error = "; ".join(reasons) + "\n" + _tail(outcome.output)
    command = " ".join(["python", "-m", bench.module, *args])
    return Section(
        bench.key, bench.title, command, bench.method(args), metrics, notes, error, outcome.seconds
    )


def run_one(bench: Benchmark, quick: bool, workdir: str) -> Section:
    """
    Run C{bench} in its own process, echoing its output, and judge it.
    """
    args = list(bench.quick if quick else bench.full)
    json_path = os.path.join(workdir, f"{bench.key}.json")
    argv = [sys.executable, "-m", bench.module, *args, "--json", json_path]
    if bench.takes_workdir:
        argv += ["--workdir", os.path.join(workdir, bench.key)]
    print(f"\n=== {bench.title}: python -m {bench.module} {' '.join(args)}", flush=True)
    began = time.monotonic()
    lines: List[str] = []
    timed_out = None
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
            timed_out = bench.timeout
        reader.join(10)
    results = None
    if os.path.exists(json_path):
        with open(json_path) as f:
            results = f.read()
    outcome = Outcome(
        None if timed_out is not None else proc.returncode,
        "".join(lines), results, timed_out, time.monotonic() - began,
    )
    return judge(bench, args, outcome)


def main(argv=None) -> int:
    """
    Run the benchmarks and write the report; exit status 1 if one failed
    to complete.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a round or two of each (smoke run)")
    parser.add_argument("--only", default="", help="comma-separated keys: check,probe,failover,haproxy,rolling,chaos,commit,control,hysteresis,membership,dashboard")
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
    missed = [s.title for s in sections if any(m.verdict in ("missed", "no data") for m in s.metrics)]
    if failed:
        print(f"failed: {', '.join(failed)}")
    if missed:
        print(f"missed a target: {', '.join(missed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
