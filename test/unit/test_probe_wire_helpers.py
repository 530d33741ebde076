"""
Test helpers for L{freno.probe.wire}: server-side packet builders and a
scripted in-memory MySQL server on a C{StringTransport}, which can also
check passwords (C{mysql_native_password}, C{caching_sha2_password} fast
and full authentication, RSA key exchange), ask for a plugin the client
does not speak, and speak real TLS in memory (C{TLSMemoryBIOProtocol} on
both ends, certificates from L{freno.sandbox.certs}). No tests here.
"""

from __future__ import annotations

import collections
import hashlib
import struct
from typing import Callable, Deque, Dict, List, Optional, Sequence, Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.ssl import CertificateOptions, PrivateCertificate
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure

from freno.config.tls import DISABLED, TLSMaterial
from freno.probe.wire.auth import caching_sha2_scramble, native_password_scramble
from freno.sandbox import certs

from freno.probe.wire.packets import (
    CLIENT_CONNECT_WITH_DB,
    CLIENT_DEPRECATE_EOF,
    CLIENT_LONG_FLAG,
    CLIENT_LONG_PASSWORD,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
    CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION,
    CLIENT_SSL,
    CLIENT_TRANSACTIONS,
    PacketDecoder,
    Reader,
    frame,
    lenenc_str,
)
from freno.probe.wire.protocol import MySQLClientProtocol

SCRAMBLE = b"abcdefghijklmnopqrst"

SERVER_CAPS = (
    CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_DEPRECATE_EOF
)

#: A real MariaDB 10.11 handshake, as read from the machine's server.
MARIADB_HANDSHAKE = (
    b"\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00T\x01\x00\x00Qx+hN+,<\x00\xfe\xf7-\x02\x00"
    b"\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00(P;vdq*{NS7Y\x00"
    b"mysql_native_password\x00"
)


def handshake(
    plugin: str = "mysql_native_password",
    caps: int = SERVER_CAPS,
    scramble: bytes = SCRAMBLE,
    version: bytes = b"10.11.6-MariaDB-fake",
) -> bytes:
    """
    An Initial Handshake v10 payload.
    """
    return (
        b"\x0a" + version + b"\0" + struct.pack("<I", 42) + scramble[:8] + b"\0"
        + struct.pack("<H", caps & 0xFFFF) + bytes([45]) + struct.pack("<H", 2)
        + struct.pack("<H", caps >> 16) + bytes([len(scramble) + 1]) + b"\0" * 10
        + scramble[8:] + b"\0" + plugin.encode() + b"\0"
    )


def ok(status: int = 2, header: int = 0) -> bytes:
    """
    An OK packet payload.
    """
    return bytes([header]) + b"\0\0" + struct.pack("<HH", status, 0)


def eof(status: int = 2) -> bytes:
    """
    An EOF packet payload.
    """
    return b"\xfe" + struct.pack("<HH", 0, status)


def err(code: int, message: str, state: str = "42000") -> bytes:
    """
    An ERR packet payload.
    """
    return b"\xff" + struct.pack("<H", code) + b"#" + state.encode() + message.encode()


def column(name: str) -> bytes:
    """
    A ColumnDefinition41 payload.
    """
    return (
        lenenc_str(b"def") + lenenc_str(b"") + lenenc_str(b"") + lenenc_str(b"")
        + lenenc_str(name.encode()) + lenenc_str(name.encode())
        + b"\x0c" + struct.pack("<HIBHB", 45, 20, 253, 0, 0) + b"\0\0"
    )


def row(values: Sequence[Optional[Union[bytes, str]]]) -> bytes:
    """
    A text row payload.
    """
    out = []
    for value in values:
        if value is None:
            out.append(b"\xfb")
        else:
            out.append(lenenc_str(value.encode() if isinstance(value, str) else value))
    return b"".join(out)


def resultset(names: Sequence[str], rows: Sequence[Sequence], deprecate_eof: bool = True) -> List[bytes]:
    """
    The payloads of a text result set.
    """
    out = [bytes([len(names)])] + [column(n) for n in names]
    if not deprecate_eof:
        out.append(eof())
    out += [row(r) for r in rows]
    out.append(ok(header=0xFE) if deprecate_eof else eof())
    return out


