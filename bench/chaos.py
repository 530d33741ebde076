# -*- test-case-name: test.unit.test_chaos,test.integration.test_chaos -*-
"""
Chaos test of the raft group (issue 5): C{python -m bench.chaos [--rounds 20]}.

A 3-node group of real C{twistd freno} processes
(L{freno.sandbox.nodes.FrenoGroup}) with one cluster, C{main}, whose only
host is a MariaDB sandbox primary that the run starts and stops
(L{freno.sandbox.mysql}) and whose metric is C{select 0}
(L{freno.sandbox.cluster.constant_store}: read-only; below the threshold, so
the leader answers C{/check} 200). While a client load runs, the leader is
SIGKILLed (then restarted on the same data dir) and SIGSTOPped (then, after a
few seconds, SIGCONTed) in turn, one fault per round.

The load (threads of this process, blocking HTTP with timeouts):

    - per node, C{--check-threads} threads sending C{/check} to that node
      directly, and one thread sampling its C{/leader-check} every
      L{SAMPLE_INTERVAL};
    - C{--command-threads} threads sending control commands to random
      nodes: C{/throttle-app} and C{/skip-host}, each with a name unique to
      the command, a random TTL (and ratio), recording which were
      acknowledged with 200; and, for some acknowledged ones (L{UNDO_SHARE}
      of the commands), C{/unthrottle-app} or C{/recover-host} of that
      name, once.

Every exchange is recorded with its node and the client's monotonic send and
answer times; at the end the run waits for a stable leader and for every
node to catch up, reads every node's C{/throttled-apps} and
C{/skipped-hosts}, and checks the two properties defined (soundly, with the
sampling granularity and nothing more) in L{bench.chaos_analysis}:

    1. every node's final state (the final leader's, and every node's after
       catch-up) reflects the acknowledged commands: no acknowledged
       throttle or skip is missing, and none is present after its
       acknowledged unthrottle or recover;
    2. no node answered C{/check} 200 outside its own leadership as its
       C{/leader-check} samples show it, and no two nodes answered C{/check}
       (or C{/leader-check}) 200 together for longer than the deposition
       window (the 1.5 s lease plus a measured slack,
       L{bench.chaos_analysis.DEPOSITION_WINDOW}).

It prints a summary (rounds, commands, checks by status, failover times,
violations), writes every record to C{chaos-records.json} in the work
directory as evidence, and exits 1 on any violation. C{--json PATH} also
writes the summary's figures there (for C{bench.all}).

L{run} is the same run for a caller that owns the group (the bounded
version in C{test.integration.test_chaos}).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Dict, List, Optional, Sequence

import attr

from bench.chaos_analysis import (
    DEPOSITION_WINDOW,
    DOWN,
    NO_ANSWER,
    Analysis,
    CommandRecord,
    NodeState,
    Observation,
    Violation,
    analyse,
    state_violations,
)
from freno.sandbox.cluster import constant_store
from freno.sandbox.mysql import MySQLSandbox
from freno.sandbox.nodes import FrenoGroup, FrenoNode, NodeError, wait_for

#: The command kinds, in the order the summary lists them.
KINDS = ("throttle", "skip", "unthrottle", "recover")
#: The app the checks use (never throttled by the run).
CHECK = "/check/chaos-check/mysql/main"
#: Seconds between two C{/leader-check} samples of one node.
SAMPLE_INTERVAL = 0.05
#: Seconds a check thread waits between two checks.
CHECK_PAUSE = 0.005
#: Client timeouts (seconds): commands may take the 5 s commit bound.
CHECK_TIMEOUT = 1.0
SAMPLE_TIMEOUT = 0.5
COMMAND_TIMEOUT = 8.0
#: The share of commands that undo an acknowledged throttle or skip (while
#: there is one not undone yet).
UNDO_SHARE = 0.3
#: The undoing command of each kind, and its route.
UNDO = {"throttle": ("unthrottle", "/unthrottle-app/"), "skip": ("recover", "/recover-host/")}


def request(url: str, timeout: float) -> int:
    """
    One GET; the status, L{DOWN} when the connection is refused, or
    L{NO_ANSWER} when there is no answer in time (or the connection breaks).
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except urllib.error.URLError as e:
        return DOWN if isinstance(e.reason, ConnectionRefusedError) else NO_ANSWER
    except ConnectionRefusedError:
        return DOWN
    except (OSError, ValueError):
        return NO_ANSWER


