# -*- test-case-name: test.unit.test_probe_metrics,test.unit.test_check_headers -*-
"""
L{AggregatedMetrics}: one value (or error) per cluster, as the check path reads it.

The aggregator writes here each time a probe result changes a cluster's value;
the check path reads it with L{AggregatedMetrics.get}, which applies the
freshness rule: a value measured longer ago than C{max_age} is not a value any
more but the error C{"Metric is stale: ..."} (freno had no such bound;
docs/decisions.md, D3).
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import attr
from twisted.internet.interfaces import IReactorTime

from freno.hosts import HostKey

#: How a stale value's error begins (L{AggregatedMetrics.get}; also a host's
#: stale value in aggregation).
STALE_PREFIX = "Metric is stale"


@attr.s(frozen=True, auto_attribs=True, slots=True)
class ClusterMetric:
    """
    A cluster's aggregated metric.

    @ivar value: the aggregated value (meaningless when C{error} is set).
    @ivar error: the error text, or C{None}.
    @ivar measured_at: when the oldest host value that went into C{value} was
        measured (POSIX seconds): the value's age is measured from here.
    @ivar host: the host that decided: whose value C{value} is, or whose
        error (or missing first result) C{error} is; C{None} when no single
        host decided (C{No hosts found}) or nobody said (older callers).
    """

    value: float
    error: Optional[str]
    measured_at: float
    host: Optional[HostKey] = None


class AggregatedMetrics:
    """
    The per-cluster aggregated metrics of this node (filled only while leader).

    @param clock: the time source for ages.
    @param thresholds: cluster name to C{ThrottleThreshold}, for health.
    @param max_age: seconds after which a value is stale.
    """

    def __init__(
        self,
        clock: IReactorTime,
        thresholds: Mapping[str, float],
        max_age: float,
    ) -> None:
        self._clock = clock
        self.thresholds = dict(thresholds)
        self.max_age = max_age
        self._metrics: Dict[str, ClusterMetric] = {}
        self.last_healthy_at: Dict[str, float] = {}
        self._observers: List[Callable[[str, ClusterMetric], None]] = []

    def set(self, cluster: str, metric: ClusterMetric) -> None:
        """
        Record C{cluster}'s new aggregated metric and tell observers.
        """
        self._metrics[cluster] = metric
        if metric.error is None and metric.value <= self.thresholds.get(cluster, 0.0):
            self.last_healthy_at[cluster] = self._clock.seconds()
        for observer in self._observers:
            observer(cluster, metric)

    def discard(self, cluster: str) -> None:
        """
        Forget C{cluster}'s metric.
        """
        self._metrics.pop(cluster, None)

    def clear(self) -> None:
        """
        Forget every metric (on losing leadership).
        """
        self._metrics.clear()

    def get(self, cluster: str) -> Optional[ClusterMetric]:
        """
        C{cluster}'s metric as a check must see it: C{None} when there is none,
        an error metric when the value is stale.
        """
        metric = self._metrics.get(cluster)
        if metric is None or metric.error is not None:
            return metric
        age = self._clock.seconds() - metric.measured_at
        if age > self.max_age:
            return ClusterMetric(
                metric.value,
                f"{STALE_PREFIX}: last value is {age:.3f}s old",
                metric.measured_at,
                metric.host,
            )
        return metric

    def items(self) -> Iterator[Tuple[str, ClusterMetric]]:
        """
        Every cluster's metric, freshness applied.
        """
        for cluster in list(self._metrics):
            metric = self.get(cluster)
            if metric is not None:
                yield cluster, metric

    def add_observer(self, observer: Callable[[str, ClusterMetric], None]) -> None:
        """
        Call C{observer(cluster, metric)} on every L{set}.
        """
        self._observers.append(observer)