def packets(payloads: Sequence[bytes], seq: int = 0) -> bytes:
    """
    Frame C{payloads} with consecutive sequence ids from C{seq}.
    """
    return b"".join(frame(p, seq + i) for i, p in enumerate(payloads))


class ServerTransport(StringTransport):
    """
    A C{StringTransport} that tells its protocol the connection is lost
    when it is closed or aborted, as a real one would, and records which.
    """

    aborted = False

    def loseConnection(self):
        if not self.disconnecting:
            super().loseConnection()
            self.protocol.connectionLost(Failure(ConnectionDone("closed")))

    def abortConnection(self):
        if not self.disconnecting:
            self.aborted = True
            self.disconnecting = True
            self.protocol.connectionLost(Failure(ConnectionAborted("aborted")))


Answer = Union[List[bytes], Callable[[str], List[bytes]], None]

NATIVE = "mysql_native_password"
CACHING_SHA2 = "caching_sha2_password"


class PKI:
    """
    An in-memory CA, a server certificate for C{db1} and C{127.0.0.1}, a
    client certificate, and a second, unrelated CA: made once per test run
    (L{pki}).
    """

    def __init__(self) -> None:
        self.ca = certs.make_ca()
        self.server = certs.issue(self.ca, "db1", ["db1"], ["127.0.0.1"])
        self.client = certs.issue(self.ca, "freno", client=True)
        self.other_ca = certs.make_ca("some other CA")
        self.ca_pem = certs.certificate_pem(self.ca[0])
        self.other_ca_pem = certs.certificate_pem(self.other_ca[0])
        self.client_material = TLSMaterial(
            ca=self.ca_pem,
            cert=certs.certificate_pem(self.client[0]),
            key=certs.key_pem(self.client[1]),
        )

    def server_options(self, require_client_certificate: bool = False) -> CertificateOptions:
        """
        The fake server's TLS options (asking for a client certificate
        signed by the CA when C{require_client_certificate}).
        """
        private = PrivateCertificate.loadPEM(
            certs.certificate_pem(self.server[0]) + certs.key_pem(self.server[1])
        )
        kwargs = {}
        if require_client_certificate:
            from twisted.internet.ssl import Certificate

            kwargs = dict(verify=True, caCerts=[Certificate.loadPEM(self.ca_pem).original])
        return CertificateOptions(
            privateKey=private.privateKey.original, certificate=private.original, **kwargs
        )


_PKI: List[PKI] = []
_RSA: List[rsa.RSAPrivateKey] = []


def pki() -> PKI:
    """
    The shared L{PKI}.
    """
    if not _PKI:
        _PKI.append(PKI())
    return _PKI[0]


def rsa_key() -> rsa.RSAPrivateKey:
    """
    A 2048-bit RSA key for C{caching_sha2_password} full authentication,
    made once per test run.
    """
    if not _RSA:
        _RSA.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _RSA[0]


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    """
    C{key}'s public half as PEM.
    """
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class _Pipe(StringTransport):
    """
    One direction of an in-memory TLS connection: what is written is
    handed to C{deliver}; closing tells C{lost}.
    """

    def __init__(self, deliver, lost) -> None:
        super().__init__()
        self._deliver = deliver
        self._lost = lost

    def write(self, data):
        self._deliver(data)

    def loseConnection(self):
        if not self.disconnecting:
            self.disconnecting = True
            self._lost(Failure(ConnectionDone("closed")))

    def abortConnection(self):
        if not self.disconnecting:
            self.disconnecting = True
            self._lost(Failure(ConnectionAborted("aborted")))


class _ServerApp:
    """
    What the server's TLS layer delivers plaintext to.
    """

    def __init__(self, connection) -> None:
        self._connection = connection

    def makeConnection(self, transport):
        pass

    def dataReceived(self, data):
        self._connection.from_client(data)

    def connectionLost(self, reason):
        pass


