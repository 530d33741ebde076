# -*- test-case-name: test.unit.test_throttle_records,test.unit.test_check_headers -*-
"""
L{LowPriorityDenials}: metrics on which a normal client was refused in the
last second.

A normal client is one that is not low-priority and not a check-read, whose
app is not C{freno}, and that got a 429 from the threshold. While its metric
is marked, C{?p=low} checks on the same metric get 417 C{App denied}.

freno's internal C{freno-share-domain} self-check also marked this set every
100 ms, and shared flags let C{?p=low} leak into it. Here no internal
self-check loop exists at all and flags are per request, so only real client
429s mark a metric (docs/decisions.md, D8). The set holds at most one entry
per metric name, and only configured clusters can produce a 429, so it is
bounded.
"""

from __future__ import annotations

from typing import Dict, Optional

#: freno's C{nonDeprioritizedAppMapExpiration}: 1 s.
DENIAL_WINDOW = 1.0


class LowPriorityDenials:
    """
    Metric name to the time a normal client was last refused on it.
    """

    def __init__(self, window: float = DENIAL_WINDOW) -> None:
        self.window = window
        self._marked: Dict[str, float] = {}

    def mark(self, metric_name: str, now: float) -> None:
        """
        A normal client was refused on C{metric_name} at C{now}.
        """
        self._marked[metric_name] = now

    def denied(self, metric_name: str, now: float) -> bool:
        """
        Whether low-priority checks on C{metric_name} are refused at C{now}.
        """
        at = self._marked.get(metric_name)
        return at is not None and now - at < self.window

    def denied_until(self, metric_name: str, now: float) -> Optional[float]:
        """
        When the refusal of low-priority checks on C{metric_name} ends, if
        they are refused at C{now}; else C{None}.
        """
        at = self._marked.get(metric_name)
        if at is not None and now - at < self.window:
            return at + self.window
        return None
