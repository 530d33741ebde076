# -*- test-case-name: test.unit.test_raft_poller -*-
"""
L{ReactorPoller}: pysyncobj's socket poller, implemented on the Twisted
reactor, so that pysyncobj needs no thread of its own.

pysyncobj normally owns an event loop: every C{doTick} ends with
C{poller.poll(timeout)}, which waits on its sockets and calls their callbacks.
Here the reactor owns the sockets instead. pysyncobj calls
L{ReactorPoller.subscribe} and L{ReactorPoller.unsubscribe} as usual; each
subscribed descriptor is registered with the reactor (C{addReader} /
C{addWriter}), the reactor calls back into pysyncobj when the socket is ready,
and L{ReactorPoller.poll} does nothing. After every socket event the poller
asks for an immediate extra tick (C{on_event}), so a message that moves raft
forward (a vote, an acknowledgement) is acted on at once instead of at the
next timer tick.

Two traps of pysyncobj 0.3.17 are handled here:

    - L{TcpConnection.disconnect} closes its socket I{before} it unsubscribes
      the descriptor. Removing an already-closed fd from the epoll reactor
      fails half-way and leaves the fd number behind, so the reactor is given
      a private C{os.dup()} of every descriptor, closed on unsubscribe. The
      duplicate also keeps the socket open until we let go of it, so the fd
      number cannot be reused under us; a re-subscription of a number that
      now names another file is detected (C{fstat}) and treated as new.
    - C{SyncObj.destroy()} never unsubscribes the pipe notifier it creates
      when C{appendEntriesUseBatch=False}; L{ReactorPoller.close} unregisters
      whatever is left.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional

from pysyncobj.poller import POLL_EVENT_TYPE, Poller
from twisted.internet.interfaces import IReactorFDSet, IReadWriteDescriptor
from twisted.logger import Logger
from zope.interface import implementer

Callback = Callable[[int, int], None]


def _same_file(fd_a: int, fd_b: int) -> bool:
    """
    Whether two descriptors name the same open file (socket or pipe).
    """
    try:
        a = os.fstat(fd_a)
        b = os.fstat(fd_b)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@implementer(IReadWriteDescriptor)
class _Registration:
    """
    One pysyncobj descriptor as the reactor sees it: a duplicate fd whose
    events are forwarded to pysyncobj's callback under the original number.

    @ivar descr: the descriptor number pysyncobj knows.
    @ivar fd: our duplicate, given to the reactor; -1 once closed.
    @ivar mask: the pysyncobj event mask last subscribed.
    """

    def __init__(self, poller: "ReactorPoller", descr: int, fd: int) -> None:
        self._poller = poller
        self.descr = descr
        self.fd = fd
        self.mask = 0
        self.callback: Optional[Callback] = None
        self.reading = False
        self.writing = False

    def fileno(self) -> int:
        return self.fd

    def logPrefix(self) -> str:
        return "pysyncobj"

    def doRead(self) -> None:
        self._poller._dispatch(self, POLL_EVENT_TYPE.READ)

    def doWrite(self) -> None:
        self._poller._dispatch(self, POLL_EVENT_TYPE.WRITE)

    def connectionLost(self, reason) -> None:
        # The reactor saw a hang-up or an error and has already removed us.
        self.reading = self.writing = False
        self._poller._dispatch(self, POLL_EVENT_TYPE.ERROR)


class ReactorPoller(Poller):
    """
    A pysyncobj L{Poller} whose descriptors are watched by C{reactor}.

    @param reactor: an L{IReactorFDSet}.
    @param on_event: called (no arguments) after each event was handed to
        pysyncobj; the service uses it to schedule an immediate tick.
    """

    _log = Logger()

    def __init__(self, reactor: IReactorFDSet, on_event: Callable[[], None]) -> None:
        self._reactor = reactor
        self._on_event = on_event
        self._registrations: Dict[int, _Registration] = {}

    def subscribe(self, descr: int, callback: Callback, eventMask: int) -> None:
        """
        Watch C{descr} for C{eventMask} (pysyncobj's C{POLL_EVENT_TYPE} bits),
        replacing any earlier subscription of the same descriptor.
        """
        registration = self._registrations.get(descr)
        if registration is not None and not _same_file(descr, registration.fd):
            # The number was closed and reused without an unsubscribe.
            self._drop(registration)
            registration = None
        if registration is None:
            registration = _Registration(self, descr, os.dup(descr))
            self._registrations[descr] = registration
        registration.callback = callback
        registration.mask = eventMask
        want_read = bool(eventMask & (POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR))
        want_write = bool(eventMask & POLL_EVENT_TYPE.WRITE)
        if want_read and not registration.reading:
            self._reactor.addReader(registration)
            registration.reading = True
        elif not want_read and registration.reading:
            self._reactor.removeReader(registration)
            registration.reading = False
        if want_write and not registration.writing:
            self._reactor.addWriter(registration)
            registration.writing = True
        elif not want_write and registration.writing:
            self._reactor.removeWriter(registration)
            registration.writing = False

    def unsubscribe(self, descr: int) -> None:
        """
        Stop watching C{descr} (which pysyncobj may already have closed).
        """
        registration = self._registrations.pop(descr, None)
        if registration is not None:
            self._release(registration)

    def poll(self, timeout: float) -> None:
        """
        Nothing to do: the reactor delivers events as they happen.
        """

    def descriptors(self):
        """
        The descriptor numbers currently subscribed (for tests and shutdown).
        """
        return sorted(self._registrations)

    def close(self) -> None:
        """
        Unregister and close every remaining duplicate (the pipe notifier
        that pysyncobj never unsubscribes, and anything else left over).
        """
        for registration in list(self._registrations.values()):
            self._drop(registration)

    def _drop(self, registration: _Registration) -> None:
        if self._registrations.get(registration.descr) is registration:
            del self._registrations[registration.descr]
        self._release(registration)

    def _release(self, registration: _Registration) -> None:
        if registration.reading:
            self._reactor.removeReader(registration)
        if registration.writing:
            self._reactor.removeWriter(registration)
        registration.reading = registration.writing = False
        registration.callback = None
        if registration.fd >= 0:
            fd, registration.fd = registration.fd, -1
            os.close(fd)

    def _dispatch(self, registration: _Registration, event: int) -> None:
        callback = registration.callback
        if callback is None or registration.fd < 0:
            return
        if event != POLL_EVENT_TYPE.ERROR and not (registration.mask & event):
            return
        try:
            callback(registration.descr, event)
        except Exception:
            self._log.failure("pysyncobj socket callback failed", descr=registration.descr)
        self._on_event()
