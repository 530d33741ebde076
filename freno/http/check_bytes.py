# -*- test-case-name: test.unit.test_http_fast_check,test.unit.test_http_fast_diff -*-
"""
L{CheckAnswerBytes}: the complete HTTP/1.x response of a check answer as
bytes, for the fast check protocol (L{freno.http.fast_check}).

The bytes are those the C{twisted.web} path (L{freno.http.site.FrenoSite}
with L{freno.http.check_resource.CheckResource}) writes for the same
answer, the C{Date} header's value aside (taken from the injected clock
rather than C{time.time()}): the same status line (the request's HTTP
version, the standard reason phrase), C{Connection: close} when an HTTP/1.1
request asked to close, C{Server} and C{Date}, then the check-answer headers
of L{freno.http.check_headers} in the same order, then C{Content-Type} and
C{Content-Length} (GET) or C{Content-Length: 0} (HEAD). A differential test
(test/unit/test_http_fast_diff.py) holds the two paths to that.

Everything but the C{Date} line, the data's age, the leadership header and a
shortened retry is a function of the L{CheckResult} alone, so each distinct
result's header block and GET tail (headers and body) are rendered once and
cached (bounded in count, and only for results with short names, like the
caches they are built from); an answer then costs a few dictionary look-ups
and one join.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from twisted.internet.interfaces import IReactorTime
from twisted.web.http import datetimeToString
from twisted.web.server import version as SERVER_VERSION

from freno.http.check_headers import (
    DATA_AGE,
    LEADER,
    Block,
    LeaderHeader,
    cacheable,
    header_block,
    retry_headers,
)
from freno.http.protocol import reason_phrase
from freno.http.responses import JSON, check_result_body, generic_body
from freno.throttle.result import NOT_LEADER_KIND, CheckResult

HTTP_11 = b"HTTP/1.1"
HTTP_10 = b"HTTP/1.0"
#: The headers Twisted sets on every request before the resource runs.
_SERVER = b"Server: " + SERVER_VERSION + b"\r\n"
_CLOSE = b"Connection: close\r\n"
_HEAD_TAIL = b"Content-Length: 0\r\n\r\n"
_CACHE_SIZE = 4096

#: (header block bytes, GET tail: content headers, blank line and body).
Rendered = Tuple[bytes, bytes]


def render_block(block: Block) -> bytes:
    """
    Header lines of a block, in its order.
    """
    return b"".join(b"%s: %s\r\n" % (name, value) for name, values in block.items()
                    for value in values)


def _get_tail(body: bytes, content_type: bytes = JSON) -> bytes:
    return b"Content-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (content_type, len(body), body)


class CheckAnswerBytes:
    """
    Renders check answers as response bytes (see the module docstring).

    @param clock: the time source (the data's age, C{Date}).
    @param leader: this node's C{X-Freno-Leader}.
    """

    def __init__(self, clock: IReactorTime, leader: LeaderHeader) -> None:
        self._clock = clock
        self._leader = leader
        self._rendered: Dict[CheckResult, Rendered] = {}
        self._starts: Dict[Tuple[int, bytes, bool], bytes] = {}
        self._leaders: Dict[Tuple[bytes, ...], bytes] = {}
        self._date_second: Optional[int] = None
        self._date = b""

    def _start(self, status: int, version: bytes, close: bool) -> bytes:
        """
        The status line, C{Connection: close} if asked, and C{Server}.
        """
        key = (status, version, close)
        start = self._starts.get(key)
        if start is None:
            start = b"%s %d %s\r\n%s%s" % (
                version, status, reason_phrase(status), _CLOSE if close else b"", _SERVER
            )
            self._starts[key] = start
        return start

    def _date_line(self, now: float) -> bytes:
        second = int(now)
        if second != self._date_second:
            self._date_second = second
            self._date = b"Date: " + datetimeToString(second) + b"\r\n"
        return self._date

    def _result(self, result: CheckResult) -> Rendered:
        rendered = self._rendered.get(result)
        if rendered is None:
            rendered = (render_block(header_block(result)), _get_tail(check_result_body(result)))
            if cacheable(result):
                if len(self._rendered) >= _CACHE_SIZE:
                    self._rendered.clear()
                self._rendered[result] = rendered
        return rendered

    def _leader_line(self, leads: bool) -> bytes:
        value = self._leader.value(leads)
        line = self._leaders.get(value)
        if line is None:
            line = b"%s: %s\r\n" % (LEADER, value[0])
            if len(self._leaders) > 64:
                self._leaders.clear()
            self._leaders[value] = line
        return line

    def answer(self, result: CheckResult, head: bool, version: bytes, close: bool) -> bytes:
        """
        The whole response to a check answered with C{result}.

        @param head: a HEAD request (no body, C{Content-Length: 0}).
        @param version: the request's version (C{HTTP/1.1} or C{HTTP/1.0}),
            echoed in the status line as Twisted does.
        @param close: write C{Connection: close} (an HTTP/1.1 request that
            asked to close).
        """
        now = self._clock.seconds()
        block, get_tail = self._result(result)
        why = result.explanation
        until = why.retry_until
        if until is not None and why.retry_after is not None and until - now < why.retry_after:
            shorter = dict(header_block(result))
            shorter.update(retry_headers(why.retry_after_at(now)))
            block = render_block(shorter)
        measured_at = why.measured_at
        age = (
            b"" if measured_at is None
            else b"%s: %d\r\n" % (DATA_AGE, max(0, round((now - measured_at) * 1000)))
        )
        return b"".join((
            self._start(result.status_code, version, close),
            self._date_line(now),
            block,
            age,
            self._leader_line(why.kind != NOT_LEADER_KIND),
            _HEAD_TAIL if head else get_tail,
        ))

    def generic(self, status: int, message: str, head: bool, version: bytes, close: bool) -> bytes:
        """
        freno's generic answer (L{freno.http.responses.respond_generic}):
        the JSON body on GET, the status and C{Content-Length: 0} on HEAD.
        """
        tail = _HEAD_TAIL if head else _get_tail(generic_body(status, message))
        return b"".join((
            self._start(status, version, close), self._date_line(self._clock.seconds()), tail
        ))