@attr.s(auto_attribs=True)
class Recorder:
    """
    Everything a run observed, appended from many threads.
    """

    checks: List[Observation] = attr.ib(factory=list)
    samples: List[Observation] = attr.ib(factory=list)
    commands: List[CommandRecord] = attr.ib(factory=list)
    events: List[dict] = attr.ib(factory=list)
    lock: threading.Lock = attr.ib(factory=threading.Lock)

    def event(self, kind: str, node: str, round_: int, **extra) -> float:
        """
        Note a fault-driver event; return its monotonic time.
        """
        now = time.monotonic()
        with self.lock:
            self.events.append(dict(t=now, kind=kind, node=node, round=round_, **extra))
        return now

    def to_json(self) -> dict:
        """
        Every record, for the evidence file.
        """
        with self.lock:
            return {
                "checks": [attr.astuple(o) for o in self.checks],
                "samples": [attr.astuple(o) for o in self.samples],
                "commands": [attr.asdict(c) for c in self.commands],
                "events": list(self.events),
            }


class Load:
    """
    The client threads; L{start} them, L{stop_commands} then L{stop}.

    @param prefix: starts every name the commands send.
    """

    def __init__(
        self,
        nodes: Sequence[FrenoNode],
        recorder: Recorder,
        prefix: str,
        check_threads: int = 2,
        command_threads: int = 2,
        seed: Optional[int] = None,
    ) -> None:
        self.nodes = list(nodes)
        self.recorder = recorder
        self.prefix = prefix
        self._check_threads = check_threads
        self._command_threads = command_threads
        self._rng = random.Random(seed)
        self._counter = iter(range(10**9))
        self._counter_lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_commands = threading.Event()
        self._undoable: List[CommandRecord] = []
        self._threads: List[threading.Thread] = []
        self._commanders: List[threading.Thread] = []

    def start(self) -> None:
        for node in self.nodes:
            for _ in range(self._check_threads):
                self._spawn(self._checker, node)
            self._spawn(self._sampler, node)
        for _ in range(self._command_threads):
            thread = self._spawn(self._commander, random.Random(self._rng.random()))
            self._commanders.append(thread)

    def _spawn(self, target: Callable, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def _observe(self, node: FrenoNode, path: str, timeout: float) -> Observation:
        start = time.monotonic()
        status = request(node.url + path, timeout)
        return Observation(node.name, start, time.monotonic(), status)

    def _checker(self, node: FrenoNode) -> None:
        while not self._stop.is_set():
            o = self._observe(node, CHECK, CHECK_TIMEOUT)
            with self.recorder.lock:
                self.recorder.checks.append(o)
            # a short pause leaves the shared machine's CPUs to the nodes;
            # a longer one after a refusal keeps a dead node from spinning us
            self._stop.wait(CHECK_PAUSE if o.status != DOWN else 0.02)

    def _sampler(self, node: FrenoNode) -> None:
        while not self._stop.is_set():
            o = self._observe(node, "/leader-check", SAMPLE_TIMEOUT)
            with self.recorder.lock:
                self.recorder.samples.append(o)
            self._stop.wait(max(0.0, SAMPLE_INTERVAL - (o.end - o.start)))

    def _next(self) -> int:
        with self._counter_lock:
            return next(self._counter)

    def _take_undoable(self, rng: random.Random) -> Optional[CommandRecord]:
        """
        Remove and return a random acknowledged throttle or skip not undone
        yet (each is undone at most once), or L{None}.
        """
        with self.recorder.lock:
            if not self._undoable:
                return None
            return self._undoable.pop(rng.randrange(len(self._undoable)))

    def _commander(self, rng: random.Random) -> None:
        while not self._stop_commands.is_set():
            node = rng.choice(self.nodes)
            undo = self._take_undoable(rng) if rng.random() < UNDO_SHARE else None
            if undo is not None:
                name, ttl, ratio = undo.name, 0, None
                kind, route = UNDO[undo.kind]
                path = route + name
            elif rng.random() < 0.6:
                ttl = rng.randint(30, 600)
                name, ratio = f"{self.prefix}app{self._next()}", round(rng.uniform(0.05, 1.0), 3)
                kind, path = "throttle", f"/throttle-app/{name}/ttl/{ttl}/ratio/{ratio}"
            else:
                ttl = rng.randint(30, 600)
                name, ratio = f"{self.prefix}host{self._next()}", None
                kind, path = "skip", f"/skip-host/{name}/ttl/{ttl}"
            o = self._observe(node, path, COMMAND_TIMEOUT)
            record = CommandRecord(kind, name, node.name, o.start, o.end, o.status, ttl, ratio)
            with self.recorder.lock:
                self.recorder.commands.append(record)
                if record.acknowledged and kind in UNDO:
                    self._undoable.append(record)
            self._stop_commands.wait(rng.uniform(0.01, 0.05))

    def stop_commands(self) -> None:
        """
        Stop sending commands and wait for the last answers.
        """
        self._stop_commands.set()
        deadline = time.monotonic() + COMMAND_TIMEOUT + 2
        for thread in self._commanders:
            thread.join(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        """
        Stop every thread and wait for it.
        """
        self._stop_commands.set()
        self._stop.set()
        deadline = time.monotonic() + COMMAND_TIMEOUT + 2
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _names_leader(node: FrenoNode) -> bool:
    return node.get("/raft/leader", timeout=0.5)[0] == 200


def wait_stable(group: FrenoGroup, timeout: float = 30.0) -> FrenoNode:
    """
    Wait until exactly one node claims leadership and answers C{/check} 200,
    and every running node names a leader; return the leader.
    """

    def stable():
        leaders = group.leaders()
        if len(leaders) != 1:
            return None
        leader = leaders[0]
        if leader.get(CHECK, timeout=CHECK_TIMEOUT)[0] != 200:
            return None
        if not all(_names_leader(n) for n in group.nodes if n.running()):
            return None
        return leader

    return wait_for(stable, timeout, interval=0.1, what="a stable leader")


def _state(node: FrenoNode) -> NodeState:
    status, body = node.get("/throttled-apps", timeout=2.0)
    apps = (
        {k: float(v["Ratio"]) for k, v in json.loads(body).items()} if status == 200 else None
    )
    status, body = node.get("/skipped-hosts", timeout=2.0)
    hosts = sorted(json.loads(body)) if status == 200 else None
    return NodeState(apps, hosts)


def _missing(state: Optional[NodeState], commands: Sequence[CommandRecord]) -> List[str]:
    """
    The names whose acknowledged C{commands} C{state} does not reflect
    (L{state_violations}: lost, resurrected or with a wrong ratio), or
    every acknowledged name when it is unreadable.
    """
    if state is None or state.apps is None or state.hosts is None:
        return sorted({c.name for c in commands if c.acknowledged})
    return sorted({v.name for v in state_violations(commands, state, "") if v.name})


@attr.s(auto_attribs=True)
class ChaosResult:
    """
    A finished run: its records, the analysis, the final leader and states,
    and the faults (one dict per round: C{kind}, C{victim}, C{t}).
    """

    recorder: Recorder
    analysis: Analysis
    final_leader: Optional[str]
    states: Dict[str, NodeState]
    faults: List[dict]
    rounds_done: int
    elapsed: float

    @property
    def violations(self) -> List[Violation]:
        return self.analysis.violations

    def failover_times(self) -> Dict[str, Dict[str, List[float]]]:
        """
        Per fault kind, the seconds from each fault to the first
        C{/leader-check} 200 and the first C{/check} 200 on another node
        (requests sent after the fault, measured at their answer).
        """
        out: Dict[str, Dict[str, List[float]]] = {}
        for fault in self.faults:
            times = out.setdefault(fault["kind"], {"leader_check": [], "check": []})
            for key, records in (
                ("leader_check", self.recorder.samples),
                ("check", self.recorder.checks),
            ):
                answered = [
                    o.end
                    for o in records
                    if o.status == 200 and o.node != fault["victim"] and o.start >= fault["t"]
                ]
                if answered:
                    times[key].append(min(answered) - fault["t"])
        return out


def run(
    group: FrenoGroup,
    rounds: int,
    seed: Optional[int] = None,
    freeze_seconds: Sequence[float] = (2.5, 4.0),
    settle_seconds: Sequence[float] = (0.5, 1.5),
    check_threads: int = 2,
    command_threads: int = 2,
    log: Callable[[str], None] = lambda line: None,
) -> ChaosResult:
    """
    Run C{rounds} faults against a started C{group} under load (kills on
    even rounds, freezes on odd ones) and analyse. The caller stops the
    group.
    """
    rng = random.Random(seed)
    prefix = f"chaos{secrets.token_hex(3)}-"
    recorder = Recorder()
    load = Load(group.nodes, recorder, prefix, check_threads, command_threads, rng.random())
    began = time.monotonic()
    faults: List[dict] = []
    errors: List[Violation] = []
    rounds_done = 0
    wait_stable(group)
    load.start()
    try:
        time.sleep(rng.uniform(*settle_seconds))
        for number in range(rounds):
            try:
                leader = wait_stable(group)
            except TimeoutError as e:
                errors.append(Violation("no-leader", f"round {number}: {e}"))
                break
            others = [n for n in group.nodes if n is not leader]
            if number % 2 == 0:
                t = recorder.event("kill", leader.name, number)
                leader.kill()
                try:
                    group.wait_leader(among=others, timeout=20)
                except TimeoutError as e:
                    errors.append(Violation("no-leader", f"round {number} after kill: {e}"))
                recorder.event("restart", leader.name, number)
                leader.start()
                try:
                    leader.wait_ready(30)
                except NodeError as e:
                    errors.append(Violation("restart-failed", f"round {number}: {e}"))
                    break
                kind = "kill"
            else:
                pause = rng.uniform(*freeze_seconds)
                t = recorder.event("freeze", leader.name, number, seconds=pause)
                leader.freeze()
                time.sleep(pause)
                leader.thaw()
                recorder.event("thaw", leader.name, number)
                kind = "freeze"
            faults.append({"kind": kind, "victim": leader.name, "t": t})
            rounds_done += 1
            log(f"round {number + 1}/{rounds}: {kind} {leader.name}")
            time.sleep(rng.uniform(*settle_seconds))
        load.stop_commands()
        final: Optional[FrenoNode]
        try:
            final = wait_stable(group)
        except TimeoutError:
            final = None
    finally:
        load.stop()
    running = [n for n in group.nodes if n.running()]
    try:
        wait_for(
            lambda: not any(_missing(_state(n), recorder.commands) for n in running),
            20,
            interval=0.2,
            what="every node to catch up",
        )
    except TimeoutError:
        pass  # the analysis names what is missing where
    states = {n.name: _state(n) for n in running}
    final_name = final.name if final is not None else None
    analysis = analyse(
        recorder.checks, recorder.samples, recorder.commands, final_name, states, prefix
    )
    analysis.violations[:0] = errors
    return ChaosResult(
        recorder, analysis, final_name, states, faults, rounds_done, time.monotonic() - began
    )


def _figures(values: List[float]) -> str:
    if not values:
        return "n=0"
    return (
        f"median {statistics.median(values):6.3f}s  min {min(values):6.3f}s  "
        f"max {max(values):6.3f}s  n={len(values)}"
    )


def _counts(statuses) -> str:
    counts: Dict[int, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    names = {NO_ANSWER: "no-answer", DOWN: "refused"}
    return ", ".join(f"{names.get(k, k)}: {v}" for k, v in sorted(counts.items()))


def summary(result: ChaosResult, rounds: int) -> str:
    """
    The human-readable summary of a run.
    """
    r = result.recorder
    acked = [c for c in r.commands if c.acknowledged]
    on_leader = _missing(result.states.get(result.final_leader or ""), r.commands)
    anywhere = {name for state in result.states.values() for name in _missing(state, r.commands)}
    kinds = [f["kind"] for f in result.faults]
    lines = [
        f"chaos: {result.rounds_done}/{rounds} rounds ({kinds.count('kill')} kills, "
        f"{kinds.count('freeze')} freezes) in {result.elapsed:.1f}s; final leader "
        f"{result.final_leader}",
        f"commands: sent {len(r.commands)}, acknowledged {len(acked)} ("
        + ", ".join(f"{kind} {sum(c.kind == kind for c in acked)}" for kind in KINDS)
        + f"); answers {_counts(c.status for c in r.commands)}",
        f"names whose final state does not reflect the acknowledged commands: on the final "
        f"leader {len(on_leader)}, on some node {len(anywhere)} ({len(result.states)} nodes "
        f"read; {result.analysis.undecided} undecided: a command of unknown outcome could come last)",
        f"/check answers: {_counts(o.status for o in r.checks)}",
        f"/leader-check samples: {_counts(o.status for o in r.samples)}",
        f"longest certain overlap of two nodes answering 200: /check "
        f"{max(0.0, result.analysis.longest_check_overlap):.3f}s, /leader-check "
        f"{max(0.0, result.analysis.longest_leader_overlap):.3f}s (allowed {DEPOSITION_WINDOW:.2f}s)",
    ]
    for kind, times in sorted(result.failover_times().items()):
        lines.append(f"failover {kind:6s} to /leader-check 200: {_figures(times['leader_check'])}")
        lines.append(f"failover {kind:6s} to /check 200:        {_figures(times['check'])}")
    lines.append(f"violations: {len(result.violations)}")
    for v in result.violations[:30]:
        lines.append(f"  {v.kind}: {v.detail}")
    if len(result.violations) > 30:
        lines.append(f"  ... and {len(result.violations) - 30} more")
    return "\n".join(lines)


def figures(result: ChaosResult, rounds: int) -> dict:
    """
    The summary's figures as a JSON-ready dict.
    """
    r = result.recorder
    kinds = [f["kind"] for f in result.faults]
    on_leader = _missing(result.states.get(result.final_leader or ""), r.commands)
    anywhere = {name for state in result.states.values() for name in _missing(state, r.commands)}

    def counts(statuses) -> Dict[str, int]:
        out: Dict[str, int] = {}
        names = {NO_ANSWER: "no-answer", DOWN: "refused"}
        for status in statuses:
            key = str(names.get(status, status))
            out[key] = out.get(key, 0) + 1
        return out

    return {
        "rounds": rounds,
        "rounds_done": result.rounds_done,
        "kills": kinds.count("kill"),
        "freezes": kinds.count("freeze"),
        "elapsed": result.elapsed,
        "commands_sent": len(r.commands),
        "commands_acknowledged": sum(1 for c in r.commands if c.acknowledged),
        "acknowledged_by_kind": {
            kind: sum(1 for c in r.commands if c.acknowledged and c.kind == kind) for kind in KINDS
        },
        "undecided": result.analysis.undecided,
        "deposition_window": DEPOSITION_WINDOW,
        "missing_on_final_leader": len(on_leader),
        "missing_on_some_node": len(anywhere),
        "checks": counts(o.status for o in r.checks),
        "longest_check_overlap": max(0.0, result.analysis.longest_check_overlap),
        "longest_leader_overlap": max(0.0, result.analysis.longest_leader_overlap),
        "failover_times": result.failover_times(),
        "violations": [f"{v.kind}: {v.detail}" for v in result.violations],
    }


def main(argv=None) -> int:
    """
    Run the chaos test; exit status 1 on any violation.
    """
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--check-threads", type=int, default=2)
    parser.add_argument("--command-threads", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None, help="write the summary's figures to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    workdir = args.workdir or tempfile.mkdtemp(prefix="freno-chaos-")
    sandbox = MySQLSandbox(os.path.join(workdir, "mysql"), replicas=0)
    sandbox.start()  # its atexit hook stops it, should the run fail
    group = FrenoGroup(workdir, size=3, store=constant_store(sandbox))
    try:
        group.start(30)
        result = run(
            group,
            args.rounds,
            seed=args.seed,
            check_threads=args.check_threads,
            command_threads=args.command_threads,
            log=lambda line: print(line, flush=True),
        )
    finally:
        group.stop()
        sandbox.stop()
    path = os.path.join(workdir, "chaos-records.json")
    with open(path, "w") as f:
        document = result.recorder.to_json()
        document["faults"] = result.faults
        document["violations"] = [attr.asdict(v) for v in result.violations]
        json.dump(document, f)
    print(summary(result, args.rounds))
    print(f"records and node logs: {workdir}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures(result, args.rounds), f, indent=1)
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
