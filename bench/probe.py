# -*- test-case-name: test.unit.test_bench_all -*-
"""
Benchmark of probing: C{python -m bench.probe [--runs N] [--duration S]
[--hosts 50,200] [--crossings K] [--driver pymysql,native] [--json PATH]}.

It starts a MariaDB sandbox (a primary and two replicas, heartbeat every
20 ms) and, in this process on the real reactor, the real
L{freno.probe.service.ProbeService} with the metric source of each driver
in C{--driver} in turn, on the same sandbox: C{pymysql}
(L{MySQLMetricSource}: PyMySQL in a pool of C{--pool} threads, by default
C{ProbeThreadPoolSize}'s default) or C{native} (the pure-Twisted
L{freno.probe.wire.source.NativeMetricSource}). Which driver freno uses by
default is C{ProbeSettings().driver} (L{freno.config.model}).

Load: N hosts as N separate connections (N/2 clusters, each listing both
replicas, so each cluster/host pair has its own connection), probed every
50 ms with freno's heartbeat lag query (20 Hz, N x 20 probes/s due). After a
2 s warm-up it measures, for C{--duration} seconds:
    - CPU share of one core: this process's CPU time (all threads) / wall;
    - probes that succeeded and probes that failed, per second, apart (and
      the failures by kind);
    - reactor lag: a C{callLater(0.01)} chain measuring its own lateness
      (p50, p99, max).

Lag visibility (under the 50-host load, plus a cluster C{main} of the two
replicas with threshold 1 s, and the real HTTP site in-process): growing lag
is injected on replica 0 (its SQL thread stops, so the heartbeat there
freezes at C{ts}, and the real lag crosses the threshold at C{ts + 1 s}).
The crossing time is computed from a lag read on a connection opened
beforehand, timed on both sides: the read happened between C{t0} and C{t1},
so the crossing lies in C{[t0 - lag + 1, t1 - lag + 1]}. Measured from the
start of that bracket (the earliest the cause can have happened) to
L{AggregatedMetrics} holding a value above the threshold (an observer) and
to C{HEAD /check/bench/mysql/main} answering 429 (a thread polling every
2 ms over keep-alive). Then the lag is removed, and a thread polls the
replica directly (every 2 ms) until it reads lag <= 1 s: the lag went
below between the start of the last read above and the end of that read;
the way back is measured from the start of that bracket to the aggregate
and to C{/check} answering 200. Only transitions at or after the start of
the bracket count, so no latency is negative; each figure may overstate the
true one by at most the bracket's width (printed). A crossing whose
transition cannot be found after its cause (or whose state had already
changed before it) is recorded as a failed crossing, not left out.

Medians over the runs/crossings are printed. Targets: 1,000 probes/s at most
30 % of one core; reactor lag p99 under 5 ms; median crossing-to-429 under
100 ms. C{--json PATH} writes every run's and crossing's figures there (for
C{bench.all}). The process exits 0 when it measured everything (failed
probes and crossings are figures), 1 when something broke.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
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
from freno.metrics import catalogue
from freno.metrics.registry import Registry

THRESHOLD = 1.0
#: Seconds between two probes of a host (freno's 50 ms).
INTERVAL = 0.05


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


class CountingSource:
    """
    A metric source that counts its failed probes by kind (the message with
    digits folded, so that ports and durations do not split a kind), and
    otherwise is the source it wraps.
    """

    def __init__(self, source):
        self._source = source
        self.kinds = {}

    def probe(self, cluster, host):
        d = self._source.probe(cluster, host)
        d.addErrback(self._count)
        return d

    def _count(self, failure):
        text = re.sub(r"\d+(\.\d+)?", "N", str(failure.value))[:100]
        kind = f"{type(failure.value).__name__}: {text}"
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return failure

    def __getattr__(self, name):
        return getattr(self._source, name)


def make_source(driver, probe):
    """
    The metric source for C{driver}, counting its failures by kind.
    """
    if driver == "native":
        return CountingSource(NativeMetricSource(reactor, probe))
    return CountingSource(MySQLMetricSource(reactor, probe))


def _count(registry: Registry, family) -> float:
    """
    The sum of every series of counter C{family}.
    """
    return sum(registry.series(family).values())


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
    probe = ProbeSettings(interval=INTERVAL, timeout=1.0, freshness=0.5, thread_pool_size=pool)
    config = Config(mysql=MySQLStoreSettings(clusters=clusters, probe=probe))
    consensus = LocalConsensus(reactor, leader=True)
    metrics = AggregatedMetrics(reactor, {n: THRESHOLD for n in clusters}, probe.freshness)
    registry = Registry()
    source = make_source(driver, probe)
    service = ProbeService(
        reactor, config, consensus, FakeInventory(hosts), source, metrics, registry,
    )
    return config, consensus, metrics, registry, service, source


@inlineCallbacks
def load_run(sandbox, n, duration, pool=DEFAULT_PROBE_THREADS, driver="pymysql"):
    _, _, _, registry, service, source = build(sandbox, n, pool=pool, driver=driver)
    service.startService()
    yield deferLater(reactor, 2.0, lambda: None)
    lag = ReactorLag()
    lag.start()
    probes0 = _count(registry, catalogue.PROBES)
    errors0 = _count(registry, catalogue.PROBE_ERRORS)
    kinds0 = dict(source.kinds)
    cpu0, wall0 = time.process_time(), time.monotonic()
    yield deferLater(reactor, duration, lambda: None)
    cpu1, wall1 = time.process_time(), time.monotonic()
    probes = _count(registry, catalogue.PROBES) - probes0
    errors = _count(registry, catalogue.PROBE_ERRORS) - errors0
    kinds = {k: v - kinds0.get(k, 0) for k, v in source.kinds.items() if v > kinds0.get(k, 0)}
    lag.stop()
    yield service.stopService()
    wall = wall1 - wall0
    return {
        "hosts": n,
        "seconds": wall,
        "due_per_s": n / INTERVAL,
        "cpu": (cpu1 - cpu0) / wall,
        "ok": probes - errors,
        "errors": errors,
        "error_kinds": kinds,
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


def first_after(transitions, value, cause):
    """
    The time of the first transition to C{value} at or after C{cause}, and
    whether the state was already C{value} just before C{cause} (then the
    transition, if any, is not the effect of the cause).

    @param transitions: C{(time, value)} pairs in time order.
    @return: C{(time or None, already)}.
    """
    before = None
    for t, v in transitions:
        if t < cause:
            before = v
        elif v == value:
            return t, before == value
    return None, before == value


def timed_lag(conn):
    """
    The lag read on C{conn}, with the wall-clock times just before the query
    was sent and just after its answer: C{(t0, t1, lag)}.
    """
    with conn.cursor() as cursor:
        t0 = time.time()
        cursor.execute(LAG_QUERY)
        (lag,) = cursor.fetchone()
        t1 = time.time()
    return t0, t1, None if lag is None else float(lag)


def inject_and_bracket(sandbox, index):
    """
    Stop replica C{index}'s SQL thread and bracket the moment its lag will
    cross the threshold.

    @return: C{(earliest, latest)} wall-clock times of the crossing.
    """
    conn = sandbox.connect(sandbox.replicas[index])
    try:
        sandbox.inject_lag(index)
        t0, t1, lag = timed_lag(conn)
    finally:
        conn.close()
    if lag is None:
        raise RuntimeError("no heartbeat on the replica")
    return t0 - lag + THRESHOLD, t1 - lag + THRESHOLD


def remove_and_bracket(sandbox, index, timeout=20.0):
    """
    Remove replica C{index}'s lag, then poll it directly (on a connection
    opened beforehand, every 2 ms) until its lag is <= the threshold.

    @return: C{(earliest, latest)} wall-clock times of the lag going below
        the threshold: the start of the last read above it (or of the
        removal, if the first read is already below) and the end of the
        first read below it; C{None} if that did not happen in time.
    """
    conn = sandbox.connect(sandbox.replicas[index])
    try:
        earliest = time.time()
        sandbox.remove_lag(index)
        deadline = time.time() + timeout
        while time.time() < deadline:
            t0, t1, lag = timed_lag(conn)
            if lag is not None and lag <= THRESHOLD:
                return earliest, t1
            earliest = t0
            time.sleep(0.002)
    finally:
        conn.close()
    return None


@inlineCallbacks
def visibility(sandbox, crossings, background, pool=DEFAULT_PROBE_THREADS, driver="pymysql"):
    """
    Measure C{crossings} lag crossings up and down (see the module
    docstring); return every crossing's figures (seconds) and the probe
    failures seen meanwhile.
    """
    from freno.http.site import build_site

    config, consensus, metrics, registry, service, source = build(
        sandbox, background, with_main=True, pool=pool, driver=driver
    )
    site = build_site(
        clock=reactor, config=config, consensus=consensus, metrics=metrics,
        registry=registry, hostname="bench",
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
    results = []

    @inlineCallbacks
    def wait_for_transitions(pairs, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline and any(
            first_after(ts, value, cause)[0] is None for ts, value, cause in pairs
        ):
            yield deferLater(reactor, 0.01, lambda: None)

    def effect(name, ts, value, cause, what):
        at, already = first_after(ts, value, cause)
        if already:
            crossing["failures"].append(f"{what} before the cause")
        elif at is None:
            crossing["failures"].append(f"no {what} within 5 s of the cause")
        else:
            crossing[name] = at - cause

    try:
        yield deferLater(reactor, 2.0, lambda: None)
        errors0 = _count(registry, catalogue.PROBE_ERRORS)
        kinds0 = dict(source.kinds)
        for k in range(crossings):
            crossing = {
                "up_agg": None, "up_check": None, "down_agg": None, "down_check": None,
                "up_bracket": None, "down_bracket": None, "failures": [],
            }
            results.append(crossing)
            yield deferToThread(sandbox.wait_caught_up, [0], 0.2, 20)
            yield deferLater(reactor, 0.5, lambda: None)

            up, up_late = yield deferToThread(inject_and_bracket, sandbox, 0)
            crossing["up_bracket"] = up_late - up
            yield wait_for_transitions(
                [(transitions, True, up), (poller.transitions, 429, up)]
            )
            effect("up_agg", transitions, True, up, "aggregate above the threshold")
            effect("up_check", poller.transitions, 429, up, "/check 429")
            yield deferLater(reactor, 0.3, lambda: None)

            back = yield deferToThread(remove_and_bracket, sandbox, 0)
            if back is None:
                crossing["failures"].append("the replica's lag did not go back below the threshold")
            else:
                down, down_late = back
                crossing["down_bracket"] = down_late - down
                yield wait_for_transitions(
                    [(transitions, False, down), (poller.transitions, 200, down)]
                )
                effect("down_agg", transitions, False, down, "aggregate below the threshold")
                effect("down_check", poller.transitions, 200, down, "/check 200")

            def ms(key):
                value = crossing[key]
                return "—" if value is None else f"{1000 * value:.1f} ms"

            print(
                f"  crossing {k + 1}: up agg {ms('up_agg')}, 429 {ms('up_check')} "
                f"(bracket {ms('up_bracket')}); down agg {ms('down_agg')}, "
                f"200 {ms('down_check')} (bracket {ms('down_bracket')})"
                + (f"; FAILED: {'; '.join(crossing['failures'])}" if crossing["failures"] else ""),
                flush=True,
            )
        errors = _count(registry, catalogue.PROBE_ERRORS) - errors0
        kinds = {k: v - kinds0.get(k, 0) for k, v in source.kinds.items() if v > kinds0.get(k, 0)}
    finally:
        poller.stopping = True
        yield deferToThread(poller.join, 2)
        yield service.stopService()
        yield port.stopListening()
    return {"crossings": results, "probe_errors": errors, "error_kinds": kinds}


def med(values):
    return statistics.median(values) if values else float("nan")


def default_driver():
    """
    The driver freno probes with when C{ProbeDriver} is not set.
    """
    return ProbeSettings().driver


@inlineCallbacks
def main_async(args, sandbox):
    results = {}
    for driver in args.driver:
        label = " (the default)" if driver == default_driver() else ""
        print(f"driver {driver}{label}:", flush=True)
        results[driver] = yield measure(args, sandbox, driver)
    print("\nmedians:")
    for driver, result in results.items():
        print(f" driver {driver}:")
        for n in args.hosts:
            runs = [r for r in result["runs"] if r["hosts"] == n]
            ok = med([r["ok"] / r["seconds"] for r in runs])
            failed = med([r["errors"] / r["seconds"] for r in runs])
            cpu = med([r["cpu"] for r in runs])
            print(
                f"  N={n}: {ok:.0f} probes/s succeeded, {failed:.0f}/s failed "
                f"(of {n / INTERVAL:.0f} due), CPU {100 * cpu:.1f}% of one core, reactor lag p99 "
                f"{1000 * med([r['lag_p99'] for r in runs]):.2f} ms"
            )
        vis = result["visibility"]
        if vis is not None:
            def m(key):
                return 1000 * med([c[key] for c in vis["crossings"] if c[key] is not None])

            failed = sum(1 for c in vis["crossings"] if c["failures"])
            print(
                f"  crossing -> aggregate {m('up_agg'):.1f} ms, -> 429 {m('up_check'):.1f} ms; "
                f"back -> aggregate {m('down_agg'):.1f} ms, -> 200 {m('down_check'):.1f} ms; "
                f"{failed} failed crossings, {vis['probe_errors']} failed probes meanwhile"
            )
    return results


@inlineCallbacks
def measure(args, sandbox, driver):
    runs = []
    for n in args.hosts:
        for r in range(args.runs):
            result = yield load_run(sandbox, n, args.duration, args.pool, driver)
            result["run"] = r + 1
            result["load"] = os.getloadavg()[0]
            runs.append(result)
            attempts = result["ok"] + result["errors"]
            rate = 100.0 * result["errors"] / attempts if attempts else 0.0
            print(
                f"N={n} run {r + 1} (load average {result['load']:.1f}): "
                f"{result['ok'] / result['seconds']:.0f} probes/s succeeded, "
                f"{result['errors'] / result['seconds']:.0f}/s failed ({rate:.1f} % of attempts), "
                f"CPU {100 * result['cpu']:.1f}% of one core, reactor lag p50 "
                f"{1000 * result['lag_p50']:.2f} ms p99 {1000 * result['lag_p99']:.2f} ms "
                f"max {1000 * result['lag_max']:.1f} ms"
                + (f"; failures: {result['error_kinds']}" if result["errors"] else ""),
                flush=True,
            )
    vis = None
    if args.crossings:
        print(f"lag visibility ({args.crossings} crossings, {args.background} background hosts):")
        vis = yield visibility(sandbox, args.crossings, args.background, args.pool, driver)
    return {
        "driver": driver,
        "default": driver == default_driver(),
        "pool": args.pool,
        "interval": INTERVAL,
        "runs": runs,
        "visibility": vis,
    }


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
        "--driver", default=default_driver(),
        help="comma-separated metric sources to measure in turn: pymysql, native",
    )
    parser.add_argument(
        "--switch-interval", type=float, default=None,
        help="sys.setswitchinterval (seconds; Python's default is 0.005)",
    )
    parser.add_argument("--json", default=None, help="write every run's figures to this file")
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
    results = {}
    try:
        def run():
            d = main_async(args, sandbox)
            d.addCallback(results.update)
            d.addErrback(lambda f: (failure.append(f), f.printTraceback()))
            d.addBoth(lambda _: reactor.stop())

        reactor.callWhenRunning(run)
        reactor.run()
    finally:
        sandbox.stop()
    if failure:
        return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"default_driver": default_driver(), "drivers": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
