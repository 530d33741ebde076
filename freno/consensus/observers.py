# -*- test-case-name: test.unit.test_consensus_local -*-
"""
L{LeadershipObservers}: the leadership event stream every consensus backend
offers (C{add_leadership_observer}); the probe service subscribes to it.
"""

from __future__ import annotations

from typing import Callable, List

from twisted.logger import Logger


class LeadershipObservers:
    """
    A list of leadership observers, told of changes one by one; an observer
    that raises does not stop the others.
    """

    _log = Logger()

    def __init__(self) -> None:
        self._observers: List[Callable[[bool], None]] = []

    def add(self, observer: Callable[[bool], None]) -> None:
        """
        Register C{observer}.
        """
        self._observers.append(observer)

    def remove(self, observer: Callable[[bool], None]) -> None:
        """
        Unregister C{observer}.
        """
        self._observers.remove(observer)

    def notify(self, is_leader: bool) -> None:
        """
        Tell every observer.
        """
        for observer in list(self._observers):
            try:
                observer(is_leader)
            except Exception:
                self._log.failure("leadership observer failed")
