# -*- test-case-name: test.unit.test_warmth -*-
"""
L{LeaderWarmth}: when C{/leader-check} passes on a node that leads (D68).

A new leader starts probing the moment it is elected
(L{freno.probe.service}), but until every host of a cluster has answered
once, checks on that cluster answer 500 C{Metric not collected yet}. If
HAProxy sent it traffic at once, clients would see that burst. So the node
passes C{/leader-check} only once it is I{warm}:

    - every configured cluster has an aggregated value that is not
      C{Metric not collected yet} (a value, or a real error such as a
      failed probe or a stale value: the same answer any later check would
      give), or
    - L{WARM_BOUND} seconds have passed since it became leader (a cluster
      whose hosts hang, or whose inventory does not answer, must not keep
      the whole group out of HAProxy: after the bound the node answers what
      it has, as before).

A group of one and a node with C{--force-leadership} have nobody to hand
over to and nobody to wait for: L{freno.tap} gives them a bound of 0, so their
first C{/leader-check} is 200 (D49, D33).

It must also I{advertise} its leadership: false only while a node that
handed off drains (L{freno.consensus.raft.grace}); backends without that
notion always advertise.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from twisted.internet.interfaces import IReactorTime

from freno.probe.aggregate import NOT_COLLECTED
from freno.probe.metrics import AggregatedMetrics

#: Seconds after becoming leader after which /leader-check passes even if
#: some cluster has no value yet.
WARM_BOUND = 1.0


class LeaderWarmth:
    """
    Whether this node's C{/leader-check} passes (see the module docstring).

    @param clock: the time source.
    @param consensus: an L{IConsensusService}; its optional
        C{advertises_leadership()} is honoured.
    @param metrics: the aggregated metrics the checks read.
    @param clusters: the configured cluster names.
    @param bound: L{WARM_BOUND}; 0: warm as soon as it leads.
    """

    def __init__(
        self,
        clock: IReactorTime,
        consensus,
        metrics: AggregatedMetrics,
        clusters: Iterable[str],
        bound: float = WARM_BOUND,
    ) -> None:
        self._clock = clock
        self._consensus = consensus
        self._metrics = metrics
        self._clusters = tuple(clusters)
        self.bound = bound
        self._since: Optional[float] = None
        self._advertises: Callable[[], bool] = getattr(
            consensus, "advertises_leadership", consensus.is_leader
        )
        consensus.add_leadership_observer(self._on_leadership)

    def _on_leadership(self, is_leader: bool) -> None:
        self._since = self._clock.seconds() if is_leader else None

    def warm(self) -> bool:
        """
        Whether every cluster has a value, or the bound has passed since
        this node became leader (false while it does not lead).
        """
        if not self._consensus.is_leader():
            self._since = None
            return False
        now = self._clock.seconds()
        if self._since is None:
            self._since = now  # leader from the start (single node, forced)
        if now - self._since >= self.bound:
            return True
        for name in self._clusters:
            metric = self._metrics.get(name)
            if metric is None or metric.error == NOT_COLLECTED:
                return False
        return True

    def leader_check(self) -> bool:
        """
        Whether C{/leader-check} answers 200: this node leads, advertises
        it, and is warm.
        """
        return self._advertises() and self.warm()
