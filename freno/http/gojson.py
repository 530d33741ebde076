# -*- test-case-name: test.unit.test_http_gojson -*-
"""
Go-compatible JSON rendering, so bodies match freno's byte for byte:

    - compact separators, exactly one trailing newline;
    - map keys (Python C{dict}) sorted; struct fields (L{Struct}) in order;
    - C{<}, C{>}, C{&}, U+2028 and U+2029 escaped as C{\\u003c}, ...;
    - floats in Go's shortest form: integral floats without C{.0}, exponent
      form only below 1e-6 or at/above 1e21 (C{1e-07}, C{1e+21});
    - times (L{GoTime}) in RFC 3339 with nanoseconds, UTC, C{Z}, trailing
      zeros of the fraction trimmed; no time is C{0001-01-01T00:00:00Z}.

NaN and infinities cannot be encoded in JSON; Go then sent an empty body.
Here they render as C{null} (the API refuses such inputs, so this only guards
against a metric source producing one; docs/decisions.md, D16).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Optional, Tuple

#: Go's zero C{time.Time}.
ZERO_TIME = "0001-01-01T00:00:00Z"

_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
            ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


class Struct:
    """
    A Go struct: fields rendered in the given order (a dict is a Go map, with
    sorted keys).
    """

    __slots__ = ("fields",)

    def __init__(self, fields: Iterable[Tuple[str, Any]]) -> None:
        self.fields = tuple(fields)


class GoTime:
    """
    A Go C{time.Time}: POSIX seconds, or C{None} for the zero time.
    """

    __slots__ = ("seconds",)

    def __init__(self, seconds: Optional[float]) -> None:
        self.seconds = seconds


def go_float(value: float) -> str:
    """
    C{value} as Go's C{encoding/json} writes a float64.
    """
    if value != value or value in (math.inf, -math.inf):
        return "null"
    if value == int(value) and abs(value) < 1e16:
        if value == 0 and math.copysign(1.0, value) < 0:
            return "-0"
        return str(int(value))
    text = repr(value)
    magnitude = abs(value)
    if "e" in text and 1e-6 <= magnitude < 1e21:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def go_string(text: str) -> str:
    """
    C{text} as a Go JSON string literal.
    """
    encoded = json.dumps(text, ensure_ascii=False)
    for raw, escaped in _ESCAPES:
        if raw in encoded:
            encoded = encoded.replace(raw, escaped)
    return encoded


def go_time(seconds: Optional[float]) -> str:
    """
    RFC 3339 with nanoseconds in UTC (Go's C{RFC3339Nano}), or the zero time.
    """
    if seconds is None:
        return ZERO_TIME
    whole = math.floor(seconds)
    nanos = int(round((seconds - whole) * 1e9))
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    stamp = datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        stamp += ("." + "%09d" % nanos).rstrip("0")
    return stamp + "Z"


def _encode(value: Any, out: list) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(go_string(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(go_float(value))
    elif isinstance(value, GoTime):
        out.append('"' + go_time(value.seconds) + '"')
    elif isinstance(value, Struct):
        _pairs(value.fields, out)
    elif isinstance(value, dict):
        _pairs(sorted(value.items()), out)
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as Go JSON")


def _pairs(pairs: Iterable[Tuple[str, Any]], out: list) -> None:
    out.append("{")
    first = True
    for key, item in pairs:
        if not first:
            out.append(",")
        first = False
        out.append(go_string(key))
        out.append(":")
        _encode(item, out)
    out.append("}")


def go_json_text(value: Any) -> str:
    """
    C{value} as compact Go JSON, without the trailing newline.
    """
    out: list = []
    _encode(value, out)
    return "".join(out)


def go_json(value: Any) -> bytes:
    """
    C{value} as Go's C{json.Encoder} writes it: UTF-8, trailing newline.
    """
    return (go_json_text(value) + "\n").encode("utf-8", "surrogateescape")
