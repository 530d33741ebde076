"""
Tests for L{freno.probe.wire.auth} through L{MySQLClientProtocol} against
L{FakeServer} checking passwords: C{mysql_native_password},
C{caching_sha2_password} fast authentication and full authentication (in
clear over TLS, RSA-encrypted with the server's key asked for or
configured), wrong passwords, and plugins the client does not speak.

No MySQL 8 server is available on this machine (Debian ships MariaDB,
which has no C{caching_sha2_password}), so its exchanges are tested here
against the fake server, which checks them as MySQL does.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import TLSSettings
from freno.config.tls import PREFERRED, REQUIRED, TLSMaterial
from freno.probe.wire.auth import (
    FALLBACK_ADVICE,
    Authenticator,
    UnsupportedAuthError,
    rsa_encrypt_password,
)
from freno.probe.wire.packets import ServerError, WireProtocolError, parse_handshake
from freno.probe.wire.tls import ClientTLS
from test.unit.test_probe_wire_helpers import (
    CACHING_SHA2,
    NATIVE,
    FakeServer,
    handshake,
    pki,
    public_pem,
    resultset,
    rsa_key,
)

ANSWERS = {"select 1": resultset(["1"], [["1"]])}


class PasswordTests(SynchronousTestCase):
    """
    The client logs in to a server that checks its password.
    """

    def setUp(self):
        self.clock = Clock()

    def login(self, server, password="pw", **kwargs):
        protocol = server.connect(self.clock, "u", password, **kwargs)
        return protocol, protocol.when_ready()

    def assertQueries(self, protocol):
        d = protocol.query("select 1")
        self.assertEqual(self.successResultOf(d).rows, [(b"1",)])

    def test_native(self):
        """
        C{mysql_native_password}: the right password logs in, a wrong one
        is the server's access denied.
        """
        server = FakeServer(ANSWERS, password="pw")
        protocol, ready = self.login(server)
        self.successResultOf(ready)
        self.assertEqual(server.fakes[0].methods, ["native"])
        self.assertQueries(protocol)
        _, ready = self.login(server, "wrong")
        self.assertEqual(self.failureResultOf(ready, ServerError).value.code, 1045)

    def test_sha2_fast(self):
        """
        C{caching_sha2_password} with the hash cached: the scramble logs in
        (C{0x01 0x03}, then OK), without TLS or RSA.
        """
        server = FakeServer(ANSWERS, password="pw", plugin=CACHING_SHA2)
        protocol, ready = self.login(server)
        self.successResultOf(ready)
        self.assertEqual(server.fakes[0].methods, ["fast"])
        self.assertEqual(protocol._auth.method, "fast")
        self.assertQueries(protocol)
        _, ready = self.login(server, "wrong")
        self.failureResultOf(ready, ServerError)

    def test_sha2_full_rsa_key_requested(self):
        """
        Full authentication without TLS and without a configured key: the
        client asks for the server's public key and sends the password
        RSA-encrypted; the password never crosses the wire in clear.
        """
        server = FakeServer(ANSWERS, password="s3cret-pw", plugin=CACHING_SHA2, cached=False, key=rsa_key())
        protocol, ready = self.login(server, "s3cret-pw")
        self.successResultOf(ready)
        fake = server.fakes[0]
        self.assertEqual(fake.methods, ["key-sent", "full-rsa"])
        self.assertNotIn(b"s3cret-pw", bytes(fake.wire))
        self.assertFalse(protocol.tls)
        self.assertQueries(protocol)
        _, ready = self.login(server, "wrong")
        self.failureResultOf(ready, ServerError)

    def test_sha2_full_rsa_key_configured(self):
        """
        With the server's public key configured the client encrypts with it
        at once, without asking.
        """
        server = FakeServer(ANSWERS, password="pw", plugin=CACHING_SHA2, cached=False, key=rsa_key())
        protocol, ready = self.login(server, server_public_key=public_pem(rsa_key()))
        self.successResultOf(ready)
        self.assertEqual(server.fakes[0].methods, ["full-rsa"])

    def test_sha2_full_rsa_wrong_key(self):
        """
        A configured key that is not the server's: the server cannot
        decrypt, access denied.
        """
        from cryptography.hazmat.primitives.asymmetric import rsa

        server = FakeServer(ANSWERS, password="pw", plugin=CACHING_SHA2, cached=False, key=rsa_key())
        wrong = public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
        _, ready = self.login(server, server_public_key=wrong)
        self.assertEqual(self.failureResultOf(ready, ServerError).value.code, 1045)

    def test_sha2_full_over_tls(self):
        """
        Full authentication over TLS sends the password itself, encrypted
        by TLS only: it is not in the bytes on the wire, and no RSA key is
        asked for.
        """
        server = FakeServer(
            ANSWERS, password="s3cret-pw", plugin=CACHING_SHA2, cached=False,
            tls=pki().server_options(), key=rsa_key(),
        )
        options = ClientTLS(TLSSettings(mode=REQUIRED), TLSMaterial()).options_for("db1")
        protocol, ready = self.login(server, "s3cret-pw", tls_mode=REQUIRED, tls_options=options)
        self.successResultOf(ready)
        fake = server.fakes[0]
        self.assertTrue(fake.tls and protocol.tls)
        self.assertEqual(fake.methods, ["full-tls"])
        self.assertNotIn(b"s3cret-pw", bytes(fake.wire))
        self.assertQueries(protocol)

    def test_sha2_switch(self):
        """
        A server whose default is C{mysql_native_password} switches a
        C{caching_sha2_password} user; the client answers with the new
        nonce (fast, and full with RSA).
        """
        server = FakeServer(ANSWERS, password="pw", plugin=NATIVE, user_plugin=CACHING_SHA2)
        _, ready = self.login(server)
        self.successResultOf(ready)
        self.assertEqual(server.fakes[0].methods, ["fast"])
        server = FakeServer(
            ANSWERS, password="pw", plugin=NATIVE, user_plugin=CACHING_SHA2, cached=False, key=rsa_key()
        )
        _, ready = self.login(server)
        self.successResultOf(ready)
        self.assertEqual(server.fakes[0].methods, ["key-sent", "full-rsa"])

    def test_sha2_empty_password(self):
        """
        An empty password sends an empty response.
        """
        server = FakeServer(ANSWERS, password="", plugin=CACHING_SHA2)
        _, ready = self.login(server, "")
        self.successResultOf(ready)
        self.assertEqual(server.fakes[0].methods, ["empty"])

    def test_unsupported_plugin(self):
        """
        A user of a plugin the client does not speak (MariaDB's
        C{client_ed25519}): the server's switch fails the login with an
        error naming the plugin and the PyMySQL fallback, and the
        connection is dropped.
        """
        for plugin in ("client_ed25519", "auth_gssapi_client", "sha256_password", "mysql_clear_password"):
            server = FakeServer(ANSWERS, password="pw", user_plugin=plugin)
            protocol, ready = self.login(server)
            error = self.failureResultOf(ready, UnsupportedAuthError).value
            self.assertEqual(error.plugin, plugin)
            self.assertIn(repr(plugin), str(error))
            self.assertIn('"ProbeDriver": "pymysql"', str(error))
            self.assertIn(FALLBACK_ADVICE, str(error))
            self.assertFalse(protocol.usable)


class AuthenticatorTests(SynchronousTestCase):
    """
    L{Authenticator} packet by packet: the less common answers.
    """

    def test_key_request_answered_with_error(self):
        """
        An ERR in answer to the key request is the server's error; any
        other packet there is a protocol error.
        """
        auth = Authenticator("u", "pw", "")
        auth.start(parse_handshake(handshake(plugin=CACHING_SHA2)))
        self.assertEqual(auth.feed(b"\x01\x04"), b"\x02")
        self.assertRaises(ServerError, auth.feed, b"\xff\x15\x04#28000denied")
        auth = Authenticator("u", "pw", "")
        auth.start(parse_handshake(handshake(plugin=CACHING_SHA2)))
        auth.feed(b"\x01\x04")
        self.assertRaises(WireProtocolError, auth.feed, b"\x00\x00\x00")

    def test_bad_public_key(self):
        """
        A server "key" that is not a PEM RSA public key is a protocol
        error, not a crash.
        """
        auth = Authenticator("u", "pw", "")
        auth.start(parse_handshake(handshake(plugin=CACHING_SHA2)))
        auth.feed(b"\x01\x04")
        e = self.assertRaises(WireProtocolError, auth.feed, b"\x01not a key")
        self.assertIn("not a PEM RSA public key", str(e))

    def test_tls_capability(self):
        """
        Over TLS the response announces C{CLIENT_SSL}.
        """
        from freno.probe.wire.packets import CLIENT_SSL

        auth = Authenticator("u", "pw", "")
        auth.start(parse_handshake(handshake()), tls=True)
        self.assertTrue(auth.capabilities & CLIENT_SSL)
        auth = Authenticator("u", "pw", "")
        auth.start(parse_handshake(handshake()))
        self.assertFalse(auth.capabilities & CLIENT_SSL)

    @settings(max_examples=50, deadline=None)
    @given(st.text(min_size=0, max_size=60), st.binary(min_size=20, max_size=20))
    def test_rsa_round_trip(self, password, nonce):
        """
        What L{rsa_encrypt_password} sends decrypts, with the server's
        private key, to the NUL-terminated password XOR the nonce.
        """
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        secret = rsa_encrypt_password(password, nonce, public_pem(rsa_key()))
        plain = rsa_key().decrypt(
            secret,
            padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
        )
        plain = bytes(b ^ nonce[i % 20] for i, b in enumerate(plain))
        self.assertEqual(plain, password.encode() + b"\0")

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.binary(max_size=40), max_size=4), st.sampled_from([NATIVE, CACHING_SHA2]))
    def test_garbage_never_crashes(self, payloads, plugin):
        """
        Whatever the server sends during authentication, L{Authenticator}
        returns bytes or C{None}, or raises a wire error; nothing else.
        """
        auth = Authenticator("u", "pw", "", server_public_key=None)
        auth.start(parse_handshake(handshake(plugin=plugin)), tls=False)
        for payload in payloads:
            try:
                out = auth.feed(payload)
            except (WireProtocolError, ServerError):
                return
            self.assertTrue(out is None or isinstance(out, bytes))


class PreferredPlainTests(SynchronousTestCase):
    """
    C{"preferred"} against a server without TLS logs in in plain.
    """

    def test_preferred_plain(self):
        """
        No C{CLIENT_SSL} offered: no TLS, the login and queries work.
        """
        server = FakeServer(ANSWERS, password="pw")
        protocol = server.connect(Clock(), "u", "pw", tls_mode=PREFERRED, tls_options=object())
        self.successResultOf(protocol.when_ready())
        self.assertFalse(protocol.tls)
        self.assertFalse(server.fakes[0].tls)
