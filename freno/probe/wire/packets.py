# -*- test-case-name: test.unit.test_probe_wire_packets -*-
"""
The MySQL client/server wire format, as far as a probe needs it: pure
functions and small parsers over bytes, no I/O.

    - L{PacketDecoder}: framing (3-byte length, 1-byte sequence id), with
      payloads of 16 MiB - 1 or more reassembled, up to a bound.
    - L{Reader}: fixed-size and length-encoded integers and strings.
    - L{parse_handshake}: the server's Initial Handshake (protocol v10).
    - L{handshake_response}: the client's HandshakeResponse41, and
      L{ssl_request}: its first 32 bytes, sent alone before TLS starts.
    - L{com_query}, L{COM_QUIT}: commands.
    - L{parse_ok}, L{parse_err}, L{is_eof}: OK, ERR and EOF packets.
    - L{ResultParser}: the response to C{COM_QUERY} (an OK, an ERR, or a
      text result set: column count, column definitions, an EOF unless
      C{CLIENT_DEPRECATE_EOF}, rows, and a closing EOF or OK).

Every malformed input raises L{WireProtocolError} and nothing else; an ERR
packet from the server is a L{ServerError}. References: the MySQL
client/server protocol documentation and MariaDB's, whose packets are the
same for everything here.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional, Sequence, Tuple, Union

import attr

# Capability flags (the subset that matters here).
CLIENT_LONG_PASSWORD = 0x00000001
CLIENT_LONG_FLAG = 0x00000004
CLIENT_CONNECT_WITH_DB = 0x00000008
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_SSL = 0x00000800
CLIENT_TRANSACTIONS = 0x00002000
CLIENT_SECURE_CONNECTION = 0x00008000
CLIENT_MULTI_STATEMENTS = 0x00010000
CLIENT_MULTI_RESULTS = 0x00020000
CLIENT_PLUGIN_AUTH = 0x00080000
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x00200000
CLIENT_DEPRECATE_EOF = 0x01000000

#: What this client asks for, intersected with what the server offers.
#: C{CLIENT_SSL} is added when the connection switches to TLS.
#: Deliberately absent: LOCAL_FILES, MULTI_STATEMENTS/RESULTS,
#: CONNECT_ATTRS, and every MariaDB extension.
CLIENT_CAPABILITIES = (
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

#: Capabilities the server must have: a 4.1+ server with secure auth.
REQUIRED_CAPABILITIES = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION

SERVER_MORE_RESULTS_EXISTS = 0x0008

#: utf8mb4_general_ci, the handshake's character set (PyMySQL's default).
UTF8MB4_GENERAL_CI = 45

COM_QUIT_BYTE = 0x01
COM_QUERY_BYTE = 0x03

MAX_PAYLOAD = 0xFFFFFF
#: The largest reassembled payload accepted (and the max packet size the
#: client announces): a probe's result is a few kilobytes at most.
DEFAULT_MAX_PACKET = 16 * 1024 * 1024
#: The bound on a packet before authentication completes: a handshake is
#: about 100 bytes, so a peer that is not a MySQL server (an HTTP port, say)
#: is found out at once instead of being waited for.
CONNECTION_PHASE_MAX_PACKET = 64 * 1024

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class WireProtocolError(Exception):
    """
    The peer sent something that is not valid MySQL protocol here, or the
    client cannot follow it (an unsupported authentication method, say).
    The connection cannot be used any more.
    """


@attr.s(auto_attribs=True, frozen=True, str=False)
class ServerError(Exception):
    """
    An ERR packet: the server refused a command (bad query, access denied).

    C{args} is C{(code, message)} as with DB-API drivers, so
    L{freno.probe.query.error_code} reads it.

    @ivar code: the MySQL error number.
    @ivar sqlstate: the five-character SQL state, or C{""}.
    @ivar message: the server's text.
    """

    code: int
    sqlstate: str
    message: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.code, self.message)

    def __str__(self) -> str:
        return f"Error {self.code}: {self.message}"


class Reader:
    """
    Reads a payload front to back; reading past the end raises
    L{WireProtocolError}.

    @ivar pos: the offset of the next unread byte.
    """

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def remaining(self) -> int:
        """
        How many bytes are left.
        """
        return len(self.data) - self.pos

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise WireProtocolError(
                f"packet too short: wanted {n} bytes at offset {self.pos} of {len(self.data)}"
            )
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def int1(self) -> int:
        """
        A 1-byte integer.
        """
        if self.pos >= len(self.data):
            raise WireProtocolError(f"packet too short at offset {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def int2(self) -> int:
        """
        A little-endian 2-byte integer.
        """
        return _U16.unpack(self._take(2))[0]

    def int3(self) -> int:
        """
        A little-endian 3-byte integer.
        """
        return int.from_bytes(self._take(3), "little")

    def int4(self) -> int:
        """
        A little-endian 4-byte integer.
        """
        return _U32.unpack(self._take(4))[0]

    def int8(self) -> int:
        """
        A little-endian 8-byte integer.
        """
        return _U64.unpack(self._take(8))[0]

    def bytes(self, n: int) -> bytes:
        """
        C{n} raw bytes.
        """
        return self._take(n)

    def rest(self) -> bytes:
        """
        Everything left.
        """
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk

    def nul_str(self) -> bytes:
        """
        A NUL-terminated string (without the NUL).
        """
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise WireProtocolError(f"unterminated string at offset {self.pos}")
        chunk = self.data[self.pos:end]
        self.pos = end + 1
        return chunk

    def lenenc_int(self) -> Optional[int]:
        """
        A length-encoded integer; C{None} for the NULL marker C{0xfb}.

        @raise WireProtocolError: the invalid first byte C{0xff}, or too
            short.
        """
        first = self.int1()
        if first < 0xFB:
            return first
        if first == 0xFB:
            return None
        if first == 0xFC:
            return self.int2()
        if first == 0xFD:
            return self.int3()
        if first == 0xFE:
            return self.int8()
        raise WireProtocolError("invalid length-encoded integer (0xff)")

    def lenenc_str(self) -> Optional[bytes]:
        """
        A length-encoded string; C{None} for NULL.
        """
        n = self.lenenc_int()
        if n is None:
            return None
        return self._take(n)


def lenenc_int(value: int) -> bytes:
    """
    Encode a length-encoded integer.

    @raise ValueError: negative or above 2**64 - 1.
    """
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"cannot length-encode {value}")
    if value < 0xFB:
        return bytes((value,))
    if value < 1 << 16:
        return b"\xfc" + _U16.pack(value)
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + _U64.pack(value)


def lenenc_str(value: bytes) -> bytes:
    """
    Encode a length-encoded string.
    """
    return lenenc_int(len(value)) + value


def frame(payload: bytes, seq: int) -> bytes:
    """
    Frame C{payload} as one or more packets starting at sequence id C{seq}
    (payloads of 16 MiB - 1 or more are split, ending with a shorter one).
    """
    out = []
    offset = 0
    while True:
        chunk = payload[offset:offset + MAX_PAYLOAD]
        out.append(len(chunk).to_bytes(3, "little") + bytes((seq & 0xFF,)) + chunk)
        seq += 1
        offset += MAX_PAYLOAD
        if len(chunk) < MAX_PAYLOAD:
            return b"".join(out)


class PacketDecoder:
    """
    Splits a byte stream into packets.

    Feed it what arrives; L{feed} returns the complete payloads, each with
    the sequence id of its first packet. A payload split over several
    packets (16 MiB - 1 each) is joined, and their sequence ids must follow
    each other.

    @param max_payload: a payload longer than this is a
        L{WireProtocolError}, so a peer cannot make the client buffer
        without bound.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PACKET) -> None:
        self._buffer = b""
        #: The bound on one payload; may be changed between feeds.
        self.max_payload = max_payload
        self._parts: List[bytes] = []
        self._parts_len = 0
        self._first_seq = 0
        self._next_seq = 0

    def feed(self, data: bytes) -> List[Tuple[int, bytes]]:
        """
        Add C{data}; return the payloads now complete as C{(seq, payload)}.

        @raise WireProtocolError: an oversized payload or out-of-order
            continuation.
        """
        buffer = self._buffer + data if self._buffer else data
        packets = []
        pos = 0
        size = len(buffer)
        while size - pos >= 4:
            length = buffer[pos] | (buffer[pos + 1] << 8) | (buffer[pos + 2] << 16)
            seq = buffer[pos + 3]
            if self._parts_len + length > self.max_payload:
                raise WireProtocolError(
                    f"packet of {self._parts_len + length} bytes exceeds the "
                    f"{self.max_payload}-byte limit"
                )
            end = pos + 4 + length
            if end > size:
                break
            payload = buffer[pos + 4:end]
            pos = end
            if self._parts:
                if seq != self._next_seq:
                    raise WireProtocolError(
                        f"packet sequence {seq} out of order (expected {self._next_seq})"
                    )
            else:
                self._first_seq = seq
            if length == MAX_PAYLOAD or self._parts:
                self._parts.append(payload)
                self._parts_len += length
                self._next_seq = (seq + 1) & 0xFF
                if length == MAX_PAYLOAD:
                    continue
                payload = b"".join(self._parts)
                self._parts = []
                self._parts_len = 0
            packets.append((self._first_seq, payload))
        self._buffer = buffer[pos:]
        return packets


