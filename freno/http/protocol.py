# -*- test-case-name: test.integration.test_http_protocol -*-
"""
The HTTP connection and request classes of L{freno.http.site.FrenoSite}:
standard reason phrases on every status line, and documented limits on the
size of a request's head, refused with a clear 4xx.

B{Reason phrases.} Twisted writes the phrase of C{twisted.web.http.RESPONSES}
and C{Unknown Status} for a code that table lacks, so freno's 429 went out
as C{HTTP/1.1 429 Unknown Status}. L{FrenoRequest.setResponseCode} fills in
the phrase from L{PHRASES} (the codes this service sends, as RFC 9110 names
them) or, for any other code, from the standard library's
C{http.HTTPStatus}; Twisted's global table is left alone. Scripts that grep
status lines (freno's own shell example does) see C{429 Too Many Requests},
C{417 Expectation Failed} and so on.

B{Limits} (L{FrenoChannel}):

    - the request line (method, path and query exactly as sent,
      percent-encoding included) is at most L{MAX_REQUEST_LINE} bytes
      (16 KiB): a longer one is answered C{414 URI Too Long};
    - the request line and every header line together are at most
      L{MAX_HEADER_BYTES} bytes (64 KiB), and no header line is longer
      than L{MAX_REQUEST_LINE}: beyond that, C{431 Request Header Fields
      Too Large}.

Both answers carry freno's generic JSON body naming the limit (none for a
HEAD request) and close the connection, as the rest of the head was not
read. Twisted's own behaviour, which this replaces: a line longer than 16 KiB
made it drop the connection without a word, and a head over 16 KiB in total
got a bare C{400 Bad Request}. Everything else Twisted refuses (a malformed
request line or header, more than 500 headers) still gets its C{400 Bad
Request}.

Names in paths (apps, clusters, hosts) have no limit of their own: what fits
in the request line is served (freno accepted names of any length).
"""

from __future__ import annotations

import http
from typing import Dict

from twisted.web.http import HTTPChannel
from twisted.web.server import Request

from freno.http.responses import generic_body

#: The longest request line accepted, in bytes (414 beyond).
MAX_REQUEST_LINE = 16 * 1024
#: The longest request head (request line and headers) accepted, in bytes
#: (431 beyond).
MAX_HEADER_BYTES = 64 * 1024

#: The reason phrase of every status this service sends (RFC 9110's names).
PHRASES: Dict[int, bytes] = {
    200: b"OK",
    301: b"Moved Permanently",
    307: b"Temporary Redirect",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    414: b"URI Too Long",
    417: b"Expectation Failed",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
}


def reason_phrase(code: int) -> bytes:
    """
    The standard reason phrase of C{code}: L{PHRASES}, else the standard
    library's, else C{b"Unknown Status"} (a code no standard names).
    """
    phrase = PHRASES.get(code)
    if phrase is not None:
        return phrase
    try:
        return http.HTTPStatus(code).phrase.encode("ascii")
    except ValueError:
        return b"Unknown Status"


class FrenoRequest(Request):
    """
    A request whose status line always carries the standard reason phrase.
    """

    def setResponseCode(self, code: int, message=None) -> None:
        """
        Set the status; without an explicit C{message}, its phrase is
        L{reason_phrase}C{(code)}.
        """
        if message is None:
            message = reason_phrase(code)
        Request.setResponseCode(self, code, message)


class FrenoChannel(HTTPChannel):
    """
    An L{HTTPChannel} that refuses an oversized request line with 414 and an
    oversized head with 431 (see the module docstring).
    """

    #: LineReceiver's bound on one line: no request or header line is longer.
    MAX_LENGTH = MAX_REQUEST_LINE
    totalHeadersSize = MAX_HEADER_BYTES

    def lineReceived(self, line: bytes):
        """
        One line of the head (LineReceiver has already refused lines over
        L{MAX_LENGTH}, see L{lineLengthExceeded}): refuse it with 431 if the
        head grows over L{MAX_HEADER_BYTES}.
        """
        if self._receivedHeaderSize + len(line) > MAX_HEADER_BYTES:
            return self._refuse_head()
        return HTTPChannel.lineReceived(self, line)

    def lineLengthExceeded(self, line: bytes):
        """
        A line longer than L{MAX_REQUEST_LINE}: the request line (414) or a
        header line (431).
        """
        # HTTPChannel counts the head's bytes from the request line on, and
        # starts again at 0 for each request.
        if self._receivedHeaderSize == 0:
            return self._refuse_line(line)
        return self._refuse_head()

    def _refuse_line(self, line: bytes) -> None:
        method = line.lstrip(b"\r\n").split(b" ", 1)[0]
        self._refuse(method, 414, f"request line longer than {MAX_REQUEST_LINE} bytes")

    def _refuse_head(self) -> None:
        self._refuse(
            getattr(self, "_command", b""),
            431,
            f"request line and headers longer than {MAX_HEADER_BYTES} bytes, "
            f"or a header line longer than {MAX_REQUEST_LINE} bytes",
        )

    def _refuse(self, method: bytes, status: int, message: str) -> None:
        """
        Answer C{status} with freno's generic body (none for HEAD), then
        close: the rest of the head is never read.
        """
        body = b"" if method == b"HEAD" else generic_body(status, message)
        lines = [b"HTTP/1.1 %d %s" % (status, PHRASES[status]), b"Connection: close"]
        if body:
            lines.append(b"Content-Type: application/json")
        lines.append(b"Content-Length: %d" % (len(body),))
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.dataReceived = self.lineReceived = lambda *args: None
        self.loseConnection()
