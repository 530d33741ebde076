"""
Tests for L{freno.publish.memcache}: unit tests on a memory reactor.
"""

from __future__ import annotations

import re
from typing import List, Tuple

from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from freno.hosts import InvalidHostError
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.publish.memcache import (
    InvalidMemcacheKeyError,
    MemcachePublisher,
    check_key,
    format_value,
    metric_key,
)
from freno.metrics.catalogue import MEMCACHE_ERRORS, MEMCACHE_WRITES
from freno.metrics.registry import Registry

SET_RE = re.compile(rb"^set (\S+) 0 2 (\d+)\r\n(\d+):(-?\d+\.\d{6})\r\n$")


class _Connection:
    """
    One simulated connection: the protocol and its transport.
    """

    def __init__(self, reactor: MemoryReactorClock, index: int) -> None:
        host, port, factory, timeout, bind = reactor.tcpClients[index]
        self.host, self.port, self.timeout = host, port, timeout
        self.factory = factory
        self.proto = None
        self.transport = None

    def succeed(self) -> "_Connection":
        self.proto = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)
        return self

    def refuse(self) -> None:
        self.factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))

    def sent(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def answer(self, line: bytes) -> None:
        self.proto.dataReceived(line + b"\r\n")

    def close(self) -> None:
        self.proto.connectionLost(Failure(ConnectionDone()))


class PublisherTestsMixin:
    """
    A publisher on a L{MemoryReactorClock} with two servers.
    """

    servers: Tuple[str, ...] = ("127.0.0.1:11211", "127.0.0.2")

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_700_000_000.0)
        self.stats = Registry()
        self.metrics = AggregatedMetrics(self.reactor, {"c1": 1.0, "c2": 1.0}, max_age=2.0)
        self.publisher = MemcachePublisher(
            self.reactor, self.servers, "freno", self.metrics, self.stats, self.reactor
        )

    def start(self) -> List[_Connection]:
        self.publisher.startService()
        return [_Connection(self.reactor, i).succeed() for i in range(len(self.servers))]

    def stop(self, connections: List[_Connection]) -> None:
        d = self.publisher.stopService()
        for c in connections:
            if c.proto is not None and c.transport.disconnecting:
                c.close()
        self.successResultOf(d)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def setValue(self, cluster: str, value: float, error=None) -> None:
        self.metrics.set(cluster, ClusterMetric(value, error, self.reactor.seconds()))


class FormatTests(SynchronousTestCase):
    """
    Keys and values are freno's.
    """

    def test_key(self) -> None:
        """
        The key is C{<path>/mysql/<cluster>}.
        """
        self.assertEqual(metric_key("freno", "main"), "freno/mysql/main")

    def test_value(self) -> None:
        """
        The value is epoch millis, a colon, and the value with 6 decimals.
        """
        self.assertEqual(format_value(1795690364638, 0.5), b"1795690364638:0.500000")

    def test_bad_keys(self) -> None:
        """
        Keys with whitespace or control characters, empty keys and keys over
        250 bytes are refused with a clear error.
        """
        for key in ("a b", "a\nb", "", "x" * 251, "a\x7fb"):
            self.assertRaises(InvalidMemcacheKeyError, check_key, key)
        self.assertEqual(check_key("x" * 250), b"x" * 250)


class ConstructorTests(SynchronousTestCase):
    """
    Bad configuration is refused before anything starts.
    """

    def make(self, **kwargs):
        reactor = MemoryReactorClock()
        args = dict(
            reactor=reactor, servers=["127.0.0.1:11211"], path="freno",
            metrics=AggregatedMetrics(reactor, {}, 1.0), registry=Registry(), clock=reactor,
        )
        args.update(kwargs)
        return MemcachePublisher(**args)

    def test_bad_server(self) -> None:
        """
        A server that is not C{host[:port]} raises L{InvalidHostError}.
        """
        self.assertRaises(InvalidHostError, self.make, servers=["h:notaport"])
        self.assertRaises(InvalidHostError, self.make, servers=[":11211"])

    def test_servers_string(self) -> None:
        """
        A single string instead of a list is refused (it would be iterated
        character by character).
        """
        self.assertRaises(ValueError, self.make, servers="127.0.0.1:11211")

    def test_bad_path(self) -> None:
        """
        A path with whitespace cannot prefix a memcache key.
        """
        self.assertRaises(InvalidMemcacheKeyError, self.make, path="my freno")

    def test_bad_numbers(self) -> None:
        """
        Expiry must be whole seconds >= 1; intervals and timeouts positive.
        """
        self.assertRaises(ValueError, self.make, expiry=0)
        self.assertRaises(ValueError, self.make, expiry=1.5)
        self.assertRaises(ValueError, self.make, refresh_interval=0)
        self.assertRaises(ValueError, self.make, command_timeout=-1)

    def test_default_port(self) -> None:
        """
        A server without a port uses 11211, and connection attempts use the
        configured connect timeout.
        """
        reactor = MemoryReactorClock()
        publisher = self.make(reactor=reactor, clock=reactor, servers=["mc.local"], connect_timeout=0.3)
        self.assertEqual(publisher.servers, ("mc.local:11211",))
        publisher.startService()
        host, port, _, timeout, _ = reactor.tcpClients[0]
        self.assertEqual((host, port, timeout), ("mc.local", 11211, 0.3))


