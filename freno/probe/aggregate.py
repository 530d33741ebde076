# -*- test-case-name: test.unit.test_probe_aggregate,test.unit.test_probe_breakdown -*-
"""
Aggregation of one cluster's host results into one L{ClusterMetric}
(freno's C{aggregateMySQLProbes}), as pure functions of their arguments
(time comes in as C{now}). Where it differs from freno is docs/decisions.md,
D3, D19 and D20.

Hosts left out before anything else: those matching C{IgnoreHosts} (an
entry is a substring of C{host:port}), skipped hosts (hostname in the
consensus skipped-hosts map with an expiry still in the future: skips take
effect at the next aggregation, not at freno's next inventory refresh) and
hosts whose HTTP check answered 404.

Then, for the remaining hosts, in the order given (the service passes
them sorted, so the error reported is deterministic):
    - no result yet: the cluster is C{Metric not collected yet} (not subject
      to the ignore budget, as freno);
    - a value older than C{freshness}: an error for that host, C{Metric is
      stale: ...} (freno had no bound); like any host error it may be
      absorbed by the budget;
    - an error: skipped for free if it is a connect error and
      C{IgnoreDialTcpErrors} is set; else absorbed by one unit of the
      C{IgnoreHostsCount} budget; else it is the cluster's error;
    - a value: collected.

No value collected is C{No hosts found}. The remaining budget then drops
the largest values (L{reduce_values}); the largest remaining value is the
result. C{IgnoreHostsCount}/C{IgnoreHostsThreshold} apply whatever the
inventory type (freno ignored them for static hosts). The result's
C{measured_at} is that of the oldest value that remained.
"""

from __future__ import annotations

from typing import AbstractSet, Iterable, List, Mapping, Optional, Tuple

import attr

from freno.hosts import HostKey
from freno.probe.metrics import ClusterMetric

NOT_COLLECTED = "Metric not collected yet"
NO_HOSTS = "No hosts found"


@attr.s(frozen=True, auto_attribs=True, slots=True)
class HostResult:
    """
    The latest probe result of one host.

    @ivar value: the metric (meaningless when C{error} is set).
    @ivar error: the error text, or C{None}.
    @ivar measured_at: when the probe finished (POSIX seconds).
    @ivar dial_error: the error is a failure to reach the host.
    """

    value: float
    error: Optional[str]
    measured_at: float
    dial_error: bool = False


@attr.s(frozen=True, auto_attribs=True, slots=True)
class AggregationRules:
    """
    A cluster's aggregation settings.
    """

    ignore_hosts_count: int = 0
    ignore_hosts_threshold: float = 0.0
    ignore_hosts: Tuple[str, ...] = ()
    ignore_dial_tcp_errors: bool = False


def reduce_values(
    values: List[float], ignore_hosts_count: int, ignore_hosts_threshold: float
) -> Tuple[List[float], int]:
    """
    Drop the largest values with the budget (freno's rule): while budget
    remains, drop the largest if at least two values remain and (there is no
    threshold or it is above the threshold); spend one unit either way.

    @param values: at least one value.
    @return: the remaining values, sorted ascending, and how many were
        dropped (from the top).
    """
    ordered = sorted(values)
    kept = len(ordered)
    for _ in range(max(0, ignore_hosts_count)):
        if kept >= 2 and (
            ignore_hosts_threshold <= 0 or ordered[kept - 1] > ignore_hosts_threshold
        ):
            kept -= 1
    return ordered[:kept], len(ordered) - kept


def is_excluded(
    host: HostKey,
    rules: AggregationRules,
    skipped_hosts: Mapping[str, float],
    http_not_found: AbstractSet[HostKey],
    now: float,
) -> bool:
    """
    Whether C{host} is left out of aggregation altogether.
    """
    if rules.ignore_hosts:
        text = str(host)
        if any(entry and entry in text for entry in rules.ignore_hosts):
            return True
    expiry = skipped_hosts.get(host.hostname)
    if expiry is not None and expiry > now:
        return True
    return host in http_not_found


def aggregate(
    hosts: Iterable[HostKey],
    results: Mapping[HostKey, HostResult],
    rules: AggregationRules,
    now: float,
    freshness: float,
    skipped_hosts: Mapping[str, float] = {},
    http_not_found: AbstractSet[HostKey] = frozenset(),
) -> ClusterMetric:
    """
    One cluster's aggregated metric; see the module docstring.

    @param hosts: the cluster's current inventory.
    @param results: latest result per host (may hold other hosts).
    @param freshness: seconds after which a host value no longer counts.
    """
    budget = rules.ignore_hosts_count
    collected: List[Tuple[float, HostKey, float]] = []
    for host in hosts:
        if is_excluded(host, rules, skipped_hosts, http_not_found, now):
            continue
        result = results.get(host)
        if result is None:
            return ClusterMetric(0.0, NOT_COLLECTED, now, host)
        error = result.error
        if error is None and now - result.measured_at > freshness:
            error = (
                f"Metric is stale: last value of {host} is "
                f"{now - result.measured_at:.3f}s old"
            )
        if error is not None:
            if rules.ignore_dial_tcp_errors and result.dial_error:
                continue
            if budget > 0:
                budget -= 1
                continue
            return ClusterMetric(0.0, error, now, host)
        collected.append((result.value, host, result.measured_at))
    if not collected:
        return ClusterMetric(0.0, NO_HOSTS, now)
    if budget == 0:
        # The largest value decides; of equal values the later host in the
        # order given counts as larger (as the stable sort below).
        worst = collected[0]
        for entry in collected:
            if entry[0] >= worst[0]:
                worst = entry
        return ClusterMetric(
            worst[0], None, min(entry[2] for entry in collected), worst[1]
        )
    ordered = sorted(collected, key=lambda entry: entry[0])
    kept, _ = reduce_values([entry[0] for entry in ordered], budget, rules.ignore_hosts_threshold)
    remaining = ordered[: len(kept)]
    return ClusterMetric(
        remaining[-1][0], None, min(entry[2] for entry in remaining), remaining[-1][1]
    )
