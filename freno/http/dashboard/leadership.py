# -*- test-case-name: test.unit.test_dashboard_sampler -*-
"""
L{LeadershipLog}: the last leadership changes this node has seen (who led,
in which term, from when), for the status page's raft panel.

Each node keeps its own log from what it observes once a second; nothing is
replicated. It is bounded (the last C{keep} changes).
"""

from __future__ import annotations

import collections
from typing import Deque, List, Optional

import attr

#: Changes kept.
DEFAULT_KEEP = 10


@attr.s(frozen=True, auto_attribs=True, slots=True)
class LeadershipChange:
    """
    From C{at} on, this node saw C{leader} (C{""}: none known) lead in
    C{term} (C{None}: a backend without terms).
    """

    at: float
    leader: str
    term: Optional[int]


class LeadershipLog:
    """
    The last C{keep} changes of C{(leader, term)}, oldest first.
    """

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        self._changes: Deque[LeadershipChange] = collections.deque(maxlen=keep)

    def observe(self, at: float, leader: str, term: Optional[int]) -> bool:
        """
        Note what this node sees now; return whether it changed.
        """
        if self._changes:
            last = self._changes[-1]
            if last.leader == leader and last.term == term:
                return False
        self._changes.append(LeadershipChange(at, leader, term))
        return True

    def changes(self) -> List[LeadershipChange]:
        """
        The changes kept, oldest first.
        """
        return list(self._changes)
