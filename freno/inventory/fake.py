# -*- test-case-name: test.unit.test_inventory_fake -*-
"""
In-memory fakes of the inventory seams, for unit tests of the inventory's
consumers (the prober) and of the refresh loop:

  - L{FakeInventorySource}: answers L{hosts} from a script of host lists,
    failures, or held Deferreds the test fires later;
  - L{FakeInventory}: an L{IInventory} whose host lists the test sets;
    setting one calls the observers as the real one does on a change.

Both are checked with C{verifyObject} in C{test.unit.test_inventory_fake}.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from freno.hosts import HostKey
from freno.inventory.interfaces import IInventory, IInventorySource, InventoryError, RefreshStatus


@implementer(IInventorySource)
class FakeInventorySource:
    """
    A source with scripted answers.

    Each call to L{hosts} takes the next answer queued by L{answer},
    L{fail_with} or L{hold}; when the queue is empty it repeats the
    I{default} (the last L{set_hosts}, or the constructor's list).

    @ivar calls: how many times L{hosts} was called.
    @ivar held: Deferreds handed out by L{hold} answers, oldest first.
    """

    def __init__(self, hosts: Sequence[HostKey] = ()) -> None:
        self._default: object = list(hosts)
        self._queue: List[object] = []
        self.calls = 0
        self.held: List[Deferred] = []

    def set_hosts(self, hosts: Sequence[HostKey]) -> None:
        """
        Answer C{hosts} from now on (after any queued answers).
        """
        self._default = list(hosts)

    def set_failure(self, message: str) -> None:
        """
        Fail with L{InventoryError}C{(message)} from now on.
        """
        self._default = InventoryError(message)

    def answer(self, hosts: Sequence[HostKey]) -> None:
        """
        Queue one answer.
        """
        self._queue.append(list(hosts))

    def fail_with(self, error: Exception) -> None:
        """
        Queue one failure.
        """
        self._queue.append(error)

    def hold(self) -> None:
        """
        Queue one answer that stays pending; fire it through L{held}.
        """
        self._queue.append(_HOLD)

    def hosts(self) -> Deferred:
        """
        @return: the next scripted answer.
        """
        self.calls += 1
        answer = self._queue.pop(0) if self._queue else self._default
        if answer is _HOLD:
            d: Deferred = Deferred()
            self.held.append(d)
            return d
        if isinstance(answer, Exception):
            return fail(answer)
        return succeed(list(answer))


_HOLD = object()


@implementer(IInventory)
class FakeInventory:
    """
    An inventory whose host lists the test sets with L{set_hosts}.

    @ivar refreshes: how many times L{refresh} was called.
    @ivar running: between L{start} and L{stop}.
    """

    def __init__(self, hosts: Optional[Dict[str, Sequence[HostKey]]] = None) -> None:
        self._hosts: Dict[str, Tuple[HostKey, ...]] = {
            name: tuple(sorted(set(h))) for name, h in (hosts or {}).items()
        }
        self._observers: List[Callable] = []
        self.refreshes = 0
        self.running = False
        #: What L{refresh_status} answers, by cluster (tests set it).
        self.statuses: Dict[str, RefreshStatus] = {}

    def set_hosts(self, cluster_name: str, hosts: Sequence[HostKey]) -> None:
        """
        Replace a cluster's list; observers hear about it if it changed.
        """
        new = tuple(sorted(set(hosts)))
        if self._hosts.get(cluster_name) == new:
            return
        self._hosts[cluster_name] = new
        for observer in list(self._observers):
            observer(cluster_name, new)

    def hosts(self, cluster_name: str) -> Optional[Tuple[HostKey, ...]]:
        """
        See L{IInventory.hosts}.
        """
        return self._hosts.get(cluster_name)

    def refresh_status(self, cluster_name: str) -> RefreshStatus:
        """
        See L{IInventory.refresh_status}: C{statuses[cluster_name]}, or
        never refreshed.
        """
        return self.statuses.get(cluster_name, RefreshStatus())

    def refresh(self) -> Deferred:
        """
        Count the call; fire at once.
        """
        self.refreshes += 1
        return succeed(None)

    def add_observer(self, observer: Callable) -> None:
        """
        See L{IInventory.add_observer}.
        """
        self._observers.append(observer)

    def remove_observer(self, observer: Callable) -> None:
        """
        Stop calling C{observer}.
        """
        self._observers.remove(observer)

    def start(self) -> None:
        """
        Mark running and count one refresh (the real one refreshes at once).
        """
        self.running = True
        self.refreshes += 1

    def stop(self) -> Deferred:
        """
        Mark stopped.
        """
        self.running = False
        return succeed(None)
