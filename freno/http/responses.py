# -*- test-case-name: test.unit.test_http_api -*-
"""
Small helpers writing freno's response shapes onto a Twisted request.

Every helper sets C{Content-Length} itself, so that Twisted never falls back
to chunked encoding and a HEAD response carries the right length.
"""

from __future__ import annotations

from typing import Optional

from freno.http.gojson import go_float, go_string

JSON = b"application/json"
#: What Go's content sniffing gave for JSON-string bodies.
TEXT = b"text/plain; charset=utf-8"
NOT_FOUND_BODY = b"404 page not found\n"
METHOD_NOT_ALLOWED_BODY = b"Method Not Allowed\n"


def generic_body(status: int, message: str) -> bytes:
    """
    freno's generic answer, C{{"StatusCode":..,"Message":".."}} plus newline.
    """
    return b'{"StatusCode":%d,"Message":%s}\n' % (
        status,
        go_string(message).encode("utf-8", "surrogateescape"),
    )


def respond(request, status: int, body: bytes, content_type: Optional[bytes]) -> bytes:
    """
    Set status, C{Content-Type} (if any) and C{Content-Length}; return the
    body (Twisted drops it for HEAD but keeps the length, as Go did).
    """
    request.setResponseCode(status)
    if content_type is not None:
        request.setHeader(b"content-type", content_type)
    request.setHeader(b"content-length", b"%d" % (len(body),))
    return body


def respond_generic(request, status: int = 200, message: str = "OK") -> bytes:
    """
    freno's C{respondGeneric}: JSON body on GET only; any other method gets
    the status alone.
    """
    if request.method != b"GET":
        return respond(request, status, b"", None)
    return respond(request, status, generic_body(status, message), JSON)


def respond_bad_parameter(request, error: Exception) -> bytes:
    """
    A rejected parameter: 400 with the parameter named in the message.
    """
    return respond_generic(request, 400, str(error))


def not_found(request) -> bytes:
    """
    Go's C{404 page not found}.
    """
    request.setHeader(b"x-content-type-options", b"nosniff")
    return respond(request, 404, NOT_FOUND_BODY, TEXT)


def method_not_allowed(request, allow: bytes) -> bytes:
    """
    Go's 405, with the C{Allow} header.
    """
    request.setHeader(b"allow", allow)
    request.setHeader(b"x-content-type-options", b"nosniff")
    return respond(request, 405, METHOD_NOT_ALLOWED_BODY, TEXT)


def options(request, allow: bytes) -> bytes:
    """
    C{OPTIONS} on a known path: 200, C{Allow}, empty body.
    """
    request.setHeader(b"allow", allow)
    return respond(request, 200, b"", None)


_BODY_CACHE_SIZE = 4096
#: Results naming longer stores or throttle keys are not cached.
_CACHED_NAME_LENGTH = 512
#: Rendered check bodies by result (bounded by L{_BODY_CACHE_SIZE}).
_BODIES: dict = {}


def check_result_body(result) -> bytes:
    """
    A L{CheckResult} as freno's JSON, field order C{StatusCode, Value,
    Threshold, Message}. Results are frozen values, so rendered bodies are
    cached by result (bounded in count; a result naming a long store or
    throttle key, which the key would keep alive, is not cached): a steady
    metric renders once.
    """
    bodies = _BODIES
    body = bodies.get(result)
    if body is None:
        body = b'{"StatusCode":%d,"Value":%s,"Threshold":%s,"Message":%s}\n' % (
            result.status_code,
            go_float(result.value).encode("ascii"),
            go_float(result.threshold).encode("ascii"),
            go_string(result.message).encode("utf-8", "surrogateescape"),
        )
        why = result.explanation
        if len(why.store) + len(why.key) <= _CACHED_NAME_LENGTH:
            if len(bodies) >= _BODY_CACHE_SIZE:
                bodies.clear()
            bodies[result] = body
    return body


#: Go's C{htmlEscape} (net/http), in its order (C{&} first).
_GO_HTML_ESCAPES = (
    (b"&", b"&amp;"), (b"<", b"&lt;"), (b">", b"&gt;"), (b'"', b"&#34;"), (b"'", b"&#39;"),
)


def redirect(request, location: bytes) -> bytes:
    """
    Redirect to the canonical path as freno's router does: 301 with a small
    HTML body for GET, 307 with no body otherwise; the query string is kept.
    """
    query = request.uri.partition(b"?")[2]
    if query:
        location += b"?" + query
    request.setHeader(b"location", location)
    if request.method == b"GET":
        href = location
        for raw, escaped in _GO_HTML_ESCAPES:
            href = href.replace(raw, escaped)
        body = b'<a href="%s">Moved Permanently</a>.\n\n' % (href,)
        return respond(request, 301, body, b"text/html; charset=utf-8")
    return respond(request, 307, b"", None)
