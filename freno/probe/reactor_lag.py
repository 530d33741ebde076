# -*- test-case-name: test.unit.test_probe_reactor_lag -*-
"""
L{ReactorLagMonitor}: how late the reactor runs timed calls, as the timer
L{freno.metrics.catalogue.REACTOR_LAG}.

Probe rounds, raft's timers and freshness all run on C{callLater}: when the
reactor thread is busy (a flood of HTTP requests, a slow handler), they run
late. The monitor schedules a call every C{interval} seconds and records, at
each call, how much later than due it ran. The figures appear in
C{/debug/vars} as the timer C{reactor.lag} (C{reactor.lag.99-percentile},
C{.max}, ... in nanoseconds, over the timer's reservoir of the last 1,028
samples: about the last 20 s at the default interval) and in C{/metrics} as
the summary C{freno_reactor_lag_seconds}.

It costs one C{callLater} and one timer update per interval (50 per second
at the default 20 ms), a few microseconds each. It runs on every node, leader
or not, from C{startService} to C{stopService}.
"""

from __future__ import annotations

from typing import Optional

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from freno.metrics import catalogue
from freno.metrics.registry import Registry

#: Seconds between two measurements.
DEFAULT_INTERVAL = 0.02


class ReactorLagMonitor(Service):
    """
    Records the lateness of a C{callLater} chain in C{registry}.

    @param clock: the reactor (time and scheduling only).
    @param registry: where the lateness is timed.
    @param interval: seconds between measurements (> 0).
    @raise ValueError: C{interval} is not positive.
    """

    def __init__(self, clock: IReactorTime, registry: Registry, interval: float = DEFAULT_INTERVAL) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0, got {interval!r}")
        self._clock = clock
        self._lag = registry.timer(catalogue.REACTOR_LAG)
        self._interval = interval
        self._due = 0.0
        self._call: Optional[IDelayedCall] = None

    def startService(self) -> None:
        """
        Start measuring.
        """
        Service.startService(self)
        self._schedule(self._clock.seconds())

    def stopService(self) -> None:
        """
        Stop measuring; no call is left scheduled.
        """
        Service.stopService(self)
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self, now: float) -> None:
        self._due = now + self._interval
        self._call = self._clock.callLater(self._interval, self._measure)

    def _measure(self) -> None:
        now = self._clock.seconds()
        late = max(0.0, now - self._due)
        self._lag.observe(late)
        self._schedule(now)