class PublishTests(PublisherTestsMixin, SynchronousTestCase):
    """
    What is written, where and when.
    """

    def test_set_to_every_server(self) -> None:
        """
        A new value is written at once to every server, as
        C{set <path>/mysql/<cluster> 0 2 <len>} with C{<millis>:<%.6f>}.
        """
        conns = self.start()
        self.reactor.advance(0.123)
        self.setValue("c1", 0.5)
        for c in conns:
            sent = c.sent()
            match = SET_RE.match(sent)
            self.assertIsNotNone(match, sent)
            self.assertEqual(match.group(1), b"freno/mysql/c1")
            self.assertEqual(match.group(3), b"1700000000123")
            self.assertEqual(match.group(4), b"0.500000")
            self.assertEqual(int(match.group(2)), len(b"1700000000123:0.500000"))
            c.answer(b"STORED")
        self.assertEqual(
            self.stats.value(MEMCACHE_WRITES, ("127.0.0.2:11211",)), 1
        )
        self.stop(conns)

    def test_error_deletes(self) -> None:
        """
        An error metric deletes the key (freno's behaviour).
        """
        conns = self.start()
        self.setValue("c1", 0.0, error="No hosts found")
        for c in conns:
            self.assertEqual(c.sent(), b"delete freno/mysql/c1\r\n")
            c.answer(b"NOT_FOUND")
        self.assertEqual(self.stats.value(MEMCACHE_ERRORS, ("127.0.0.1:11211",)), None)
        self.stop(conns)

    def test_unchanged_not_rewritten_until_refresh(self) -> None:
        """
        Setting the same value again writes nothing; the refresh rewrites
        every current value every 0.5 s with a fresh timestamp.
        """
        conns = self.start()
        c = conns[0]
        self.setValue("c1", 0.5)
        self.assertTrue(c.sent())
        c.answer(b"STORED")
        self.reactor.advance(0.2)
        self.setValue("c1", 0.5)
        self.assertEqual(c.sent(), b"")
        self.reactor.advance(0.3)
        match = SET_RE.match(c.sent())
        self.assertEqual(match.group(3), b"1700000000500")
        c.answer(b"STORED")
        self.setValue("c1", 0.6)
        self.assertEqual(SET_RE.match(c.sent()).group(4), b"0.600000")
        self.stop(conns)

    def test_one_write_in_flight_per_key(self) -> None:
        """
        While a write for a key awaits its answer, newer values replace the
        one waiting; only the newest is sent after the answer. Other keys
        are not held up.
        """
        conns = self.start()
        c = conns[0]
        self.setValue("c1", 0.1)
        c.sent()
        self.setValue("c1", 0.2)
        self.setValue("c1", 0.3)
        self.assertEqual(c.sent(), b"")
        self.setValue("c2", 0.9)
        self.assertIn(b"freno/mysql/c2", c.sent())
        c.answer(b"STORED")  # c1's 0.1
        self.assertEqual(SET_RE.match(c.sent()).group(4), b"0.300000")
        c.answer(b"STORED")  # c2
        c.answer(b"STORED")  # c1's 0.3
        self.assertEqual(c.sent(), b"")
        self.stop(conns)

    def test_stale_deleted_on_refresh(self) -> None:
        """
        A value older than the freshness bound is deleted at the next refresh.
        """
        conns = self.start()
        c = conns[0]
        self.setValue("c1", 0.5)
        c.sent()
        c.answer(b"STORED")
        sent = []
        for _ in range(5):  # 2.5 s after the value: stale
            self.reactor.advance(0.5)
            sent.append(c.sent())
            c.answer(b"DELETED" if sent[-1].startswith(b"delete") else b"STORED")
        self.assertEqual([s[:3] for s in sent], [b"set"] * 4 + [b"del"])
        self.assertEqual(sent[-1], b"delete freno/mysql/c1\r\n")
        self.stop(conns)

    def test_follows_leadership(self) -> None:
        """
        When the metrics are cleared (leadership lost) nothing more is
        written, and nothing is deleted: the keys expire.
        """
        conns = self.start()
        c = conns[0]
        self.setValue("c1", 0.5)
        c.sent()
        c.answer(b"STORED")
        self.metrics.clear()
        self.reactor.pump([0.5] * 4)
        self.assertEqual(c.sent(), b"")
        self.stop(conns)

    def test_bad_cluster_name_skipped(self) -> None:
        """
        A cluster whose key memcached would refuse is logged once and
        skipped; other clusters are still published.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        conns = self.start()
        c = conns[0]
        self.setValue("bad name", 0.5)
        self.setValue("bad name", 0.6)
        self.setValue("c1", 0.5)
        sent = c.sent()
        self.assertNotIn(b"bad", sent)
        self.assertIn(b"freno/mysql/c1", sent)
        errors = [e for e in events if e.get("cluster") == "bad name"]
        self.assertEqual(len(errors), 1)
        self.stop(conns)

    def test_not_started_writes_nothing(self) -> None:
        """
        Before C{startService} no connection is made and values are ignored.
        """
        self.setValue("c1", 0.5)
        self.assertEqual(self.reactor.tcpClients, [])


class FailureTests(PublisherTestsMixin, SynchronousTestCase):
    """
    A memcached that is down, slow or failing delays nothing and is retried.
    """

    servers = ("127.0.0.1:11211",)

    def test_refused_then_retried_with_backoff(self) -> None:
        """
        A refused connection counts an error and is retried after 0.5 s,
        then 1 s, 2 s...; once connected, the server gets current values at
        once.
        """
        self.publisher.startService()
        self.setValue("c1", 0.5)  # dropped: nothing connected
        _Connection(self.reactor, 0).refuse()
        self.assertEqual(self.stats.value(MEMCACHE_ERRORS, ("127.0.0.1:11211",)), 1)
        self.reactor.advance(0.49)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(0.01)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        _Connection(self.reactor, 1).refuse()
        self.reactor.advance(0.99)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.reactor.advance(0.01)
        self.assertEqual(len(self.reactor.tcpClients), 3)
        self.assertEqual(self.stats.value(MEMCACHE_ERRORS, ("127.0.0.1:11211",)), 2)
        self.setValue("c1", 0.7)
        c = _Connection(self.reactor, 2).succeed()
        match = SET_RE.match(c.sent())
        self.assertEqual(match.group(4), b"0.700000")
        c.answer(b"STORED")
        self.stop([c])

    def test_timeout_drops_connection_and_reconnects(self) -> None:
        """
        A command unanswered for 1 s counts an error and drops the
        connection; a new connection follows, and gets the current value.
        """
        c = self.start()[0]
        self.setValue("c1", 0.5)
        c.sent()
        self.setValue("c1", 0.6)  # waits behind the unanswered write
        self.reactor.advance(1.0)
        self.assertTrue(c.transport.disconnecting)
        c.close()
        self.assertEqual(self.stats.value(MEMCACHE_ERRORS, ("127.0.0.1:11211",)), 1)
        self.assertEqual(c.sent(), b"")  # the queued write was not sent on the dead connection
        self.reactor.advance(0.5)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        c2 = _Connection(self.reactor, 1).succeed()
        self.assertEqual(SET_RE.match(c2.sent()).group(4), b"0.600000")
        c2.answer(b"STORED")
        self.stop([c2])

    def test_server_error_counted(self) -> None:
        """
        A SERVER_ERROR answer counts an error and does not stop later writes.
        """
        c = self.start()[0]
        self.setValue("c1", 0.5)
        c.sent()
        c.answer(b"SERVER_ERROR out of memory storing object")
        self.assertEqual(self.stats.value(MEMCACHE_ERRORS, ("127.0.0.1:11211",)), 1)
        self.flushLoggedErrors()
        self.setValue("c1", 0.6)
        self.assertIn(b"0.600000", c.sent())
        c.answer(b"STORED")
        self.stop([c])

    def test_writes_while_disconnected_are_dropped(self) -> None:
        """
        While the connection is down, changes queue nothing and raise
        nothing.
        """
        c = self.start()[0]
        c.close()
        for i in range(100):
            self.setValue("c1", i / 100.0)
        self.assertEqual(self.publisher.links[0]._pending, {})
        self.assertFalse(self.publisher.links[0].is_connected)
        self.reactor.advance(0.5)
        c2 = _Connection(self.reactor, 1).succeed()
        self.assertEqual(SET_RE.match(c2.sent()).group(4), b"0.990000")
        c2.answer(b"STORED")
        self.stop([c2])
