# -*- test-case-name: test.unit.test_probe_breakdown -*-
"""
L{breakdown}: one cluster's aggregation (L{freno.probe.aggregate}) told
host by host, for C{/explain} (L{freno.http.explain}).

It takes the same arguments as L{aggregate <freno.probe.aggregate.aggregate>}
and follows the same rules in the same order, so the host it reports as
deciding is the one the aggregate names (a property test holds the two
together). It runs only when someone asks for an explanation, never on the
probe or check path.

Each host gets one state:

    - C{ignored}: left out by a rule: an C{IgnoreHosts} pattern, an error
      absorbed by C{IgnoreDialTcpErrors} or by the C{IgnoreHostsCount}
      budget, or one of the largest values the budget dropped (with
      C{IgnoreHostsThreshold}, only values above it are dropped);
    - C{skipped}: an operator skipped its host name (C{skipped_until} says
      until when);
    - C{failed}: its HTTP check answered 404;
    - C{stale}: its last value is older than the freshness bound, not
      absorbed by a rule;
    - C{error}: its probe failed (or it has no result yet), not absorbed;
    - C{counted}: its value went into the cluster's value.

Once a host's error decides the cluster's error, later hosts are still
described (their errors as C{error} or C{stale}, their values as
C{counted}), but the budget is no longer spent, as aggregation stops there.
"""

from __future__ import annotations

from typing import AbstractSet, Iterable, List, Mapping, Optional, Tuple

import attr

from freno.hosts import HostKey
from freno.probe.aggregate import NOT_COLLECTED, AggregationRules, HostResult

COUNTED = "counted"
IGNORED = "ignored"
SKIPPED = "skipped"
FAILED = "failed"
STALE = "stale"
ERROR = "error"
#: Every state, in the order of the module docstring.
STATES = (IGNORED, SKIPPED, FAILED, STALE, ERROR, COUNTED)


def format_number(value: float) -> str:
    """
    A short human form of a metric value or threshold: at most three
    decimals, trailing zeros dropped but one kept (C{2.31}, C{1.0},
    C{1234.568}); very small values with three significant digits
    (C{0.000123}).
    """
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value != 0 and abs(value) < 0.001:
        return f"{value:.3g}"
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@attr.s(frozen=True, auto_attribs=True, slots=True)
class HostState:
    """
    One host of a cluster as aggregation saw it.

    @ivar host: the host.
    @ivar state: one of L{STATES}.
    @ivar value: its last value (also when stale or left out), or C{None}
        (no result, or an error).
    @ivar measured_at: when its last result (value or error) arrived, or
        C{None}.
    @ivar why: the rule that left it out, in words (C{None} for C{counted},
        C{stale} and C{error} hosts).
    @ivar skipped_until: the expiry of its skip (C{skipped} only).
    @ivar error: its error text (probe error, staleness, or no result yet),
        also when a rule absorbed it or it was left out for another reason
        (its last probe's error).
    """

    host: HostKey
    state: str
    value: Optional[float] = None
    measured_at: Optional[float] = None
    why: Optional[str] = None
    skipped_until: Optional[float] = None
    error: Optional[str] = None


def _ignore_pattern(host: HostKey, rules: AggregationRules) -> Optional[str]:
    if rules.ignore_hosts:
        text = str(host)
        for entry in rules.ignore_hosts:
            if entry and entry in text:
                return entry
    return None


def breakdown(
    hosts: Iterable[HostKey],
    results: Mapping[HostKey, HostResult],
    rules: AggregationRules,
    now: float,
    freshness: float,
    skipped_hosts: Mapping[str, float] = {},
    http_not_found: AbstractSet[HostKey] = frozenset(),
) -> Tuple[HostState, ...]:
    """
    Every host of C{hosts}, in that order, with its state; see the module
    docstring. The arguments are L{aggregate
    <freno.probe.aggregate.aggregate>}'s.
    """
    states: List[HostState] = []
    collected: List[Tuple[float, int]] = []
    budget = rules.ignore_hosts_count
    decided = False  # an error decided the cluster; the budget is spent no more
    for host in hosts:
        result = results.get(host)
        value = measured = probe_error = None
        if result is not None:
            measured, probe_error = result.measured_at, result.error
            if probe_error is None:
                value = result.value
        pattern = _ignore_pattern(host, rules)
        if pattern is not None:
            states.append(
                HostState(host, IGNORED, value, measured, f'IgnoreHosts "{pattern}"', None, probe_error)
            )
            continue
        expiry = skipped_hosts.get(host.hostname)
        if expiry is not None and expiry > now:
            states.append(HostState(host, SKIPPED, value, measured, None, expiry, probe_error))
            continue
        if host in http_not_found:
            states.append(
                HostState(host, FAILED, value, measured, "HTTP check answered 404", None, probe_error)
            )
            continue
        if result is None:
            states.append(HostState(host, ERROR, None, None, None, None, NOT_COLLECTED))
            decided = True
            continue
        error = result.error
        stale = False
        if error is None and now - result.measured_at > freshness:
            stale = True
            error = (
                f"Metric is stale: last value of {host} is "
                f"{now - result.measured_at:.3f}s old"
            )
        if error is not None:
            why = None
            if rules.ignore_dial_tcp_errors and result.dial_error:
                why = "IgnoreDialTcpErrors"
            elif budget > 0 and not decided:
                budget -= 1
                why = f"IgnoreHostsCount {rules.ignore_hosts_count} (absorbed its error)"
            if why is not None:
                states.append(HostState(host, IGNORED, value, measured, why, None, error))
            else:
                states.append(
                    HostState(host, STALE if stale else ERROR, value, measured, None, None, error)
                )
                decided = True
            continue
        collected.append((result.value, len(states)))
        states.append(HostState(host, COUNTED, value, measured))
    if budget > 0 and collected and not decided:
        ordered = sorted(collected, key=lambda entry: entry[0])
        kept = len(ordered)
        threshold = rules.ignore_hosts_threshold
        for _ in range(budget):
            if kept >= 2 and (threshold <= 0 or ordered[kept - 1][0] > threshold):
                kept -= 1
        for dropped_value, index in ordered[kept:]:
            if threshold > 0:
                why = (
                    f"IgnoreHostsThreshold {format_number(threshold)} "
                    f"(value {format_number(dropped_value)})"
                )
            else:
                why = (
                    f"IgnoreHostsCount {rules.ignore_hosts_count} "
                    f"(one of the largest values, {format_number(dropped_value)})"
                )
            states[index] = attr.evolve(states[index], state=IGNORED, why=why)
    return tuple(states)
