"""
Tests for L{freno.consensus.raft.resolver} (member names looked up again
after a failed connection) and the transport hooks that use it
(L{freno.consensus.raft.peers}).
"""

from __future__ import annotations

import os

from pysyncobj.node import Node, TCPNode
from pysyncobj.tcp_connection import CONNECTION_STATE
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.consensus.raft.peers import LEARNER_PREFIX, PeerHooks, learner_id
from freno.consensus.raft.resolver import (
    CachingResolver,
    HostsFileLookup,
    IRaftResolver,
    parse_hosts,
)


class Names:
    """
    A lookup the test re-points: C{names[host]} is the answer; C{held}
    holds answers back until released.
    """

    def __init__(self, **names) -> None:
        self.names = {k.replace("_", "-"): v for k, v in names.items()}
        self.asked = []
        self.held = None

    def __call__(self, host):
        self.asked.append(host)
        if self.held is not None:
            d = Deferred()
            self.held.append((d, host))
            return d
        if host not in self.names:
            return fail(OSError(f"{host} not found"))
        return succeed(list(self.names[host]))


class CachingResolverTests(SynchronousTestCase):
    """
    L{CachingResolver}.
    """

    def setUp(self):
        self.clock = Clock()
        self.names = Names(node_a=["10.0.0.1"])
        self.resolver = CachingResolver(self.names, self.clock, min_interval=1.0)

    def test_interface(self):
        """
        It provides L{IRaftResolver}.
        """
        verifyObject(IRaftResolver, self.resolver)

    def test_cached(self):
        """
        A name is looked up once while connections work.
        """
        self.assertEqual(self.resolver.address_of("node-a"), "10.0.0.1")
        self.clock.advance(3600)
        self.assertEqual(self.resolver.address_of("node-a"), "10.0.0.1")
        self.assertEqual(self.names.asked, ["node-a"])

    def test_repointed_after_failure(self):
        """
        After a failed connection the name is looked up again, and a new
        address replaces the old one.
        """
        self.resolver.address_of("node-a")
        self.names.names["node-a"] = ["10.0.0.9"]
        self.resolver.connection_failed("node-a")
        self.clock.advance(1.0)
        self.assertEqual(self.resolver.address_of("node-a"), "10.0.0.9")

    def test_still_valid_address_kept(self):
        """
        An address still among the answers is kept (no flapping between
        the records of one name).
        """
        self.names.names["node-a"] = ["10.0.0.1", "10.0.0.2"]
        self.resolver.address_of("node-a")
        self.names.names["node-a"] = ["10.0.0.2", "10.0.0.1"]
        self.resolver.connection_failed("node-a")
        self.clock.advance(1.0)
        self.assertEqual(self.resolver.address_of("node-a"), "10.0.0.1")

    def test_rate_limited(self):
        """
        Failures in quick succession cost one lookup per C{min_interval}.
        """
        self.resolver.address_of("node-a")
        for _ in range(5):
            self.resolver.connection_failed("node-a")
            self.resolver.address_of("node-a")
        self.assertEqual(len(self.names.asked), 1)
        self.clock.advance(1.0)
        self.resolver.address_of("node-a")
        self.assertEqual(len(self.names.asked), 2)

    def test_failed_lookup_keeps_address(self):
        """
        A lookup that fails keeps the last known address (and is logged).
        """
        self.resolver.address_of("node-a")
        del self.names.names["node-a"]
        self.resolver.connection_failed("node-a")
        self.clock.advance(1.0)
        self.assertEqual(self.resolver.address_of("node-a"), "10.0.0.1")

    def test_unknown_name(self):
        """
        A name never resolved has no address.
        """
        self.assertIsNone(self.resolver.address_of("nowhere"))

    def test_asynchronous(self):
        """
        While a lookup is under way the last address is used (none at
        first), and only one lookup of a name runs at a time.
        """
        self.names.held = []
        self.assertIsNone(self.resolver.address_of("node-a"))
        self.clock.advance(5)
        self.assertIsNone(self.resolver.address_of("node-a"))
        self.assertEqual(len(self.names.held), 1)
        d, _ = self.names.held.pop()
        d.callback(["10.0.0.1"])
        self.assertEqual(self.resolver.address_of("node-a"), "10.0.0.1")

    def test_ip_literal(self):
        """
        An IP literal is its own address, never looked up.
        """
        self.assertEqual(self.resolver.address_of("127.0.0.1"), "127.0.0.1")
        self.assertEqual(self.resolver.address_of("::1"), "::1")
        self.resolver.connection_failed("127.0.0.1")
        self.assertEqual(self.names.asked, [])


