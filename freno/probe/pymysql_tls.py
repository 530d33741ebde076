# -*- test-case-name: test.unit.test_probe_pymysql_tls,test.integration.test_probe_wire_tls_sandbox -*-
"""
The TLS settings of L{freno.config.tls} as PyMySQL arguments, so that a
configuration means the same with C{"ProbeDriver": "pymysql"} as with the
native driver:

    - C{"disabled"}: C{ssl_disabled=True}.
    - C{"preferred"}: PyMySQL's own preferred mode (TLS when the server
      offers it, unverified; PyMySQL >= 1.2.4); with a client certificate,
      the connection is made with C{defer_connect}, given an
      C{ssl.SSLContext} holding the certificate, and connected.
    - C{"required"}, C{"verify-ca"}, C{"verify-identity"}: C{ssl=} an
      C{ssl.SSLContext} that verifies what the mode says (L{ssl_context});
      PyMySQL then refuses a server without TLS before it authenticates.
    - C{ServerPublicKeyPath}: C{server_public_key} (the PEM key).
"""

from __future__ import annotations

import ssl
from typing import Any, Callable, Dict, Optional, Tuple

from freno.config.model import TLSSettings
from freno.config.tls import (
    DISABLED,
    PREFERRED,
    VERIFY_IDENTITY,
    VERIFYING_MODES,
    TLSFileProblem,
)


def ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    """
    The C{ssl.SSLContext} for C{tls} (not C{"disabled"}): verification as
    the mode says, the client certificate if any.

    @raise TLSFileProblem: a file cannot be read or used.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    verify = tls.mode in VERIFYING_MODES
    context.check_hostname = tls.mode == VERIFY_IDENTITY
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    try:
        if verify:
            if tls.ca:
                context.load_verify_locations(cafile=tls.ca)
            else:
                context.load_default_certs()
        if tls.cert:
            context.load_cert_chain(tls.cert, tls.key or None)
    except (OSError, ssl.SSLError, ValueError) as e:
        raise TLSFileProblem(f"cannot use the TLS files: {e}") from None
    return context


def pymysql_tls_kwargs(
    tls: TLSSettings, context: Optional[ssl.SSLContext], public_key: Optional[bytes]
) -> Tuple[Dict[str, Any], Optional[ssl.SSLContext]]:
    """
    PyMySQL's TLS arguments for C{tls} (see the module docstring).

    @param context: L{ssl_context}C{(tls)}, unless C{"disabled"}.
    @param public_key: C{ServerPublicKeyPath}'s key, or C{None}.
    @return: the C{connect()} keyword arguments, and the context to put into
        a preferred-mode connection before it connects (C{None}: nothing).
    """
    kwargs: Dict[str, Any] = {}
    late = None
    if public_key is not None:
        kwargs["server_public_key"] = public_key
    if tls.mode == DISABLED:
        kwargs["ssl_disabled"] = True
    elif tls.mode == PREFERRED:
        if tls.cert:
            kwargs["defer_connect"] = True
            late = context
    else:
        kwargs["ssl"] = context
    return kwargs, late


def pymysql_connector(dbapi, late_context: Optional[ssl.SSLContext]) -> Callable[..., Any]:
    """
    C{dbapi.connect}, or (preferred mode with a client certificate) a
    function that makes a deferred PyMySQL connection, gives it
    C{late_context} and connects it.
    """
    if late_context is None:
        return dbapi.connect

    def connect(**kwargs):
        connection = dbapi.connect(**kwargs)
        connection.ctx = late_context
        connection.connect()
        return connection

    return connect
