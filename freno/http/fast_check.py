# -*- test-case-name: test.unit.test_http_fast_check,test.unit.test_http_fast_diff,test.integration.test_http_protocol -*-
"""
L{FastCheckChannel}: the HTTP connection of L{freno.http.site.FrenoSite}
when the fast check path is on (C{"CheckFastPath"}, the default;
docs/decisions.md, D83).

It answers the check routes (C{/check}, C{/check-if-exists}, C{/check-read},
C{/check-read-if-exists}; GET and HEAD) itself, without C{twisted.web}'s
per-request machinery: the request head is cut out of the stream, checked
with C{httptools} (llhttp, a C parser) and a few byte tests, the check is
evaluated by the very code the C{twisted.web} resource uses
(L{CheckResource.route}, L{CheckResource.evaluate}: the same leader gating,
counting and recent-apps recording), and the answer is written as
pre-built bytes (L{freno.http.check_bytes}), byte for byte what the
C{twisted.web} path writes but for the C{Date} value, straight to the
socket when it can (L{FastCheckChannel._send}; D84). What a head says
depends on its bytes alone, so a head seen before (clients repeat theirs)
is not read again: what it said is cached by its bytes (bounded in count and
size, shared by the site's connections).

Every request it does not answer itself goes, with every byte after it, to
the L{FrenoChannel} this class extends, and the connection stays with
C{twisted.web} from then on (the channel was never fed before, so its parser
starts clean at that request). It hands over:

    - any method but GET and HEAD, any path not starting with C{/check};
    - a path under C{/check} that is no check route (redirects, Go's 404);
    - a request with a body or one announced (C{Content-Length} other than
      0, C{Transfer-Encoding}, C{Expect}), so C{twisted.web} drains,
      decodes or refuses it as it always did;
    - anything unusual in the head: a head over L{FAST_HEAD_LIMIT} bytes
      (C{twisted.web} applies its limits: 414, 431), more than
      L{MAX_FAST_HEADERS} headers, folded header lines, a bare CR or LF, a
      NUL, a request line C{twisted.web} would refuse or C{httptools}
      rejects (C{twisted.web} then answers its own C{400 Bad Request}), an
      upgrade;
    - a leading empty line, and bytes that cannot start a check request.

What stays with this class follows C{twisted.web}'s rules exactly:
pipelined requests are answered in order (all those of one read in one
write); an HTTP/1.1 connection is kept unless the first C{Connection}
header has a C{close} token (split on spaces, as Twisted does), which gets
C{Connection: close} on the answer and closes; an HTTP/1.0 request is
answered with an C{HTTP/1.0} status line and closes (Twisted never keeps
HTTP/1.0 connections); bytes after a closing request are dropped. The idle
timeout and the back-pressure (the transport pauses reading while its send
buffer is full) are the channel's own. A check request's head that is not
complete within L{HEAD_TIMEOUT} seconds of its first byte closes the
connection (slow clients; C{twisted.web} has only its idle timeout).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import httptools
from twisted.internet import tcp
from twisted.logger import Logger
from twisted.web.http import parse_qs

from freno.http.check_bytes import HTTP_10, HTTP_11, CheckAnswerBytes
from freno.http.check_resource import MAX_FORWARDED_FOR, CheckResource, NotARoute
from freno.http.params import ParameterError
from freno.http.protocol import FrenoChannel
from freno.throttle.checker import InvalidCheck

#: Longer request heads go to C{twisted.web} (far below its limits, so that
#: every limit it enforces is its own).
FAST_HEAD_LIMIT = 8192
#: Heads with more headers go to C{twisted.web} (its limit is 500).
MAX_FAST_HEADERS = 100
#: Seconds a check request's head may take to arrive in full.
HEAD_TIMEOUT = 10.0
#: The bytes Twisted accepts in a request target (33..176).
_TARGET_BYTES = bytes(range(33, 177))
_END = b"\r\n\r\n"
_QUERY_CACHE_SIZE = 1024
_CACHED_QUERY_LENGTH = 256
#: Heads read (validated, parsed, routed) are cached by their bytes: this
#: many, of at most this many bytes.
_HEAD_CACHE_SIZE = 1024
_CACHED_HEAD_LENGTH = 1024
#: What a head says (L{FastCheckChannel._read_head}).
Head = Tuple[bool, bytes, bool, bool, Optional[Tuple], bool, Optional[str], Optional[str]]


class _HandOver(Exception):
    """
    The request is for C{twisted.web}.
    """


def _request_line(line: bytes):
    """
    C{(is_head, target, version)} of a request line this protocol may
    answer, else C{None}: GET or HEAD, a target under C{/check} that
    Twisted accepts, HTTP/1.1 or HTTP/1.0, single spaces.
    """
    parts = line.split(b" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    if method == b"GET":
        is_head = False
    elif method == b"HEAD":
        is_head = True
    else:
        return None
    if (version != HTTP_11 and version != HTTP_10) or not target.startswith(b"/check"):
        return None
    if target.translate(None, _TARGET_BYTES):
        return None
    return is_head, target, version


def _may_be_check(data: bytes) -> bool:
    """
    Whether C{data}, the start of a request whose head is not complete
    yet, may still become a check request this protocol answers. (Once its
    request line is complete, that line must be one; Twisted refuses a bad
    request line at once, so it gets the stream at once.)
    """
    if data[:1] == b"G":
        prefix = b"GET /check"
    else:
        prefix = b"HEAD /check"
    if len(data) < len(prefix):
        return prefix.startswith(data)
    if not data.startswith(prefix):
        return False
    line_end = data.find(b"\r\n")
    return line_end < 0 or _request_line(data[:line_end]) is not None


class FastCheckChannel(FrenoChannel):
    """
    A L{FrenoChannel} that answers check requests itself until the first
    request it does not (see the module docstring).

    Its site (a L{freno.http.site.FrenoSite}) gives the L{CheckResource}
    and the L{CheckAnswerBytes}.
    """

    _log = Logger()
    #: Seconds a check request's head may take (see L{HEAD_TIMEOUT}).
    head_timeout = HEAD_TIMEOUT

    #: Transports whose C{writeSomeData} answers are sent through at once.
    direct_transports: tuple = (tcp.Connection,)

    _buffer = b""
    _head_timer = None
    _parser = None
    _handed_over = False
    _direct = False

    def connectionMade(self) -> None:
        """
        Set up as the channel does, then find the check resource and the
        peer's address.
        """
        FrenoChannel.connectionMade(self)
        site = self.site
        self._check: CheckResource = site.resource.check_resource
        self._bytes: CheckAnswerBytes = site.check_bytes
        self._queries: Dict[bytes, bool] = site.check_queries
        self._heads: Dict[bytes, Head] = site.check_heads
        peer = self.transport.getPeer()
        self._peer_host = getattr(peer, "host", None) or "local"
        self._direct = isinstance(self.transport, self.direct_transports)

    # httptools callbacks (per request; see _parse)

    def on_header(self, name: bytes, value: bytes) -> None:
        """
        One header of the request being parsed: keep what a check needs,
        note what sends the request to C{twisted.web}.
        """
        self._headers += 1
        lower = name.lower()
        if lower == b"connection":
            if self._connection is None:
                self._connection = value.strip(b" \t")
        elif lower == b"x-forwarded-for":
            if self._forwarded is None:
                self._forwarded = value.strip(b" \t")
        elif lower == b"content-length":
            value = value.strip(b" \t")
            if self._length_seen or not value.isdigit() or int(value) != 0:
                self._unusual = True
            self._length_seen = True
        elif lower == b"transfer-encoding" or lower == b"expect":
            self._unusual = True

    # the stream

    def dataReceived(self, data: bytes) -> None:
        """
        Answer every complete check request in the stream; hand the stream
        to C{twisted.web} at the first other request.
        """
        self.resetTimeout()
        buffer = self._buffer + data if self._buffer else data
        start = 0
        answers = []
        try:
            while True:
                end = buffer.find(_END, start)
                if end < 0:
                    break
                answer, keep = self._answer(buffer, start, end)
                answers.append(answer)
                start = end + 4
                if not keep:
                    self._buffer = b""
                    self._cancel_head_timer()
                    self._send(b"".join(answers))
                    self.dataReceived = _drop
                    self.loseConnection()
                    return
            rest = buffer[start:] if start else buffer
            if rest and (len(rest) > FAST_HEAD_LIMIT or not _may_be_check(rest)):
                raise _HandOver()
        except _HandOver:
            if answers:
                self._send(b"".join(answers))
            self._hand_over(buffer[start:])
            return
        if answers:
            self._send(b"".join(answers))
        self._buffer = rest
        if rest:
            if start or self._head_timer is None:
                self._cancel_head_timer()
                self._head_timer = self.callLater(self.head_timeout, self._head_timed_out)
        elif self._head_timer is not None:
            self._cancel_head_timer()

    def _answer(self, buffer: bytes, start: int, end: int):
        """
        The answer to the request whose head is C{buffer[start:end]}, and
        whether the connection stays open.

        @raise _HandOver: for C{twisted.web}.
        """
        head = buffer[start:end]
        read = self._heads.get(head)
        if read is None:
            read = self._read_head(head, buffer[start:end + 4])
            if len(head) <= _CACHED_HEAD_LENGTH:
                heads = self._heads
                if len(heads) >= _HEAD_CACHE_SIZE:
                    heads.clear()
                heads[head] = read
        is_head, version, close, persistent, route, low, forwarded, error = read
        if error is not None:
            return self._bytes.generic(400, error, is_head, version, close), persistent
        try:
            result = self._check.evaluate(
                route, low, self._peer_host if forwarded is None else forwarded)
        except (ParameterError, InvalidCheck) as e:
            return self._bytes.generic(400, str(e), is_head, version, close), persistent
        except Exception:
            self._log.failure("check request failed", path=route)
            return self._bytes.generic(500, "internal error", is_head, version, close), persistent
        return self._bytes.answer(result, is_head, version, close), persistent

    def _read_head(self, head: bytes, whole: bytes) -> Head:
        """
        Validate and read a request head never seen before (heads are
        cached by their bytes: what follows depends on them alone).

        @param head: the head without its blank line.
        @param whole: the head with it.
        @return: C{(is_head, version, close, persistent, route, low
            priority, forwarded-for address or None, 400 message or None)}.
        @raise _HandOver: for C{twisted.web}.
        """
        if len(head) > FAST_HEAD_LIMIT:
            raise _HandOver()
        line_end = head.find(b"\r\n")
        parsed = _request_line(head if line_end < 0 else head[:line_end])
        if parsed is None:
            raise _HandOver()
        is_head, target, version = parsed
        if line_end >= 0:
            lines = head.count(b"\r\n")
            if (head.count(b"\n") != lines or head.count(b"\r") != lines
                    or b"\r\n " in head or b"\r\n\t" in head or b"\x00" in head):
                raise _HandOver()
        self._parse(whole)
        persistent = version == HTTP_11
        close = False
        connection = self._connection
        if connection is not None and persistent:
            close = b"close" in [t.lower() for t in connection.split(b" ")]
            persistent = not close
        forwarded = self._forwarded
        if forwarded is not None:
            forwarded = forwarded[:MAX_FORWARDED_FOR].decode("utf-8", "replace")
        path, _, query = target.partition(b"?")
        try:
            route = self._check.route(path)
        except NotARoute:
            raise _HandOver() from None
        except ParameterError as e:
            return (is_head, version, close, persistent, None, False, forwarded, str(e))
        return (is_head, version, close, persistent, route, self._low_priority(query),
                forwarded, None)

    def _parse(self, head: bytes) -> None:
        """
        Run C{httptools} over one whole head (with its blank line): it
        validates the head and calls L{on_header}.

        @raise _HandOver: it refused the head, or something in it is for
            C{twisted.web}.
        """
        self._headers = 0
        self._connection = self._forwarded = None
        self._length_seen = self._unusual = False
        parser = self._parser
        if parser is None:
            parser = self._parser = httptools.HttpRequestParser(self)
        try:
            parser.feed_data(head)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._parser = None
            raise _HandOver() from None
        if self._connection is not None or parser.get_http_version() != "1.1":
            # llhttp's idea of persistence differs from Twisted's: start
            # afresh rather than let it refuse the next request.
            self._parser = None
        if self._unusual or self._headers > MAX_FAST_HEADERS:
            raise _HandOver()

    def _low_priority(self, query: bytes) -> bool:
        """
        Whether the query asks for a low-priority check (C{p=low}), parsed
        as Twisted parses C{request.args}.
        """
        if not query:
            return False
        low = self._queries.get(query)
        if low is None:
            values = parse_qs(query, 1).get(b"p")
            low = values is not None and values[0] == b"low"
            if len(query) <= _CACHED_QUERY_LENGTH:
                if len(self._queries) >= _QUERY_CACHE_SIZE:
                    self._queries.clear()
                self._queries[query] = low
        return low

    def _send(self, data: bytes) -> None:
        """
        Write C{data}: straight to the socket while nothing waits in the
        transport's buffer (L{tcp.Connection.writeSomeData}, which sends what
        the kernel takes now), else, and for whatever the kernel did not
        take, through C{transport.write} (and from then on always so).

        A buffered write costs two more passes through the reactor per
        answer (register for writing, write, unregister); on a keep-alive
        check connection the socket's send buffer is nearly always free.
        """
        transport = self.transport
        if self._direct and transport.connected and not transport.disconnecting:
            sent = transport.writeSomeData(data)
            if type(sent) is int:
                if sent == len(data):
                    return
                data = data[sent:]
            self._direct = False
        transport.write(data)

    # hand-over, timeouts, end

    def _hand_over(self, data: bytes) -> None:
        """
        Give the rest of the stream, from the first request not answered
        here, to the plain channel.
        """
        self._cancel_head_timer()
        self._buffer = b""
        self._parser = None
        self._handed_over = True
        self._direct = False
        self.dataReceived = self._plain_data_received
        if data:
            FrenoChannel.dataReceived(self, data)

    def _plain_data_received(self, data: bytes) -> None:
        FrenoChannel.dataReceived(self, data)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._log.info(
            "closing a client whose request head took over {timeout} s",
            timeout=self.head_timeout,
        )
        self.dataReceived = _drop
        self.timeoutConnection()

    def _cancel_head_timer(self) -> None:
        timer = self._head_timer
        if timer is not None:
            self._head_timer = None
            if timer.active():
                timer.cancel()

    def connectionLost(self, reason) -> None:
        """
        Stop the head timer; then as the channel.
        """
        self._cancel_head_timer()
        FrenoChannel.connectionLost(self, reason)


def _drop(data: bytes) -> None:
    """
    Bytes after a closing request: dropped, as C{twisted.web} does.
    """
