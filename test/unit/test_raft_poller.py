"""
Tests for L{freno.consensus.raft.poller}: pysyncobj's sockets on the reactor.
"""

from __future__ import annotations

import os
import socket

from pysyncobj.poller import POLL_EVENT_TYPE
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.raft.poller import ReactorPoller

READ = POLL_EVENT_TYPE.READ
WRITE = POLL_EVENT_TYPE.WRITE
ERROR = POLL_EVENT_TYPE.ERROR


class FakeFDSet:
    """
    The part of C{IReactorFDSet} the poller uses, recording registrations.
    """

    def __init__(self):
        self.readers = set()
        self.writers = set()

    def addReader(self, r):
        assert r.fileno() >= 0
        self.readers.add(r)

    def addWriter(self, w):
        assert w.fileno() >= 0
        self.writers.add(w)

    def removeReader(self, r):
        assert r.fileno() >= 0, "removing a closed descriptor"
        self.readers.discard(r)

    def removeWriter(self, w):
        assert w.fileno() >= 0, "removing a closed descriptor"
        self.writers.discard(w)


def fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class ReactorPollerTests(SynchronousTestCase):
    """
    L{ReactorPoller} registers duplicates of pysyncobj's descriptors with the
    reactor and forwards their events.
    """

    def setUp(self):
        self.reactor = FakeFDSet()
        self.ticks = []
        self.events = []
        self.poller = ReactorPoller(self.reactor, lambda: self.ticks.append(1))
        self.a, self.b = socket.socketpair()
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        self.addCleanup(self.poller.close)

    def callback(self, descr, event):
        self.events.append((descr, event))

    def only(self, registrations):
        (registration,) = registrations
        return registration

    def test_subscribe_registers_a_duplicate(self):
        """
        The reactor watches a duplicate fd, not pysyncobj's own number.
        """
        fd = self.a.fileno()
        self.poller.subscribe(fd, self.callback, READ | ERROR)
        registration = self.only(self.reactor.readers)
        self.assertNotEqual(registration.fileno(), fd)
        self.assertEqual(self.reactor.writers, set())
        self.assertEqual(self.poller.descriptors(), [fd])

    def test_resubscribe_changes_the_mask(self):
        """
        Subscribing the same descriptor again adds or removes the writer and
        keeps one duplicate.
        """
        fd = self.a.fileno()
        self.poller.subscribe(fd, self.callback, READ | WRITE | ERROR)
        registration = self.only(self.reactor.writers)
        self.assertEqual(self.reactor.readers, {registration})
        self.poller.subscribe(fd, self.callback, READ | ERROR)
        self.assertEqual(self.reactor.writers, set())
        self.assertEqual(self.reactor.readers, {registration})

    def test_events_reach_pysyncobj_under_its_number(self):
        """
        A read event calls the callback with the original descriptor, then
        asks for a tick.
        """
        fd = self.a.fileno()
        self.poller.subscribe(fd, self.callback, READ | WRITE | ERROR)
        registration = self.only(self.reactor.readers)
        registration.doRead()
        registration.doWrite()
        self.assertEqual(self.events, [(fd, READ), (fd, WRITE)])
        self.assertEqual(len(self.ticks), 2)

    def test_event_not_subscribed_is_dropped(self):
        """
        A write readiness left over after the writer was removed is ignored.
        """
        fd = self.a.fileno()
        self.poller.subscribe(fd, self.callback, READ | WRITE | ERROR)
        registration = self.only(self.reactor.readers)
        self.poller.subscribe(fd, self.callback, READ | ERROR)
        registration.doWrite()
        self.assertEqual(self.events, [])

    def test_connection_lost_is_an_error_event(self):
        """
        When the reactor drops the descriptor (hang-up), pysyncobj gets an
        ERROR event.
        """
        fd = self.a.fileno()
        self.poller.subscribe(fd, self.callback, READ | ERROR)
        registration = self.only(self.reactor.readers)
        self.reactor.readers.discard(registration)
        registration.connectionLost(None)
        self.assertEqual(self.events, [(fd, ERROR)])

    def test_callback_failure_is_logged_not_raised(self):
        """
        An exception from pysyncobj's callback does not reach the reactor.
        """
        fd = self.a.fileno()

        def boom(descr, event):
            raise RuntimeError("boom")

        self.poller.subscribe(fd, boom, READ | ERROR)
        self.only(self.reactor.readers).doRead()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(self.ticks), 1)

    def test_unsubscribe_after_close(self):
        """
        pysyncobj closes a socket before unsubscribing it: the reactor is
        still handed a valid descriptor to remove, and the duplicate is
        closed.
        """
        fd = self.a.fileno()
        self.poller.subscribe(fd, self.callback, READ | WRITE | ERROR)
        registration = self.only(self.reactor.readers)
        dup = registration.fileno()
        self.a.close()
        self.poller.unsubscribe(fd)
        self.assertEqual(self.reactor.readers, set())
        self.assertEqual(self.reactor.writers, set())
        self.assertFalse(fd_open(dup))
        self.assertEqual(self.poller.descriptors(), [])
        registration.doRead()
        self.assertEqual(self.events, [])

    def test_reused_number_is_a_new_registration(self):
        """
        A descriptor number closed without unsubscribe and reused for another
        file gets a fresh duplicate; the stale one is released.
        """
        fd = self.a.fileno()
        self.poller.subscribe(fd, self.callback, READ | ERROR)
        stale = self.only(self.reactor.readers)
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        self.a.close()
        os.dup2(r, fd)  # the number now names the pipe
        os.close(r)
        self.addCleanup(os.close, fd)
        self.poller.subscribe(fd, self.callback, READ | ERROR)
        fresh = self.only(self.reactor.readers)
        self.assertIsNot(fresh, stale)
        self.assertEqual(stale.fileno(), -1)
        self.assertEqual(
            os.fstat(fresh.fileno()).st_ino, os.fstat(fd).st_ino
        )

    def test_close_releases_everything(self):
        """
        L{ReactorPoller.close} unregisters leftovers (pysyncobj's pipe
        notifier is never unsubscribed) and closes their duplicates.
        """
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        self.poller.subscribe(r, self.callback, READ)
        self.poller.subscribe(self.a.fileno(), self.callback, READ | WRITE | ERROR)
        dups = [x.fileno() for x in self.reactor.readers]
        self.poller.close()
        self.assertEqual(self.reactor.readers, set())
        self.assertEqual(self.reactor.writers, set())
        self.assertEqual([fd_open(d) for d in dups], [False, False])

    def test_poll_does_nothing(self):
        """
        pysyncobj's C{poll} at the end of a tick returns at once.
        """
        self.poller.subscribe(self.a.fileno(), self.callback, READ | ERROR)
        self.b.send(b"x")
        self.assertIsNone(self.poller.poll(0.5))
        self.assertEqual(self.events, [])
