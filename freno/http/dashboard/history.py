# -*- test-case-name: test.unit.test_dashboard_history -*-
"""
L{History}: a bounded ring buffer of each cluster's aggregated value, one
point per sample (the sampler takes one a second), for the status page's
sparklines and chart (C{GET /api/v1/history}).

Only the leader records (followers do not probe, so they have no values);
a node that becomes leader starts a fresh buffer (L{History.clear}), so a
history never mixes two leaders' views. Memory is bounded: each cluster
keeps at most C{capacity} points in two preallocated C{array('d')} rings
(16 bytes a point), and only configured clusters are recorded.
"""

from __future__ import annotations

import math
from array import array
from typing import Dict, Iterable, List, Optional, Tuple

#: One point a second for 15 minutes.
DEFAULT_CAPACITY = 15 * 60


class Ring:
    """
    The last C{capacity} C{(time, value)} points of one series; a missing
    value (an error, no data) is kept as NaN and read back as C{None}.

    @param capacity: the most points kept.
    """

    __slots__ = ("capacity", "_times", "_values", "_next", "_count")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._times = array("d", bytes(8 * capacity))
        self._values = array("d", bytes(8 * capacity))
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, at: float, value: Optional[float]) -> None:
        """
        Add a point, dropping the oldest when full.
        """
        i = self._next
        self._times[i] = at
        self._values[i] = math.nan if value is None or not math.isfinite(value) else value
        self._next = (i + 1) % self.capacity
        if self._count < self.capacity:
            self._count += 1

    def points(self) -> List[Tuple[float, Optional[float]]]:
        """
        The points kept, oldest first.
        """
        start = (self._next - self._count) % self.capacity
        out = []
        times, values, capacity = self._times, self._values, self.capacity
        for k in range(self._count):
            i = (start + k) % capacity
            v = values[i]
            out.append((times[i], None if v != v else v))
        return out

    def clear(self) -> None:
        """
        Forget every point (the storage stays allocated).
        """
        self._next = 0
        self._count = 0


class History:
    """
    One L{Ring} per configured cluster.

    @param clusters: the cluster names (nothing else is ever recorded).
    @param capacity: points kept per cluster.
    """

    def __init__(self, clusters: Iterable[str], capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._rings: Dict[str, Ring] = {name: Ring(capacity) for name in sorted(clusters)}
        #: When this buffer was last started fresh (POSIX seconds), or C{None}.
        self.started_at: Optional[float] = None

    def record(self, at: float, values: Dict[str, Optional[float]]) -> None:
        """
        Add one point per configured cluster: its value in C{values}, or
        none (C{None}) when absent. Names that are not configured are
        ignored.
        """
        if self.started_at is None:
            self.started_at = at
        for name, ring in self._rings.items():
            ring.append(at, values.get(name))

    def clear(self, at: Optional[float] = None) -> None:
        """
        Start fresh (a new leader); C{at} is when.
        """
        for ring in self._rings.values():
            ring.clear()
        self.started_at = at

    def clusters(self) -> Tuple[str, ...]:
        """
        The cluster names, sorted.
        """
        return tuple(self._rings)

    def points(self, cluster: str) -> List[Tuple[float, Optional[float]]]:
        """
        One cluster's points, oldest first (empty for an unknown name).
        """
        ring = self._rings.get(cluster)
        return ring.points() if ring is not None else []

    def size(self) -> int:
        """
        Points held, all clusters together.
        """
        return sum(len(ring) for ring in self._rings.values())
