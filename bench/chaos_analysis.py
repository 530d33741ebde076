# -*- test-case-name: test.unit.test_chaos,test.integration.test_chaos -*-
"""
What the chaos run records, and the pure analysis of it (L{analyse}).

Everything here is plain data and pure functions over it, so the
definitions of the two properties are unit-tested on hand-made timelines
(C{test.test_chaos.AnalysisTests}) apart from the real run.

Recording
=========

Every HTTP exchange is an L{Observation}: the node, the client's monotonic
time when the request was sent (C{start}) and when the answer arrived
(C{end}), and the status. The node produced its answer at some unknown
instant inside C{[start, end]}; nothing more precise can be claimed. Status
L{NO_ANSWER} (timed out, reset) says nothing about the node; status L{DOWN}
(connection refused: nothing listens on the port) means the node served
nothing at that instant.

Property 1: acknowledged commands
=================================

Every command answered 200 (L{CommandRecord}) must be present on the final
leader and, after catch-up, on every node: a throttle under its app name
with the ratio sent, a skip under its host name. Names are unique per
command, so presence is unambiguous; a name present that was never sent is
reported too.

Property 2: no 200 from a non-leader
====================================

(a) Against the node's own leadership. A node's C{/leader-check} samples
are sequential. A I{definite} sample is one with an answer (200, 404, ...)
or L{DOWN}. For each maximal run of definite 200 samples, the node may have
believed itself leader from just after the last definite non-200 sample
before the run was sent, until the first definite non-200 sample after the
run was answered: the region C{(previous.start, next.end)} (open-ended when
there is no such sample). These regions are the sampling granularity and no
more. A C{/check} 200 on node N whose C{[start, end]} meets none of N's
regions was answered while N said, before and after, that it was not
leader, with no sample in between saying otherwise: a violation.

(b) Two nodes at once. A node's I{serving runs} are maximal runs of its
C{/check} answers (in order of sending) that are all 200, with no other
answer in between and no gap longer than C{max_gap}. A run certainly
covers C{[first.end, last.start]}: the node served at an instant no later
than the first answer's arrival and at one no earlier than the last one's
sending, and answered 200 to everything in between. Two runs of different
nodes whose certain spans overlap by more than L{DEPOSITION_WINDOW} (the
2 s a leader cut off from the majority may take to stop serving, issue 5)
are a violation. The same is computed for C{/leader-check} (two nodes
claiming leadership at once), which issue 5 also bounds.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import attr

#: Status of a request that got no answer (timeout, reset): no information.
NO_ANSWER = 0
#: Status of a refused connection: nothing listened, nothing was served.
DOWN = -1
#: Seconds two nodes may serve at once (a cut-off leader stops within 2 s).
DEPOSITION_WINDOW = 2.0
#: Default longest silence inside one serving run (seconds).
MAX_GAP = 0.5

INF = float("inf")


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Observation:
    """
    One request to one node: sent at C{start}, answered at C{end} (client
    monotonic seconds) with C{status}.
    """

    node: str
    start: float
    end: float
    status: int


@attr.s(frozen=True, auto_attribs=True, slots=True)
class CommandRecord:
    """
    One control command: C{kind} is C{"throttle"} (app C{name}, C{ttl}
    minutes, C{ratio}) or C{"skip"} (host C{name}, C{ttl} minutes).
    """

    kind: str
    name: str
    node: str
    start: float
    end: float
    status: int
    ttl: int
    ratio: Optional[float] = None

    @property
    def acknowledged(self) -> bool:
        """
        Whether the node answered 200 (the command was committed).
        """
        return self.status == 200


@attr.s(frozen=True, auto_attribs=True)
class NodeState:
    """
    What one node answered at the end: C{apps} (C{/throttled-apps}: name to
    ratio) and C{hosts} (C{/skipped-hosts} names); C{None} if unreadable.
    """

    apps: Optional[Mapping[str, float]]
    hosts: Optional[Sequence[str]]


@attr.s(frozen=True, auto_attribs=True)
class Violation:
    """
    One breach of a property, with the evidence that shows it.
    """

    kind: str
    detail: str


def _by_node(observations: Iterable[Observation]) -> Dict[str, List[Observation]]:
    nodes: Dict[str, List[Observation]] = {}
    for o in observations:
        nodes.setdefault(o.node, []).append(o)
    for items in nodes.values():
        items.sort(key=lambda o: (o.start, o.end))
    return nodes


def leader_regions(samples: Sequence[Observation]) -> List[Tuple[float, float]]:
    """
    The open intervals in which a node may have believed itself leader,
    given its sequential C{/leader-check} C{samples} (see the module
    docstring, property 2a).
    """
    definite = sorted(
        (s for s in samples if s.status != NO_ANSWER), key=lambda o: (o.start, o.end)
    )
    regions: List[Tuple[float, float]] = []
    index = 0
    while index < len(definite):
        if definite[index].status != 200:
            index += 1
            continue
        first = index
        while index < len(definite) and definite[index].status == 200:
            index += 1
        lo = definite[first - 1].start if first > 0 else -INF
        hi = definite[index].end if index < len(definite) else INF
        regions.append((lo, hi))
    return regions


def _meets(o: Observation, region: Tuple[float, float]) -> bool:
    lo, hi = region
    return o.start < hi and o.end > lo


def _neighbours(samples: Sequence[Observation], o: Observation) -> str:
    before = [s for s in samples if s.status != NO_ANSWER and s.end <= o.start]
    after = [s for s in samples if s.status != NO_ANSWER and s.start >= o.end]
    parts = []
    if before:
        b = before[-1]
        parts.append(f"last /leader-check before: {b.status} [{b.start:.3f}, {b.end:.3f}]")
    if after:
        a = after[0]
        parts.append(f"first /leader-check after: {a.status} [{a.start:.3f}, {a.end:.3f}]")
    return "; ".join(parts) or "no /leader-check samples"


def checks_outside_leadership(
    checks: Iterable[Observation], samples: Iterable[Observation]
) -> List[Violation]:
    """
    Property 2a: every C{/check} 200 meets one of its node's
    L{leader_regions}.
    """
    samples_by_node = _by_node(samples)
    regions = {node: leader_regions(s) for node, s in samples_by_node.items()}
    violations = []
    for o in checks:
        if o.status != 200:
            continue
        if any(_meets(o, r) for r in regions.get(o.node, ())):
            continue
        violations.append(
            Violation(
                "check-200-from-non-leader",
                f"{o.node} answered /check 200 in [{o.start:.3f}, {o.end:.3f}] "
                f"outside its own leadership ({_neighbours(samples_by_node.get(o.node, []), o)})",
            )
        )
    return violations


def serving_runs(
    observations: Sequence[Observation], max_gap: float = MAX_GAP
) -> List[Tuple[float, float]]:
    """
    The certain spans C{(first.end, last.start)} of one node's runs of
    200 answers (see the module docstring, property 2b); runs whose span is
    empty (a single answer, or overlapping answers) are left out.
    """
    ordered = sorted(observations, key=lambda o: (o.start, o.end))
    runs: List[Tuple[float, float]] = []
    first_end: Optional[float] = None
    last_start = last_end = 0.0

    def close() -> None:
        if first_end is not None and last_start > first_end:
            runs.append((first_end, last_start))

    for o in ordered:
        if o.status != 200 or (first_end is not None and o.start - last_end > max_gap):
            close()
            first_end = None
            if o.status != 200:
                continue
        if first_end is None:
            first_end, last_start, last_end = o.end, o.start, o.end
        else:
            last_start, last_end = max(last_start, o.start), max(last_end, o.end)
    close()
    return runs


def overlaps(
    observations: Iterable[Observation],
    what: str,
    window: float = DEPOSITION_WINDOW,
    max_gap: float = MAX_GAP,
) -> Tuple[float, List[Violation]]:
    """
    Property 2b: the longest certain overlap of two different nodes'
    serving runs, and a violation for every pair overlapping by more than
    C{window}.

    @param what: the route, for the messages (C{"/check"}, C{"/leader-check"}).
    """
    runs = {n: serving_runs(obs, max_gap) for n, obs in _by_node(observations).items()}
    names = sorted(runs)
    longest = 0.0
    violations = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for alo, ahi in runs[a]:
                for blo, bhi in runs[b]:
                    overlap = min(ahi, bhi) - max(alo, blo)
                    longest = max(longest, overlap)
                    if overlap > window:
                        violations.append(
                            Violation(
                                "two-nodes-at-once",
                                f"{a} and {b} both answered {what} 200 for {overlap:.3f}s: "
                                f"{a} [{alo:.3f}, {ahi:.3f}], {b} [{blo:.3f}, {bhi:.3f}]",
                            )
                        )
    return longest, violations


def missing_commands(
    commands: Iterable[CommandRecord], state: NodeState, node: str
) -> List[Violation]:
    """
    Property 1 on one node: every acknowledged command is in C{state}, a
    throttle with the ratio sent.
    """
    if state.apps is None or state.hosts is None:
        return [Violation("state-unreadable", f"{node}: /throttled-apps or /skipped-hosts unreadable")]
    violations = []
    for c in commands:
        if not c.acknowledged:
            continue
        if c.kind == "throttle":
            if c.name not in state.apps:
                violations.append(_lost(c, node))
            elif c.ratio is not None and abs(state.apps[c.name] - c.ratio) > 1e-9:
                violations.append(
                    Violation(
                        "wrong-ratio",
                        f"{node}: {c.name} has ratio {state.apps[c.name]}, sent {c.ratio}",
                    )
                )
        elif c.name not in state.hosts:
            violations.append(_lost(c, node))
    return violations


def _lost(c: CommandRecord, node: str) -> Violation:
    return Violation(
        "lost-command",
        f"{node}: acknowledged {c.kind} {c.name} (sent to {c.node}, "
        f"[{c.start:.3f}, {c.end:.3f}]) is missing",
    )


def phantom_entries(
    commands: Iterable[CommandRecord], state: NodeState, node: str, prefix: str
) -> List[Violation]:
    """
    Entries named with the run's C{prefix} that no command ever sent.
    """
    sent = {c.name for c in commands}
    names = list(state.apps or ()) + list(state.hosts or ())
    return [
        Violation("phantom-entry", f"{node}: {name} was never sent")
        for name in names
        if name.startswith(prefix) and name not in sent
    ]


@attr.s(auto_attribs=True)
class Analysis:
    """
    The verdict of a run: L{violations} (empty when both properties hold)
    and the figures for the summary.
    """

    violations: List[Violation]
    longest_check_overlap: float
    longest_leader_overlap: float


def analyse(
    checks: Sequence[Observation],
    samples: Sequence[Observation],
    commands: Sequence[CommandRecord],
    final_leader: Optional[str],
    states: Mapping[str, NodeState],
    prefix: str,
    window: float = DEPOSITION_WINDOW,
    max_gap: float = MAX_GAP,
) -> Analysis:
    """
    Both properties over a whole run.

    @param final_leader: the node that led at the end (C{None}: none did,
        itself a violation).
    @param states: every node's final state, read after catch-up.
    @param prefix: the prefix of every name the run sent.
    """
    violations: List[Violation] = []
    if final_leader is None:
        violations.append(Violation("no-final-leader", "no stable leader at the end"))
    for node in sorted(states, key=lambda n: (n != final_leader, n)):
        violations.extend(missing_commands(commands, states[node], node))
        violations.extend(phantom_entries(commands, states[node], node, prefix))
    violations.extend(checks_outside_leadership(checks, samples))
    check_overlap, found = overlaps(checks, "/check", window, max_gap)
    violations.extend(found)
    leader_overlap, found = overlaps(samples, "/leader-check", window, max_gap)
    violations.extend(found)
    return Analysis(violations, check_overlap, leader_overlap)
