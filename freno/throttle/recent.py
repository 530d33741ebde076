# -*- test-case-name: test.unit.test_throttle_records,test.unit.test_names -*-
"""
L{RecentApps}: which apps checked recently, from where, bounded.

Keys are C{"<app>/<remoteAddr>"} and values the time and status code of the
latest check (the status page shows both, L{RecentApps.latest}).
Entries live 24 hours (freno's C{recentAppsExpiration}), refreshed by every
check. Unlike freno, the record is bounded: past C{max_entries} keys, or past
C{max_characters} characters of keys in all, the least recently checked keys
are dropped, so a client inventing app names (or X-Forwarded-For values), or
sending very long ones, cannot exhaust memory (docs/decisions.md, D11). App
names may be of any length (D48; a key longer than C{max_characters} is not
recorded at all). The data is local to a node.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

#: freno's recent-apps TTL: 24 hours.
RECENT_APPS_TTL = 24 * 60 * 60.0
#: Default bound on distinct keys.
DEFAULT_MAX_ENTRIES = 10_000
#: Default bound on the characters of all keys together (4 Mi).
DEFAULT_MAX_CHARACTERS = 4 * 1024 * 1024


class RecentApps:
    """
    A bounded, insertion-ordered map of key to last-check time and status.

    @param max_entries: the most keys kept.
    @param ttl: seconds a key lives after its latest check.
    @param max_characters: the most characters of all keys together.
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl: float = RECENT_APPS_TTL,
        max_characters: int = DEFAULT_MAX_CHARACTERS,
    ) -> None:
        self.max_entries = max_entries
        self.max_characters = max_characters
        self.ttl = ttl
        # dicts keep insertion order: re-inserting a key moves it to the end,
        # so the first key is always the least recently checked one.
        self._checked: Dict[str, Tuple[float, Optional[int]]] = {}
        self._characters = 0

    @property
    def characters(self) -> int:
        """
        The characters of all keys kept.
        """
        return self._characters

    def record(self, key: str, now: float, status: Optional[int] = None) -> None:
        """
        Note a check by C{key} at C{now} that answered C{status}.
        """
        checked = self._checked
        if checked.pop(key, None) is not None:
            checked[key] = (now, status)
            return
        size = len(key)
        if size > self.max_characters:
            return
        while checked and (
            len(checked) >= self.max_entries
            or self._characters + size > self.max_characters
        ):
            self._drop(next(iter(checked)))
        checked[key] = (now, status)
        self._characters += size

    def _drop(self, key: str) -> None:
        del self._checked[key]
        self._characters -= len(key)

    def __len__(self) -> int:
        return len(self._checked)

    def items(self, now: float, last_minutes: int = 0) -> Iterator[Tuple[str, float]]:
        """
        The live keys with their last-check time; with C{last_minutes > 0},
        only those checked within that many whole minutes (freno drops
        entries whose truncated C{MinutesSinceChecked} exceeds it).
        """
        self._expire(now)
        for key, (at, _) in list(self._checked.items()):
            if last_minutes > 0 and int((now - at) // 60) > last_minutes:
                continue
            yield key, at

    def latest(self, now: float, count: int) -> List[Tuple[str, float, Optional[int]]]:
        """
        The C{count} most recently checked live keys, newest first, each
        with its last-check time and status code.
        """
        self._expire(now)
        out = []
        for key in reversed(self._checked):
            if len(out) >= count:
                break
            at, status = self._checked[key]
            out.append((key, at, status))
        return out

    def _expire(self, now: float) -> None:
        checked = self._checked
        while checked:
            key = next(iter(checked))
            if now - checked[key][0] < self.ttl:
                break
            self._drop(key)
