# -*- test-case-name: test.unit.test_http_rest -*-
"""
JSON in and out for the REST API (L{freno.http.rest}): errors, request
bodies and query parameters, durations, and the JSON shapes of throttles,
skips, policies and audit records (C{docs/api.md} documents them).

Request bodies must be sent with C{Content-Type: application/json} (a
browser cannot then post one across origins without a preflight, which
nothing answers), be at most L{MAX_BODY} bytes, hold one JSON object, and
name only the fields the route takes: anything else is a 400 naming the
field (C{"field": "ttl"}), and nothing changes.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Mapping, Optional

from freno.consensus.audit import AuditRecord, EntryMeta
from freno.consensus.state import AppThrottle, Policy

#: The largest request body accepted, in bytes.
MAX_BODY = 64 * 1024

#: The longest TTL accepted: 100 years, in seconds.
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600.0

#: One part of a duration: a number and a unit.
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([dhms])")
_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[dhms])+\Z")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION_HELP = 'a duration ("90s", "30m", "2h", "7d", "1h30m") or a number of seconds'


class RestError(Exception):
    """
    An error answer of the REST API.

    @ivar status: the HTTP status.
    @ivar code: the error code (C{invalid_parameter}, C{not_found}, ...).
    @ivar field: the offending field, for C{invalid_parameter}.
    @ivar headers: extra response headers.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: Optional[str] = None,
        headers: Optional[Mapping[bytes, bytes]] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def invalid(field: str, problem: str) -> RestError:
    """
    A 400 C{invalid_parameter} naming C{field}.
    """
    return RestError(400, "invalid_parameter", f"{field}: {problem}", field)


