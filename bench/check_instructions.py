# -*- test-case-name: test.unit.test_bench_check_instructions -*-
"""
Instructions per check request, counted by callgrind: C{python -m
bench.check_instructions [--requests N] [--json PATH]}.

A figure that the machine's load does not move, to set beside the
requests/s of L{bench.check_http}. Each case runs in a process of its own
under C{valgrind --tool=callgrind}: it builds a site, opens one connection
on an in-memory transport, and feeds it the same keep-alive request N times
(C{wrk}'s GET, C{hey}'s HEAD). It runs twice, with a few requests and with
N more, and the difference divided by N is the cost of one request: the
HTTP protocol, the check and the answer's bytes, without the reactor and the
socket (which cost both paths alike, but for the fast path's direct write;
see L{freno.http.fast_check}).

Cases:

    - C{bare}: the bare C{twisted.web} leaf resource of L{bench.check_http}
      (a fixed body) on a C{Site} without access log;
    - C{plain}: freno's site with C{CheckFastPath} off (the C{twisted.web}
      check path);
    - C{fast}: freno's site as it runs by default (the fast check channel).

Exits 2 when valgrind is missing, 1 when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, Optional

KINDS = ("bare", "plain", "fast")
REQUESTS = {
    "GET": b"GET /check/bench/mysql/c1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    "HEAD": (
        b"HEAD /check/bench/mysql/c1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"User-Agent: hey/0.0.1\r\nContent-Type: text/html\r\nAccept-Encoding: gzip\r\n\r\n"
    ),
}
#: Requests of the short run (start-up, imports and warm-up cancel out).
BASE_REQUESTS = 500
_SUMMARY = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def parse_total(text: bytes) -> Optional[int]:
    """
    The total instruction count of a callgrind output file, or C{None}.
    """
    match = _SUMMARY.search(text)
    return int(match.group(1)) if match else None


def _site(kind: str):
    from twisted.internet.task import Clock

    if kind == "bare":
        from bench.check_http import bare_site

        clock = Clock()
        return bare_site(clock), clock
    from freno.config.model import ClusterSettings, Config, MySQLStoreSettings
    from freno.consensus.local import LocalConsensus
    from freno.http.site import build_site
    from freno.probe.metrics import AggregatedMetrics, ClusterMetric
    from freno.metrics.registry import Registry

    clock = Clock()
    clock.advance(1_700_000_000)
    clusters = {"c1": ClusterSettings(name="c1", throttle_threshold=1.0)}
    metrics = AggregatedMetrics(clock, {"c1": 1.0}, 3600.0)
    metrics.set("c1", ClusterMetric(0.3, None, clock.seconds()))
    consensus = LocalConsensus(clock, leader=True)
    site = build_site(
        clock=clock,
        config=Config(mysql=MySQLStoreSettings(clusters=clusters), check_fast_path=kind == "fast"),
        consensus=consensus,
        metrics=metrics,
        registry=Registry(),
        hostname="bench",
    )
    return site, clock


class _NullTransport:
    """
    A transport that counts what is written.
    """

    disconnecting = False
    connected = True

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writeSequence(self, data) -> None:
        self.written += sum(map(len, data))

    def getPeer(self):
        from twisted.internet.address import IPv4Address

        return IPv4Address("TCP", "127.0.0.1", 40000)

    getHost = getPeer

    def registerProducer(self, producer, streaming) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def loseConnection(self) -> None:
        self.disconnecting = True


def run_requests(kind: str, method: str, count: int) -> int:
    """
    Feed C{count} requests to one connection of a C{kind} site; the bytes
    answered.
    """
    site, _ = _site(kind)
    channel = site.buildProtocol(None)
    transport = _NullTransport()
    channel.makeConnection(transport)
    request = REQUESTS[method]
    for _ in range(count):
        channel.dataReceived(request)
    if transport.disconnecting:
        raise RuntimeError(f"{kind} {method}: the connection was closed")
    return transport.written


def _callgrind(kind: str, method: str, count: int, workdir: str) -> int:
    out = os.path.join(workdir, f"{kind}-{method}-{count}.out")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # The same hashes in every run, so that the two runs differ only by the
    # requests.
    env["PYTHONHASHSEED"] = "0"
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, "-m", "bench.check_instructions", "--run", kind, method, str(count)],
        check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    with open(out, "rb") as f:
        total = parse_total(f.read())
    if total is None:
        raise RuntimeError(f"no instruction total in {out}")
    return total


def measure(requests: int, log=print) -> Dict[str, Dict[str, float]]:
    """
    Instructions per request of every case and method.
    """
    figures: Dict[str, Dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="freno-callgrind-") as workdir:
        for kind in KINDS:
            for method in REQUESTS:
                base = _callgrind(kind, method, BASE_REQUESTS, workdir)
                more = _callgrind(kind, method, BASE_REQUESTS + requests, workdir)
                per = (more - base) / requests
                figures.setdefault(kind, {})[method] = per
                log(f"{kind:5} {method:4}: {per:10,.0f} instructions per request")
    for method in REQUESTS:
        log(f"{method}: plain / fast {figures['plain'][method] / figures['fast'][method]:.2f}, "
            f"bare / fast {figures['bare'][method] / figures['fast'][method]:.2f}")
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--run", nargs=3, metavar=("KIND", "METHOD", "COUNT"))
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.run:
        kind, method, count = args.run
        run_requests(kind, method, int(count))
        return 0
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    try:
        figures = measure(args.requests)
    except (subprocess.CalledProcessError, RuntimeError) as e:
        print(f"failed: {e}", file=sys.stderr)
        return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
