# -*- test-case-name: test.unit.test_dashboard_cache -*-
"""
L{PerSecondCache}: the status page's JSON, built at most once per key per
second of the clock, so that ten open pages (or a hundred) polling every
second cost the server what one does.
"""

from __future__ import annotations

from typing import Callable, Dict, Hashable, Tuple

from twisted.internet.interfaces import IReactorTime


class PerSecondCache:
    """
    Values by key, each kept for the rest of the whole clock second it was
    built in.

    @param clock: the time source.
    @param max_entries: the most keys kept; past it, entries built in an
        earlier second are dropped first, then everything (callers use a
        small fixed set of keys, so this is only a guard).
    """

    def __init__(self, clock: IReactorTime, max_entries: int = 1024) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: Dict[Hashable, Tuple[int, object]] = {}
        #: How many times a value was built (for tests and benchmarks).
        self.builds = 0

    def get(self, key: Hashable, build: Callable[[], object]) -> object:
        """
        The value of C{key} built this second, or C{build()} now (and kept).
        """
        second = int(self._clock.seconds())
        entry = self._entries.get(key)
        if entry is not None and entry[0] == second:
            return entry[1]
        value = build()
        self.builds += 1
        entries = self._entries
        if key not in entries and len(entries) >= self._max:
            for old in [k for k, (s, _) in entries.items() if s != second]:
                del entries[old]
            if len(entries) >= self._max:
                entries.clear()
        entries[key] = (second, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)
