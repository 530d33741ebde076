"""
Tests for L{freno.probe.wire.protocol}: the client protocol against canned
server packets on a C{StringTransport}, and L{connect} with fake endpoints.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError, ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from freno.probe.wire.auth import UnsupportedAuthError, native_password_scramble
from freno.probe.wire.packets import (
    CLIENT_DEPRECATE_EOF,
    OK,
    PacketDecoder,
    ResultSet,
    ServerError,
    WireProtocolError,
)
from freno.probe.wire.protocol import (
    ClientStateError,
    ConnectionLostError,
    ConnectTimeoutError,
    DialError,
    MySQLClientProtocol,
    QueryTimeoutError,
    connect,
)
from test.unit.test_probe_wire_helpers import (
    SCRAMBLE,
    SERVER_CAPS,
    ServerTransport,
    err,
    handshake,
    ok,
    packets,
    resultset,
)

WIRE_ERRORS = (WireProtocolError, ServerError)


def sent(transport):
    """
    The payloads the client wrote (and clear the transport).
    """
    data = transport.value()
    transport.clear()
    return PacketDecoder().feed(data)


class ProtocolTests(SynchronousTestCase):
    """
    L{MySQLClientProtocol} driven packet by packet.
    """

    def setUp(self):
        self.clock = Clock()
        self.protocol = MySQLClientProtocol(self.clock, "freno", "pw", "information_schema")
        self.transport = ServerTransport()
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self.ready = self.protocol.when_ready()

    def authenticate(self, caps=SERVER_CAPS):
        self.protocol.dataReceived(packets([handshake(caps=caps)]))
        ((seq, response),) = sent(self.transport)
        self.assertEqual(seq, 1)
        self.protocol.dataReceived(packets([ok()], 2))
        self.assertIs(self.successResultOf(self.ready), self.protocol)

    def test_handshake_and_ready(self):
        """
        The client answers the handshake with a HandshakeResponse41 (seq 1)
        carrying the native-password scramble, and is ready after the OK.
        """
        self.assertNoResult(self.ready)
        self.assertFalse(self.protocol.ready)
        self.protocol.dataReceived(packets([handshake()]))
        ((seq, response),) = sent(self.transport)
        self.assertEqual(seq, 1)
        self.assertIn(b"freno\0\x14" + native_password_scramble("pw", SCRAMBLE), response)
        self.assertNoResult(self.ready)
        self.protocol.dataReceived(packets([ok()], 2))
        self.assertIs(self.successResultOf(self.ready), self.protocol)
        self.assertTrue(self.protocol.ready)
        self.assertEqual(self.protocol.handshake.server_version, "10.11.6-MariaDB-fake")
        self.assertIs(self.successResultOf(self.protocol.when_ready()), self.protocol)

    def test_empty_password(self):
        """
        An empty password sends an empty auth response.
        """
        protocol = MySQLClientProtocol(self.clock, "root")
        transport = ServerTransport()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(packets([handshake()]))
        ((_, response),) = sent(transport)
        self.assertTrue(response.endswith(b"root\0\x00mysql_native_password\0"))

    def test_byte_by_byte(self):
        """
        Packets split into single bytes are reassembled.
        """
        for byte in packets([handshake()]):
            self.protocol.dataReceived(bytes([byte]))
        sent(self.transport)
        for byte in packets([ok()], 2):
            self.protocol.dataReceived(bytes([byte]))
        self.successResultOf(self.ready)

    def test_auth_switch(self):
        """
        An AuthSwitchRequest to mysql_native_password is answered with the
        new nonce (next sequence id); the OK after it makes the connection
        ready.
        """
        self.protocol.dataReceived(packets([handshake(plugin="client_ed25519")]))
        sent(self.transport)
        nonce = b"ZYXWVUTSRQPONMLKJIHG"
        self.protocol.dataReceived(packets([b"\xfemysql_native_password\0" + nonce + b"\0"], 2))
        ((seq, response),) = sent(self.transport)
        self.assertEqual((seq, response), (3, native_password_scramble("pw", nonce)))
        self.protocol.dataReceived(packets([ok()], 4))
        self.successResultOf(self.ready)

    def test_auth_switch_unsupported(self):
        """
        A switch to an unsupported plugin fails clearly and drops the
        connection.
        """
        self.protocol.dataReceived(packets([handshake()]))
        self.protocol.dataReceived(packets([b"\xfeclient_ed25519\0" + SCRAMBLE + b"\0"], 2))
        f = self.failureResultOf(self.ready, UnsupportedAuthError)
        self.assertIn("client_ed25519", str(f.value))
        self.assertTrue(self.transport.aborted)

    def test_access_denied(self):
        """
        An ERR after the response is a L{ServerError}; the connection is
        dropped.
        """
        self.protocol.dataReceived(packets([handshake()]))
        self.protocol.dataReceived(
            packets([err(1045, "Access denied for user 'freno'@'localhost' (using password: YES)", "28000")], 2)
        )
        f = self.failureResultOf(self.ready, ServerError)
        self.assertEqual(f.value.code, 1045)
        self.assertFalse(self.protocol.usable)
        self.assertTrue(self.transport.aborted)

    def test_err_instead_of_handshake(self):
        """
        A server that refuses at once (too many connections) fails
        C{when_ready} with its error.
        """
        self.protocol.dataReceived(packets([err(1040, "Too many connections", "08004")]))
        self.assertEqual(self.failureResultOf(self.ready, ServerError).value.code, 1040)

    def test_garbage_handshake_drops(self):
        """
        Garbage instead of a handshake drops the connection.
        """
        self.protocol.dataReceived(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.failureResultOf(self.ready, WireProtocolError)
        self.assertTrue(self.transport.aborted)

    def test_query_resultset(self):
        """
        A query is C{COM_QUERY} with sequence id 0; the result set comes
        back, with NULLs, in both EOF modes.
        """
        for caps in (SERVER_CAPS, SERVER_CAPS & ~CLIENT_DEPRECATE_EOF):
            self.setUp()
            self.authenticate(caps)
            deprecate = bool(caps & CLIENT_DEPRECATE_EOF)
            d = self.protocol.query("select a, b from t")
            self.assertEqual(sent(self.transport), [(0, b"\x03select a, b from t")])
            self.assertNoResult(d)
            self.assertFalse(self.protocol.ready)
            self.protocol.dataReceived(packets(resultset(["a", "b"], [["0.25", None]], deprecate), 1))
            self.assertEqual(self.successResultOf(d), ResultSet(("a", "b"), [(b"0.25", None)]))
            self.assertTrue(self.protocol.ready)

    def test_query_ok_and_error_keep_connection(self):
        """
        An OK answer is returned; an ERR fails the query only, and the next
        query works.
        """
        self.authenticate()
        d = self.protocol.query("set names utf8mb4")
        self.protocol.dataReceived(packets([ok()], 1))
        self.assertIsInstance(self.successResultOf(d), OK)
        d = self.protocol.query("select * from nope")
        self.protocol.dataReceived(packets([err(1146, "Table 'nope' doesn't exist", "42S02")], 1))
        self.assertEqual(str(self.failureResultOf(d, ServerError).value), "Error 1146: Table 'nope' doesn't exist")
        self.assertTrue(self.protocol.ready)
        d = self.protocol.query("select 1")
        self.protocol.dataReceived(packets(resultset(["1"], [["1"]]), 1))
        self.assertEqual(self.successResultOf(d).rows, [(b"1",)])
        self.assertFalse(self.transport.disconnecting)

    def test_one_query_at_a_time(self):
        """
        A second query while one runs, or a query before authentication,
        fails with L{ClientStateError} and sends nothing.
        """
        self.failureResultOf(self.protocol.query("select 1"), ClientStateError)
        self.authenticate()
        self.protocol.query("select 1")
        sent(self.transport)
        self.failureResultOf(self.protocol.query("select 2"), ClientStateError)
        self.assertEqual(self.transport.value(), b"")

    def test_query_timeout_drops(self):
        """
        A query unanswered within its timeout fails with
        L{QueryTimeoutError} by the clock and the connection is aborted; no
        timer is left after an answered query.
        """
        self.authenticate()
        d = self.protocol.query("select 1", timeout=1.0)
        self.protocol.dataReceived(packets(resultset(["1"], [["1"]]), 1))
        self.successResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        d = self.protocol.query("select sleep(5)", timeout=1.0)
        self.clock.advance(0.999)
        self.assertNoResult(d)
        self.clock.advance(0.001)
        f = self.failureResultOf(d, QueryTimeoutError)
        self.assertEqual(str(f.value), "query timed out after 1s")
        self.assertTrue(self.transport.aborted)
        self.assertFalse(self.protocol.usable)
        self.failureResultOf(self.protocol.query("select 1"), ClientStateError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancel_drops(self):
        """
        Cancelling a query drops the connection.
        """
        self.authenticate()
        d = self.protocol.query("select 1", timeout=1.0)
        d.cancel()
        self.failureResultOf(d, QueryTimeoutError)
        self.assertTrue(self.transport.aborted)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_wrong_sequence_drops(self):
        """
        A packet with the wrong sequence id drops the connection.
        """
        self.authenticate()
        d = self.protocol.query("select 1")
        self.protocol.dataReceived(packets(resultset(["1"], [["1"]]), 5))
        self.assertIn("out of order", str(self.failureResultOf(d, WireProtocolError).value))
        self.assertTrue(self.transport.aborted)

    def test_unsolicited_drops(self):
        """
        A packet while idle (MariaDB's "connection killed") drops the
        connection, keeping the server's error.
        """
        self.authenticate()
        self.protocol.dataReceived(packets([err(1927, "Connection was killed", "70100")]))
        self.assertFalse(self.protocol.usable)
        self.assertEqual(self.protocol.error.code, 1927)
        self.assertTrue(self.transport.aborted)

    def test_connection_lost_during_query(self):
        """
        The connection closing under a query fails it with
        L{ConnectionLostError}.
        """
        self.authenticate()
        d = self.protocol.query("select 1", timeout=1.0)
        self.protocol.connectionLost(Failure(ConnectionDone("Connection was closed cleanly.")))
        self.failureResultOf(d, ConnectionLostError)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertFalse(self.protocol.usable)

    def test_connection_lost_before_ready(self):
        """
        The connection closing during the handshake fails C{when_ready}.
        """
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(self.ready, ConnectionLostError)
        self.failureResultOf(self.protocol.when_ready(), ConnectionLostError)

    def test_close(self):
        """
        C{close} sends C{COM_QUIT} and fires when the connection is lost.
        """
        self.authenticate()
        d = self.protocol.close()
        self.assertEqual(sent(self.transport), [(0, b"\x01")])
        self.successResultOf(d)
        self.assertTrue(self.transport.disconnecting)
        self.successResultOf(self.protocol.close())

    def test_close_fails_running_query(self):
        """
        Closing under a running query fails it.
        """
        self.authenticate()
        d = self.protocol.query("select 1")
        self.successResultOf(self.protocol.close())
        self.failureResultOf(d, ConnectionLostError)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200), st.sampled_from(["handshake", "auth", "idle", "query"]))
    def test_garbage_never_raises(self, data, phase):
        """
        Arbitrary bytes in any phase never raise out of C{dataReceived}:
        whatever waits fails with a wire error and the connection is
        dropped, or the bytes wait for more.
        """
        self.setUp()
        d = self.ready
        if phase != "handshake":
            self.protocol.dataReceived(packets([handshake()]))
            sent(self.transport)
        if phase in ("idle", "query"):
            self.protocol.dataReceived(packets([ok()], 2))
            self.successResultOf(self.ready)
            d = None
        if phase == "query":
            d = self.protocol.query("select 1", timeout=1.0)
        self.protocol.dataReceived(data)
        if self.protocol.usable:
            self.assertFalse(self.transport.disconnecting)
        else:
            self.assertTrue(self.transport.aborted)
        if d is not None and d.called:
            result = []
            d.addBoth(result.append)
            outcome = result[0]
            if isinstance(outcome, Failure):
                self.assertTrue(outcome.check(*WIRE_ERRORS), outcome)
                if outcome.check(WireProtocolError) or phase != "query":
                    self.assertFalse(self.protocol.usable)


class FakeEndpoint:
    """
    A client endpoint whose connection attempt the test controls.
    """

    def __init__(self):
        self.attempt = Deferred(lambda d: setattr(self, "cancelled", True))
        self.cancelled = False

    def connect(self, factory):
        self.factory = factory
        return self.attempt

    def succeed(self):
        protocol = self.factory.buildProtocol(None)
        self.transport = ServerTransport()
        self.transport.protocol = protocol
        protocol.makeConnection(self.transport)
        self.attempt.callback(protocol)
        return protocol


class ConnectTests(SynchronousTestCase):
    """
    L{connect}: one deadline for TCP, handshake and authentication.
    """

    def setUp(self):
        self.clock = Clock()
        self.endpoint = FakeEndpoint()
        self.d = connect(self.clock, "db1", 3306, "u", "p", "information_schema", 1.0, endpoint=self.endpoint)

    def test_ready(self):
        """
        A connection that authenticates fires with the ready protocol and
        leaves no timer.
        """
        protocol = self.endpoint.succeed()
        protocol.dataReceived(packets([handshake()]))
        protocol.dataReceived(packets([ok()], 2))
        self.assertIs(self.successResultOf(self.d), protocol)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refused(self):
        """
        A refused TCP connection is a L{DialError} with a readable reason.
        """
        self.endpoint.attempt.errback(ConnectionRefusedError("Connection refused"))
        f = self.failureResultOf(self.d, DialError)
        self.assertIn("Connection refused", f.value.reason)
        self.assertFalse(f.value.reason.endswith("."))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_dial_timeout(self):
        """
        TCP not connected within the timeout: the attempt is cancelled and
        the error is a L{DialError} "i/o timeout".
        """
        self.clock.advance(1.0)
        self.assertTrue(self.endpoint.cancelled)
        self.assertEqual(self.failureResultOf(self.d, DialError).value.reason, "i/o timeout")

    def test_handshake_timeout(self):
        """
        TCP connected but no handshake within the timeout (a frozen
        server): L{ConnectTimeoutError}, and the connection is aborted.
        """
        self.endpoint.succeed()
        self.clock.advance(0.5)
        self.assertNoResult(self.d)
        self.clock.advance(0.5)
        f = self.failureResultOf(self.d, ConnectTimeoutError)
        self.assertEqual(str(f.value), "handshake timed out after 1s")
        self.assertTrue(self.endpoint.transport.aborted)

    def test_access_denied(self):
        """
        Authentication errors pass through.
        """
        protocol = self.endpoint.succeed()
        protocol.dataReceived(packets([handshake()]))
        protocol.dataReceived(packets([err(1045, "Access denied")], 2))
        self.assertEqual(self.failureResultOf(self.d, ServerError).value.code, 1045)
        self.assertEqual(self.clock.getDelayedCalls(), [])