class HostsFileTests(SynchronousTestCase):
    """
    L{HostsFileLookup} and L{parse_hosts}.
    """

    def test_parse(self):
        """
        Address, names and aliases; comments and junk ignored.
        """
        text = "# c\n10.0.0.1 a b # x\n\nbad line\n10.0.0.2 a\n::1 six\n"
        self.assertEqual(parse_hosts(text), {"a": ["10.0.0.1", "10.0.0.2"], "b": ["10.0.0.1"], "six": ["::1"]})

    def test_read_on_every_lookup(self):
        """
        The file is read again on every lookup; other names go to the
        fallback; a missing file holds no name.
        """
        path = self.mktemp()
        lookup = HostsFileLookup(path, fallback=Names(other=["10.9.9.9"]))
        self.failureResultOf(lookup("a"), OSError)  # the fallback does not know it
        with open(path, "w") as f:
            f.write("10.0.0.1 a\n")
        self.assertEqual(self.successResultOf(lookup("a")), ["10.0.0.1"])
        with open(path, "w") as f:
            f.write("10.0.0.2 a\n")
        self.assertEqual(self.successResultOf(lookup("a")), ["10.0.0.2"])
        self.assertEqual(self.successResultOf(lookup("other")), ["10.9.9.9"])
        os.remove(path)
        self.assertEqual(self.successResultOf(HostsFileLookup(path)("a")), [])


class FakeConnection:
    """
    A pysyncobj connection that records dials.
    """

    def __init__(self, works: bool = True) -> None:
        self.state = CONNECTION_STATE.DISCONNECTED
        self.dials = []
        self.works = works

    def connect(self, host, port):
        self.dials.append((host, port))
        if self.works:
            self.state = CONNECTION_STATE.CONNECTING
        return self.works


class Base:
    """
    The parts of pysyncobj's C{TCPTransport} the hooks use.
    """

    def __init__(self, syncObj, selfNode, otherNodes) -> None:
        self._syncObj = syncObj
        self._connections = {}
        self._lastConnectAttempt = {}
        self._nodes = set(otherNodes)
        self.disconnected = []

    def _shouldConnect(self, node):
        return True

    def _connToNode(self, conn):
        return next((n for n, c in self._connections.items() if c is conn), None)

    def _onDisconnected(self, conn):
        self.disconnected.append(conn)


class Hooked(PeerHooks, Base):
    pass


class SyncObjStub:
    class conf:
        connectionRetryTime = 0.5

    encryptor = None

    def __init__(self, resolver, learner_name=None) -> None:
        self.resolver = resolver
        self.learner_name = learner_name


class PeerHookTests(SynchronousTestCase):
    """
    The transport asks the node's resolver before every dial and tells it
    about failures.
    """

    def setUp(self):
        self.names = Names(node_a=["10.0.0.1"])
        self.resolver = CachingResolver(self.names, Clock(), min_interval=0)
        self.node = TCPNode("node-a:10008")
        self.transport = Hooked(SyncObjStub(self.resolver), None, [self.node])

    def test_dial_resolved(self):
        """
        A dial goes to the resolver's address.
        """
        connection = self.transport._connections[self.node] = FakeConnection()
        self.assertTrue(self.transport._connectIfNecessarySingle(self.node))
        self.assertEqual(connection.dials, [("10.0.0.1", 10008)])

    def test_lost_connection_repoints(self):
        """
        A lost connection makes the next dial look the name up again.
        """
        connection = self.transport._connections[self.node] = FakeConnection()
        self.transport._connectIfNecessarySingle(self.node)
        self.names.names["node-a"] = ["10.0.0.2"]
        connection.state = CONNECTION_STATE.DISCONNECTED
        self.transport._onDisconnected(connection)
        self.assertEqual(self.transport.disconnected, [connection])
        self.transport._lastConnectAttempt.clear()
        self.transport._connectIfNecessarySingle(self.node)
        self.assertEqual(connection.dials[-1], ("10.0.0.2", 10008))

    def test_failed_dial_repoints(self):
        """
        A dial that fails at once marks the name stale too.
        """
        connection = self.transport._connections[self.node] = FakeConnection(works=False)
        self.assertFalse(self.transport._connectIfNecessarySingle(self.node))
        self.names.names["node-a"] = ["10.0.0.2"]
        self.transport._lastConnectAttempt.clear()
        self.transport._connectIfNecessarySingle(self.node)
        self.assertEqual(connection.dials[-1], ("10.0.0.2", 10008))

    def test_no_address_no_dial(self):
        """
        A name without an address yet is not dialled.
        """
        node = TCPNode("unknown:1")
        connection = self.transport._connections[node] = FakeConnection()
        self.assertFalse(self.transport._connectIfNecessarySingle(node))
        self.assertEqual(connection.dials, [])

    def test_learner_id(self):
        """
        A learner's read-only node is named after its address.
        """
        self.assertEqual(learner_id("h:1"), LEARNER_PREFIX + "h:1")
        self.assertEqual(Node(learner_id("h:1")), Node("learner h:1"))