@attr.s(auto_attribs=True, frozen=True)
class Handshake:
    """
    The server's Initial Handshake packet (protocol version 10).

    @ivar server_version: e.g. C{"10.11.6-MariaDB-0+deb12u1"}.
    @ivar connection_id: the server's thread id.
    @ivar scramble: the auth plugin data (nonce), normally 20 bytes.
    @ivar capabilities: the server's capability flags.
    @ivar charset: the server's default collation id.
    @ivar status: the server status flags.
    @ivar auth_plugin: the default auth plugin's name (C{""} if none).
    """

    server_version: str
    connection_id: int
    scramble: bytes
    capabilities: int
    charset: int
    status: int
    auth_plugin: str


def parse_handshake(payload: bytes) -> Handshake:
    """
    Parse an Initial Handshake (v10).

    @raise ServerError: the server sent an ERR packet instead (too many
        connections, host blocked).
    @raise WireProtocolError: anything else that is not a v10 handshake,
        or a server without C{CLIENT_PROTOCOL_41}/C{SECURE_CONNECTION}.
    """
    if payload[:1] == b"\xff":
        raise parse_err(payload)
    r = Reader(payload)
    version = r.int1()
    if version != 10:
        raise WireProtocolError(f"unsupported handshake protocol version {version}")
    server_version = r.nul_str().decode("utf-8", "replace")
    connection_id = r.int4()
    scramble = r.bytes(8)
    r.int1()  # filler
    capabilities = r.int2()
    charset = status = 0
    plugin = ""
    if r.remaining():
        charset = r.int1()
        status = r.int2()
        capabilities |= r.int2() << 16
        data_len = r.int1()
        r.bytes(10)  # reserved (MariaDB: extended capabilities in the last 4)
        if capabilities & CLIENT_SECURE_CONNECTION:
            # Part 2 is max(13, data_len - 8) bytes, the last one a NUL.
            scramble += r.bytes(max(12, data_len - 9))
            if r.remaining():
                r.int1()
        if capabilities & CLIENT_PLUGIN_AUTH and r.remaining():
            rest = r.rest()
            end = rest.find(b"\0")
            plugin = (rest if end < 0 else rest[:end]).decode("ascii", "replace")
    missing = REQUIRED_CAPABILITIES & ~capabilities
    if missing:
        raise WireProtocolError(
            f"server {server_version!r} lacks required capabilities 0x{missing:x} "
            "(a MySQL 4.1+ server is needed)"
        )
    return Handshake(server_version, connection_id, scramble, capabilities, charset, status, plugin)


