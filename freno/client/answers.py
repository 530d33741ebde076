# -*- test-case-name: test.unit.test_client_answers -*-
"""
Reading what a node answered, without doing any I/O: a check answer into a
L{CheckResult}, an error into a L{FrenoAPIError}, listings into L{Throttle}
and L{Skip} values.

A check answer is read from its status code first (see
L{freno.client.result.kind_of}); then from freno's C{X-Freno-*} headers
when the server sends them (C{docs/api.md}); else from the GET body every
freno sends (C{{"StatusCode","Value","Threshold","Message"}}). Nothing here
ever turns a non-200 answer into "allowed".
"""

from __future__ import annotations

import dataclasses
import datetime
import http
import json
import math
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from freno.client.durations import parse_retry_after
from freno.client.result import (
    CheckResult,
    FrenoAPIError,
    RouteNotServed,
    Skip,
    Throttle,
    kind_of,
)

#: Go's answer to a path no route matches (freno's router, and ours).
GO_NOT_FOUND = b"404 page not found\n"

#: What freno's non-leader nodes say on every check (compatibility D1).
NOT_LEADER = "not leader"

#: Statuses meaning "this node cannot answer now; ask another one": a
#: proxy without a healthy backend (502, 503, 504).
PROXY_UNAVAILABLE = frozenset({502, 503, 504})

_ZERO_TIME = "0001-01-01T00:00:00Z"
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)\Z")


