# -*- test-case-name: test.unit.test_probe_wire_auth,test.unit.test_probe_wire_packets -*-
"""
MySQL authentication for the native probe client, without I/O.

Supported:
    - C{mysql_native_password}: C{SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))}
      (an empty password sends an empty response), also when the server
      switches to it with an AuthSwitchRequest (a user whose plugin is not
      the server's default).
    - C{caching_sha2_password} (MySQL 8's default):
        - I{fast} authentication, when the server has the password's hash
          cached: C{SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)}, and
          the server answers C{0x01 0x03} then OK;
        - I{full} authentication, when it answers C{0x01 0x04} (perform full
          authentication): over TLS the password is sent as is
          (NUL-terminated); without TLS it is XOR-ed with the nonce
          (repeated) and encrypted with the server's RSA public key
          (RSA-OAEP, SHA-1, as MySQL does). The key is the configured one
          (C{ServerPublicKeyPath}), or else asked of the server (C{0x02};
          it answers C{0x01} and the PEM key). Asking is what PyMySQL does;
          on a network where the connection can be tampered with, a
          configured key (or TLS with verification) keeps the password from
          an attacker who would answer with their own key.

Any other plugin (MariaDB's C{client_ed25519} and C{auth_gssapi_client},
MySQL's C{sha256_password}, C{mysql_clear_password}, ...) is an
L{UnsupportedAuthError} naming the plugin and the fallback: C{"ProbeDriver":
"pymysql"} (which speaks them, C{client_ed25519} with PyNaCl installed).

L{Authenticator} is the client's side of the exchange: L{Authenticator.start}
builds the HandshakeResponse41 from the server's handshake, and
L{Authenticator.feed} takes each packet the server answers with.
"""

from __future__ import annotations

import hashlib
from typing import Optional, Tuple

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from freno.probe.wire.packets import (
    CLIENT_CAPABILITIES,
    CLIENT_CONNECT_WITH_DB,
    CLIENT_DEPRECATE_EOF,
    CLIENT_PLUGIN_AUTH,
    CLIENT_SSL,
    DEFAULT_MAX_PACKET,
    UTF8MB4_GENERAL_CI,
    Handshake,
    Reader,
    WireProtocolError,
    handshake_response,
    parse_err,
)

NATIVE_PASSWORD = "mysql_native_password"
CACHING_SHA2_PASSWORD = "caching_sha2_password"
#: The plugins this client speaks.
SUPPORTED_PLUGINS = (NATIVE_PASSWORD, CACHING_SHA2_PASSWORD)

_REQUEST_PUBLIC_KEY = b"\x02"
_FAST_AUTH_OK = 3
_FULL_AUTH_NEEDED = 4

#: What an unsupported plugin's error advises.
FALLBACK_ADVICE = (
    'use "ProbeDriver": "pymysql" (PyMySQL speaks it; client_ed25519 also needs '
    "PyNaCl), or give the probe user mysql_native_password or caching_sha2_password"
)


class UnsupportedAuthError(WireProtocolError):
    """
    The server wants an authentication method this client does not speak.

    @ivar plugin: the plugin's name (C{""} for the pre-4.1 password hash).
    """

    def __init__(self, message: str, plugin: str = "") -> None:
        super().__init__(message)
        self.plugin = plugin


def unsupported_plugin(plugin: str) -> UnsupportedAuthError:
    """
    The error for a server asking for C{plugin}.
    """
    return UnsupportedAuthError(
        f"authentication plugin {plugin!r} is not supported by the native probe driver; "
        + FALLBACK_ADVICE,
        plugin,
    )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def native_password_scramble(password: str, nonce: bytes) -> bytes:
    """
    The C{mysql_native_password} response to C{nonce} (its first 20 bytes
    count); empty for an empty password.
    """
    if not password:
        return b""
    secret = password.encode("utf-8")
    stage1 = hashlib.sha1(secret).digest()
    stage2 = hashlib.sha1(stage1).digest()
    return _xor(stage1, hashlib.sha1(nonce[:20] + stage2).digest())


def caching_sha2_scramble(password: str, nonce: bytes) -> bytes:
    """
    The C{caching_sha2_password} fast-auth response to C{nonce}; empty for
    an empty password.
    """
    if not password:
        return b""
    secret = password.encode("utf-8")
    p1 = hashlib.sha256(secret).digest()
    p2 = hashlib.sha256(p1).digest()
    return _xor(p1, hashlib.sha256(p2 + nonce[:20]).digest())


def rsa_encrypt_password(password: str, nonce: bytes, public_key_pem: bytes) -> bytes:
    """
    The C{caching_sha2_password} full-auth response without TLS: the
    NUL-terminated password XOR-ed with C{nonce} (its first 20 bytes,
    repeated), RSA-OAEP (SHA-1) encrypted with the server's public key.

    @raise WireProtocolError: C{public_key_pem} is not an RSA public key, or
        too small for the password.
    """
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise WireProtocolError("the server's public key is not a PEM RSA public key")
    salt = nonce[:20] or b"\0"
    message = password.encode("utf-8") + b"\0"
    message = bytes(b ^ salt[i % len(salt)] for i, b in enumerate(message))
    try:
        return key.encrypt(
            message,
            padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
        )
    except ValueError as e:
        raise WireProtocolError(f"cannot encrypt the password with the server's public key: {e}") from None


def auth_response(plugin: str, password: str, nonce: bytes) -> bytes:
    """
    The first response for C{plugin}.

    @raise UnsupportedAuthError: an unsupported plugin.
    """
    if plugin == NATIVE_PASSWORD:
        return native_password_scramble(password, nonce)
    if plugin == CACHING_SHA2_PASSWORD:
        return caching_sha2_scramble(password, nonce)
    raise unsupported_plugin(plugin)


