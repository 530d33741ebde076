"""
Benchmark of the check path: C{python -m bench.check_http [--rounds N]
[--duration S] [--tool wrk|hey] [--json PATH]}.

It starts two server processes on 127.0.0.1 (free ports):

    - C{check}: the real site (L{freno.http.site.build_site}), single node
      (L{LocalConsensus}, leader), two clusters of three static hosts each,
      whose L{AggregatedMetrics} a C{LoopingCall} fills every 50 ms from fixed
      per-host values (the max of the three, as aggregation would);
    - C{bare}: a bare C{twisted.web} leaf resource answering a fixed 200 JSON
      body of the same size (HEAD: status only, C{Content-Length: 0}, as the
      check path), on a L{Site} with no access log.

Each is loaded with 50 keep-alive connections for HEAD and GET on
C{/check/bench/mysql/c1} (the bare one on any path) with C{wrk} (HEAD through
a small Lua script) or, if C{wrk} is missing, C{hey}. Rounds repeat; medians of
requests/s, p50 and p99 are printed with the ratio check/bare. Then a fixed-rate
run at 2,000 requests/s (C{hey -c 50 -q 40}) against the check path reports
p99. Targets: ratio >= 0.70, p99 < 10 ms at 2,000 requests/s.

C{--rate-rounds N} repeats the fixed-rate run (median p99 over them); C{--json
PATH} also writes every round's figures there (for C{bench.all}).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HEAD_LUA = 'wrk.method = "HEAD"\n'
CHECK_PATH = "/check/bench/mysql/c1"


# -- servers (run in child processes) ----------------------------------------


def _serve_check() -> None:
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
    from freno.stats import Stats

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
    config = Config(mysql=MySQLStoreSettings(clusters=clusters))
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
        stats=Stats(),
        hostname="bench",
    )
    _listen(reactor, site)


def _serve_bare() -> None:
    from twisted.internet import reactor
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

    _listen(reactor, QuietSite(Bare()))


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
        raise RuntimeError(f"{kind} server did not start")
    return proc, int(line)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _run_wrk(url: str, method: str, duration: int, lua_path: str):
    cmd = ["wrk", "-t2", "-c50", f"-d{duration}s", "--latency"]
    if method == "HEAD":
        cmd += ["-s", lua_path]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out)
        lat[pct] = float(m.group(1)) * _UNITS[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} non-2xx answers")
    return rps, lat["50"], lat["99"]


def _run_hey(url: str, method: str, duration: int, rate_per_worker: int = 0):
    cmd = ["hey", "-z", f"{duration}s", "-c", "50", "-m", method]
    if rate_per_worker:
        cmd += ["-q", str(rate_per_worker)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%+ in ([\d.]+) secs", out)
        lat[pct] = float(m.group(1)) * 1e3
    codes = re.findall(r"\[(\d+)\]\s+(\d+) responses", out)
    bad = [c for c in codes if c[0] != "200"]
    if bad:
        raise RuntimeError(f"{url}: non-200 answers {bad}")
    return rps, lat["50"], lat["99"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=["check", "bare"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rate-duration", type=int, default=10)
    parser.add_argument("--rate-rounds", type=int, default=1)
    parser.add_argument("--tool", choices=["wrk", "hey"], default=None)
    parser.add_argument("--json", default=None, help="write every round's figures to this file")
    args = parser.parse_args(argv)
    if args.serve == "check":
        _serve_check()
        return 0
    if args.serve == "bare":
        _serve_bare()
        return 0

    tool = args.tool or ("wrk" if shutil.which("wrk") else "hey")
    if not shutil.which(tool):
        print(f"{tool} is not installed (apt-get install wrk hey)", file=sys.stderr)
        return 2
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(HEAD_LUA)
    lua.close()
    servers = {}
    try:
        for kind in ("check", "bare"):
            servers[kind] = _start(kind)
        time.sleep(0.5)
        urls = {
            "check": f"http://127.0.0.1:{servers['check'][1]}{CHECK_PATH}",
            "bare": f"http://127.0.0.1:{servers['bare'][1]}{CHECK_PATH}",
        }

        def load(kind, method):
            if tool == "wrk":
                return _run_wrk(urls[kind], method, args.duration, lua.name)
            return _run_hey(urls[kind], method, args.duration)

        # warm up
        for kind in urls:
            load(kind, "GET")
        results = {(k, m): [] for k in urls for m in ("GET", "HEAD")}
        for round_ in range(args.rounds):
            for method in ("GET", "HEAD"):
                for kind in ("check", "bare"):
                    r = load(kind, method)
                    results[kind, method].append(r)
                    print(
                        f"round {round_ + 1} {kind:5} {method:4}: {r[0]:8.0f} req/s"
                        f"  p50 {r[1]:6.2f} ms  p99 {r[2]:6.2f} ms",
                        flush=True,
                    )
        print(f"\nmedians over {args.rounds} rounds ({tool}, 50 keep-alive connections):")
        ok = True
        for method in ("GET", "HEAD"):
            med = {}
            for kind in ("check", "bare"):
                rows = results[kind, method]
                med[kind] = [statistics.median(col) for col in zip(*rows)]
                rps, p50, p99 = med[kind]
                print(f"  {kind:5} {method:4}: {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
            ratio = med["check"][0] / med["bare"][0]
            ok = ok and ratio >= 0.70
            print(f"  ratio check/bare {method}: {ratio:.2f} (target >= 0.70)")
        fixed_rate = {"GET": [], "HEAD": []}
        if shutil.which("hey"):
            print(f"\nfixed rate 2,000 req/s (hey -c 50 -q 40, {args.rate_duration} s) on the check path:")
            for _ in range(args.rate_rounds):
                for method in ("GET", "HEAD"):
                    rps, p50, p99 = _run_hey(urls["check"], method, args.rate_duration, 40)
                    fixed_rate[method].append({"rps": rps, "p50_ms": p50, "p99_ms": p99})
                    print(f"  check {method:4}: {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms (target p99 < 10 ms)")
            for method in ("GET", "HEAD"):
                ok = ok and statistics.median(r["p99_ms"] for r in fixed_rate[method]) < 10.0
        print("\n" + ("targets met" if ok else "TARGETS MISSED"))
        if args.json:
            rounds = {
                f"{kind} {method}": [{"rps": r[0], "p50_ms": r[1], "p99_ms": r[2]} for r in rows]
                for (kind, method), rows in results.items()
            }
            with open(args.json, "w") as f:
                json.dump(
                    {"tool": tool, "duration": args.duration, "rate_duration": args.rate_duration,
                     "rounds": rounds, "fixed_rate": fixed_rate},
                    f, indent=1,
                )
        return 0 if ok else 1
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
        os.unlink(lua.name)


if __name__ == "__main__":
    sys.exit(main())
