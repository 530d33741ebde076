# -*- test-case-name: test.unit.test_probe_wire_protocol,test.unit.test_probe_wire_tls,test.unit.test_probe_wire_auth -*-
"""
L{MySQLClientProtocol}: a MySQL client connection as a Twisted protocol,
and L{connect}, which opens one through an endpoint on the injected
reactor.

The connection may switch to TLS first (see below), authenticates
(L{freno.probe.wire.auth}), then runs one
C{COM_QUERY} at a time (L{MySQLClientProtocol.query}); autocommit is left
as the server's default (on), so no transaction is ever opened by a probe.
Each query may have a timeout by the reactor's clock: when it expires the
query fails with L{QueryTimeoutError} and the connection is dropped
(C{abortConnection}), because the server's answer may still arrive and
would be taken for the next query's. Anything the server sends that is
not valid protocol at that point (garbage, a wrong sequence id, an
unsolicited packet) also drops the connection and fails whatever waits
with L{WireProtocolError}. An ERR in answer to a query fails only that
query; the connection stays usable.

B{TLS.} MySQL negotiates TLS in-band: after the server's handshake the
client sends an SSLRequest (the first 32 bytes of its handshake response,
with C{CLIENT_SSL}), starts TLS on the same connection
(C{ITLSTransport.startTLS}), and sends its whole handshake response over
TLS once the TLS handshake (and the certificate check of the options it
was given) has completed. C{tls_mode} says when
(L{freno.config.tls}): C{"disabled"} never; C{"preferred"} when the
server offers C{CLIENT_SSL}; C{"required"} and the verifying modes always,
and a server that does not offer it fails the connection with
L{TLSUnavailableError} before anything else is sent. What is verified is
the business of C{tls_options} (see L{freno.probe.wire.tls}). A TLS
handshake that fails (an unverifiable certificate, a name mismatch, a
refused client certificate) fails the connection with L{TLSError}.

Usage::

    d = connect(reactor, "db1", 3306, "freno", "secret",
                database="information_schema", timeout=1.0)
    d.addCallback(lambda conn: conn.query("select 1", timeout=1.0))
    # -> a ResultSet(names=("1",), rows=[(b"1",)])
"""

from __future__ import annotations

from typing import List, Optional

from OpenSSL.SSL import Error as _SSLError
from service_identity import VerificationError as _VerificationError
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.interfaces import IHandshakeListener, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.tcp import Connection as _TCPConnection
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from freno.config.tls import DISABLED, TLS_REQUIRED_MODES
from freno.probe.wire.auth import Authenticator
from freno.probe.wire.packets import (
    CLIENT_DEPRECATE_EOF,
    CLIENT_SSL,
    COM_QUIT,
    CONNECTION_PHASE_MAX_PACKET,
    DEFAULT_MAX_PACKET,
    Handshake,
    PacketDecoder,
    ResultParser,
    ServerError,
    WireProtocolError,
    com_query,
    frame,
    parse_err,
    parse_handshake,
    ssl_request,
)