def handshake_response(
    capabilities: int,
    user: str,
    auth_response: bytes,
    database: str,
    auth_plugin: str,
    charset: int = UTF8MB4_GENERAL_CI,
    max_packet: int = DEFAULT_MAX_PACKET,
) -> bytes:
    """
    The HandshakeResponse41 payload.

    @param capabilities: the client's flags (already intersected with the
        server's).
    """
    parts = [
        _U32.pack(capabilities),
        _U32.pack(max_packet),
        bytes((charset & 0xFF,)),
        b"\0" * 23,
        user.encode("utf-8") + b"\0",
    ]
    if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
        parts.append(lenenc_str(auth_response))
    elif capabilities & CLIENT_SECURE_CONNECTION:
        if len(auth_response) > 255:
            raise ValueError("auth response longer than 255 bytes")
        parts.append(bytes((len(auth_response),)) + auth_response)
    else:
        parts.append(auth_response + b"\0")
    if capabilities & CLIENT_CONNECT_WITH_DB:
        parts.append(database.encode("utf-8") + b"\0")
    if capabilities & CLIENT_PLUGIN_AUTH:
        parts.append(auth_plugin.encode("ascii") + b"\0")
    return b"".join(parts)


def ssl_request(
    capabilities: int,
    charset: int = UTF8MB4_GENERAL_CI,
    max_packet: int = DEFAULT_MAX_PACKET,
) -> bytes:
    """
    The SSLRequest payload: the fixed 32-byte start of a HandshakeResponse41
    (C{capabilities} must include C{CLIENT_SSL}). The client sends it with
    sequence id 1, starts TLS, and sends the whole HandshakeResponse41
    (sequence id 2) over TLS.
    """
    return _U32.pack(capabilities) + _U32.pack(max_packet) + bytes((charset & 0xFF,)) + b"\0" * 23


