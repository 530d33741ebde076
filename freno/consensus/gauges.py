# -*- test-case-name: test.unit.test_consensus_mysql,test.unit.test_raft -*-
"""
The consensus gauges: L{ConsensusGauges}, the backend-neutral
C{consensus.is_leader} and C{consensus.is_healthy} every backend sets, and
L{RaftGauges}, raft's own series on top of them (docs/decisions.md, D64).

Each backend updates them where its leadership or health may have changed;
setting a gauge to the value it has is harmless.
"""

from __future__ import annotations

from typing import Optional

from freno.metrics import catalogue
from freno.metrics.registry import Registry


class ConsensusGauges:
    """
    C{consensus.is_leader} (1 while this node leads, forced leadership
    included: what C{is_leader()} says) and C{consensus.is_healthy}.

    @param registry: where the gauges go.
    """

    def __init__(self, registry: Registry) -> None:
        self._is_leader = registry.gauge(catalogue.CONSENSUS_IS_LEADER)
        self._is_healthy = registry.gauge(catalogue.CONSENSUS_IS_HEALTHY)

    def update(self, is_leader: bool, healthy: bool) -> None:
        """
        Set both gauges.
        """
        self._is_leader.set(1 if is_leader else 0)
        self._is_healthy.set(1 if healthy else 0)


class RaftGauges:
    """
    Raft's series: C{raft.is_leader} (C{freno_raft_is_leader}),
    C{raft.is_healthy}, C{raft.leader}, C{freno_raft_term}, the
    consensus gauges, the leader-change counter and the commit latency.

    @param registry: where the series go.
    @ivar leader_changes: the counter of leaders seen.
    @ivar commit_latency: the timer of committed commands.
    """

    def __init__(self, registry: Registry) -> None:
        self._consensus = ConsensusGauges(registry)
        self._raft_leader = registry.gauge(catalogue.RAFT_IS_LEADER)
        self._healthy = registry.gauge(catalogue.RAFT_IS_HEALTHY)
        self._leader = registry.text(catalogue.RAFT_LEADER)
        self._term = registry.gauge(catalogue.RAFT_TERM)
        self.leader_changes = registry.counter(catalogue.RAFT_LEADER_CHANGES)
        self.commit_latency = registry.timer(catalogue.RAFT_COMMIT_LATENCY)

    def update(
        self,
        raft_leader: bool,
        healthy: bool,
        leader: str,
        is_leader: bool,
        term: Optional[int],
    ) -> None:
        """
        Set the gauges: C{raft_leader} is raft's own view (this node is the
        raft leader), C{is_leader} the service's (lease and forced leadership
        applied), C{leader} the leader's address, C{term} the raft term
        (C{None} before raft runs: left as it was).
        """
        self._raft_leader.set(1 if raft_leader else 0)
        self._healthy.set(1 if healthy else 0)
        self._leader.set(leader)
        self._consensus.update(is_leader, healthy)
        if term is not None:
            self._term.set(term)