def parse_auth_switch(payload: bytes) -> Tuple[str, bytes]:
    """
    An AuthSwitchRequest: C{0xfe}, the plugin name, its data (the new
    nonce, NUL-terminated).

    @raise UnsupportedAuthError: the bare C{0xfe} of the pre-4.1 password
        switch.
    """
    if payload == b"\xfe":
        raise UnsupportedAuthError("the server asked for the pre-4.1 password hash")
    r = Reader(payload, 1)
    plugin = r.nul_str().decode("ascii", "replace")
    data = r.rest()
    if data.endswith(b"\0"):
        data = data[:-1]
    return plugin, data


class Authenticator:
    """
    The client's side of the connection phase.

    @param user: the user name.
    @param password: the password (C{""} for none).
    @param database: the default database to select.
    @param deprecate_eof: whether to offer C{CLIENT_DEPRECATE_EOF}.
    @param server_public_key: the server's RSA public key (PEM) for
        C{caching_sha2_password} full authentication without TLS; C{None}
        to ask the server for it when needed.
    """

    def __init__(
        self,
        user: str,
        password: str,
        database: str,
        deprecate_eof: bool = True,
        server_public_key: Optional[bytes] = None,
    ) -> None:
        self._user = user
        self._password = password
        self._database = database
        self._deprecate_eof = deprecate_eof
        self._server_public_key = server_public_key
        self._plugin = ""
        self._nonce = b""
        self._secure = False
        self._awaiting_key = False
        #: The capabilities agreed (set by L{capabilities_for} or L{start}).
        self.capabilities = 0
        #: Whether the server accepted us (an OK arrived).
        self.authenticated = False
        #: How the server authenticated us: C{"fast"} or C{"full"} for
        #: C{caching_sha2_password} (C{"full-tls"}, C{"full-rsa"}), else C{""}.
        self.method = ""

    def capabilities_for(self, handshake: Handshake, tls: bool = False) -> int:
        """
        The capabilities to announce to C{handshake}'s server (with
        C{CLIENT_SSL} when C{tls}); remembered as L{capabilities}.
        """
        wanted = CLIENT_CAPABILITIES
        if not self._deprecate_eof:
            wanted &= ~CLIENT_DEPRECATE_EOF
        if not self._database:
            wanted &= ~CLIENT_CONNECT_WITH_DB
        caps = wanted & handshake.capabilities
        if tls:
            caps |= CLIENT_SSL
        self.capabilities = caps
        return caps

    def start(self, handshake: Handshake, tls: bool = False) -> bytes:
        """
        The HandshakeResponse41 payload answering C{handshake}.

        @param tls: whether the connection is (about to be) TLS: then a
            full authentication sends the password itself.
        """
        caps = self.capabilities_for(handshake, tls)
        self._secure = tls
        plugin = handshake.auth_plugin if caps & CLIENT_PLUGIN_AUTH else NATIVE_PASSWORD
        if plugin not in SUPPORTED_PLUGINS:
            # Answer as mysql_native_password: a server whose default is
            # something else switches to the user's plugin if it must.
            plugin = NATIVE_PASSWORD
        self._plugin = plugin
        self._nonce = handshake.scramble
        response = auth_response(plugin, self._password, handshake.scramble)
        return handshake_response(
            caps, self._user, response, self._database, plugin,
            UTF8MB4_GENERAL_CI, DEFAULT_MAX_PACKET,
        )

    def feed(self, payload: bytes) -> Optional[bytes]:
        """
        Take the server's next packet in the connection phase.

        @return: the payload to send next, or C{None} to send nothing (wait
            for the next packet, or done: L{authenticated} is then true).
        @raise ServerError: the server refused (access denied).
        @raise WireProtocolError: unexpected or unsupported.
        """
        if not payload:
            raise WireProtocolError("empty packet during authentication")
        header = payload[0]
        if self._awaiting_key:
            if header != 0x01:
                if header == 0xFF:
                    raise parse_err(payload)
                raise WireProtocolError(
                    f"expected the server's public key, got a packet 0x{header:02x}"
                )
            self._awaiting_key = False
            self.method = "full-rsa"
            return rsa_encrypt_password(self._password, self._nonce, payload[1:])
        if header == 0x00:
            self.authenticated = True
            return None
        if header == 0xFF:
            raise parse_err(payload)
        if header == 0xFE:
            plugin, nonce = parse_auth_switch(payload)
            self._plugin = plugin
            self._nonce = nonce
            return auth_response(plugin, self._password, nonce)
        if header == 0x01:
            if self._plugin == CACHING_SHA2_PASSWORD and len(payload) == 2:
                if payload[1] == _FAST_AUTH_OK:
                    self.method = "fast"
                    return None
                if payload[1] == _FULL_AUTH_NEEDED:
                    return self._full_auth()
            raise WireProtocolError(
                f"unexpected extra authentication data for {self._plugin!r}"
            )
        raise WireProtocolError(f"unexpected packet 0x{header:02x} during authentication")

    def _full_auth(self) -> bytes:
        """
        The answer to C{caching_sha2_password}'s "perform full
        authentication".
        """
        if self._secure:
            self.method = "full-tls"
            return self._password.encode("utf-8") + b"\0"
        if self._server_public_key is not None:
            self.method = "full-rsa"
            return rsa_encrypt_password(self._password, self._nonce, self._server_public_key)
        self._awaiting_key = True
        return _REQUEST_PUBLIC_KEY