@dataclasses.dataclass(frozen=True)
class Response:
    """
    One HTTP answer.

    @ivar headers: header names in lower case.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """
        A header's value, or L{None}.
        """
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """
        The body as JSON, or L{None} when it is not JSON.
        """
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


def _float(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> Optional[int]:
    number = _float(value)
    return int(number) if number is not None else None


def parse_leader(header: Optional[str]) -> Optional[Dict[str, Any]]:
    """
    C{X-Freno-Leader: node=<id>; leader=<true|false>; term=<n>} as a dict
    (C{leader} a bool, C{term} an int), or L{None} without the header.
    Unreadable parts are left out.
    """
    if header is None:
        return None
    found: Dict[str, Any] = {}
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "leader":
            if value.lower() in ("true", "false"):
                found["leader"] = value.lower() == "true"
        elif key == "term":
            term = _int(value)
            if term is not None:
                found["term"] = term
        elif key == "node":
            found["node"] = value
    return found


def read_check(response: Response, node: Optional[str], now: Optional[float] = None) -> CheckResult:
    """
    A check answer as a L{CheckResult}.

    @param node: the base URL that answered.
    @param now: the wall-clock time, for a C{Retry-After} given as a date.
    """
    status = response.status
    body = response.json() if response.body else None
    if not isinstance(body, dict):
        body = {}
    value = _float(response.header("X-Freno-Value"))
    if value is None:
        value = _float(body.get("Value"))
    threshold = _float(response.header("X-Freno-Threshold"))
    if threshold is None:
        threshold = _float(body.get("Threshold"))
    reason = response.header("X-Freno-Reason")
    if not reason:
        message = body.get("Message")
        reason = message if isinstance(message, str) and message else None
    if not reason:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = f"HTTP {status}"
    age = _int(response.header("X-Freno-Data-Age-Ms"))
    return CheckResult(
        status=status,
        kind=kind_of(status),
        value=value,
        threshold=threshold,
        reason=reason,
        data_age_ms=age if age is not None and age >= 0 else None,
        retry_after=parse_retry_after(
            response.header("Retry-After"), response.header("X-Freno-Retry-After-Ms"), now
        ),
        store=response.header("X-Freno-Store"),
        node=node,
        leader=parse_leader(response.header("X-Freno-Leader")),
    )


def node_unusable(result: CheckResult) -> Optional[str]:
    """
    Why this node cannot decide and another should be asked: it is not the
    leader (500 C{not leader}, or C{X-Freno-Leader} says C{leader=false}
    on a 500), or it is a proxy without a backend (502/503/504). L{None}
    when the answer stands.
    """
    if result.status == 500:
        if result.reason == NOT_LEADER:
            return NOT_LEADER
        if result.leader is not None and result.leader.get("leader") is False:
            return NOT_LEADER
    if result.status in PROXY_UNAVAILABLE:
        return f"{result.status} {result.reason}"
    return None


def route_missing(response: Response) -> bool:
    """
    Whether a 404 means the node does not serve the route at all (Go's
    plain-text C{404 page not found}, or anything but a JSON object), as
    opposed to a JSON answer about a missing thing.
    """
    if response.status != 404:
        return False
    if response.body == GO_NOT_FOUND:
        return True
    body = response.json()
    if not isinstance(body, dict):
        return True
    error = body.get("error")
    return isinstance(error, dict) and error.get("code") == "not_found" and "route" in str(
        error.get("message", "")
    )


def error_message(response: Response) -> Tuple[str, Optional[str], Optional[str]]:
    """
    C{(message, code, field)} from an error answer: the REST API's
    C{{"error": {...}}}, freno's generic C{{"StatusCode", "Message"}}, or the
    text of the body.
    """
    body = response.json()
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            code = error.get("code")
            field = error.get("field")
            return (
                str(message) if message is not None else f"HTTP {response.status}",
                str(code) if code is not None else None,
                str(field) if field is not None else None,
            )
        message = body.get("Message")
        if isinstance(message, str) and message:
            return message, None, None
    text = response.body[:300].decode("utf-8", "replace").strip()
    if not text:
        try:
            text = http.HTTPStatus(response.status).phrase
        except ValueError:
            text = f"HTTP {response.status}"
    return text, None, None


def api_error(response: Response, node: str, target: str) -> FrenoAPIError:
    """
    The error to raise for a 4xx answer.
    """
    if route_missing(response):
        path = target.split("?", 1)[0]
        return RouteNotServed(
            f"{node} does not serve {path} (an older freno?)", 404, "not_found", None, node
        )
    message, code, field = error_message(response)
    return FrenoAPIError(f"{response.status} from {node}: {message}", response.status, code, field, node)


def parse_time(text: Any) -> Optional[float]:
    """
    An RFC 3339 time (freno's, with nanoseconds, or the REST API's) as POSIX
    seconds; L{None} for Go's zero time ("never"), L{None}, or anything
    unreadable.
    """
    if not isinstance(text, str) or text == _ZERO_TIME:
        return None
    match = _TIME.match(text.strip())
    if not match:
        return None
    base, fraction, zone = match.groups()
    fraction = (fraction or ".0")[:7]
    zone = "+00:00" if zone == "Z" else zone
    try:
        when = datetime.datetime.fromisoformat(base + fraction + zone)
    except ValueError:
        return None
    if when.year <= 1:
        return None
    return when.timestamp()


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def throttles_from_rest(body: Any) -> List[Throttle]:
    """
    C{GET /api/v1/throttles}'s C{throttles}.

    @raise ValueError: not that shape.
    """
    if not isinstance(body, dict) or not isinstance(body.get("throttles"), list):
        raise ValueError("not a throttle listing")
    found = []
    for item in body["throttles"]:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            continue
        ratio = _float(item.get("ratio"))
        found.append(
            Throttle(
                key=item["key"],
                app=_text(item.get("app")) or item["key"].split("/", 1)[0],
                store=_text(item.get("store")),
                ratio=1.0 if ratio is None else ratio,
                expires_at_unix=_float(item.get("expires_at_unix")),
                reason=_text(item.get("reason")),
                actor=_text(item.get("actor")),
                audit_id=_int(item.get("audit_id")),
            )
        )
    return found


def throttles_from_freno(body: Any) -> List[Throttle]:
    """
    freno's C{/throttled-apps}: C{{"<app>[/<store>]": {"ExpireAt", "Ratio"}}}.

    @raise ValueError: not that shape.
    """
    if not isinstance(body, dict):
        raise ValueError("not a throttle listing")
    found = []
    for key in sorted(body):
        item = body[key]
        if not isinstance(item, dict):
            continue
        app, _, store = key.partition("/")
        ratio = _float(item.get("Ratio"))
        found.append(
            Throttle(
                key=key,
                app=app,
                store=store or None,
                ratio=1.0 if ratio is None else ratio,
                expires_at_unix=parse_time(item.get("ExpireAt")),
            )
        )
    return found


def skips_from_rest(body: Any) -> List[Skip]:
    """
    C{GET /api/v1/skips}'s C{skips}.

    @raise ValueError: not that shape.
    """
    if not isinstance(body, dict) or not isinstance(body.get("skips"), list):
        raise ValueError("not a skip listing")
    return [
        Skip(
            host=item["host"],
            expires_at_unix=_float(item.get("expires_at_unix")),
            reason=_text(item.get("reason")),
            actor=_text(item.get("actor")),
            audit_id=_int(item.get("audit_id")),
        )
        for item in body["skips"]
        if isinstance(item, dict) and isinstance(item.get("host"), str)
    ]


def skips_from_freno(body: Any) -> List[Skip]:
    """
    freno's C{/skipped-hosts}: C{{"<host>": <expiry time>}}.

    @raise ValueError: not that shape.
    """
    if not isinstance(body, dict):
        raise ValueError("not a skip listing")
    return [Skip(host=host, expires_at_unix=parse_time(body[host])) for host in sorted(body)]
