"""
Test helpers for L{freno.probe.wire}: server-side packet builders and a
scripted in-memory MySQL server on a C{StringTransport}. No tests here.
"""

from __future__ import annotations

import struct
from typing import Callable, Dict, List, Optional, Sequence, Union

from twisted.internet.error import ConnectionAborted, ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from freno.probe.wire.packets import (
    CLIENT_CONNECT_WITH_DB,
    CLIENT_DEPRECATE_EOF,
    CLIENT_LONG_FLAG,
    CLIENT_LONG_PASSWORD,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
    CLIENT_PROTOCOL_41,
    CLIENT_SECURE_CONNECTION,
    CLIENT_TRANSACTIONS,
    PacketDecoder,
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


class FakeServer:
    """
    A scripted MySQL server: it answers the handshake response with OK and
    each C{COM_QUERY} from C{answers} (payload lists; C{None}: no answer,
    the server is "frozen"), synchronously, as the client writes.

    @ivar queries: the statements received, in order.
    @ivar quits: how many C{COM_QUIT}s were received.
    """

    def __init__(self, answers: Optional[Dict[str, Answer]] = None, deprecate_eof: bool = True) -> None:
        self.answers: Dict[str, Answer] = dict(answers or {})
        self.deprecate_eof = deprecate_eof
        self.queries: List[str] = []
        self.quits = 0
        self.auth_reply: List[bytes] = [ok()]
        self.connections: List[MySQLClientProtocol] = []

    def connect(self, clock, user="u", password="p", database="information_schema"):
        """
        A ready L{MySQLClientProtocol} on a new in-memory connection.
        """
        protocol = MySQLClientProtocol(clock, user, password, database)
        server = self
        decoder = PacketDecoder()
        phase = ["auth"]

        class T(ServerTransport):
            def write(self, data):
                super().write(data)
                for seq, payload in decoder.feed(data):
                    server._handle(protocol, phase, seq, payload)

        transport = T()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        caps = SERVER_CAPS if self.deprecate_eof else SERVER_CAPS & ~CLIENT_DEPRECATE_EOF
        protocol.dataReceived(packets([handshake(caps=caps)]))
        self.connections.append(protocol)
        return protocol

    def connector(self, clock):
        """
        A L{freno.probe.wire.source.NativeMetricSource} connector.
        """
        self.connects = []

        def connect(cluster, host, timeout):
            self.connects.append((cluster.user, cluster.password, host, timeout))
            return self.connect(clock, cluster.user, cluster.password).when_ready()

        return connect

    def _handle(self, protocol, phase, seq, payload):
        if phase[0] == "auth":
            phase[0] = "command"
            if self.auth_reply:
                protocol.dataReceived(packets(self.auth_reply, seq + 1))
            return
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
        protocol.dataReceived(packets(answer, 1))