class DialError(Exception):
    """
    The TCP connection could not be made (refused, unreachable, unknown
    host, or no answer within the timeout).

    @ivar reason: a short readable reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectTimeoutError(Exception):
    """
    TCP connected but the handshake or authentication did not finish in
    time (a frozen server: the kernel accepts, nobody answers).
    """


class QueryTimeoutError(Exception):
    """
    A query got no complete answer in time; the connection was dropped.
    """


class ConnectionLostError(Exception):
    """
    The connection closed while something waited on it.
    """


class TLSUnavailableError(WireProtocolError):
    """
    TLS is required (C{tls_mode} C{"required"}, C{"verify-ca"} or
    C{"verify-identity"}) and the server does not offer it.
    """


class TLSError(WireProtocolError):
    """
    The TLS handshake failed, or TLS failed during authentication: the
    server's certificate could not be verified or does not name the host,
    the server refused the client certificate, or the peers share no
    protocol version or cipher.
    """


def describe_tls_failure(reason: Failure) -> str:
    """
    A readable reason for a TLS failure: OpenSSL's reason strings, or
    service_identity's name mismatch.
    """
    error = reason.value
    args = getattr(error, "args", ())
    if args and isinstance(args[0], list) and all(isinstance(a, tuple) for a in args[0]):
        # OpenSSL.SSL.Error([(library, function, reason), ...])
        reasons = [str(a[-1]) for a in args[0] if a and a[-1]]
        if reasons:
            return "; ".join(reasons)
    errors = getattr(error, "errors", None)
    if errors:
        # service_identity.VerificationError(errors=[DNSMismatch(...), ...])
        names = []
        for mismatch in errors:
            identity = getattr(mismatch, "mismatched_id", None)
            value = getattr(identity, "hostname", None) or getattr(identity, "ip", None)
            if isinstance(value, bytes):
                value = value.decode("ascii", "replace")
            names.append(str(value) if value is not None else type(mismatch).__name__)
        return "the certificate does not name " + ", ".join(names)
    return reason.getErrorMessage() or type(error).__name__


def _is_tls_failure(reason: Optional[Failure]) -> bool:
    return reason is not None and bool(reason.check(_SSLError, _VerificationError))


class ClientStateError(Exception):
    """
    A query was asked for while the connection was not ready for one
    (not yet authenticated, busy with another query, or closed).
    """


_HANDSHAKE, _TLS, _AUTH, _READY, _QUERY, _CLOSED = (
    "handshake", "tls", "auth", "ready", "query", "closed"
)


@implementer(IHandshakeListener)
class MySQLClientProtocol(Protocol):
    """
    One MySQL client connection.

    @param clock: schedules query timeouts.
    @param user: the user name.
    @param password: the password (C{""} for none).
    @param database: the default database (C{""} for none).
    @param deprecate_eof: offer C{CLIENT_DEPRECATE_EOF} (used only if the
        server offers it too).
    @param max_packet: the largest payload accepted.
    @param tls_mode: one of L{freno.config.tls.SSL_MODES}: whether to
        switch to TLS (see the module docstring).
    @param tls_options: what C{transport.startTLS} is given: an
        C{IOpenSSLClientConnectionCreator} (or context factory) that does
        the certificate checks C{tls_mode} wants (L{freno.probe.wire.tls});
        needed unless C{tls_mode} is C{"disabled"}.
    @param server_public_key: the server's RSA public key (PEM) for
        C{caching_sha2_password} full authentication without TLS; C{None}:
        ask the server.

    @ivar handshake: the server's L{Handshake}, once received.
    @ivar tls: whether the connection switched to TLS.
    @ivar error: why the connection was dropped, if it was dropped by this
        side.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        user: str,
        password: str = "",
        database: str = "",
        deprecate_eof: bool = True,
        max_packet: int = DEFAULT_MAX_PACKET,
        tls_mode: str = DISABLED,
        tls_options=None,
        server_public_key: Optional[bytes] = None,
    ) -> None:
        self._clock = clock
        self._tls_mode = tls_mode
        self._tls_options = tls_options
        self._tls_done = False
        self.tls = False
        self._decoder = PacketDecoder(min(max_packet, CONNECTION_PHASE_MAX_PACKET))
        self._max_packet = max_packet
        self._auth = Authenticator(user, password, database, deprecate_eof, server_public_key)
        self._state = _HANDSHAKE
        self._ready_waiters: List[Deferred] = []
        self._ready_result: Optional[object] = None
        self._seq = 0
        self._query: Optional[Deferred] = None
        self._parser: Optional[ResultParser] = None
        self._timer = None
        self._lost: List[Deferred] = []
        self._deprecate_eof = False
        self._connection_lost = False
        self.handshake: Optional[Handshake] = None
        self.error: Optional[BaseException] = None

    # -- public API -------------------------------------------------------

    def when_ready(self) -> Deferred:
        """
        A Deferred firing with this protocol once authenticated, or failing
        with L{ServerError} (access denied), L{WireProtocolError},
        L{ConnectionLostError} or the error the connection was dropped for.
        """
        if self._ready_result is None:
            d = Deferred()
            self._ready_waiters.append(d)
            return d
        if isinstance(self._ready_result, Failure):
            return fail(self._ready_result)
        return succeed(self)

    @property
    def ready(self) -> bool:
        """
        Whether a query can be sent now.
        """
        return self._state == _READY

    @property
    def usable(self) -> bool:
        """
        Whether the connection is still open (and not being dropped).
        """
        return self._state != _CLOSED

    def query(self, sql: str, timeout: Optional[float] = None) -> Deferred:
        """
        Run C{sql}.

        @param timeout: seconds by the clock after which the query fails
            with L{QueryTimeoutError} and the connection is dropped; C{None}
            for no timeout.
        @return: a Deferred firing with a L{freno.probe.wire.packets.OK} or
            L{freno.probe.wire.packets.ResultSet}, or failing with
            L{ServerError} (the connection stays usable), or with
            L{QueryTimeoutError}, L{WireProtocolError} or
            L{ConnectionLostError} (it does not). Cancelling it drops the
            connection.
        """
        if self._state != _READY:
            return fail(ClientStateError(f"connection not ready for a query ({self._state})"))
        self._state = _QUERY
        self._seq = 1
        self._parser = ResultParser(self._deprecate_eof)
        d = self._query = Deferred(self._cancel_query)
        if timeout is not None:
            self._timer = self._clock.callLater(max(0.0, timeout), self._timed_out, timeout)
        self._write(frame(com_query(sql), 0))
        return d

    def close(self) -> Deferred:
        """
        Say C{COM_QUIT} (when idle) and close.

        @return: a Deferred firing when the connection is lost.
        """
        if self.transport is None or self._connection_lost:
            return succeed(None)
        d = Deferred()
        self._lost.append(d)
        if self._state != _CLOSED:
            if self._state == _READY:
                self.transport.write(frame(COM_QUIT, 0))
            self._state = _CLOSED
            self._fail_waiters(ConnectionLostError("connection closed by the client"))
            self.transport.loseConnection()
        return d

    # -- Protocol ---------------------------------------------------------

    def connectionMade(self) -> None:
        """
        Ask for TCP_NODELAY: probes are small request/response exchanges.
        """
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            try:
                set_no_delay(True)
            except Exception:
                pass

    def dataReceived(self, data: bytes) -> None:
        """
        Handle complete packets; drop the connection on a protocol error.
        """
        if self._state == _CLOSED:
            return
        try:
            for seq, payload in self._decoder.feed(data):
                if self._state == _CLOSED:
                    return
                self._packet(seq, payload)
        except (WireProtocolError, ServerError) as e:
            self._drop(e)

    def connectionLost(self, reason: Failure = None) -> None:
        """
        Fail whatever waits with L{ConnectionLostError}.
        """
        self._connection_lost = True
        text = reason.getErrorMessage() if reason is not None else "connection lost"
        error: BaseException = ConnectionLostError(text)
        if self._state == _TLS or (self.tls and self._state == _AUTH and _is_tls_failure(reason)):
            error = TLSError(f"TLS handshake failed: {describe_tls_failure(reason)}")
        elif self.tls and _is_tls_failure(reason):
            error = TLSError(f"TLS failed: {describe_tls_failure(reason)}")
        self._state = _CLOSED
        self._fail_waiters(error)
        lost, self._lost = self._lost, []
        for d in lost:
            d.callback(None)

    # -- internals --------------------------------------------------------

    def _packet(self, seq: int, payload: bytes) -> None:
        if seq != self._seq:
            raise WireProtocolError(f"packet sequence {seq} out of order (expected {self._seq})")
        self._seq = (seq + 1) & 0xFF
        state = self._state
        if state == _QUERY:
            try:
                outcome = self._parser.feed(payload)
            except ServerError as e:
                self._query_done(Failure(e))
                return
            if outcome is not None:
                self._query_done(outcome)
            return
        if state == _HANDSHAKE:
            self.handshake = parse_handshake(payload)
            if self._wants_tls(self.handshake):
                self._start_tls()
                return
            response = self._auth.start(self.handshake)
            self._deprecate_eof = bool(self._auth.capabilities & CLIENT_DEPRECATE_EOF)
            self._state = _AUTH
            self._send(response)
            return
        if state == _TLS:
            raise WireProtocolError("unexpected packet before the TLS handshake completed")
        if state == _AUTH:
            reply = self._auth.feed(payload)
            if reply is not None:
                self._send(reply)
            elif self._auth.authenticated:
                self._state = _READY
                self._seq = 0
                self._decoder.max_payload = self._max_packet
                self._ready_result = self
                waiters, self._ready_waiters = self._ready_waiters, []
                for d in waiters:
                    d.callback(self)
            return
        # Idle: the server speaks unasked (MariaDB's "connection killed",
        # MySQL's inactivity ERR) only before it closes.
        if payload[:1] == b"\xff":
            raise parse_err(payload)
        raise WireProtocolError("unexpected packet while idle")

    def _wants_tls(self, handshake: Handshake) -> bool:
        """
        Whether to switch to TLS with this server.

        @raise TLSUnavailableError: TLS is required and not offered.
        """
        if self._tls_mode == DISABLED:
            return False
        if handshake.capabilities & CLIENT_SSL:
            return True
        if self._tls_mode in TLS_REQUIRED_MODES:
            raise TLSUnavailableError(
                f"the server does not offer TLS, which SSLMode {self._tls_mode!r} requires"
            )
        return False

    def _start_tls(self) -> None:
        """
        Send the SSLRequest and start TLS; the handshake response follows
        in L{handshakeCompleted}.
        """
        start_tls = getattr(self.transport, "startTLS", None)
        if start_tls is None or self._tls_options is None:
            raise TLSError("TLS cannot be started on this connection")
        caps = self._auth.capabilities_for(self.handshake, tls=True)
        self._state = _TLS
        self._send(ssl_request(caps))
        try:
            start_tls(self._tls_options)
        except Exception as e:
            raise TLSError(f"cannot start TLS: {e}") from None
        self.tls = True

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake completed (and the certificate checks passed):
        send the handshake response, now encrypted.
        """
        if self._state != _TLS or self._tls_done:
            return
        self._tls_done = True
        response = self._auth.start(self.handshake, tls=True)
        self._deprecate_eof = bool(self._auth.capabilities & CLIENT_DEPRECATE_EOF)
        self._state = _AUTH
        self._send(response)

    def _send(self, payload: bytes) -> None:
        seq = self._seq
        self._seq = (seq + 1) & 0xFF
        self._write(frame(payload, seq))

    def _write(self, data: bytes) -> None:
        """
        Send C{data} at once when the transport is Twisted's plain TCP
        connection with nothing buffered, else through C{transport.write}.

        C{transport.write} only buffers: the bytes leave on the next
        reactor iteration, as one more writable event (and two
        C{epoll_ctl} calls) per query. At thousands of probes a second that
        was a whole extra batch of events after every probe slice; sending
        right away costs just the C{send}. Whatever C{send} did not take
        (a full socket buffer) or could not send (a dead connection) goes
        through C{transport.write}, which finishes it or notices the loss
        as before.
        """
        transport = self.transport
        if (
            isinstance(transport, _TCPConnection)
            and not transport.TLS
            and transport.connected
            and not transport.disconnecting
            and not transport._writeDisconnected
            and not transport.dataBuffer
            and not transport._tempDataBuffer
        ):
            sent = transport.writeSomeData(data)
            if isinstance(sent, int) and sent >= 0:
                if sent == len(data):
                    return
                data = data[sent:]
        transport.write(data)

    def _query_done(self, outcome) -> None:
        d, self._query = self._query, None
        self._parser = None
        self._stop_timer()
        self._state = _READY
        self._seq = 0
        if isinstance(outcome, Failure):
            d.errback(outcome)
        else:
            d.callback(outcome)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _timed_out(self, timeout: float) -> None:
        self._timer = None
        self._drop(QueryTimeoutError(f"query timed out after {timeout:g}s"))

    def _cancel_query(self, d: Deferred) -> None:
        self._drop(QueryTimeoutError("query cancelled"))

    def _fail_waiters(self, error: BaseException) -> None:
        self._stop_timer()
        if self._ready_result is None:
            self._ready_result = Failure(error)
        waiters, self._ready_waiters = self._ready_waiters, []
        for d in waiters:
            d.errback(error)
        query, self._query = self._query, None
        self._parser = None
        if query is not None:
            query.errback(error)

    def _drop(self, error: BaseException) -> None:
        """
        Drop the connection because of C{error}, failing whatever waits.
        """
        if self._state == _CLOSED:
            return
        self.error = error
        self._state = _CLOSED
        self._log.debug("dropping MySQL connection: {error}", error=str(error))
        self._fail_waiters(error)
        if self.transport is not None:
            self.transport.abortConnection()

    def abort(self, error: BaseException) -> None:
        """
        Drop the connection at once, failing whatever waits with C{error}.
        """
        self._drop(error)


class _ClientFactory(Factory):
    def __init__(self, make) -> None:
        self._make = make

    def buildProtocol(self, addr):
        return self._make()


def connect(
    reactor,
    host: str,
    port: int,
    user: str,
    password: str = "",
    database: str = "",
    timeout: float = 1.0,
    deprecate_eof: bool = True,
    endpoint=None,
    tls_mode: str = DISABLED,
    tls_options=None,
    server_public_key: Optional[bytes] = None,
) -> Deferred:
    """
    Open and authenticate a connection.

    @param reactor: provides C{callLater} and TCP (via C{HostnameEndpoint}).
    @param timeout: seconds for everything: TCP connect, handshake and
        authentication.
    @param endpoint: an C{IStreamClientEndpoint} to use instead of
        C{HostnameEndpoint(reactor, host, port)} (tests).
    @param tls_mode: see L{MySQLClientProtocol}.
    @param tls_options: see L{MySQLClientProtocol}.
    @param server_public_key: see L{MySQLClientProtocol}.
    @return: a Deferred firing with a ready L{MySQLClientProtocol}, or
        failing with L{DialError} (TCP failed, including no answer within
        C{timeout}), L{ConnectTimeoutError} (connected, then no handshake
        within C{timeout}), L{ServerError} (e.g. access denied),
        L{WireProtocolError} (L{TLSError}, L{TLSUnavailableError},
        L{freno.probe.wire.auth.UnsupportedAuthError}) or
        L{ConnectionLostError}.
    """
    if endpoint is None:
        endpoint = HostnameEndpoint(reactor, host, port, timeout=max(timeout, 0.001))
    result = Deferred()
    protocols: List[MySQLClientProtocol] = []
    expired: List[bool] = []

    def make():
        protocol = MySQLClientProtocol(
            reactor, user, password, database, deprecate_eof,
            tls_mode=tls_mode, tls_options=tls_options, server_public_key=server_public_key,
        )
        protocols.append(protocol)
        return protocol

    def expire():
        if result.called:
            return
        expired.append(True)
        if protocols and protocols[0].transport is not None:
            protocols[0].abort(ConnectTimeoutError(f"handshake timed out after {timeout:g}s"))
        else:
            dialing.cancel()

    timer = reactor.callLater(max(0.0, timeout), expire)

    def finish(outcome):
        if timer.active():
            timer.cancel()
        if not result.called:
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)

    def connected(protocol):
        protocol.when_ready().addBoth(finish)

    def dial_failed(failure):
        if expired or failure.check(ConnectingCancelledError):
            finish(Failure(DialError("i/o timeout")))
        else:
            finish(Failure(DialError(failure.getErrorMessage().rstrip("."))))

    dialing = endpoint.connect(_ClientFactory(make))
    dialing.addCallbacks(connected, dial_failed)
    return result
