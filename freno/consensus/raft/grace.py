# -*- test-case-name: test.unit.test_raft_handoff -*-
"""
L{ServingGrace}: how long a leader that handed off keeps serving checks, so
that clients behind HAProxy never see the gap (C{docs/handoff.md}, D67).

From the start of a hand-off until it ends, and then for
L{ADVERTISE_AFTER_HANDOFF} + L{DRAIN_AFTER_HANDOFF} seconds after a
successful one, the old leader keeps probing and answering checks from its
own live probes, but only while it follows a connected leader (a partitioned
old leader stops at once). During the first L{ADVERTISE_AFTER_HANDOFF}
seconds it still answers C{/leader-check} 200, so that HAProxy keeps it up
while the new leader warms up and is found by HAProxy's checks; during the
last L{DRAIN_AFTER_HANDOFF} seconds it answers 404, so that HAProxy marks it
down (C{fall 2} at C{fastinter 100ms}: about 0.35 s) while requests already
routed to it still get an answer. Then it is an ordinary follower (or
stops, on SIGTERM).
"""

from __future__ import annotations

from typing import Optional

from twisted.internet.interfaces import IReactorTime

#: Seconds the old leader still passes /leader-check after a hand-off: the
#: new leader's warm-up bound (L{freno.probe.warmth.WARM_BOUND}, 1 s) plus
#: HAProxy's C{downinter} (0.25 s) and some margin.
ADVERTISE_AFTER_HANDOFF = 1.5

#: Seconds it then serves checks while failing /leader-check: more than
#: HAProxy needs to mark it down (C{fall 2}: one C{inter} 0.25 s, one
#: C{fastinter} 0.1 s, each check bounded by C{timeout check} 0.5 s).
DRAIN_AFTER_HANDOFF = 1.0


class ServingGrace:
    """
    The old leader's serving window (see the module docstring).

    @param clock: the time source.
    """

    def __init__(
        self,
        clock: IReactorTime,
        advertise: float = ADVERTISE_AFTER_HANDOFF,
        drain: float = DRAIN_AFTER_HANDOFF,
    ) -> None:
        self._clock = clock
        self.advertise = advertise
        self.drain = drain
        self._handing_off = False
        self._advertise_until: Optional[float] = None
        self._serve_until: Optional[float] = None

    def begin(self) -> None:
        """
        A hand-off starts: serve throughout it.
        """
        self._handing_off = True
        self._advertise_until = self._serve_until = None

    def end(self, transferred: bool) -> Optional[float]:
        """
        The hand-off ended; after a transfer, open the window. Returns
        when serving ends (C{None}: now).
        """
        self._handing_off = False
        if not transferred:
            self._advertise_until = self._serve_until = None
            return None
        now = self._clock.seconds()
        self._advertise_until = now + self.advertise
        self._serve_until = self._advertise_until + self.drain
        return self._serve_until

    def clear(self) -> None:
        """
        Forget the window (the node leads again, or stops).
        """
        self._handing_off = False
        self._advertise_until = self._serve_until = None

    @property
    def open(self) -> bool:
        """
        Whether a hand-off runs or a window is open (cheap: the check path
        asks this on every request of a follower).
        """
        return self._handing_off or self._serve_until is not None

    @property
    def ends_at(self) -> Optional[float]:
        """
        When serving ends after a transfer (C{None}: no window open).
        """
        return self._serve_until

    def serving(self, following: bool) -> bool:
        """
        Whether the node serves checks now although raft does not make it
        leader: during a hand-off, or in the window while C{following} (it
        follows a leader it is connected to).

        During the hand-off itself (milliseconds; at most its bound) the node
        serves even between its deposition and hearing from the new leader:
        nothing can be committed without a leader, so its replicated state is
        current, and its probes are its own, live ones.
        """
        if self._handing_off:
            return True
        return (
            following
            and self._serve_until is not None
            and self._clock.seconds() < self._serve_until
        )

    def advertising(self) -> bool:
        """
        Whether C{/leader-check} may pass: false only in the drain part of
        the window.
        """
        if self._advertise_until is None or self._serve_until is None:
            return True
        now = self._clock.seconds()
        return not (self._advertise_until <= now < self._serve_until)
