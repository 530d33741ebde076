# -*- test-case-name: test.unit.test_bench_probing_leader,test.integration.test_bench_probing_leader -*-
"""
A real probing leader for the check-path benchmark: what users run.

L{ProbingGroup} starts a MariaDB replication sandbox
(L{freno.sandbox.mysql.MySQLSandbox}: a primary, two replicas, a heartbeat
writer) and three real C{twistd freno} processes in a raft group
(L{freno.sandbox.nodes.FrenoGroup}) whose two clusters, C{main} and
C{other}, each list both replicas, with freno's heartbeat lag query and the
default probe settings (and so the default probe driver). Once a leader
answers C{/check} 200 the benchmark loads it.

L{NodeReader} reads what a node exposes about itself: C{/debug/vars} (the
probe counters, the reactor-lag timer) and the raft term and leadership
changes in C{/metrics}. L{Saturation} watches the group while a load runs.

Everything here blocks (it runs in the benchmark's driver process, not in a
reactor); every wait is a poll with a deadline; every process is stopped by
its pid.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Dict, List, Optional, Tuple

import attr

from freno.config.model import HEARTBEAT_QUERY, ProbeSettings
from freno.sandbox.mysql import MySQLSandbox
from freno.sandbox.nodes import FrenoGroup, FrenoNode, http_get, wait_for

#: The clusters the group probes, each listing both replicas.
CLUSTERS = ("main", "other")
#: The path the benchmark loads on the leader (the issue's).
CHECK_PATH = "/check/x/mysql/main"


def store(sandbox: MySQLSandbox) -> dict:
    """
    The C{Stores.MySQL} configuration: L{CLUSTERS} on the sandbox's
    replicas, freno's heartbeat query, threshold 1 s, default probe settings.
    """
    hosts = [f"{r.host}:{r.port}" for r in sandbox.replicas]
    return {
        "User": sandbox.user,
        "Password": sandbox.password,
        "MetricQuery": HEARTBEAT_QUERY,
        "ThrottleThreshold": 1.0,
        "Clusters": {name: {"StaticHostsSettings": {"Hosts": hosts}} for name in CLUSTERS},
    }


def probes_due_per_second(replicas: int = 2) -> float:
    """
    Probes per second the leader is due to run: one per host per
    C{ProbeIntervalMillis} (the default), for every cluster.
    """
    return len(CLUSTERS) * replicas / ProbeSettings().interval


@attr.s(auto_attribs=True)
class ProbingGroup:
    """
    The sandbox and the three nodes. L{start} waits for a leader that
    answers L{CHECK_PATH} 200; L{stop} stops everything by pid.
    """

    workdir: str
    sandbox: Optional[MySQLSandbox] = None
    group: Optional[FrenoGroup] = None
    leader: Optional[FrenoNode] = None

    def start(self, timeout: float = 60.0) -> FrenoNode:
        """
        Start the sandbox and the group; return the leader once it answers
        C{/check} 200 and every node names it and shows the same
        C{freno_raft_term} (a follower still joining would otherwise count
        as a term change in the first watch).
        """
        self.sandbox = MySQLSandbox(os.path.join(self.workdir, "mysql"), replicas=2)
        self.sandbox.start()
        self.group = FrenoGroup(os.path.join(self.workdir, "freno"), size=3, store=store(self.sandbox))
        self.group.start(timeout)
        self.leader = self.group.wait_leader(timeout)
        leader = self.leader
        wait_for(
            lambda: leader.get(CHECK_PATH, timeout=1.0)[0] == 200,
            timeout, what=f"{leader.name} to answer {CHECK_PATH} 200",
        )
        named = (200, json.dumps(leader.raft_address).encode() + b"\n")

        def settled() -> bool:
            if not all(n.get("/raft/leader", timeout=1.0) == named for n in self.group.nodes):
                return False
            try:
                terms = {NodeReader(n).raft()[0] for n in self.group.nodes}
            except (RuntimeError, ValueError):
                return False
            return len(terms) == 1

        wait_for(settled, timeout, what=f"every node to name {leader.name}, in one term")
        return leader

    @property
    def check_url(self) -> str:
        """
        The leader's check URL.
        """
        assert self.leader is not None
        return self.leader.url + CHECK_PATH

    def stop(self) -> None:
        """
        Stop the nodes, then the sandbox.
        """
        try:
            if self.group is not None:
                self.group.stop()
        finally:
            if self.sandbox is not None:
                self.sandbox.stop()


_SAMPLE = re.compile(r"^(freno_raft_term|freno_raft_leader_changes_total)(?:\{\})? ([0-9.e+]+)$", re.M)


@attr.s(frozen=True, auto_attribs=True)
class NodeReader:
    """
    Reads one node's C{/debug/vars} and C{/metrics}.
    """

    node: FrenoNode
    timeout: float = 5.0

    def vars(self) -> dict:
        """
        C{/debug/vars} as a dict.

        @raise RuntimeError: no 200 answer, or not JSON.
        """
        status, body = self.node.get("/debug/vars", timeout=self.timeout)
        if status != 200:
            raise RuntimeError(f"{self.node.name} /debug/vars answered {status}")
        return json.loads(body)

    def raft(self) -> Tuple[float, float]:
        """
        C{(term, leader changes seen)} from C{/metrics}.

        @raise RuntimeError: no 200 answer, or the series are missing.
        """
        status, body = self.node.get("/metrics", timeout=self.timeout)
        if status != 200:
            raise RuntimeError(f"{self.node.name} /metrics answered {status}")
        found = dict(_SAMPLE.findall(body.decode("utf-8", "replace")))
        if "freno_raft_term" not in found:
            raise RuntimeError(f"{self.node.name} /metrics has no freno_raft_term")
        return float(found["freno_raft_term"]), float(found.get("freno_raft_leader_changes_total", 0))


def lag_ms(variables: dict) -> Dict[str, float]:
    """
    The reactor-lag timer's p99 and max in C{/debug/vars} (nanoseconds), in
    ms.

    @raise KeyError: the node exposes no reactor lag.
    """
    return {
        "p99": variables["reactor.lag.99-percentile"] / 1e6,
        "max": variables["reactor.lag.max"] / 1e6,
    }


@attr.s(auto_attribs=True)
class Saturation:
    """
    Watches the group while a load saturates the leader, from threads of
    this process (blocking HTTP, bounded by C{until}):

        - every node's C{/leader-check} every 100 ms (who claims to lead);
        - C{GET /check} on the leader every 100 ms on its own connection,
          recording the status and, for other answers than 200, the
          message (a C{Metric is stale} answer means the probes fell
          behind);
        - the leader's C{/debug/vars} C{lag_samples} times, evenly spaced
          and the last one a second before the load ends (the reactor-lag
          percentiles over the timer's recent samples, about the last 20 s).

    L{begin} reads the counters and terms before, L{end} after.
    """

    group: ProbingGroup
    lag_samples: int = 3
    leaders_seen: List[Tuple[float, str]] = attr.ib(factory=list)
    checks: Dict[str, int] = attr.ib(factory=dict)
    lag: List[Dict[str, float]] = attr.ib(factory=list)
    failures: List[str] = attr.ib(factory=list)
    before: dict = attr.ib(factory=dict)
    after: dict = attr.ib(factory=dict)
    _stop: threading.Event = attr.ib(factory=threading.Event)
    _threads: List[threading.Thread] = attr.ib(factory=list)
    _began: float = 0.0
    _seconds: float = 0.0

    def _state(self) -> dict:
        assert self.group.group is not None and self.group.leader is not None
        variables = NodeReader(self.group.leader).vars()
        return {
            "time": time.monotonic(),
            "raft": {n.name: NodeReader(n).raft() for n in self.group.group.nodes},
            "probes_total": variables.get("probes.total", 0),
            "probes_error": variables.get("probes.error", 0),
        }

    def begin(self, seconds: float) -> None:
        """
        Read the state before, and start the watching threads for a load of
        C{seconds} that starts now (they stop at L{end}, or 30 s after the
        load should have ended).
        """
        self.before = self._state()
        self._began = time.monotonic()
        self._seconds = seconds
        until = self._began + seconds + 30
        for target in (self._watch_leaders, self._watch_checks, self._watch_vars):
            thread = threading.Thread(target=target, args=(until,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def end(self) -> None:
        """
        Stop the threads and read the state after.
        """
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self.after = self._state()

    def _running(self, until: float) -> bool:
        return not self._stop.is_set() and time.monotonic() < until

    def _watch_leaders(self, until: float) -> None:
        assert self.group.group is not None
        last = None
        while self._running(until):
            claims = []
            for node in self.group.group.nodes:
                status = node.get("/leader-check", timeout=3.0)[0]
                if status == 200:
                    claims.append(node.name)
                elif status == 0:
                    claims.append(f"{node.name} (no answer)")
            who = ", ".join(claims) or "none"
            if who != last:
                self.leaders_seen.append((time.monotonic(), who))
                last = who
            self._stop.wait(0.1)

    def _watch_checks(self, until: float) -> None:
        assert self.group.leader is not None
        while self._running(until):
            status, body = http_get(self.group.check_url, timeout=5.0)
            key = str(status) if status else "no answer"
            if status not in (0, 200):
                try:
                    key += ": " + json.loads(body).get("Message", "")
                except (ValueError, AttributeError):
                    pass
                if "stale" in key.lower():
                    key = f"{status}: Metric is stale"
            self.checks[key] = self.checks.get(key, 0) + 1
            self._stop.wait(0.1)

    def _watch_vars(self, until: float) -> None:
        assert self.group.leader is not None
        reader = NodeReader(self.group.leader)
        step = self._seconds / self.lag_samples
        for k in range(1, self.lag_samples + 1):
            due = self._began + max(1.0, k * step - 1.0)
            if self._stop.wait(max(0.0, due - time.monotonic())) or time.monotonic() > until:
                return
            try:
                self.lag.append(lag_ms(reader.vars()))
            except (RuntimeError, KeyError, ValueError) as e:
                self.failures.append(f"reading the leader's reactor lag: {e}")

    def figures(self) -> dict:
        """
        The JSON-ready figures of the saturation (after L{end}).
        """
        seconds = self.after["time"] - self.before["time"]
        terms = {
            name: [self.before["raft"][name][0], self.after["raft"][name][0]]
            for name in self.before["raft"]
        }
        changes = sum(
            self.after["raft"][name][1] - self.before["raft"][name][1] for name in self.before["raft"]
        )
        probes = self.after["probes_total"] - self.before["probes_total"]
        errors = self.after["probes_error"] - self.before["probes_error"]
        return {
            "seconds": seconds,
            "terms": terms,
            "term_changes": sum(1 for before, after in terms.values() if after != before),
            "leader_changes_seen_by_nodes": changes,
            "leaders_seen": [who for _, who in self.leaders_seen],
            "checks": self.checks,
            "stale_answers": sum(v for k, v in self.checks.items() if "stale" in k.lower()),
            "lag_ms": self.lag,
            "probes_ok_per_s": (probes - errors) / seconds if seconds > 0 else 0.0,
            "probe_errors": errors,
            "probes_due_per_s": probes_due_per_second(),
            "failures": self.failures,
        }