def com_query(sql: str) -> bytes:
    """
    The C{COM_QUERY} payload for C{sql}.
    """
    return bytes((COM_QUERY_BYTE,)) + sql.encode("utf-8")


#: The C{COM_QUIT} payload.
COM_QUIT = bytes((COM_QUIT_BYTE,))


@attr.s(auto_attribs=True, frozen=True)
class OK:
    """
    An OK packet (or an EOF/OK closing a result set).

    @ivar affected_rows: rows changed.
    @ivar last_insert_id: the last insert id.
    @ivar status: server status flags.
    @ivar warnings: the warning count.
    """

    affected_rows: int = 0
    last_insert_id: int = 0
    status: int = 0
    warnings: int = 0


def parse_ok(payload: bytes) -> OK:
    """
    Parse an OK packet (header C{0x00}, or C{0xfe} when it closes a result
    set under C{CLIENT_DEPRECATE_EOF}); the trailing info is ignored.
    """
    r = Reader(payload)
    header = r.int1()
    if header not in (0x00, 0xFE):
        raise WireProtocolError(f"not an OK packet (header 0x{header:02x})")
    affected = r.lenenc_int() or 0
    last_id = r.lenenc_int() or 0
    status = r.int2() if r.remaining() >= 2 else 0
    warnings = r.int2() if r.remaining() >= 2 else 0
    return OK(affected, last_id, status, warnings)


def parse_err(payload: bytes) -> ServerError:
    """
    Parse an ERR packet into a L{ServerError} (returned, not raised).
    """
    r = Reader(payload)
    if r.int1() != 0xFF:
        raise WireProtocolError("not an ERR packet")
    code = r.int2()
    sqlstate = ""
    if r.remaining() >= 6 and payload[r.pos] == 0x23:  # '#'
        r.int1()
        sqlstate = r.bytes(5).decode("ascii", "replace")
    message = r.rest().decode("utf-8", "replace")
    return ServerError(code, sqlstate, message)


def is_eof(payload: bytes) -> bool:
    """
    Whether C{payload} is an EOF packet (C{0xfe}, shorter than 9 bytes).
    """
    return len(payload) < 9 and payload[:1] == b"\xfe"


def parse_eof_status(payload: bytes) -> int:
    """
    The server status flags of an EOF packet (0 for a pre-4.1 EOF).
    """
    if len(payload) >= 5:
        return _U16.unpack_from(payload, 3)[0]
    return 0


@attr.s(auto_attribs=True, frozen=True)
class ResultSet:
    """
    A text result set.

    @ivar names: the column names (labels), decoded as UTF-8.
    @ivar rows: each row a tuple of C{bytes} or C{None} (NULL), as the text
        protocol sends them; L{freno.probe.query} converts numbers.
    """

    names: Tuple[str, ...]
    rows: List[Tuple[Optional[bytes], ...]]


def parse_column_name(payload: bytes) -> str:
    """
    The name (label) of a ColumnDefinition41 packet.
    """
    r = Reader(payload)
    for _ in range(4):  # catalog, schema, table, org_table
        if r.lenenc_str() is None:
            raise WireProtocolError("NULL in a column definition")
    name = r.lenenc_str()
    if name is None:
        raise WireProtocolError("NULL column name")
    if r.lenenc_str() is None:  # org_name
        raise WireProtocolError("NULL in a column definition")
    fixed = r.lenenc_int()
    if fixed is None or r.remaining() < min(fixed, 12):
        raise WireProtocolError("column definition too short")
    return name.decode("utf-8", "replace")


#: Column definition payload to its name, for L{ResultParser}: a probe
#: asks the same query every time, so the same few definitions come back.
_COLUMN_NAMES: Dict[bytes, str] = {}
#: Definitions longer than this are parsed every time, never kept.
_COLUMN_CACHE_PAYLOAD = 512
#: The cache is emptied when it holds this many names.
_COLUMN_CACHE_SIZE = 1024