class FakeConnection:
    """
    One client connection of L{FakeServer}: the client's transport, the
    server's packet decoder and authentication state, and (after
    C{startTLS}) the two in-memory TLS layers. Every delivery between the
    two sides goes through one queue, so the exchange runs to completion
    synchronously without deep re-entrance.

    @ivar wire: every byte the client sent, as it went over the "network"
        (ciphertext once TLS started).
    @ivar tls: whether TLS started.
    @ivar methods: how the server authenticated (C{"native"}, C{"fast"},
        C{"full-tls"}, C{"full-rsa"}, C{"empty"}), and C{"key-sent"} when
        it sent its public key.
    """

    def __init__(self, server: "FakeServer", protocol) -> None:
        self.server = server
        self.protocol = protocol
        self.decoder = PacketDecoder()
        self.phase = "response"
        self.nonce = server.scramble
        self.plugin = ""
        self.wire = bytearray()
        self.tls = False
        self.methods: List[str] = []
        self.handshake_response = b""
        self._queue: Deque[Callable[[], None]] = collections.deque()
        self._pumping = False
        self._server_tls: Optional[TLSMemoryBIOProtocol] = None
        self._client_tls: Optional[TLSMemoryBIOProtocol] = None
        connection = self

        class Transport(ServerTransport):
            def write(self, data):
                if connection._client_tls is not None:
                    connection._client_tls.write(data)
                    return
                super().write(data)
                connection.wire += data
                connection._later(lambda: connection.from_client(data))

            def startTLS(self, options):
                connection.start_tls(options)

            def abortConnection(self):
                if connection._client_tls is not None and not self.disconnecting:
                    self.aborted = True
                    self.disconnecting = True
                    connection._client_tls.abortConnection()
                    return
                super().abortConnection()

            def loseConnection(self):
                if connection._client_tls is not None and not self.disconnecting:
                    self.disconnecting = True
                    connection._client_tls.loseConnection()
                    return
                super().loseConnection()

        self.transport = Transport()
        self.transport.protocol = protocol

    # -- delivery ---------------------------------------------------------

    def _later(self, call: Callable[[], None]) -> None:
        self._queue.append(call)
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._queue:
                self._queue.popleft()()
        finally:
            self._pumping = False

    def to_client(self, payloads: Sequence[bytes], seq: int) -> None:
        """
        Send C{payloads} to the client from sequence id C{seq}.
        """
        data = packets(payloads, seq)
        if self._server_tls is not None:
            self._server_tls.write(data)
        else:
            self._later(lambda: self.protocol.dataReceived(data))

    def start_tls(self, options) -> None:
        """
        The client called C{startTLS(options)}: both sides switch to TLS.
        """
        if self.server.tls is None:
            raise AssertionError("the client started TLS with a server that has none")
        self.tls = True
        clock = Clock()
        server_tls = TLSMemoryBIOProtocol(
            TLSMemoryBIOFactory(self.server.tls, False, None, clock), _ServerApp(self), False
        )
        client_tls = TLSMemoryBIOProtocol(
            TLSMemoryBIOFactory(options, True, None, clock), self.protocol, False
        )

        def to_server(data):
            self.wire.extend(data)
            self._later(lambda: server_tls.dataReceived(data))

        def to_client(data):
            self._later(lambda: client_tls.dataReceived(data))

        def client_lost(reason):
            self._later(lambda: client_tls.connectionLost(reason))

        self._server_tls, self._client_tls = server_tls, client_tls
        server_tls.makeConnection(_Pipe(to_client, lambda reason: None))
        self._later(lambda: client_tls.makeConnection(_Pipe(to_server, client_lost)))

    # -- the server -------------------------------------------------------

    def from_client(self, data: bytes) -> None:
        """
        Plaintext from the client.
        """
        for seq, payload in self.decoder.feed(data):
            self.server.received(self, seq, payload)