def json_bytes(obj: Any) -> bytes:
    """
    Compact JSON and a newline.
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8") + b"\n"


def json_response(request, status: int, obj: Any) -> bytes:
    """
    Set the status, C{Content-Type} and C{Content-Length}; return the body.
    """
    body = json_bytes(obj)
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"content-length", b"%d" % (len(body),))
    return body


def error_response(request, error: RestError) -> bytes:
    """
    C{{"error": {"status", "code", "message"[, "field"]}}} with the error's
    status and headers.
    """
    for name, value in error.headers.items():
        request.setHeader(name, value)
    detail: Dict[str, Any] = {"status": error.status, "code": error.code, "message": error.message}
    if error.field is not None:
        detail["field"] = error.field
    return json_response(request, error.status, {"error": detail})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_object(request, fields: Iterable[str]) -> Dict[str, Any]:
    """
    The request's JSON object body, naming only C{fields}.

    @raise RestError: a wrong content type, a body too large, not JSON, not
        an object, or an unknown field.
    """
    content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise invalid("content-type", "the body must be sent as application/json")
    raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
    if len(raw) > MAX_BODY:
        raise invalid("body", f"larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise invalid("body", f"not valid JSON ({type(e).__name__})") from None
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    allowed = set(fields)
    for key in body:
        if key not in allowed:
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise invalid(shown, f"unknown field (expected one of: {', '.join(sorted(allowed))})")
    return body


def name_field(value: Any, field: str, optional: bool = False) -> Optional[str]:
    """
    An app, store or host name: a non-empty string without C{/}, of any
    length, as on freno's routes (C{None} allowed when C{optional}); what
    the state keeps is bounded by the command's validation
    (docs/decisions.md, D48).
    """
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise invalid(field, "must be a non-empty string")
    if "/" in value:
        raise invalid(field, "must not contain '/'")
    return value


def number_field(value: Any, field: str) -> Optional[float]:
    """
    A finite JSON number, or C{None}.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(field, "must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise invalid(field, "out of range") from None
    if not math.isfinite(number):
        raise invalid(field, "must be finite")
    return number


def bool_field(value: Any, field: str, default: bool = False) -> bool:
    """
    C{true} or C{false} (C{None}: C{default}).
    """
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(field, "must be true or false")
    return value


def text_field(value: Any, field: str) -> Optional[str]:
    """
    A string or C{None}.
    """
    if value is not None and not isinstance(value, str):
        raise invalid(field, "must be a string or null")
    return value


def parse_ttl(value: Any, field: str = "ttl") -> Optional[float]:
    """
    A TTL in seconds from a duration string (C{"90s"}, C{"1h30m"}) or a
    number of seconds; C{None} stays C{None}.

    @raise RestError: not a duration, not positive, not finite, or beyond
        100 years.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid(field, f"must be {_DURATION_HELP}")
    if isinstance(value, (int, float)):
        seconds = number_field(value, field)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise invalid(field, "must be positive")
        if not _DURATION.match(text):
            raise invalid(field, f"must be {_DURATION_HELP}; got {value[:40]!r}")
        try:
            seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))
        except OverflowError:
            seconds = math.inf
    else:
        raise invalid(field, f"must be {_DURATION_HELP}")
    assert seconds is not None
    if not math.isfinite(seconds) or seconds > MAX_TTL_SECONDS:
        raise invalid(field, "must be at most 100 years")
    if seconds <= 0:
        raise invalid(field, "must be positive")
    return seconds


def query_text(request, name: str) -> Optional[str]:
    """
    A query parameter's first value (C{None} when absent or empty).

    @raise RestError: not UTF-8.
    """
    values = request.args.get(name.encode("ascii"))
    if not values or not values[0]:
        return None
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise invalid(name, "not valid UTF-8") from None


def query_int(request, name: str, default: int, minimum: int, maximum: int) -> int:
    """
    An integer query parameter within C{[minimum, maximum]}.
    """
    text = query_text(request, name)
    if text is None:
        return default
    if not re.match(r"[0-9]+\Z", text) or len(text) > 19:
        raise invalid(name, f"must be an integer in {minimum}..{maximum}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise invalid(name, f"must be an integer in {minimum}..{maximum}")
    return value


def query_number(request, name: str) -> Optional[float]:
    """
    A finite, non-negative number query parameter (C{None} when absent).
    """
    text = query_text(request, name)
    if text is None:
        return None
    if not re.match(r"[0-9]{1,15}(\.[0-9]{1,9})?\Z", text):
        raise invalid(name, "must be a non-negative number (seconds since the epoch)")
    return float(text)


def iso(t: Optional[float]) -> Optional[str]:
    """
    POSIX seconds as ISO 8601 UTC (C{2026-12-05T10:00:00Z}, milliseconds
    when not whole), or C{None}.
    """
    if t is None:
        return None
    try:
        moment = datetime.fromtimestamp(t, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    spec = "seconds" if float(t).is_integer() else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def _meta(meta: Optional[EntryMeta]) -> Dict[str, Any]:
    if meta is None:
        return {"reason": None, "actor": None, "audit_id": None}
    return {"reason": meta.reason, "actor": meta.actor, "audit_id": meta.audit_id}


def throttle_json(key: str, throttle: AppThrottle) -> Dict[str, Any]:
    """
    A Throttle: C{key}, C{app}, C{store}, C{ratio}, C{expires_at} (ISO or
    null: permanent), C{expires_at_unix}, C{reason}, C{actor}, C{audit_id}.
    """
    app, _, store = key.partition("/")
    return {
        "key": key,
        "app": app,
        "store": store or None,
        "ratio": throttle.ratio,
        "expires_at": iso(throttle.expire_at),
        "expires_at_unix": throttle.expire_at,
        **_meta(throttle.meta),
    }


def skip_json(host: str, expire_at: float, meta: Optional[EntryMeta]) -> Dict[str, Any]:
    """
    A Skip: C{host}, C{expires_at}, C{expires_at_unix}, C{reason},
    C{actor}, C{audit_id}.
    """
    return {"host": host, "expires_at": iso(expire_at), "expires_at_unix": expire_at, **_meta(meta)}


def policy_json(policy: Policy) -> Dict[str, Any]:
    """
    A Policy: C{key}, C{app}, C{store}, C{threshold}, C{exempt}, C{reason},
    C{actor}, C{audit_id}.
    """
    return {
        "key": policy.key,
        "app": policy.app,
        "store": policy.store,
        "threshold": policy.threshold,
        "exempt": policy.exempt,
        **_meta(policy.meta),
    }


def audit_json(record: AuditRecord) -> Dict[str, Any]:
    """
    An AuditRecord: C{id}, C{time}, C{time_unix}, C{actor}, C{route},
    C{params}, C{reason}, C{outcome}.
    """
    return {
        "id": record.id,
        "time": iso(record.time),
        "time_unix": record.time,
        "actor": record.actor,
        "route": record.route,
        "params": dict(record.params),
        "reason": record.reason,
        "outcome": record.outcome,
    }
