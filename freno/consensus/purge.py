# -*- test-case-name: test.unit.test_consensus_local,test.integration.test_control_raft -*-
"""
L{ExpiryPurger}: the leader's periodic L{PurgeExpired} command.

Expired throttles and skips count as absent for every reader as soon as
their time passes, but they stay in the state until purged. A purge must
change every node's state alike, so it is a replicated command carrying the
leader's time (L{freno.consensus.commands.PurgeExpired}), not a local
clean-up: every node drops exactly the entries expired at that time. It is
sent only when something has expired, so an idle group writes nothing.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freno.consensus.commands import PurgeExpired
from freno.consensus.state import ThrottleState

#: Seconds between purges on a raft leader.
PURGE_INTERVAL = 60.0


class ExpiryPurger:
    """
    Every C{interval} seconds, if C{may_purge()} and something in C{state}
    has expired, C{submit(PurgeExpired(now))}.

    @param clock: the time source (the leader's clock goes into the command).
    @param state: the state to look at.
    @param submit: sends a command; returns a Deferred.
    @param may_purge: whether this node should purge now (the leader).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        state: Callable[[], ThrottleState],
        submit: Callable[[PurgeExpired], Deferred],
        may_purge: Callable[[], bool],
        interval: float = PURGE_INTERVAL,
    ) -> None:
        self._clock = clock
        self._state = state
        self._submit = submit
        self._may_purge = may_purge
        self._interval = interval
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._done = None

    def start(self) -> None:
        """
        Start purging (the first purge after one interval).
        """
        if not self._loop.running:
            self._done = self._loop.start(self._interval, now=False)

    def stop(self) -> None:
        """
        Stop purging.
        """
        if self._loop.running:
            self._loop.stop()

    def _tick(self):
        now = self._clock.seconds()
        if not self._may_purge() or not self._state().expired(now):
            return None
        d = self._submit(PurgeExpired(now))
        d.addErrback(
            lambda f: self._log.warn("purge of expired entries failed: {error}", error=str(f.value))
        )
        return d