class FakeServer:
    """
    A scripted MySQL server: it answers the handshake response with OK and
    each C{COM_QUERY} from C{answers} (payload lists; C{None}: no answer,
    the server is "frozen"), synchronously, as the client writes.

    By default it accepts any credentials (or answers with L{auth_reply}).
    With C{password} set it checks them as a server would:

        - C{plugin} is the handshake's (default) plugin, C{user_plugin} the
          user's (default: the same); when they differ the server switches
          to the user's with an AuthSwitchRequest and a new nonce;
        - C{mysql_native_password}: the scramble is checked;
        - C{caching_sha2_password}: with C{cached} the scramble is checked
          (fast auth, C{0x01 0x03} then OK); without, the server asks for
          full authentication (C{0x01 0x04}): over TLS it takes the clear
          password; without TLS it sends its RSA public key when asked
          (C{0x02}) and decrypts what comes (RSA-OAEP, the password XOR the
          nonce);
        - any other C{user_plugin} (C{client_ed25519}) is only ever
          switched to;
        - a wrong password is ERR 1045.

    With C{tls} (server C{CertificateOptions}) it offers C{CLIENT_SSL} and
    speaks TLS in memory when the client sends an SSLRequest.

    @ivar queries: the statements received, in order.
    @ivar quits: how many C{COM_QUIT}s were received.
    @ivar connections: the client protocols connected.
    @ivar fakes: their L{FakeConnection}s.
    """

    def __init__(
        self,
        answers: Optional[Dict[str, Answer]] = None,
        deprecate_eof: bool = True,
        password: Optional[str] = None,
        plugin: str = NATIVE,
        user_plugin: Optional[str] = None,
        cached: bool = True,
        tls: Optional[CertificateOptions] = None,
        key: Optional[rsa.RSAPrivateKey] = None,
        scramble: bytes = SCRAMBLE,
    ) -> None:
        self.answers: Dict[str, Answer] = dict(answers or {})
        self.deprecate_eof = deprecate_eof
        self.password = password
        self.plugin = plugin
        self.user_plugin = user_plugin or plugin
        self.cached = cached
        self.tls = tls
        self.key = key
        self.scramble = scramble
        self.queries: List[str] = []
        self.quits = 0
        self.auth_reply: List[bytes] = [ok()]
        self.connections: List[MySQLClientProtocol] = []
        self.fakes: List[FakeConnection] = []
        self.connects: List[tuple] = []

    @property
    def capabilities(self) -> int:
        """
        What the handshake offers.
        """
        caps = SERVER_CAPS if self.deprecate_eof else SERVER_CAPS & ~CLIENT_DEPRECATE_EOF
        if self.tls is not None:
            caps |= CLIENT_SSL
        return caps

    def attach(self, protocol) -> FakeConnection:
        """
        Connect C{protocol} to this server and send the handshake.
        """
        connection = FakeConnection(self, protocol)
        protocol.makeConnection(connection.transport)
        self.connections.append(protocol)
        self.fakes.append(connection)
        connection._later(
            lambda: protocol.dataReceived(
                packets([handshake(plugin=self.plugin, caps=self.capabilities, scramble=self.scramble)])
            )
        )
        return connection

    def connect(
        self, clock, user="u", password="p", database="information_schema",
        tls_mode=DISABLED, tls_options=None, server_public_key=None,
    ):
        """
        A L{MySQLClientProtocol} on a new in-memory connection (ready,
        unless authentication failed or waits).
        """
        protocol = MySQLClientProtocol(
            clock, user, password, database,
            tls_mode=tls_mode, tls_options=tls_options, server_public_key=server_public_key,
        )
        self.attach(protocol)
        return protocol

    def connector(self, clock):
        """
        A L{freno.probe.wire.source.NativeMetricSource} connector (no TLS).
        """
        self.connects = []

        def connect(cluster, host, timeout):
            self.connects.append((cluster.user, cluster.password, host, timeout))
            return self.connect(clock, cluster.user, cluster.password).when_ready()

        return connect

    def endpoint(self, host=None):
        """
        A client endpoint whose connections reach this server.
        """
        server = self

        class Endpoint:
            def connect(self, factory):
                protocol = factory.buildProtocol(None)
                server.connects.append(host)
                server.attach(protocol)
                return succeed(protocol)

        return Endpoint()

    # -- the server side ----------------------------------------------------

    def received(self, conn: FakeConnection, seq: int, payload: bytes) -> None:
        """
        One packet from the client.
        """
        reply = lambda payloads: conn.to_client(payloads, seq + 1)  # noqa: E731
        phase = conn.phase
        if phase == "command":
            self._command(conn, payload)
            return
        if phase == "response":
            caps = struct.unpack_from("<I", payload)[0]
            if len(payload) == 32 and caps & CLIENT_SSL:
                conn.phase = "response"  # the real one follows over TLS
                return
            conn.handshake_response = payload
            if self.password is None:
                conn.phase = "command"
                if self.auth_reply:
                    reply(self.auth_reply)
                return
            conn.plugin, response = _parse_response(payload)
            if conn.plugin != self.user_plugin:
                conn.nonce = bytes(reversed(self.scramble))
                conn.plugin = self.user_plugin
                conn.phase = "switched"
                reply([b"\xfe" + self.user_plugin.encode() + b"\0" + conn.nonce + b"\0"])
                return
            self._check(conn, response, reply)
            return
        if phase == "switched":
            self._check(conn, payload, reply)
            return
        if phase == "full":
            if conn.tls:
                self._verdict(conn, payload == self.password.encode() + b"\0", "full-tls", reply)
                return
            if payload == b"\x02":
                conn.methods.append("key-sent")
                conn.phase = "rsa"
                reply([b"\x01" + public_pem(self.key)])
                return
            self._decrypt(conn, payload, reply)
            return
        if phase == "rsa":
            self._decrypt(conn, payload, reply)
            return
        raise AssertionError(f"packet in phase {phase}")

    def _check(self, conn, response, reply) -> None:
        if conn.plugin == NATIVE:
            expected = native_password_scramble(self.password, conn.nonce)
            self._verdict(conn, response == expected, "native", reply)
        elif conn.plugin == CACHING_SHA2:
            if not self.password:
                self._verdict(conn, response == b"", "empty", reply)
            elif self.cached:
                good = response == caching_sha2_scramble(self.password, conn.nonce)
                if good:
                    conn.methods.append("fast")
                    conn.phase = "command"
                    reply([b"\x01\x03", ok()])
                else:
                    self._verdict(conn, False, "fast", reply)
            else:
                conn.phase = "full"
                reply([b"\x01\x04"])
        else:
            raise AssertionError(f"the client answered {conn.plugin!r}, which it cannot speak")

    def _decrypt(self, conn, payload, reply) -> None:
        try:
            plain = self.key.decrypt(
                payload,
                padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
            )
        except ValueError:
            plain = b""
        salt = conn.nonce[:20]
        plain = bytes(b ^ salt[i % len(salt)] for i, b in enumerate(plain))
        self._verdict(conn, plain == self.password.encode() + b"\0", "full-rsa", reply)

    def _verdict(self, conn, good: bool, method: str, reply) -> None:
        if good:
            conn.methods.append(method)
            conn.phase = "command"
            reply([ok()])
        else:
            conn.phase = "denied"
            reply([err(1045, "Access denied for user 'u'@'localhost' (using password: YES)", "28000")])

    def _command(self, conn, payload) -> None:
        if payload[:1] == b"\x01":
            self.quits += 1
            return
        sql = payload[1:].decode()
        self.queries.append(sql)
        answer = self.answers.get(sql)
        if callable(answer):
            answer = answer(sql)
        if answer is None:
            return
        conn.to_client(answer, 1)


def _parse_response(payload: bytes):
    """
    The plugin and auth response of a HandshakeResponse41.
    """
    r = Reader(payload)
    caps = r.int4()
    r.bytes(4 + 1 + 23)
    r.nul_str()
    if caps & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        response = r.lenenc_str() or b""
    else:
        response = r.bytes(r.int1())
    if caps & CLIENT_CONNECT_WITH_DB:
        r.nul_str()
    plugin = r.nul_str().decode() if caps & CLIENT_PLUGIN_AUTH else NATIVE
    return plugin, response


def sha256(data: bytes) -> bytes:
    """
    SHA-256 of C{data} (for tests that compute scrambles by hand).
    """
    return hashlib.sha256(data).digest()
