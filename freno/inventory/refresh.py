# -*- test-case-name: test.unit.test_inventory_refresh,test.unit.test_explain -*-
"""
L{Inventory}: every cluster's last good host list, refreshed from its
L{IInventorySource} at start, every C{interval} seconds, and on demand
(L{Inventory.refresh}). The probe service starts it on gaining leadership
and stops it on losing it; L{Inventory.start} refreshes at once, so a new
leader does not answer 404 for ten seconds (docs/decisions.md, D2). Stopping
and starting again is allowed; a restart joins any refresh still in flight.

B{What is accepted.} A refresh that succeeds with a I{non-empty} list of
L{HostKey} replaces the cluster's list, even if it is smaller: HAProxy and
ProxySQL admins take servers out on purpose (MAINT, OFFLINE_SOFT), and the
sources already turn the known glitch shapes into errors (header-only or
partial CSV during an HAProxy reload, all servers transitioning, one of
several HAProxy addresses failing, malformed rows or JSON, non-200 answers).
Everything else is a I{glitch} and keeps the previous list
(docs/decisions.md, D25):

  - any failure of the source (L{InventoryError} or anything unexpected);
  - no answer within C{timeout} (the source's Deferred is cancelled);
  - an empty list (a legitimate static list is never empty: the config
    loader rejects it), or something that is not a list of L{HostKey}.

A glitch is logged as a warning with C{cluster=} and C{error=} fields,
counted in C{freno_inventory_glitches_total{cluster}} and kept as the
cluster's current glitch until a refresh succeeds
(L{Inventory.refresh_status}, shown by C{/explain}); an accepted refresh
counts C{freno_inventory_refreshes_total{cluster}} and sets the gauge
C{freno_inventory_hosts{cluster}}. Lists are stored de-duplicated and
sorted, so observers (C{observer(cluster_name, hosts)}) are called only when
the set of hosts really changes.

B{Scheduling.} Clusters refresh concurrently and independently; one cluster's
refresh already in flight is joined, not duplicated, by a new L{refresh}
call. The periodic tick returns the refresh's Deferred (which never fails),
so ticks never overlap; C{timeout} (default: C{interval}) bounds how long a
stuck source can delay the others' next refresh.

L{freno.tap} builds it with one source per cluster
(L{freno.inventory.factory}); the probe service starts and stops it.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Tuple

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    TimeoutError as DeferredTimeoutError,
    gatherResults,
    maybeDeferred,
    succeed,
)
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from freno.config.model import ClusterSettings
from freno.hosts import HostKey
from freno.inventory.interfaces import (
    IInventory,
    IInventorySource,
    InventoryError,
    RefreshStatus,
)
from freno.metrics import catalogue
from freno.metrics.registry import Registry

Observer = Callable[[str, Tuple[HostKey, ...]], object]
_NEVER = RefreshStatus()


class _Glitch(Exception):
    """
    A source answered with something unusable (internal).
    """


def _describe(failure: Failure, timeout: float) -> str:
    if failure.check(DeferredTimeoutError, CancelledError):
        return f"no answer within {timeout:g}s"
    if failure.check(InventoryError, _Glitch):
        return str(failure.value)
    return f"{type(failure.value).__name__}: {failure.value}"


def normalise(hosts: object) -> Tuple[HostKey, ...]:
    """
    A source's result as a sorted, de-duplicated tuple.

    @raise _Glitch: not a list/tuple of L{HostKey}, or empty.
    """
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(h, HostKey) for h in hosts):
        raise _Glitch(f"source returned {type(hosts).__name__}, not a list of hosts")
    if not hosts:
        raise _Glitch("source returned no hosts")
    return tuple(sorted(set(hosts)))


@implementer(IInventory)
class Inventory:
    """
    Cluster name to last good host list.

    @ivar interval: seconds between periodic refreshes.
    @ivar timeout: seconds one cluster's source may take before the refresh
        counts as a glitch.
    """

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        clusters: Mapping[str, ClusterSettings],
        sources: Mapping[str, IInventorySource],
        registry: Registry,
        interval: float = 10.0,
        timeout: Optional[float] = None,
    ) -> None:
        """
        @param clock: the reactor (or a C{task.Clock}).
        @param clusters: the configured clusters, by name.
        @param sources: one source per cluster name.
        @param registry: where refreshes, glitches and host counts go.
        @raise ValueError: a cluster without a source, or a source without a
            cluster.
        """
        if set(clusters) != set(sources):
            raise ValueError(
                f"clusters and sources differ: {sorted(set(clusters) ^ set(sources))}"
            )
        self._clock = clock
        self._clusters = dict(clusters)
        self._sources = dict(sources)
        self._refreshes = registry.counter(catalogue.INVENTORY_REFRESHES)
        self._glitches = registry.counter(catalogue.INVENTORY_GLITCHES)
        self._host_counts = registry.gauge(catalogue.INVENTORY_HOSTS)
        self.interval = interval
        self.timeout = interval if timeout is None else timeout
        self._hosts: Dict[str, Tuple[HostKey, ...]] = {}
        self._status: Dict[str, RefreshStatus] = {}
        self._waiters: Dict[str, List[Deferred]] = {}
        self._observers: List[Observer] = []
        self._loop: Optional[LoopingCall] = None
        self._loop_done: Optional[Deferred] = None

    # -- IInventory ----------------------------------------------------------

    def hosts(self, cluster_name: str) -> Optional[Tuple[HostKey, ...]]:
        """
        The last good host list of C{cluster_name}, or C{None} if it never
        loaded (or is not configured).
        """
        return self._hosts.get(cluster_name)

    def refresh_status(self, cluster_name: str) -> RefreshStatus:
        """
        When C{cluster_name}'s last refresh succeeded, and why its latest
        one failed if it did (see L{IInventory.refresh_status}).
        """
        return self._status.get(cluster_name, _NEVER)

    def add_observer(self, observer: Observer) -> None:
        """
        Call C{observer(cluster_name, hosts)} whenever a cluster's host list
        changes. An observer that raises is logged and does not stop others.
        """
        self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        """
        Stop calling C{observer}.
        """
        self._observers.remove(observer)

    def refresh(self) -> Deferred:
        """
        Refresh every cluster now (joining refreshes already in flight).

        @return: a Deferred firing with C{None}, never failing, when every
            cluster's refresh has finished.
        """
        ds = [self._refresh_cluster(name) for name in self._sources]
        return gatherResults(ds).addCallback(lambda _: None)

    def start(self) -> None:
        """
        Refresh now and then every C{interval} seconds.
        """
        if self._loop is not None:
            return
        self._loop = LoopingCall(self.refresh)
        self._loop.clock = self._clock
        self._loop_done = self._loop.start(self.interval, now=True)

    def stop(self) -> Deferred:
        """
        Stop the periodic refresh.

        @return: a Deferred firing when stopped (after a refresh in flight
            has finished).
        """
        loop, done = self._loop, self._loop_done
        self._loop = self._loop_done = None
        if loop is None:
            return succeed(None)
        if loop.running:
            loop.stop()
        return done.addCallback(lambda _: None)

    # -- one cluster -----------------------------------------------------------

    def _refresh_cluster(self, name: str) -> Deferred:
        waiter: Deferred = Deferred()
        waiters = self._waiters.get(name)
        if waiters is not None:
            waiters.append(waiter)
            return waiter
        self._waiters[name] = [waiter]
        d = maybeDeferred(self._sources[name].hosts)
        d.addTimeout(self.timeout, self._clock)
        d.addCallback(normalise)
        d.addBoth(self._finish, name)
        return waiter

    def _finish(self, result, name: str) -> None:
        try:
            if isinstance(result, Failure):
                self._glitch(name, _describe(result, self.timeout))
            else:
                self._accept(name, result)
        except Exception:
            self.log.failure("inventory bookkeeping failed cluster={cluster}", cluster=name)
        for waiter in self._waiters.pop(name, []):
            waiter.callback(None)

    def _glitch(self, name: str, error: str) -> None:
        previous_status = self._status.get(name, _NEVER)
        self._status[name] = RefreshStatus(previous_status.last_refresh, error)
        self._glitches.inc((name,))
        previous = self._hosts.get(name)
        self.log.warn(
            "inventory refresh failed, keeping last good hosts cluster={cluster} error={error} kept={kept}",
            cluster=name,
            error=error,
            kept=None if previous is None else len(previous),
        )

    def _accept(self, name: str, hosts: Tuple[HostKey, ...]) -> None:
        self._status[name] = RefreshStatus(self._clock.seconds(), None)
        self._refreshes.inc((name,))
        self._host_counts.set(len(hosts), (name,))
        if self._hosts.get(name) == hosts:
            return
        previous = self._hosts.get(name)
        self._hosts[name] = hosts
        self.log.info(
            "inventory changed cluster={cluster} hosts={hosts} previous={previous}",
            cluster=name,
            hosts=[str(h) for h in hosts],
            previous=None if previous is None else [str(h) for h in previous],
        )
        for observer in list(self._observers):
            try:
                observer(name, hosts)
            except Exception:
                self.log.failure("inventory observer failed cluster={cluster}", cluster=name)
