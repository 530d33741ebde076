"""
Benchmark of probing: C{python -m bench.probe [--runs N] [--duration S]
[--hosts 50,200] [--crossings K] [--driver pymysql,native]}.

It starts a MariaDB sandbox (a primary and two replicas, heartbeat every
20 ms) and, in this process on the real reactor, the real
L{freno.probe.service.ProbeService} with L{MySQLMetricSource} (PyMySQL, the
default 8-thread pool), or, with C{--driver native}, the pure-Twisted
L{freno.probe.wire.source.NativeMetricSource}. C{--driver pymysql,native}
measures both in the same run, one after the other, on the same sandbox.

Load: N hosts as N separate connections (N/2 clusters, each listing both
replicas, so each cluster/host pair has its own connection), probed every
50 ms with freno's heartbeat lag query (20 Hz, N x 20 probes/s). After a
2 s warm-up it measures, for C{--duration} seconds:
    - CPU share of one core: this process's CPU time (all threads) / wall;
    - probes/s actually completed;
    - reactor lag: a C{callLater(0.01)} chain measuring its own lateness
      (p50, p99, max).

Lag visibility (under the 50-host load, plus a cluster C{main} of the two
replicas with threshold 1 s, and the real HTTP site in-process): growing lag
is injected on replica 0 (its SQL thread stops, so the heartbeat there
freezes at C{ts}, and the real lag crosses the threshold at exactly C{ts +
1 s}). Measured: from that crossing to L{AggregatedMetrics} holding a value
above the threshold (an observer) and to C{HEAD /check/bench/mysql/main}
answering 429 (a thread polling every 2 ms over keep-alive). Then the lag is
removed; the way back is measured from the first moment a thread polling the
replica directly (every 2 ms) reads lag <= 1 s to the aggregate and to
C{/check} answering 200.

Medians over the runs/crossings are printed. Targets: 1,000 probes/s at most
30 % of one core; reactor lag p99 under 5 ms; median crossing-to-429 under
100 ms.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import threading
import time

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from freno.config.model import (
    DEFAULT_PROBE_THREADS,
    ClusterSettings,
    Config,
    MySQLStoreSettings,
    ProbeSettings,
)
from freno.consensus.local import LocalConsensus
from freno.hosts import HostKey
from freno.inventory.fake import FakeInventory
from freno.probe.metrics import AggregatedMetrics
from freno.probe.mysql_source import MySQLMetricSource
from freno.probe.service import ProbeService
from freno.probe.wire.source import NativeMetricSource
from freno.sandbox.mysql import LAG_QUERY, MySQLSandbox
from freno.stats import Stats

THRESHOLD = 1.0


class ReactorLag:
    """
    A C{callLater(interval)} chain recording how late each call ran.
    """

    def __init__(self, interval=0.01):
        self.interval = interval
        self.samples = []
        self._call = None

    def start(self):
        self._due = time.monotonic() + self.interval
        self._call = reactor.callLater(self.interval, self._tick)

    def _tick(self):
        now = time.monotonic()
        self.samples.append(max(0.0, now - self._due))
        self._due = now + self.interval
        self._call = reactor.callLater(self.interval, self._tick)

    def stop(self):
        if self._call is not None and self._call.active():
            self._call.cancel()


def pct(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


DRIVERS = ("pymysql", "native")


def make_source(driver, probe):
    """
    The metric source for C{driver}.
    """
    if driver == "native":
        return NativeMetricSource(reactor, probe)
    return MySQLMetricSource(reactor, probe)


def build(sandbox, load_hosts, with_main=False, pool=DEFAULT_PROBE_THREADS, driver="pymysql"):
    r0 = HostKey("127.0.0.1", sandbox.replicas[0].port)
    r1 = HostKey("127.0.0.1", sandbox.replicas[1].port)
    clusters = {}
    hosts = {}

    def cluster(name):
        return ClusterSettings(
            name=name,
            user=sandbox.user,
            password=sandbox.password,
            metric_query=LAG_QUERY,
            throttle_threshold=THRESHOLD,
        )

    for i in range(load_hosts // 2):
        clusters[f"load{i}"] = cluster(f"load{i}")
        hosts[f"load{i}"] = (r0, r1)
    if with_main:
        clusters["main"] = cluster("main")
        hosts["main"] = (r0, r1)
    probe = ProbeSettings(interval=0.05, timeout=1.0, freshness=0.5, thread_pool_size=pool)
    config = Config(mysql=MySQLStoreSettings(clusters=clusters, probe=probe))
    consensus = LocalConsensus(reactor, leader=True)
    metrics = AggregatedMetrics(reactor, {n: THRESHOLD for n in clusters}, probe.freshness)
    stats = Stats()
    service = ProbeService(
        reactor, config, consensus, FakeInventory(hosts),
        make_source(driver, probe), metrics, stats,
    )
    return config, consensus, metrics, stats, service


@inlineCallbacks
def load_run(sandbox, n, duration, pool=DEFAULT_PROBE_THREADS, driver="pymysql"):
    _, _, _, stats, service = build(sandbox, n, pool=pool, driver=driver)
    service.startService()
    yield deferLater(reactor, 2.0, lambda: None)
    lag = ReactorLag()
    lag.start()
    probes0 = stats.counters.get("probes.total", 0)
    errors0 = stats.counters.get("probes.error", 0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    yield deferLater(reactor, duration, lambda: None)
    cpu1, wall1 = time.process_time(), time.monotonic()
    probes = stats.counters.get("probes.total", 0) - probes0
    errors = stats.counters.get("probes.error", 0) - errors0
    lag.stop()
    yield service.stopService()
    wall = wall1 - wall0
    return {
        "cpu": (cpu1 - cpu0) / wall,
        "probes_per_s": probes / wall,
        "errors": errors,
        "lag_p50": pct(lag.samples, 0.5),
        "lag_p99": pct(lag.samples, 0.99),
        "lag_max": max(lag.samples),
    }


class CheckPoller(threading.Thread):
    """
    HEAD /check/bench/mysql/main every 2 ms; records status transitions.
    """

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.transitions = []
        self.stopping = False

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        last = None
        while not self.stopping:
            try:
                conn.request("HEAD", "/check/bench/mysql/main")
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                status = None
            if status != last:
                self.transitions.append((time.time(), status))
                last = status
            time.sleep(0.002)

    def first(self, status, after):
        for t, s in self.transitions:
            if s == status and t >= after:
                return t
        return None


def remove_and_wait_below(sandbox, index, timeout=20.0):
    """
    Remove replica C{index}'s lag, then poll it directly (on a connection
    opened beforehand) until its lag is <= the threshold.

    @return: the time just before the first query that read such a lag.
    """
    conn = sandbox.connect(sandbox.replicas[index])
    try:
        sandbox.remove_lag(index)
        deadline = time.time() + timeout
        while time.time() < deadline:
            before = time.time()
            with conn.cursor() as cursor:
                cursor.execute(LAG_QUERY)
                (lag,) = cursor.fetchone()
            if lag is not None and float(lag) <= THRESHOLD:
                return before
            time.sleep(0.002)
    finally:
        conn.close()
    return None


@inlineCallbacks
def visibility(sandbox, crossings, background, pool=DEFAULT_PROBE_THREADS, driver="pymysql"):
    from freno.http.site import build_site

    config, consensus, metrics, stats, service = build(
        sandbox, background, with_main=True, pool=pool, driver=driver
    )
    site = build_site(
        clock=reactor, config=config, consensus=consensus, metrics=metrics,
        stats=stats, hostname="bench",
    )
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    transitions = []

    def observe(cluster, metric):
        if cluster != "main":
            return
        over = metric.error is None and metric.value > THRESHOLD
        if not transitions or transitions[-1][1] != over:
            transitions.append((time.time(), over))

    metrics.add_observer(observe)
    service.startService()
    poller = CheckPoller(port.getHost().port)
    poller.start()
    results = {"up_agg": [], "up_check": [], "down_agg": [], "down_check": []}

    def first(over, after):
        for t, o in transitions:
            if o == over and t >= after:
                return t
        return None

    try:
        yield deferLater(reactor, 2.0, lambda: None)
        for k in range(crossings):
            yield deferToThread(sandbox.wait_caught_up, [0], 0.2, 20)
            yield deferLater(reactor, 0.5, lambda: None)

            def inject():
                sandbox.inject_lag(0)
                t0 = time.time()
                lag = sandbox.lag(sandbox.replicas[0])
                t1 = time.time()
                return (t0 + t1) / 2 - lag + THRESHOLD

            crossing = yield deferToThread(inject)
            deadline = time.time() + 5
            while time.time() < deadline and (
                first(True, crossing - 0.5) is None or poller.first(429, crossing - 0.5) is None
            ):
                yield deferLater(reactor, 0.01, lambda: None)
            up_agg, up_check = first(True, crossing - 0.5), poller.first(429, crossing - 0.5)
            if up_agg is not None:
                results["up_agg"].append(up_agg - crossing)
            if up_check is not None:
                results["up_check"].append(up_check - crossing)
            yield deferLater(reactor, 0.3, lambda: None)

            back = yield deferToThread(remove_and_wait_below, sandbox, 0)
            deadline = time.time() + 5
            while time.time() < deadline and (
                first(False, back - 1) is None or poller.first(200, back - 1) is None
            ):
                yield deferLater(reactor, 0.01, lambda: None)
            down_agg, down_check = first(False, back - 1), poller.first(200, back - 1)
            if back is not None and down_agg is not None:
                results["down_agg"].append(down_agg - back)
            if back is not None and down_check is not None:
                results["down_check"].append(down_check - back)
            print(
                f"  crossing {k + 1}: up agg {1000 * (up_agg - crossing):.1f} ms, "
                f"429 {1000 * (up_check - crossing):.1f} ms; down agg "
                f"{1000 * (down_agg - back):.1f} ms, 200 {1000 * (down_check - back):.1f} ms",
                flush=True,
            )
    finally:
        poller.stopping = True
        yield deferToThread(poller.join, 2)
        yield service.stopService()
        yield port.stopListening()
    return results


def med(values):
    return statistics.median(values) if values else float("nan")


@inlineCallbacks
def main_async(args, sandbox):
    results = {}
    for driver in args.driver:
        print(f"driver {driver}:", flush=True)
        results[driver] = yield measure(args, sandbox, driver)
    print("\nmedians:")
    for driver, (summary, vis) in results.items():
        print(f" driver {driver}:")
        for n, s in summary.items():
            per_1000 = s["cpu"] / (s["probes_per_s"] / 1000.0)
            print(
                f"  N={n}: {s['probes_per_s']:.0f} probes/s, CPU {100 * s['cpu']:.1f}% of one core "
                f"({100 * per_1000:.1f}% per 1,000 probes/s), reactor lag p99 "
                f"{1000 * s['lag_p99']:.2f} ms (max {1000 * s['lag_max']:.1f} ms), "
                f"errors {s['errors']:.0f}"
            )
        if vis is not None:
            print(
                f"  crossing -> aggregate {1000 * med(vis['up_agg']):.1f} ms, -> 429 "
                f"{1000 * med(vis['up_check']):.1f} ms; back -> aggregate "
                f"{1000 * med(vis['down_agg']):.1f} ms, -> 200 {1000 * med(vis['down_check']):.1f} ms"
            )


@inlineCallbacks
def measure(args, sandbox, driver):
    summary = {}
    for n in args.hosts:
        runs = []
        for r in range(args.runs):
            result = yield load_run(sandbox, n, args.duration, args.pool, driver)
            runs.append(result)
            print(
                f"N={n} run {r + 1} (load average {os.getloadavg()[0]:.1f}): "
                f"{result['probes_per_s']:.0f} probes/s, "
                f"CPU {100 * result['cpu']:.1f}% of one core, reactor lag p50 "
                f"{1000 * result['lag_p50']:.2f} ms p99 {1000 * result['lag_p99']:.2f} ms "
                f"max {1000 * result['lag_max']:.1f} ms, errors {result['errors']}",
                flush=True,
            )
        summary[n] = {k: med([x[k] for x in runs]) for k in runs[0]}
    vis = None
    if args.crossings:
        print(f"lag visibility ({args.crossings} crossings, {args.background} background hosts):")
        vis = yield visibility(sandbox, args.crossings, args.background, args.pool, driver)
    return summary, vis


def main(argv=None):
    parser = argparse.ArgumentParser(description="probe benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--hosts", default="50,200")
    parser.add_argument("--crossings", type=int, default=5)
    parser.add_argument("--background", type=int, default=50)
    parser.add_argument(
        "--pool", type=int, default=DEFAULT_PROBE_THREADS, help="ProbeThreadPoolSize"
    )
    parser.add_argument(
        "--driver", default="pymysql",
        help="comma-separated metric sources to measure in turn: pymysql, native",
    )
    parser.add_argument(
        "--switch-interval", type=float, default=None,
        help="sys.setswitchinterval (seconds; Python's default is 0.005)",
    )
    args = parser.parse_args(argv)
    args.hosts = [int(x) for x in args.hosts.split(",") if x]
    args.driver = [x.strip() for x in args.driver.split(",") if x.strip()]
    unknown = [x for x in args.driver if x not in DRIVERS]
    if unknown or not args.driver:
        parser.error(f"--driver: expected some of {', '.join(DRIVERS)}, got {unknown or 'nothing'}")
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    print(f"pool {args.pool} threads, switch interval {sys.getswitchinterval() * 1000:g} ms", flush=True)
    sandbox = MySQLSandbox(replicas=2, heartbeat_interval=0.02)
    sandbox.start()
    failure = []
    try:
        def run():
            d = main_async(args, sandbox)
            d.addErrback(lambda f: (failure.append(f), f.printTraceback()))
            d.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(run)
        reactor.run()
    finally:
        sandbox.stop()
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
