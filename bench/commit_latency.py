# -*- test-case-name: test.unit.test_bench_commit_latency -*-
"""
Commit latency with durable raft storage (D50): C{python -m
bench.commit_latency [--rounds N] [--commands M] [--json PATH]}.

Three measurements per round, all on this machine's disk (the data
directories are under C{--workdir}, default a temporary directory):

    - C{disk}: the raw cost of what the storage does: C{fdatasync} after a
      100-byte append (a group commit), C{msync} of a 1 MiB mapping after a
      100-byte write (what pysyncobj's mmap journal would have needed), and
      a durable replace (temporary file, C{fsync}, rename, C{fsync} of the
      directory: the term and vote, a snapshot).
    - C{processes}: three real C{twistd freno} processes in a raft group
      (as shipped: syncing), no MySQL store (raft needs none); C{M}
      sequential C{GET /throttle-app/...} on the leader over one keep-alive
      connection, each answered once committed; and, as the HTTP baseline
      of the same run, C{M} C{GET /lb-check} (no command).
    - C{inprocess}: raft groups of L{RaftConsensusService} members in this
      process, on the reactor, storing in a L{FileDirectory} with syncing
      on and, as the baseline of the same run, off (C{sync=False}, the
      behaviour before durable storage); three members and one. C{M} sequential
      commands on the leader; the ratio on/off is taken per round. In one
      process the three members share one core, so the leader's and the
      follower's syncs cannot overlap as they do between processes: the
      figures are an upper bound. This is where the baseline can be
      measured without shipping a switch that turns durability off.

Target (issue 9): median single-command commit latency under 5 ms on a
3-node group with syncing. A failed command or a group that does not come
up is an error: the benchmark then exits non-zero, and C{bench.all} reports
a miss, never a number.

This module imports the reactor only when it runs, so that C{bench.all}
can import L{metrics} and L{method}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import mmap
import os
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Sequence, Tuple

TARGET_MS = 5.0

#: The in-process configurations: (members, sync).
CONFIGS: Tuple[Tuple[int, bool], ...] = ((3, True), (3, False), (1, True), (1, False))


def config_key(members: int, sync: bool) -> str:
    return f"{members} {'sync' if sync else 'nosync'}"


def percentiles(samples: Sequence[float]) -> Dict[str, float]:
    """
    p50 and p99 of C{samples} (seconds) in milliseconds.
    """
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {"p50_ms": 1000 * statistics.median(ordered), "p99_ms": 1000 * p99}


# -- disk ----------------------------------------------------------------------


def measure_disk(workdir: str, count: int = 200) -> Dict[str, float]:
    """
    The raw costs of the storage's syncs (see the module docstring).
    """
    path = tempfile.mkdtemp(prefix="disk-", dir=workdir)
    results: Dict[str, float] = {}
    fd = os.open(os.path.join(path, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    times = []
    try:
        for _ in range(count):
            os.write(fd, b"x" * 100)
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    results.update({f"fdatasync_{k}": v for k, v in percentiles(times).items()})

    size = 1 << 20
    with open(os.path.join(path, "mapped"), "wb") as f:
        f.truncate(size)
    times = []
    with open(os.path.join(path, "mapped"), "r+b") as f:
        mapping = mmap.mmap(f.fileno(), 0)
        try:
            for i in range(count):
                offset = (i * 100) % (size - 100)
                mapping[offset : offset + 100] = b"y" * 100
                t = time.perf_counter()
                mapping.flush()
                times.append(time.perf_counter() - t)
        finally:
            mapping.close()
    results.update({f"msync_{k}": v for k, v in percentiles(times).items()})

    from freno.consensus.raft.disk import FileDirectory

    directory = FileDirectory(path)
    times = []
    for i in range(max(20, count // 4)):
        t = time.perf_counter()
        directory.replace("meta", b'{"currentTerm": %d}' % i)
        times.append(time.perf_counter() - t)
    directory.close()
    results.update({f"replace_{k}": v for k, v in percentiles(times).items()})
    return results


# -- real processes ------------------------------------------------------------


class CommandFailed(Exception):
    """
    A command was not acknowledged.
    """


def measure_processes(group, count: int, round_: int) -> Dict[str, float]:
    """
    C{count} commands, and C{count} C{/lb-check}s, on the leader of
    C{group} (a started L{FrenoGroup}).
    """
    leader = group.wait_leader(timeout=20)
    connection = http.client.HTTPConnection("127.0.0.1", leader.http_port, timeout=10)
    commands: List[float] = []
    reads: List[float] = []
    try:
        for i in range(count):
            t = time.perf_counter()
            connection.request("GET", f"/throttle-app/bench-{round_}-{i}/ttl/3600/ratio/0.5")
            response = connection.getresponse()
            body = response.read()
            commands.append(time.perf_counter() - t)
            if response.status != 200:
                raise CommandFailed(f"/throttle-app answered {response.status}: {body[:200]!r}")
            t = time.perf_counter()
            connection.request("GET", "/lb-check")
            response = connection.getresponse()
            response.read()
            reads.append(time.perf_counter() - t)
    finally:
        connection.close()
    result = percentiles(commands)
    result["read_p50_ms"] = percentiles(reads)["p50_ms"]
    result["load"] = os.getloadavg()[0]
    return result


# -- in-process groups ---------------------------------------------------------


def _inprocess(args, workdir: str, results: Dict[str, List[Dict[str, float]]]):
    """
    The in-process part, on the reactor (a Deferred).
    """
    from twisted.internet import reactor
    from twisted.internet.defer import gatherResults, inlineCallbacks
    from twisted.internet.task import deferLater

    from freno.config.model import Config
    from freno.consensus.raft import RaftConsensusService
    from freno.consensus.raft.disk import FileDirectory
    from freno.sandbox.processes import free_port
    from freno.metrics.registry import Registry

    def group(members: int, sync: bool) -> List[RaftConsensusService]:
        addresses = tuple(f"127.0.0.1:{free_port()}" for _ in range(members))
        services = []
        for address in addresses:
            data_dir = tempfile.mkdtemp(prefix=f"{members}-{'sync' if sync else 'nosync'}-", dir=workdir)
            config = Config(
                raft_bind=address,
                raft_nodes=addresses if members > 1 else (),
                raft_data_dir=data_dir,
                raft_password="bench secret" if members > 1 else "",
            )
            services.append(
                RaftConsensusService(reactor, config, registry=Registry(), directory=FileDirectory(data_dir, sync=sync))
            )
        return services

    @inlineCallbacks
    def leader_of(services, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while True:
            leaders = [s for s in services if s.is_leader()]
            if len(leaders) == 1 and all(s.is_healthy() for s in services):
                return leaders[0]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no settled leader within {timeout:g} s")
            yield deferLater(reactor, 0.02, lambda: None)

    @inlineCallbacks
    def run():
        groups = {config_key(m, s): group(m, s) for m, s in CONFIGS}
        try:
            for services in groups.values():
                for service in services:
                    service.startService()
            for round_ in range(args.rounds):
                order = list(groups)
                order = order[round_ % len(order):] + order[: round_ % len(order)]
                for key in order:
                    leader = yield leader_of(groups[key])
                    times = []
                    for i in range(args.commands):
                        t = time.perf_counter()
                        yield leader.throttle_app(f"bench-{round_}-{i}", time.time() + 3600, 0.5)
                        times.append(time.perf_counter() - t)
                    result = percentiles(times)
                    results.setdefault(key, []).append(result)
                    print(
                        f"round {round_ + 1} in-process {key:9s}: commit p50 {result['p50_ms']:.3f} ms "
                        f"p99 {result['p99_ms']:.3f} ms",
                        flush=True,
                    )
        finally:
            yield gatherResults(
                [s.stopService() for services in groups.values() for s in services if s.running]
            )

    failure = []

    def start():
        d = run()
        d.addErrback(lambda f: (failure.append(f), f.printTraceback()))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if failure:
        raise RuntimeError(f"in-process measurement failed: {failure[0].getErrorMessage()}")


# -- reading the results (for bench.all) ---------------------------------------


def metrics(data: dict):
    """
    The figures of a C{--json} file as L{bench.report.Metric}s, and notes.
    """
    from bench.report import Metric, Target

    def column(rows, key):
        return [row[key] for row in rows]

    disk, processes, inprocess = data["disk"], data["processes"], data["inprocess"]
    result = [
        Metric("disk: fdatasync after a 100-byte append, p50", "ms", column(disk, "fdatasync_p50_ms"), digits=3),
        Metric("disk: fdatasync after a 100-byte append, p99", "ms", column(disk, "fdatasync_p99_ms"), digits=3),
        Metric("disk: msync of a 1 MiB mapping after a 100-byte write, p50", "ms", column(disk, "msync_p50_ms"), digits=3),
        Metric("disk: durable replace (term/vote, snapshot), p50", "ms", column(disk, "replace_p50_ms"), digits=3),
        Metric(
            "3 processes: command on the leader over HTTP, p50",
            "ms",
            column(processes, "p50_ms"),
            Target("<", TARGET_MS),
            note="syncing, as shipped; includes the HTTP round trip",
        ),
        Metric("3 processes: command on the leader over HTTP, p99", "ms", column(processes, "p99_ms")),
        Metric("3 processes: HTTP round trip without a command (/lb-check), p50", "ms", column(processes, "read_p50_ms")),
        Metric("machine load average (1 min) at the round", "", [row["load"] for row in processes if "load" in row], digits=1),
    ]
    for members in (3, 1):
        on, off = inprocess[config_key(members, True)], inprocess[config_key(members, False)]
        who = "3 members" if members == 3 else "1 member"
        result += [
            Metric(
                f"in-process, {who}, syncing: commit p50",
                "ms",
                column(on, "p50_ms"),
                Target("<", TARGET_MS) if members == 3 else None,
                digits=3,
            ),
            Metric(f"in-process, {who}, syncing: commit p99", "ms", column(on, "p99_ms"), digits=3),
            Metric(f"in-process, {who}, not syncing (baseline): commit p50", "ms", column(off, "p50_ms"), digits=3),
            Metric(f"in-process, {who}, not syncing (baseline): commit p99", "ms", column(off, "p99_ms"), digits=3),
            Metric(
                f"in-process, {who}: p50 syncing / not syncing (paired rounds)",
                "",
                [a["p50_ms"] / b["p50_ms"] for a, b in zip(on, off)],
            ),
        ]
    notes = [f"{data['commands']} sequential commands per measurement, {len(processes)} rounds."]
    return result, notes


def method(args: Sequence[str]) -> str:
    """
    How the benchmark was run, for C{BENCHMARKS.md}.
    """
    args = list(args)

    def arg(name, default):
        return args[args.index(name) + 1] if name in args else default

    return f"""\
{arg('--rounds', '10')} rounds, each of: the disk's raw sync costs (200 × `fdatasync` after a
100-byte append, 200 × `msync` of a 1 MiB mapping after a 100-byte write, 50 × durable replace:
temporary file, `fsync`, rename, `fsync` of the directory); {arg('--commands', '200')} sequential
`GET /throttle-app/...` on the leader of three real `twistd freno` processes in a raft group
(syncing, as shipped; one keep-alive connection; each answered once committed), with as many
`GET /lb-check` as the HTTP baseline; and {arg('--commands', '200')} sequential commands on the
leader of raft groups of `RaftConsensusService` members in the benchmark's own process (three
members and one), storing with syncing on and, as the baseline of the same run, off (the
behaviour before durable storage). The in-process members share one core, so their syncs cannot overlap
as they do between processes: those figures are an upper bound, and the on/off ratio per round
is their point. The disk is shared with everything else on the machine: a sync's latency, and so
a commit's, follows the machine's I/O load (listed per round). Target (issue 9): median commit
latency under 5 ms on a 3-node group with syncing."""


# -- main ----------------------------------------------------------------------


def main(argv=None) -> int:
    """
    Run the rounds, print medians, write C{--json}.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--workdir", default=None, help="where the data directories go (default: a temporary directory)")
    parser.add_argument("--json", default=None, help="write every round's figures to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.commands < 2:
        parser.error("--rounds must be at least 1 and --commands at least 2")
    workdir = args.workdir or tempfile.mkdtemp(prefix="freno-commit-latency-")
    os.makedirs(workdir, exist_ok=True)

    from freno.sandbox.nodes import FrenoGroup

    disk: List[Dict[str, float]] = []
    processes: List[Dict[str, float]] = []
    group = FrenoGroup(os.path.join(workdir, "processes"), size=3, store={})
    try:
        group.start(30)
        for round_ in range(args.rounds):
            d = measure_disk(workdir)
            disk.append(d)
            print(
                f"round {round_ + 1} disk: fdatasync p50 {d['fdatasync_p50_ms']:.3f} ms "
                f"p99 {d['fdatasync_p99_ms']:.3f} ms; msync 1 MiB p50 {d['msync_p50_ms']:.3f} ms; "
                f"durable replace p50 {d['replace_p50_ms']:.3f} ms",
                flush=True,
            )
            p = measure_processes(group, args.commands, round_)
            processes.append(p)
            print(
                f"round {round_ + 1} 3 processes: command p50 {p['p50_ms']:.2f} ms p99 {p['p99_ms']:.2f} ms "
                f"(HTTP without a command: p50 {p['read_p50_ms']:.2f} ms; load average {p['load']:.1f})",
                flush=True,
            )
    finally:
        group.stop()

    inprocess: Dict[str, List[Dict[str, float]]] = {}
    _inprocess(args, workdir, inprocess)

    def med(rows, key):
        return statistics.median(row[key] for row in rows)

    print(f"\nmedians over {args.rounds} rounds of {args.commands} commands:")
    print(f"  disk: fdatasync p50 {med(disk, 'fdatasync_p50_ms'):.3f} ms, msync 1 MiB p50 "
          f"{med(disk, 'msync_p50_ms'):.3f} ms, durable replace p50 {med(disk, 'replace_p50_ms'):.3f} ms")
    ok = med(processes, "p50_ms") < TARGET_MS
    print(f"  3 processes: command p50 {med(processes, 'p50_ms'):.2f} ms p99 {med(processes, 'p99_ms'):.2f} ms "
          f"(target p50 < {TARGET_MS:g} ms)")
    for members in (3, 1):
        on, off = inprocess[config_key(members, True)], inprocess[config_key(members, False)]
        ratio = statistics.median(a["p50_ms"] / b["p50_ms"] for a, b in zip(on, off))
        print(
            f"  in-process {members}: syncing p50 {med(on, 'p50_ms'):.3f} ms p99 {med(on, 'p99_ms'):.3f} ms; "
            f"not syncing p50 {med(off, 'p50_ms'):.3f} ms p99 {med(off, 'p99_ms'):.3f} ms; ratio {ratio:.2f}"
        )
        if members == 3:
            ok = ok and med(on, "p50_ms") < TARGET_MS
    print("\n" + ("target met" if ok else "TARGET MISSED"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"commands": args.commands, "disk": disk, "processes": processes, "inprocess": inprocess},
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
