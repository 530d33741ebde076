"""
Tests for L{freno.probe.wire.packets} and L{freno.probe.wire.auth}: the
codec, without I/O.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from pymysql import _auth as pymysql_auth
from twisted.trial.unittest import SynchronousTestCase

from freno.probe.query import error_code
from freno.probe.wire.auth import (
    Authenticator,
    UnsupportedAuthError,
    auth_response,
    caching_sha2_scramble,
    native_password_scramble,
    parse_auth_switch,
)
from freno.probe.wire.packets import (
    CLIENT_CONNECT_WITH_DB,
    CLIENT_DEPRECATE_EOF,
    CLIENT_PLUGIN_AUTH,
    CLIENT_PROTOCOL_41,
    OK,
    PacketDecoder,
    Reader,
    ResultParser,
    ResultSet,
    ServerError,
    WireProtocolError,
    com_query,
    frame,
    is_eof,
    lenenc_int,
    lenenc_str,
    parse_column_name,
    parse_err,
    parse_handshake,
    parse_ok,
    parse_query_response,
    parse_row,
)
from test.unit.test_probe_wire_helpers import (
    MARIADB_HANDSHAKE,
    SCRAMBLE,
    SERVER_CAPS,
    column,
    eof,
    err,
    handshake,
    ok,
    resultset,
    row,
)

WIRE_ERRORS = (WireProtocolError, ServerError)


class LengthEncodingTests(SynchronousTestCase):
    """
    Length-encoded integers and strings.
    """

    @given(st.integers(min_value=0, max_value=2**64 - 1))
    def test_int_roundtrip(self, value):
        """
        Every integer in range encodes and decodes to itself, using the
        smallest form.
        """
        encoded = lenenc_int(value)
        r = Reader(encoded)
        self.assertEqual(r.lenenc_int(), value)
        self.assertEqual(r.remaining(), 0)
        expected = 1 if value < 251 else 3 if value < 2**16 else 4 if value < 2**24 else 9
        self.assertEqual(len(encoded), expected)

    @given(st.binary(max_size=70000))
    def test_str_roundtrip(self, value):
        """
        Strings round-trip.
        """
        self.assertEqual(Reader(lenenc_str(value)).lenenc_str(), value)

    def test_null_and_invalid(self):
        """
        C{0xfb} is NULL; C{0xff} and truncated forms are protocol errors.
        """
        self.assertIsNone(Reader(b"\xfb").lenenc_int())
        self.assertIsNone(Reader(b"\xfb").lenenc_str())
        self.assertRaises(WireProtocolError, Reader(b"\xff").lenenc_int)
        self.assertRaises(WireProtocolError, Reader(b"\xfc\x01").lenenc_int)
        self.assertRaises(WireProtocolError, Reader(b"\x05abc").lenenc_str)
        self.assertRaises(ValueError, lenenc_int, -1)

    def test_fixed_and_nul(self):
        """
        Fixed-width little-endian integers and NUL-terminated strings.
        """
        r = Reader(b"\x01\x02\x00\x03\x00\x00\x04\x00\x00\x00ab\x00c")
        self.assertEqual((r.int1(), r.int2(), r.int3(), r.int4()), (1, 2, 3, 4))
        self.assertEqual(r.nul_str(), b"ab")
        self.assertRaises(WireProtocolError, r.nul_str)
        self.assertEqual(r.rest(), b"c")
        self.assertRaises(WireProtocolError, r.int1)


class FramingTests(SynchronousTestCase):
    """
    L{frame} and L{PacketDecoder}.
    """

    @given(
        st.lists(st.binary(max_size=300), min_size=1, max_size=8),
        st.lists(st.integers(min_value=0, max_value=4000), max_size=6),
    )
    def test_roundtrip_any_split(self, payloads, cuts):
        """
        Framed payloads come back whole and in order, however the stream
        is cut.
        """
        stream = b"".join(frame(p, i) for i, p in enumerate(payloads))
        decoder = PacketDecoder()
        got = []
        start = 0
        for cut in sorted(c % (len(stream) + 1) for c in cuts) + [len(stream)]:
            got += decoder.feed(stream[start:cut])
            start = cut
        self.assertEqual(got, [(i & 0xFF, p) for i, p in enumerate(payloads)])

    def test_large_payload_split_and_joined(self):
        """
        A payload of 16 MiB - 1 or more is sent as several packets and
        joined again, carrying the first packet's sequence id.
        """
        payload = b"x" * (0xFFFFFF + 10)
        stream = frame(payload, 3)
        self.assertEqual(stream[3], 3)
        self.assertEqual(stream[0xFFFFFF + 4 + 3], 4)
        decoder = PacketDecoder(max_payload=0xFFFFFF + 100)
        self.assertEqual(decoder.feed(stream), [(3, payload)])
        exact = frame(b"y" * 0xFFFFFF, 0)
        self.assertEqual(len(exact), 0xFFFFFF + 8)  # an empty packet ends it
        self.assertEqual(
            PacketDecoder(max_payload=0xFFFFFF).feed(exact), [(0, b"y" * 0xFFFFFF)]
        )

    def test_oversized(self):
        """
        A packet longer than the bound is refused before it is buffered.
        """
        decoder = PacketDecoder(max_payload=100)
        e = self.assertRaises(WireProtocolError, decoder.feed, b"\x65\x00\x00\x00")
        self.assertIn("exceeds the 100-byte limit", str(e))

    def test_continuation_out_of_order(self):
        """
        The packets of a split payload must have consecutive sequence ids.
        """
        stream = b"\xff\xff\xff\x00" + b"a" * 0xFFFFFF + b"\x01\x00\x00\x05b"
        self.assertRaises(
            WireProtocolError, PacketDecoder(max_payload=2**25).feed, stream
        )

    def test_com_query(self):
        """
        C{COM_QUERY} is 0x03 and the UTF-8 statement.
        """
        self.assertEqual(frame(com_query("select 'é'"), 0), b"\x0c\x00\x00\x00\x03select '\xc3\xa9'")


class HandshakeTests(SynchronousTestCase):
    """
    L{parse_handshake}.
    """

    def test_real_mariadb(self):
        """
        A real MariaDB handshake parses: version, 20-byte nonce, plugin.
        """
        h = parse_handshake(MARIADB_HANDSHAKE)
        self.assertEqual(h.server_version, "5.5.5-10.11.19-MariaDB-0+deb12u1")
        self.assertEqual(h.connection_id, 340)
        self.assertEqual(h.scramble, b"Qx+hN+,<(P;vdq*{NS7Y")
        self.assertEqual(h.auth_plugin, "mysql_native_password")
        self.assertTrue(h.capabilities & CLIENT_PROTOCOL_41)
        self.assertTrue(h.capabilities & CLIENT_DEPRECATE_EOF)

    def test_built(self):
        """
        The helper's handshake parses back.
        """
        h = parse_handshake(handshake(plugin="caching_sha2_password"))
        self.assertEqual((h.scramble, h.auth_plugin, h.capabilities), (SCRAMBLE, "caching_sha2_password", SERVER_CAPS))

    def test_err_instead(self):
        """
        An ERR instead of a handshake is a L{ServerError}.
        """
        e = self.assertRaises(ServerError, parse_handshake, err(1040, "Too many connections", "08004"))
        self.assertEqual((e.code, e.sqlstate, str(e)), (1040, "08004", "Error 1040: Too many connections"))

    def test_bad(self):
        """
        Another protocol version, a truncated handshake, or a server
        without 4.1 auth are protocol errors.
        """
        self.assertRaises(WireProtocolError, parse_handshake, b"\x09abc\x00")
        self.assertRaises(WireProtocolError, parse_handshake, MARIADB_HANDSHAKE[:20])
        old = handshake(caps=SERVER_CAPS & ~CLIENT_PROTOCOL_41)
        self.assertIn("lacks required capabilities", str(self.assertRaises(WireProtocolError, parse_handshake, old)))
        self.assertRaises(WireProtocolError, parse_handshake, b"")


class ResponsePacketTests(SynchronousTestCase):
    """
    OK, ERR, EOF, column definitions and rows.
    """

    def test_ok(self):
        """
        OK packets give their status.
        """
        self.assertEqual(parse_ok(ok(status=0x22)), OK(0, 0, 0x22, 0))
        self.assertEqual(parse_ok(b"\x00\x01\x02"), OK(1, 2, 0, 0))
        self.assertRaises(WireProtocolError, parse_ok, b"\x01")

    def test_err(self):
        """
        ERR packets, with or without an SQL state; C{args} is C{(code,
        message)} like a DB-API error.
        """
        e = parse_err(err(1146, "Table 'meta.heartbeat' doesn't exist", "42S02"))
        self.assertEqual((e.code, e.sqlstate, e.message), (1146, "42S02", "Table 'meta.heartbeat' doesn't exist"))
        self.assertEqual(error_code(e), 1146)
        self.assertEqual(parse_err(b"\xff\x15\x04Denied").sqlstate, "")
        self.assertEqual(parse_err(b"\xff\x15\x04Denied").message, "Denied")

    def test_eof(self):
        """
        EOF is C{0xfe} shorter than 9 bytes.
        """
        self.assertTrue(is_eof(eof()))
        self.assertFalse(is_eof(b"\xfe" + b"\0" * 8))
        self.assertFalse(is_eof(ok()))

    def test_column_and_row(self):
        """
        Column names and row values (with NULL) are read.
        """
        self.assertEqual(parse_column_name(column("lag_check")), "lag_check")
        self.assertEqual(parse_row(row([b"1.5", None, "x"]), 3), (b"1.5", None, b"x"))
        self.assertRaises(WireProtocolError, parse_row, row(["a", "b"]), 1)
        self.assertRaises(WireProtocolError, parse_row, row(["a"]), 2)
        self.assertRaises(WireProtocolError, parse_column_name, b"\x03def")


class ResultParserTests(SynchronousTestCase):
    """
    L{ResultParser}: the answer to C{COM_QUERY}.
    """

    def test_resultset_both_eof_modes(self):
        """
        A result set parses with and without C{CLIENT_DEPRECATE_EOF}.
        """
        for deprecate in (True, False):
            payloads = resultset(["a", "b"], [["1", None], ["2", "x"]], deprecate)
            self.assertEqual(
                parse_query_response(payloads, deprecate),
                ResultSet(("a", "b"), [(b"1", None), (b"2", b"x")]),
            )

    def test_empty_resultset_and_ok(self):
        """
        No rows is an empty result set; a statement without one gives OK.
        """
        self.assertEqual(parse_query_response(resultset(["a"], []), True), ResultSet(("a",), []))
        self.assertIsInstance(parse_query_response([ok()], True), OK)

    def test_err(self):
        """
        An ERR as the answer, or in the middle of the rows, is a
        L{ServerError}.
        """
        self.assertRaises(ServerError, parse_query_response, [err(1064, "syntax")], True)
        payloads = resultset(["a"], [["1"]])[:-1] + [err(1317, "Query execution was interrupted")]
        e = self.assertRaises(ServerError, parse_query_response, payloads, True)
        self.assertEqual(e.code, 1317)

    def test_unexpected(self):
        """
        LOCAL INFILE requests, more results, a missing column EOF, a zero
        column count, and packets after the end are protocol errors.
        """
        self.assertRaises(WireProtocolError, parse_query_response, [b"\xfbfile"], True)
        self.assertRaises(WireProtocolError, parse_query_response, [ok(status=0x0A)], True)
        no_eof = resultset(["a"], [], True)
        self.assertRaises(WireProtocolError, parse_query_response, no_eof[:2] + [row(["1"]), eof()], False)
        self.assertRaises(WireProtocolError, parse_query_response, [b"\x00\x00"][:0] + [b"\x00"], True)
        self.assertRaises(WireProtocolError, parse_query_response, [ok(), ok()], True)
        self.assertRaises(WireProtocolError, parse_query_response, resultset(["a"], [])[:-1], True)
        parser = ResultParser(True)
        self.assertRaises(WireProtocolError, parser.feed, b"")

    @settings(max_examples=300)
    @given(st.lists(st.binary(max_size=60), min_size=1, max_size=6), st.booleans())
    def test_garbage_only_wire_errors(self, payloads, deprecate):
        """
        Arbitrary payloads never raise anything but a protocol error or a
        server error.
        """
        parser = ResultParser(deprecate)
        for payload in payloads:
            try:
                if parser.feed(payload) is not None:
                    break
            except WIRE_ERRORS:
                break


class GarbageTests(SynchronousTestCase):
    """
    Arbitrary bytes fed to every parser raise only wire errors.
    """

    @settings(max_examples=300)
    @given(st.binary(max_size=200))
    def test_parsers(self, data):
        """
        Each parser either returns or raises L{WireProtocolError} (or a
        L{ServerError} for an ERR packet).
        """
        for parse in (
            parse_handshake, parse_ok, parse_err, parse_column_name,
            lambda d: parse_row(d, 3), parse_auth_switch,
            lambda d: PacketDecoder(max_payload=1000).feed(d),
            lambda d: Authenticator("u", "p", "db").feed(d),
        ):
            try:
                parse(data)
            except WIRE_ERRORS:
                pass

    @settings(max_examples=200)
    @given(st.binary(max_size=120))
    def test_handshake_mutations(self, tail):
        """
        A real handshake with a corrupted tail parses or is a protocol
        error.
        """
        for cut in (1, 10, 40, 60):
            try:
                parse_handshake(MARIADB_HANDSHAKE[:cut] + tail)
            except WIRE_ERRORS:
                pass


class AuthTests(SynchronousTestCase):
    """
    L{freno.probe.wire.auth}.
    """

    def test_native_password(self):
        """
        The scramble matches PyMySQL's; an empty password sends nothing.
        """
        self.assertEqual(
            native_password_scramble("freno-sandbox", SCRAMBLE),
            pymysql_auth.scramble_native_password(b"freno-sandbox", SCRAMBLE),
        )
        self.assertEqual(native_password_scramble("", SCRAMBLE), b"")

    def test_caching_sha2(self):
        """
        The fast-auth scramble matches PyMySQL's.
        """
        self.assertEqual(
            caching_sha2_scramble("pw", SCRAMBLE),
            pymysql_auth.scramble_caching_sha2(b"pw", SCRAMBLE),
        )

    def test_unsupported_plugin(self):
        """
        Other plugins are a clear error.
        """
        e = self.assertRaises(UnsupportedAuthError, auth_response, "client_ed25519", "pw", SCRAMBLE)
        self.assertIn("'client_ed25519' is not supported", str(e))
        self.assertIsInstance(e, WireProtocolError)

    def test_handshake_response(self):
        """
        The response carries the agreed capabilities, utf8mb4, the user,
        the scramble, the database and the plugin.
        """
        auth = Authenticator("freno", "pw", "information_schema")
        payload = auth.start(parse_handshake(handshake()))
        caps, max_packet, charset = struct.unpack_from("<IIB", payload)
        self.assertEqual(caps, auth.capabilities)
        self.assertTrue(caps & CLIENT_CONNECT_WITH_DB and caps & CLIENT_PLUGIN_AUTH)
        self.assertEqual(charset, 45)
        rest = payload[32:]
        scramble = native_password_scramble("pw", SCRAMBLE)
        self.assertEqual(
            rest,
            b"freno\0" + bytes([20]) + scramble + b"information_schema\0mysql_native_password\0",
        )

    def test_unknown_default_plugin_answers_native(self):
        """
        A server whose default plugin is unknown gets a native-password
        answer (it switches if the user needs something else).
        """
        auth = Authenticator("u", "", "")
        payload = auth.start(parse_handshake(handshake(plugin="client_ed25519")))
        self.assertTrue(payload.endswith(b"mysql_native_password\0"))
        self.assertFalse(auth.capabilities & CLIENT_CONNECT_WITH_DB)

    def test_switch_and_fast_auth(self):
        """
        An AuthSwitchRequest is answered with the new nonce; caching_sha2
        fast-auth success waits for the OK; full auth without TLS or a
        configured key asks the server for its key (C{0x02}); the full
        exchanges are in L{test.unit.test_probe_wire_auth}.
        """
        auth = Authenticator("u", "pw", "")
        auth.start(parse_handshake(handshake()))
        other = b"ABCDEFGHIJKLMNOPQRST"
        reply = auth.feed(b"\xfemysql_native_password\x00" + other + b"\x00")
        self.assertEqual(reply, native_password_scramble("pw", other))
        self.assertIsNone(auth.feed(ok()))
        self.assertTrue(auth.authenticated)

        sha = Authenticator("u", "pw", "")
        sha.start(parse_handshake(handshake(plugin="caching_sha2_password")))
        self.assertIsNone(sha.feed(b"\x01\x03"))
        self.assertFalse(sha.authenticated)
        self.assertIsNone(sha.feed(ok()))
        self.assertTrue(sha.authenticated)

        full = Authenticator("u", "pw", "")
        full.start(parse_handshake(handshake(plugin="caching_sha2_password")))
        self.assertEqual(full.feed(b"\x01\x04"), b"\x02")

    def test_auth_errors(self):
        """
        Access denied is a L{ServerError}; the old-password switch and
        stray packets are protocol errors.
        """
        auth = Authenticator("u", "pw", "")
        auth.start(parse_handshake(handshake()))
        e = self.assertRaises(ServerError, auth.feed, err(1045, "Access denied", "28000"))
        self.assertEqual(e.code, 1045)
        self.assertRaises(UnsupportedAuthError, auth.feed, b"\xfe")
        self.assertRaises(WireProtocolError, auth.feed, b"\x07")
        self.assertRaises(WireProtocolError, auth.feed, b"")
