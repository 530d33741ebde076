# -*- test-case-name: test.unit.test_chaos,test.integration.test_chaos -*-
"""
What the chaos run records, and the pure analysis of it (L{analyse}).

Everything here is plain data and pure functions over it, so the
definitions of the two properties are unit-tested on hand-made timelines
(C{test.unit.test_chaos}) apart from the real run.

Recording
=========

Every HTTP exchange is an L{Observation}: the node, the client's monotonic
time when the request was sent (C{start}) and when the answer arrived
(C{end}), and the status. The node produced its answer at some unknown
instant inside C{[start, end]}; nothing more precise can be claimed. Status
L{NO_ANSWER} (timed out, reset) says nothing about the node; status L{DOWN}
(connection refused: nothing listens on the port) means the node served
nothing at that instant.

Property 1: acknowledged commands, and their undoing
====================================================

The commands are L{CommandRecord}s of four kinds: C{throttle} and
C{unthrottle} of an app name, C{skip} and C{recover} of a host name. A
command answered 200 (I{acknowledged}) was committed, and applied on the
node that answered, before the answer; a refused connection (L{DOWN})
delivered nothing, so that command was never applied; a command answered
anything else, or not at all, may or may not have been applied, and may be
applied I{at any later time} (a frozen node serves the request after it
thaws; a commit may land after the client gave up). Each name is fresh: the run sends one
C{throttle} (or C{skip}) per name and at most one C{unthrottle} (or
C{recover}) of it, and only after the first was acknowledged.

For each name, L{expectations} decides the final state when the commands
leave no doubt: the last acknowledged command decides it if every other
command on that name was acknowledged before it was sent (so it was
committed after all of them). Then, after catch-up, every node must show the
name I{present} (a throttle, with the ratio sent; a skip) or I{absent} (an
acknowledged unthrottle or recover): a missing entry is a I{lost command},
an entry present after its acknowledged undoing is I{resurrected}. Names
with a command of unknown outcome that could come last are I{undecided} and
only counted. A name carrying the run's prefix that no command sent is a
I{phantom}.

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
nodes whose certain spans overlap by more than L{DEPOSITION_WINDOW} are a
violation. The same is computed for C{/leader-check} (two nodes claiming
leadership at once), which issue 5 also bounds.

The window is the documented bound, L{LEADER_LEASE} (1.5 s: a leader cut
off from the majority stops claiming leadership within it), plus
L{LEASE_SLACK} (0.25 s). Why that slack is enough:

    - The certain spans lie inside the times the nodes really served, so
      the measured overlap never exceeds the real one: the client's own
      delays need no allowance.
    - The lease runs from the moment the old leader I{processed} its last
      answer from a majority, which can be later than the moment the
      majority was lost by the old leader's reactor delay. The slack is
      for that delay. Measured by C{test.integration.test_raft_partition}
      (both followers of a running leader frozen; 10 runs on the 2-core
      machine, 5 of them with two CPU-bound processes added, load 5-17):
      the last request answered 200 was sent 1.38-1.49 s after the
      freeze, never beyond the lease.
    - A new leader cannot serve before its election, which waits at least
      pysyncobj's C{raftMinTimeout} (0.4 s) after the old leader's last
      contact, nor before its first probe: a further margin the window does
      not count.

(The window was 2 s, issue 5's requirement, before the lease bound was
documented. The chaos runs recorded so far measured 0.000 s of overlap: a
killed or frozen leader serves nothing, so only a partition, which the
chaos run does not make, comes near the window.)
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import attr

from freno.consensus.raft.machine import LEADER_LEASE

#: Status of a request that got no answer (timeout, reset): no information.
NO_ANSWER = 0
#: Status of a refused connection: nothing listened, nothing was served.
DOWN = -1
#: Seconds an old leader may take beyond L{LEADER_LEASE} to stop serving:
#: its delay in processing its last majority answer (module docstring).
LEASE_SLACK = 0.25
#: Seconds two nodes may serve at once: the lease plus L{LEASE_SLACK}.
DEPOSITION_WINDOW = LEADER_LEASE + LEASE_SLACK
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
    minutes, C{ratio}), C{"unthrottle"} (app C{name}), C{"skip"} (host
    C{name}, C{ttl} minutes) or C{"recover"} (host C{name}); C{ttl} is 0
    and C{ratio} L{None} for the last two.
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


#: Which entries each command kind sets or removes: C{(table, present)}.
EFFECTS: Dict[str, Tuple[str, bool]] = {
    "throttle": ("apps", True),
    "unthrottle": ("apps", False),
    "skip": ("hosts", True),
    "recover": ("hosts", False),
}


@attr.s(frozen=True, auto_attribs=True)
class Violation:
    """
    One breach of a property, with the evidence that shows it; C{name} is
    the app or host it concerns, if any.
    """

    kind: str
    detail: str
    name: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True)
class Expectation:
    """
    The final state one name must have on every node: C{present} (with
    C{ratio}, for a throttle sent with one) or not, as C{decided_by}, the
    command that was committed last, leaves it.
    """

    table: str
    name: str
    present: bool
    decided_by: CommandRecord
    ratio: Optional[float] = None


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


def expectations(
    commands: Iterable[CommandRecord],
) -> Tuple[Dict[Tuple[str, str], Expectation], List[Tuple[str, str]]]:
    """
    Property 1's rule (module docstring): the final state each name must
    have, for the names whose commands decide it, and the names whose
    acknowledged commands leave it undecided.

    @return: C{(expected, undecided)}: C{expected} maps C{(table, name)}
        to its L{Expectation}; C{undecided} lists the C{(table, name)} keys
        with an acknowledged command whose outcome another command (not
        acknowledged, or acknowledged while it was in flight) could undo.
        Names without any acknowledged command are in neither.
    """
    by_key: Dict[Tuple[str, str], List[CommandRecord]] = {}
    for c in commands:
        table, _ = EFFECTS[c.kind]
        if c.status != DOWN:  # refused: never delivered, never applied
            by_key.setdefault((table, c.name), []).append(c)
    expected: Dict[Tuple[str, str], Expectation] = {}
    undecided: List[Tuple[str, str]] = []
    for key, records in sorted(by_key.items()):
        acknowledged = [c for c in records if c.acknowledged]
        if not acknowledged:
            continue
        last = max(acknowledged, key=lambda c: (c.start, c.end))
        if all(c is last or (c.acknowledged and c.end <= last.start) for c in records):
            _, present = EFFECTS[last.kind]
            ratio = last.ratio if present else None
            expected[key] = Expectation(key[0], key[1], present, last, ratio)
        else:
            undecided.append(key)
    return expected, undecided


def state_violations(
    commands: Iterable[CommandRecord], state: NodeState, node: str
) -> List[Violation]:
    """
    Property 1 on one node: every name whose final state L{expectations}
    decides has it in C{state}: present (a throttle with the ratio sent)
    or absent.
    """
    if state.apps is None or state.hosts is None:
        return [Violation("state-unreadable", f"{node}: /throttled-apps or /skipped-hosts unreadable")]
    tables = {"apps": state.apps, "hosts": set(state.hosts)}
    expected, _ = expectations(commands)
    violations = []
    for (table, name), e in expected.items():
        c = e.decided_by
        found = name in tables[table]
        if e.present and not found:
            violations.append(
                Violation(
                    "lost-command",
                    f"{node}: acknowledged {c.kind} {name} (sent to {c.node}, "
                    f"[{c.start:.3f}, {c.end:.3f}]) is missing",
                    name,
                )
            )
        elif not e.present and found:
            violations.append(
                Violation(
                    "resurrected",
                    f"{node}: {name} is {'throttled' if table == 'apps' else 'skipped'} after the "
                    f"acknowledged {c.kind} (sent to {c.node}, [{c.start:.3f}, {c.end:.3f}])",
                    name,
                )
            )
        elif found and e.ratio is not None and abs(state.apps[name] - e.ratio) > 1e-9:
            violations.append(
                Violation(
                    "wrong-ratio",
                    f"{node}: {name} has ratio {state.apps[name]}, sent {e.ratio}",
                    name,
                )
            )
    return violations


def phantom_entries(
    commands: Iterable[CommandRecord], state: NodeState, node: str, prefix: str
) -> List[Violation]:
    """
    Entries named with the run's C{prefix} that no command ever sent.
    """
    sent = {c.name for c in commands}
    names = list(state.apps or ()) + list(state.hosts or ())
    return [
        Violation("phantom-entry", f"{node}: {name} was never sent", name)
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
    undecided: int = 0


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

    @param commands: every command sent, acknowledged or not.
    @param final_leader: the node that led at the end (C{None}: none did,
        itself a violation).
    @param states: every node's final state, read after catch-up.
    @param prefix: the prefix of every name the run sent.
    """
    violations: List[Violation] = []
    if final_leader is None:
        violations.append(Violation("no-final-leader", "no stable leader at the end"))
    for node in sorted(states, key=lambda n: (n != final_leader, n)):
        violations.extend(state_violations(commands, states[node], node))
        violations.extend(phantom_entries(commands, states[node], node, prefix))
    violations.extend(checks_outside_leadership(checks, samples))
    check_overlap, found = overlaps(checks, "/check", window, max_gap)
    violations.extend(found)
    leader_overlap, found = overlaps(samples, "/leader-check", window, max_gap)
    violations.extend(found)
    undecided = len(expectations(commands)[1])
    return Analysis(violations, check_overlap, leader_overlap, undecided)
