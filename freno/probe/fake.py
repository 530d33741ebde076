# -*- test-case-name: test.unit.test_probe_prober -*-
"""
In-memory test doubles for the probe package:

    - L{FakeMetricSource}: a verified L{IMetricSource} with scripted values,
      errors and Clock-driven delays;
    - L{SynchronousThreadPool} and L{ThreadlessClock}: run "threaded" work at
      once on the calling thread, so L{freno.probe.mysql_source} is unit
      tested without threads (buildbot's C{NonThreadPool}).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import implementer

from freno.config.model import ClusterSettings
from freno.hosts import HostKey
from freno.probe.interfaces import IMetricSource, ProbeError
from freno.probe.query import ProbeConnectError


class ThreadlessClock(Clock):
    """
    A L{Clock} that also provides C{callFromThread} (called at once), for
    code that uses C{deferToThreadPool}.
    """

    def callFromThread(self, f, *args, **kwargs):
        """
        Call C{f} now.
        """
        f(*args, **kwargs)


class SynchronousThreadPool:
    """
    A thread pool that runs each job at once, in the caller's thread.
    """

    def __init__(self) -> None:
        self.started = True
        self.jobs = 0

    def callInThreadWithCallback(self, onResult, func, *args, **kw):
        """
        Run C{func} now and report to C{onResult(success, result)}.
        """
        self.jobs += 1
        try:
            result = func(*args, **kw)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)

    def callInThread(self, func, *args, **kw):
        """
        Run C{func} now.
        """
        self.callInThreadWithCallback(lambda ok, result: None, func, *args, **kw)

    def start(self) -> None:
        """
        Nothing to start.
        """
        self.started = True

    def stop(self) -> None:
        """
        Nothing to stop.
        """
        self.started = False


Script = Union[float, ProbeError]


@implementer(IMetricSource)
class FakeMetricSource:
    """
    Answers probes from a script.

    Each host answers with its scripted value or error (L{set_value},
    L{set_error}), after its scripted delay (L{set_delay}) on C{clock}; an
    unscripted host fails with C{"no script for <host>"}. A delay longer
    than C{timeout} fails with C{"probe of <host> timed out after ..."} at
    the timeout, as the real source. L{hold} makes a host's next probes wait
    for L{release}.

    @ivar calls: every C{(cluster_name, host)} probed, in order.
    @ivar discarded: every C{(cluster_name, host)} discarded, in order.
    @ivar closed: whether L{close} was called.
    """

    def __init__(self, clock: Clock, timeout: float = 1.0) -> None:
        self._clock = clock
        self._timeout = timeout
        self._script: Dict[Tuple[Optional[str], HostKey], Script] = {}
        self._delays: Dict[HostKey, float] = {}
        self._held: Dict[HostKey, List[Deferred]] = {}
        self._holding: set = set()
        self.calls: List[Tuple[str, HostKey]] = []
        self.discarded: List[Tuple[str, HostKey]] = []
        self.closed = False

    def set_value(self, host: HostKey, value: float, cluster: Optional[str] = None) -> None:
        """
        Make C{host} answer C{value} (for C{cluster} only, if given).
        """
        self._script[(cluster, host)] = float(value)

    def set_error(
        self,
        host: HostKey,
        message: str,
        cluster: Optional[str] = None,
        dial: bool = False,
    ) -> None:
        """
        Make C{host} fail with C{message}; C{dial} makes it a
        L{ProbeConnectError}.
        """
        error = ProbeConnectError(message) if dial else ProbeError(message)
        self._script[(cluster, host)] = error

    def set_delay(self, host: HostKey, seconds: float) -> None:
        """
        Make C{host} answer after C{seconds} of C{clock} time.
        """
        self._delays[host] = seconds

    def hold(self, host: HostKey) -> None:
        """
        Make C{host}'s probes wait until L{release}.
        """
        self._holding.add(host)

    def release(self, host: HostKey, count: Optional[int] = None) -> None:
        """
        Answer C{host}'s held probes (the oldest C{count} of them, and then
        it stays held; all of them by default, and then it is no longer
        held) with its current script.
        """
        held = self._held.get(host, [])
        if count is None:
            self._holding.discard(host)
            count = len(held)
        answering, self._held[host] = held[:count], held[count:]
        for d, cluster in answering:
            self._answer(d, cluster, host)

    def _outcome(self, cluster: str, host: HostKey) -> Script:
        script = self._script.get((cluster, host), self._script.get((None, host)))
        if script is None:
            return ProbeError(f"no script for {host}")
        return script

    def _answer(self, d: Deferred, cluster: str, host: HostKey) -> None:
        if d.called:
            return
        outcome = self._outcome(cluster, host)
        if isinstance(outcome, ProbeError):
            d.errback(outcome)
        else:
            d.callback(outcome)

    def probe(self, cluster: ClusterSettings, host: HostKey) -> Deferred:
        """
        Answer from the script; see the class docstring.
        """
        self.calls.append((cluster.name, host))
        if self.closed:
            return fail(ProbeError("metric source is closed"))
        if host in self._holding:
            d = Deferred()
            self._held.setdefault(host, []).append((d, cluster.name))
            return d
        delay = self._delays.get(host, 0.0)
        if delay <= 0:
            outcome = self._outcome(cluster.name, host)
            return fail(outcome) if isinstance(outcome, ProbeError) else succeed(outcome)
        d = Deferred()
        if delay > self._timeout:
            self._clock.callLater(
                self._timeout,
                lambda: d.called
                or d.errback(
                    ProbeError(f"probe of {host} timed out after {self._timeout:g}s")
                ),
            )
        else:
            self._clock.callLater(delay, self._answer, d, cluster.name, host)
        return d

    def discard(self, cluster_name: str, host: HostKey) -> None:
        """
        Record that C{host} of C{cluster_name} was discarded.
        """
        self.discarded.append((cluster_name, host))

    def close(self) -> Deferred:
        """
        Mark closed.
        """
        self.closed = True
        return succeed(None)
