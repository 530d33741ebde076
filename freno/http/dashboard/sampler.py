# -*- test-case-name: test.unit.test_dashboard_sampler -*-
"""
L{DashboardSampler}: the status page's once-a-second service. Each tick:

    - on the leader, records every cluster's aggregated value in the
      L{History} (a node that has just become leader clears it first: a new
      leader starts a fresh buffer; a follower records nothing);
    - notes the leader and term in the L{LeadershipLog};
    - starts a refresh of the L{AuditTail}, unless the previous one is
      still running (a slow audit read never delays the history).

A tick that fails is logged and the next one runs as usual.
"""

from __future__ import annotations

from typing import Optional

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freno.consensus.interface import IConsensusService
from freno.http.dashboard.audit_tail import AuditTail
from freno.http.dashboard.history import History
from freno.http.dashboard.leadership import LeadershipLog
from freno.probe.metrics import AggregatedMetrics

#: Seconds between samples.
INTERVAL = 1.0


class DashboardSampler(Service):
    """
    @param clock: the time source.
    @param consensus: leadership and term.
    @param metrics: the aggregated values.
    @param history: where the leader's values go.
    @param leadership: where leadership changes go.
    @param audit: the audit tail to refresh, or C{None} (the audit log is
        restricted: the page does not show it).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        consensus: IConsensusService,
        metrics: AggregatedMetrics,
        history: History,
        leadership: LeadershipLog,
        audit: Optional[AuditTail] = None,
        interval: float = INTERVAL,
    ) -> None:
        self._clock = clock
        self._consensus = consensus
        self._metrics = metrics
        self._history = history
        self._leadership = leadership
        self._audit = audit
        self._interval = interval
        self._leading = False
        self._auditing = False
        self._loop: Optional[LoopingCall] = None

    def startService(self) -> None:
        """
        Sample now and then every interval.
        """
        Service.startService(self)
        self._loop = LoopingCall(self.tick)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=True)

    def stopService(self):
        """
        Stop sampling.
        """
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def tick(self) -> None:
        """
        One sample (see the module docstring).
        """
        now = self._clock.seconds()
        try:
            self._sample(now)
        except Exception:
            self._log.failure("dashboard sample failed")
        if self._audit is not None and not self._auditing:
            self._auditing = True
            d = self._audit.refresh()
            d.addErrback(
                lambda f: self._log.warn("dashboard audit read failed: {error}", error=str(f.value))
            )
            d.addBoth(self._audited)

    def _audited(self, _) -> None:
        self._auditing = False

    def _sample(self, now: float) -> None:
        consensus = self._consensus
        leading = consensus.is_leader()
        if leading:
            if not self._leading:
                self._history.clear(now)
            metrics = self._metrics
            values = {}
            for name in self._history.clusters():
                metric = metrics.get(name)
                if metric is not None and metric.error is None:
                    values[name] = metric.value
            self._history.record(now, values)
        self._leading = leading
        self._leadership.observe(now, consensus.leader(), consensus.control_status().term)
