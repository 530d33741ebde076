# -*- test-case-name: test.integration.test_client_http,test.unit.test_client -*-
"""
A small blocking HTTP/1.1 transport on the standard library's
C{http.client}: keep-alive connections per base URL, a timeout on every
request, and nothing else.

L{Transport} is the seam the blocking client depends on (a
C{typing.Protocol}, not a zope interface: this package imports only the
standard library); L{HTTPTransport} is the real one, and
L{freno.client.fake.FakeTransport} the in-memory one unit tests use.

Connections: each base URL keeps a small stack of idle connections, so a
client shared by threads opens one connection per concurrent request and
reuses them afterwards. Before an idle connection is reused it is checked
for a close by the server (readable while idle means EOF); a request that
still fails on a reused connection before any answer arrives is sent once
more on a new connection (every request the client sends may be repeated:
checks and reads change nothing, and each mutation sets an end state).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from typing import Dict, List, Mapping, Optional, Protocol, Tuple, runtime_checkable
from urllib.parse import urlsplit

from freno.client.answers import Response

#: How many idle connections a base URL keeps.
MAX_IDLE = 4

USER_AGENT = "freno-client/0.1 (python)"


class TransportError(Exception):
    """
    No HTTP answer: the message says why (refused, reset, timed out...).
    """


@runtime_checkable
class Transport(Protocol):
    """
    Sends one request to one node.
    """

    def request(
        self,
        base_url: str,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: Optional[bytes],
        timeout: float,
    ) -> Response:
        """
        Send C{method target} to C{base_url} and read the whole answer.

        @param target: path and query, percent-encoded, starting with C{/}.
        @param timeout: seconds allowed for connecting, and for each wait on
            the socket after that.
        @raise TransportError: no HTTP answer.
        """

    def close(self) -> None:
        """
        Close every idle connection.
        """


def _idle_connection_closed(connection: http.client.HTTPConnection) -> bool:
    """
    Whether the server closed this idle connection (its socket is readable:
    EOF, or bytes nobody asked for).
    """
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _why(error: BaseException, timeout: float) -> str:
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g}s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, http.client.RemoteDisconnected):
        return "closed the connection without answering"
    if isinstance(error, ssl.SSLError):
        return f"TLS error: {error.reason or error}"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host name: {error.strerror or error}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return f"{type(error).__name__}: {error}"


class _Origin:
    """
    One base URL: where to connect, its path prefix, and its idle
    connections.
    """

    def __init__(self, base_url: str, ssl_context: Optional[ssl.SSLContext]) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self._ssl_context = ssl_context
        self._idle: List[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def take(self, timeout: float) -> Tuple[http.client.HTTPConnection, bool]:
        """
        An idle connection that still looks open, else a new one; and
        whether it was reused.
        """
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                break
            if _idle_connection_closed(connection):
                connection.close()
                continue
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection, True
        if self.https:
            context = self._ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context), False
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout), False

    def give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class HTTPTransport:
    """
    The real L{Transport}.
    """

    def __init__(self, ssl_context: Optional[ssl.SSLContext] = None, user_agent: str = USER_AGENT) -> None:
        """
        @param ssl_context: for C{https} base URLs (default: the system's
            trust store, host names checked).
        """
        self._ssl_context = ssl_context
        self._user_agent = user_agent
        self._origins: Dict[str, _Origin] = {}
        self._lock = threading.Lock()

    def _origin(self, base_url: str) -> _Origin:
        with self._lock:
            origin = self._origins.get(base_url)
            if origin is None:
                origin = self._origins[base_url] = _Origin(base_url, self._ssl_context)
            return origin

    def request(
        self,
        base_url: str,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: Optional[bytes],
        timeout: float,
    ) -> Response:
        """
        See L{Transport.request}.
        """
        origin = self._origin(base_url)
        all_headers = {"User-Agent": self._user_agent, **headers}
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        for _ in range(2):
            connection, reused = origin.take(timeout)
            try:
                connection.request(method, origin.prefix + target, body=body, headers=all_headers)
                answer = connection.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException) as e:
                connection.close()
                stale = reused and isinstance(
                    e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                )
                if stale:
                    # The server went away while the connection was idle
                    # (a restart?): its siblings are likely gone too.
                    origin.close()
                    continue
                raise TransportError(_why(e, timeout)) from e
            response = Response(
                answer.status, {k.lower(): v for k, v in answer.getheaders()}, data
            )
            if answer.will_close:
                connection.close()
            else:
                origin.give_back(connection)
            return response
        raise TransportError("closed the connection without answering")  # pragma: no cover

    def close(self) -> None:
        """
        See L{Transport.close}.
        """
        with self._lock:
            origins = list(self._origins.values())
        for origin in origins:
            origin.close()
