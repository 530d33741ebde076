# -*- test-case-name: test.unit.test_probe_wire_packets -*-
"""
MySQL authentication for the native probe client, without I/O.

Supported:
    - C{mysql_native_password}: C{SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))}
      (an empty password sends an empty response), also when the server
      switches to it with an AuthSwitchRequest (a user whose plugin is not
      the server's default).
    - C{caching_sha2_password} I{fast} authentication (MySQL 8: the server
      has the password hash cached): C{SHA256(pw) XOR SHA256(SHA256(SHA256(pw))
      + nonce)}. Its I{full} authentication needs TLS or an RSA key exchange,
      which this client does not do: that is a clear
      L{UnsupportedAuthError}, as is any other plugin (MariaDB's
      C{client_ed25519}, C{mysql_clear_password}, ...).

L{Authenticator} is the client's side of the exchange: L{Authenticator.start}
builds the HandshakeResponse41 from the server's handshake, and
L{Authenticator.feed} takes each packet the server answers with.
"""

from __future__ import annotations

import hashlib
from typing import Optional, Tuple

from freno.probe.wire.packets import (
    CLIENT_CAPABILITIES,
    CLIENT_CONNECT_WITH_DB,
    CLIENT_DEPRECATE_EOF,
    CLIENT_PLUGIN_AUTH,
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

_FAST_AUTH_OK = 3
_FULL_AUTH_NEEDED = 4


class UnsupportedAuthError(WireProtocolError):
    """
    The server wants an authentication method this client does not speak.
    """


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


def auth_response(plugin: str, password: str, nonce: bytes) -> bytes:
    """
    The response for C{plugin}.

    @raise UnsupportedAuthError: an unsupported plugin.
    """
    if plugin == NATIVE_PASSWORD:
        return native_password_scramble(password, nonce)
    if plugin == CACHING_SHA2_PASSWORD:
        return caching_sha2_scramble(password, nonce)
    raise UnsupportedAuthError(
        f"authentication plugin {plugin!r} is not supported by the native probe "
        f"driver (use {NATIVE_PASSWORD} for the probe user, or ProbeDriver pymysql)"
    )


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
    """

    def __init__(self, user: str, password: str, database: str, deprecate_eof: bool = True) -> None:
        self._user = user
        self._password = password
        self._database = database
        self._deprecate_eof = deprecate_eof
        self._plugin = ""
        #: The capabilities agreed (set by L{start}).
        self.capabilities = 0
        #: Whether the server accepted us (an OK arrived).
        self.authenticated = False

    def start(self, handshake: Handshake) -> bytes:
        """
        The HandshakeResponse41 payload answering C{handshake}.
        """
        wanted = CLIENT_CAPABILITIES
        if not self._deprecate_eof:
            wanted &= ~CLIENT_DEPRECATE_EOF
        if not self._database:
            wanted &= ~CLIENT_CONNECT_WITH_DB
        caps = wanted & handshake.capabilities
        self.capabilities = caps
        plugin = handshake.auth_plugin if caps & CLIENT_PLUGIN_AUTH else NATIVE_PASSWORD
        if plugin not in (NATIVE_PASSWORD, CACHING_SHA2_PASSWORD):
            # Answer as mysql_native_password: a server whose default is
            # something else switches to the user's plugin if it must.
            plugin = NATIVE_PASSWORD
        self._plugin = plugin
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
        if header == 0x00:
            self.authenticated = True
            return None
        if header == 0xFF:
            raise parse_err(payload)
        if header == 0xFE:
            plugin, nonce = parse_auth_switch(payload)
            self._plugin = plugin
            return auth_response(plugin, self._password, nonce)
        if header == 0x01:
            if self._plugin == CACHING_SHA2_PASSWORD and len(payload) == 2:
                if payload[1] == _FAST_AUTH_OK:
                    return None
                if payload[1] == _FULL_AUTH_NEEDED:
                    raise UnsupportedAuthError(
                        "caching_sha2_password needs full authentication (TLS or RSA), "
                        "which the native probe driver does not support; use "
                        f"{NATIVE_PASSWORD} for the probe user, or ProbeDriver pymysql"
                    )
            raise UnsupportedAuthError(
                f"unexpected extra authentication data for {self._plugin!r}"
            )
        raise WireProtocolError(f"unexpected packet 0x{header:02x} during authentication")
