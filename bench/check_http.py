# -*- test-case-name: test.unit.test_bench_loadgen,test.integration.test_bench_probing_leader -*-
"""
Benchmark of the check path: C{python -m bench.check_http [--rounds N]
[--duration S] [--rate-duration S] [--rate-rounds N] [--backlog-runs N]
[--backlog-requests N] [--saturation S] [--json PATH] [--workdir DIR]}.

Three servers on 127.0.0.1 (free ports), all up for the whole run:

    - C{bare}: a bare C{twisted.web} leaf resource answering a fixed 200 JSON
      body of the same size as a check's (HEAD: status only,
      C{Content-Length: 0}, as the check path), on a L{Site} with no access
      log: the baseline, measured in the same run;
    - C{single}: the real site (L{freno.http.site.build_site}) in a process
      of its own, single node (L{LocalConsensus}, leader), two clusters of
      three static hosts whose L{AggregatedMetrics} a C{LoopingCall} fills
      every 50 ms, no raft and no probing: the check path alone;
    - C{plain}: the same with C{CheckFastPath} off, the check routes served
      by C{twisted.web} (the path before the fast check channel, D83);
    - C{leader}: the leader of a real 3-node C{twistd freno} group probing
      its two clusters on a MariaDB replication sandbox
      (L{bench.probing_leader}): what users run.

Measured:

    1. rounds, each loading every server in turn for C{--duration} s with
       C{wrk -t1 -c50} (GET) and C{hey -c 50 -m HEAD} (HEAD) on a check
       path; per round the ratios single/bare, plain/bare and leader/bare;
    2. a fixed rate of 2,000 requests/s, C{hey -c 50 -q 40} (hey's rate
       limit is per worker), GET and HEAD, on the leader and on the bare
       resource, C{--rate-rounds} times;
    3. the leader under 200 clients that each open a new connection per
       request (C{hey -n N -c 200 -disable-keepalive -m HEAD -o csv}):
       slowest request, p99, requests over 200 ms, C{--backlog-runs} times;
    4. saturation: C{wrk -t1 -c50} GET on the leader for C{--saturation} s
       while L{bench.probing_leader.Saturation} watches leadership, the
       leader's reactor lag, its probes, and what C{/check} answers.

Every load counts successes (2xx), other answers and failed requests apart
(L{bench.loadgen}). The process exits 0 when it measured everything (the
figures, failures included, are in C{--json}; targets are judged by
C{bench.all}), 1 when something broke, 2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List

CHECK_PATH = "/check/bench/mysql/c1"


# -- servers (run in child processes) ----------------------------------------


def _serve_single(fast: bool = True) -> None:
    from twisted.internet import reactor
    from twisted.internet.task import LoopingCall

    from freno.config.model import (
        ClusterSettings,
        Config,
        MySQLStoreSettings,
        StaticHostsSettings,
    )
    from freno.consensus.local import LocalConsensus
    from freno.http.site import build_site
    from freno.probe.metrics import AggregatedMetrics, ClusterMetric
    from freno.metrics.registry import Registry

    clusters = {
        name: ClusterSettings(
            name=name,
            throttle_threshold=1.0,
            static_hosts=StaticHostsSettings(
                hosts=tuple(f"{name}-h{i}:3306" for i in range(3))
            ),
        )
        for name in ("c1", "c2")
    }
    config = Config(mysql=MySQLStoreSettings(clusters=clusters), check_fast_path=fast)
    metrics = AggregatedMetrics(
        reactor, {n: c.throttle_threshold for n, c in clusters.items()}, 5.0
    )
    host_values = {"c1": (0.1, 0.2, 0.3), "c2": (0.4, 0.5, 0.6)}

    def fill():
        now = reactor.seconds()
        for name, values in host_values.items():
            metrics.set(name, ClusterMetric(max(values), None, now))

    LoopingCall(fill).start(0.05)
    consensus = LocalConsensus(reactor, leader=True)
    consensus.start()
    site = build_site(
        clock=reactor,
        config=config,
        consensus=consensus,
        metrics=metrics,
        registry=Registry(),
        hostname="bench",
    )
    _listen(reactor, site)


def bare_site(reactor=None):
    """
    The baseline: a bare C{twisted.web} leaf resource answering a fixed 200
    JSON body of a check's size (HEAD: status only), on a L{Site} with no
    access log.
    """
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    body = b'{"StatusCode":200,"Value":0.3,"Threshold":1,"Message":""}\n'

    class Bare(Resource):
        isLeaf = True

        def render_GET(self, request):
            request.setHeader(b"content-type", b"application/json")
            return body

        def render_HEAD(self, request):
            # Status only, as the check path (and freno) answer HEAD; wrk
            # would otherwise wait for a body of Content-Length bytes.
            request.setHeader(b"content-length", b"0")
            return b""

    class QuietSite(Site):
        def log(self, request):
            pass

    return QuietSite(Bare(), reactor=reactor)


def _serve_bare() -> None:
    from twisted.internet import reactor

    _listen(reactor, bare_site(reactor))


def _listen(reactor, site) -> None:
    port = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=1024)
    print(port.getHost().port, flush=True)
    reactor.run()


# -- the driver ----------------------------------------------------------------


def _start(kind: str):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.check_http", "--serve", kind],
        stdout=subprocess.PIPE,
        env=env,
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{kind} server did not start")
    return proc, int(line)


#: The servers, in the order each round loads them.
KINDS = ("bare", "plain", "single", "leader")
METHODS = ("GET", "HEAD")
#: Requests per second per hey worker in the fixed-rate runs (x 50 = 2,000).
RATE_PER_WORKER = 40


def _line(label: str, load) -> str:
    text = (
        f"{label}: {load.rps:8.0f} ok/s  p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:7.2f} ms"
    )
    if load.slowest_ms is not None:
        text += f"  slowest {load.slowest_ms:7.1f} ms"
    if load.over_200ms is not None:
        text += f"  over 200 ms: {load.over_200ms}"
    if load.failed:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(load.error_kinds.items()))
        text += f"  FAILED REQUESTS {load.failed} ({kinds})"
    return text


def measure(urls: Dict[str, str], args, log=print) -> dict:
    """
    Run every measurement against C{urls} (keyed by L{KINDS}; the leader's
    check URL under C{"leader"}); return the JSON-ready figures, the
    saturation's excepted (see L{saturate}).
    """
    from bench.loadgen import run_hey, run_hey_csv, run_wrk

    def load(kind: str, method: str, seconds: int):
        if method == "GET":
            return run_wrk(urls[kind], seconds, threads=1, connections=50)
        return run_hey(urls[kind], seconds, "HEAD", connections=50)

    for kind in KINDS:  # warm-up
        load(kind, "GET", 1)
    rounds: Dict[str, List[dict]] = {f"{k} {m}": [] for k in KINDS for m in METHODS}
    for number in range(args.rounds):
        for method in METHODS:
            for kind in KINDS:
                result = load(kind, method, args.duration)
                rounds[f"{kind} {method}"].append(result.to_json())
                log(_line(f"round {number + 1} {kind:6} {method:4}", result))
    fixed: Dict[str, List[dict]] = {f"{k} {m}": [] for k in ("bare", "leader") for m in METHODS}
    log(f"fixed rate 2,000 req/s (hey -c 50 -q {RATE_PER_WORKER}, {args.rate_duration} s):")
    for _ in range(args.rate_rounds):
        for method in METHODS:
            for kind in ("bare", "leader"):
                result = run_hey(urls[kind], args.rate_duration, method, 50, RATE_PER_WORKER)
                fixed[f"{kind} {method}"].append(result.to_json())
                log(_line(f"  {kind:6} {method:4}", result))
    backlog: List[dict] = []
    log(f"200 clients, a new connection per request ({args.backlog_requests} HEAD requests):")
    for _ in range(args.backlog_runs):
        result = run_hey_csv(urls["leader"], args.backlog_requests, "HEAD", connections=200)
        backlog.append(result.to_json())
        log(_line("  leader HEAD", result))
    return {"rounds": rounds, "fixed_rate": fixed, "backlog": backlog}


def saturate(group, seconds: int, log=print) -> dict:
    """
    C{wrk -t1 -c50} GET on the leader for C{seconds} while
    L{bench.probing_leader.Saturation} watches; the JSON-ready figures.
    """
    from bench.loadgen import run_wrk
    from bench.probing_leader import Saturation

    watch = Saturation(group)
    watch.begin(seconds)
    try:
        result = run_wrk(group.check_url, seconds, threads=1, connections=50)
    finally:
        watch.end()
    figures = watch.figures()
    figures["load"] = result.to_json()
    log(_line(f"saturation {seconds} s", result))
    log(
        f"  raft terms {figures['terms']}, leaders seen {figures['leaders_seen']}, "
        f"reactor lag {figures['lag_ms']}, probes {figures['probes_ok_per_s']:.1f} ok/s "
        f"of {figures['probes_due_per_s']:.0f} due, probe errors {figures['probe_errors']}, "
        f"checks sampled {figures['checks']}"
    )
    return figures


def _summary(data: dict, log=print) -> None:
    log("\nmedians (successful requests only):")
    for method in METHODS:
        for kind in KINDS:
            rows = data["rounds"][f"{kind} {method}"]
            rps = statistics.median(r["rps"] for r in rows)
            p99 = statistics.median(r["p99_ms"] for r in rows)
            log(f"  {kind:6} {method:4}: {rps:8.0f} ok/s  p99 {p99:6.2f} ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--serve", choices=["single", "plain", "bare"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rate-duration", type=int, default=8)
    parser.add_argument("--rate-rounds", type=int, default=1)
    parser.add_argument("--backlog-runs", type=int, default=3)
    parser.add_argument("--backlog-requests", type=int, default=16000)
    parser.add_argument("--saturation", type=int, default=60, help="seconds of saturation (0: skip)")
    parser.add_argument("--json", default=None, help="write every round's figures to this file")
    parser.add_argument("--workdir", default=None, help="keep the group's state and logs here")
    args = parser.parse_args(argv)
    if args.serve in ("single", "plain"):
        _serve_single(fast=args.serve == "single")
        return 0
    if args.serve == "bare":
        _serve_bare()
        return 0
    for tool in ("wrk", "hey", "mariadbd"):
        if not (shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}")):
            print(f"{tool} is not installed (make bench installs wrk and hey; make debs mariadb-server)", file=sys.stderr)
            return 2

    from bench.probing_leader import ProbingGroup
    from freno.config.model import ProbeSettings

    workdir = args.workdir or tempfile.mkdtemp(prefix="freno-bench-check-")
    servers = {}
    group = ProbingGroup(os.path.join(workdir, "group"))
    try:
        for kind in ("bare", "plain", "single"):
            servers[kind] = _start(kind)
        leader = group.start()
        print(f"leader {leader.name} on {leader.url}, probing with the {ProbeSettings().driver} driver", flush=True)
        urls = {kind: f"http://127.0.0.1:{port}{CHECK_PATH}" for kind, (_, port) in servers.items()}
        urls["leader"] = group.check_url
        log = lambda line: print(line, flush=True)  # noqa: E731
        data = measure(urls, args, log)
        data["saturation"] = saturate(group, args.saturation, log) if args.saturation else None
        data["settings"] = {
            "duration": args.duration, "rate_duration": args.rate_duration,
            "driver": ProbeSettings().driver,
        }
        _summary(data, log)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
        group.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
