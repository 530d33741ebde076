# -*- test-case-name: test.unit.test_hysteresis -*-
"""
L{Hysteresis}: per-cluster hold state for C{ResumeThreshold}
(docs/decisions.md, D60).

A cluster with a C{ResumeThreshold} I{holds} from the moment its
aggregated value goes above its C{ThrottleThreshold} until its value falls
strictly below the resume threshold: while it holds, checks compared with
the cluster's own threshold answer 429 even when the value is back at or
below the threshold (L{freno.throttle.checker}). A cluster without a
C{ResumeThreshold} never holds (freno's behaviour).

The state changes only on new aggregated values (it observes
L{freno.probe.metrics.AggregatedMetrics}), so a crossing between two checks
is not missed. An aggregated I{error} changes nothing: a cluster that holds
keeps holding through errors and staleness (those answer 500 anyway), and
is released only by a value below the resume threshold, never silently.
The state is local to the leader that probes: every leadership change
(L{reset}) starts every cluster released, as the new leader has no values
yet.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from freno.config.model import ClusterSettings
from freno.probe.metrics import ClusterMetric


class Hysteresis:
    """
    Which clusters hold, and since when.

    @param clock: the time source (for L{holding_since}).
    @param clusters: the configured clusters; those with a
        C{resume_threshold} take part.
    """

    _log = Logger()

    def __init__(self, clock: IReactorTime, clusters: Mapping[str, ClusterSettings]) -> None:
        self._clock = clock
        self._limits: Dict[str, Tuple[float, float]] = {
            name: (cluster.throttle_threshold, cluster.resume_threshold)
            for name, cluster in clusters.items()
            if cluster.resume_threshold is not None
        }
        self._since: Dict[str, float] = {}

    def resume_threshold(self, cluster: str) -> Optional[float]:
        """
        C{cluster}'s resume threshold, or C{None} if it has none.
        """
        limits = self._limits.get(cluster)
        return None if limits is None else limits[1]

    def observe(self, cluster: str, metric: ClusterMetric) -> None:
        """
        A new aggregated metric for C{cluster}: start holding above the
        threshold, release below the resume threshold, ignore errors.
        """
        limits = self._limits.get(cluster)
        if limits is None or metric.error is not None:
            return
        threshold, resume = limits
        value = metric.value
        if value > threshold:
            if cluster not in self._since:
                self._since[cluster] = self._clock.seconds()
                self._log.info(
                    "cluster {cluster} holds: value {value} above threshold {threshold}",
                    cluster=cluster, value=value, threshold=threshold, resume_threshold=resume,
                )
        elif value < resume and cluster in self._since:
            del self._since[cluster]
            self._log.info(
                "cluster {cluster} released: value {value} below resume threshold {resume_threshold}",
                cluster=cluster, value=value, threshold=threshold, resume_threshold=resume,
            )

    def holding(self, cluster: str) -> bool:
        """
        Whether C{cluster} holds now.
        """
        return cluster in self._since

    def holding_since(self, cluster: str) -> Optional[float]:
        """
        When C{cluster} started holding, or C{None} if it does not hold.
        """
        return self._since.get(cluster)

    def reset(self, *ignored: object) -> None:
        """
        Release every cluster (on any leadership change; usable directly as
        a leadership observer).
        """
        if self._since:
            self._log.info("hysteresis reset: {clusters} released", clusters=sorted(self._since))
        self._since.clear()