def _column_name(payload: bytes) -> str:
    """
    L{parse_column_name}, remembered for short payloads.
    """
    name = _COLUMN_NAMES.get(payload)
    if name is None:
        name = parse_column_name(payload)
        if len(payload) <= _COLUMN_CACHE_PAYLOAD:
            if len(_COLUMN_NAMES) >= _COLUMN_CACHE_SIZE:
                _COLUMN_NAMES.clear()
            _COLUMN_NAMES[payload] = name
    return name


def _ok_status(payload: bytes) -> int:
    """
    The status flags of an OK packet (what L{parse_ok} reads, without
    building an L{OK}).
    """
    r = Reader(payload)
    r.int1()
    r.lenenc_int()
    r.lenenc_int()
    return r.int2() if r.remaining() >= 2 else 0


def parse_row(payload: bytes, columns: int) -> Tuple[Optional[bytes], ...]:
    """
    A text-protocol row of C{columns} values.
    """
    r = Reader(payload)
    values = tuple(r.lenenc_str() for _ in range(columns))
    if r.remaining():
        raise WireProtocolError(f"{r.remaining()} stray bytes after a row")
    return values


Outcome = Union[OK, ResultSet]


class ResultParser:
    """
    Follows the server's response to one C{COM_QUERY}, packet by packet.

    Call L{feed} with each payload, in order; it returns C{None} while more
    packets are due and the outcome (an L{OK} or a L{ResultSet}) with the
    last one. Feeding after the outcome is an error.

    @param deprecate_eof: whether C{CLIENT_DEPRECATE_EOF} was agreed (no
        EOF after the column definitions; an OK with header C{0xfe} ends
        the rows).
    """

    _FIRST, _COLUMNS, _COLUMNS_EOF, _ROWS, _DONE = range(5)

    def __init__(self, deprecate_eof: bool) -> None:
        self._deprecate_eof = deprecate_eof
        self._state = self._FIRST
        self._columns = 0
        self._names: List[str] = []
        self._rows: List[Tuple[Optional[bytes], ...]] = []

    def feed(self, payload: bytes) -> Optional[Outcome]:
        """
        Take the next payload.

        @raise ServerError: an ERR packet (the command failed).
        @raise WireProtocolError: anything unexpected.
        """
        if not payload:
            raise WireProtocolError("empty packet")
        header = payload[0]
        state = self._state
        if state == self._ROWS:
            if header == 0xFE and (
                len(payload) < 9 if not self._deprecate_eof else len(payload) < MAX_PAYLOAD
            ):
                status = (
                    _ok_status(payload) if self._deprecate_eof else parse_eof_status(payload)
                )
                return self._finish(status, ResultSet(tuple(self._names), self._rows))
            if header == 0xFF:
                self._state = self._DONE
                raise parse_err(payload)
            self._rows.append(parse_row(payload, self._columns))
            return None
        if state == self._COLUMNS:
            self._names.append(_column_name(payload))
            if len(self._names) == self._columns:
                self._state = self._ROWS if self._deprecate_eof else self._COLUMNS_EOF
            return None
        if state == self._COLUMNS_EOF:
            if not is_eof(payload):
                raise WireProtocolError("expected EOF after the column definitions")
            self._state = self._ROWS
            return None
        if state == self._FIRST:
            if header == 0x00:
                ok = parse_ok(payload)
                return self._finish(ok.status, ok)
            if header == 0xFF:
                self._state = self._DONE
                raise parse_err(payload)
            if header == 0xFB:
                raise WireProtocolError("server asked for LOCAL INFILE, which is not enabled")
            r = Reader(payload)
            count = r.lenenc_int()
            if not count or r.remaining():
                raise WireProtocolError("invalid column count packet")
            if count > 4096:
                raise WireProtocolError(f"implausible column count {count}")
            self._columns = count
            self._state = self._COLUMNS
            return None
        raise WireProtocolError("packet after the end of the result")

    def _finish(self, status: int, outcome: Outcome) -> Outcome:
        self._state = self._DONE
        if status & SERVER_MORE_RESULTS_EXISTS:
            raise WireProtocolError("multiple result sets are not supported")
        return outcome


def parse_query_response(payloads: Sequence[bytes], deprecate_eof: bool) -> Outcome:
    """
    Parse a complete response (convenience for tests and tools).

    @raise WireProtocolError: incomplete, malformed, or trailing packets.
    @raise ServerError: the server's ERR.
    """
    parser = ResultParser(deprecate_eof)
    outcome = None
    for i, payload in enumerate(payloads):
        if outcome is not None:
            raise WireProtocolError("packets after the end of the result")
        outcome = parser.feed(payload)
    if outcome is None:
        raise WireProtocolError("incomplete result")
    return outcome
