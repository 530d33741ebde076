# -*- test-case-name: test.unit.test_http_check,test.unit.test_http_api,test.unit.test_names -*-
"""
Parsing and validating path parameters.

freno answered a malformed number with a generic 500 carrying Go's parse error
(C{strconv.ParseFloat: parsing "abc": invalid syntax}), let NaN through its
ratio check and silently ignored bad check-read thresholds. Here every
bad parameter raises L{ParameterError}, which the API answers with
C{400 {"StatusCode":400,"Message":"<param>: <problem>"}} before anything
changes (docs/decisions.md, D4 and D5).

Accepted syntax follows Go's C{ParseInt}/C{ParseFloat}: an optional sign,
decimal digits, for floats an optional fraction and exponent. Names (apps,
stores, hosts) may be of any length, as in freno: what fits in a request line
(L{freno.http.protocol.MAX_REQUEST_LINE}) is accepted. Where names are kept,
the keeper bounds them (recent apps, check counters, the replicated state,
the MySQL backend's columns; see L{freno.throttle.checker}).
"""

from __future__ import annotations

import math
import re

from freno.http.gojson import go_float

#: Go's int64 range, which C{ParseInt(..., 10, 64)} accepts.
INT64_MAX = 2**63 - 1

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_NON_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)\Z", re.IGNORECASE)


class ParameterError(ValueError):
    """
    A request parameter is malformed or out of range; nothing was changed.

    @ivar parameter: the parameter's name as in the route (C{ttlMinutes}).
    @ivar problem: what is wrong with it.
    """

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


def _shown(text: str) -> str:
    if len(text) > 40:
        text = text[:40] + "..."
    return repr(text)


def parse_int(parameter: str, text: str) -> int:
    """
    A Go C{ParseInt(text, 10, 64)}.

    @raise ParameterError: not an integer, or outside int64.
    """
    if not _INT.match(text):
        raise ParameterError(parameter, f"not an integer: {_shown(text)}")
    value = int(text)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ParameterError(parameter, f"out of range: {_shown(text)}")
    return value


def parse_float(parameter: str, text: str) -> float:
    """
    A finite Go C{ParseFloat(text, 64)}.

    @raise ParameterError: not a number, NaN or infinite.
    """
    if _NON_FINITE.match(text):
        raise ParameterError(parameter, f"must be a finite number: {_shown(text)}")
    if not _FLOAT.match(text):
        raise ParameterError(parameter, f"not a number: {_shown(text)}")
    value = float(text)
    if not math.isfinite(value):
        raise ParameterError(parameter, f"out of range: {_shown(text)}")
    return value


def parse_ratio(text: str) -> float:
    """
    A throttle ratio: a finite number. Its range is the command's to check
    (L{freno.consensus.commands.check_ratio}), so it is checked in one place
    for every route and backend.
    """
    return parse_float("ratio", text)


def parse_threshold(text: str) -> float:
    """
    A check-read override threshold: finite and above 0 (D5: freno silently
    fell back to the configured threshold for 0, negatives and NaN, and
    answered C{inf} with an empty body).
    """
    threshold = parse_float("threshold", text)
    if threshold <= 0:
        raise ParameterError("threshold", f"must be greater than 0; got {go_float(threshold)}")
    return threshold


def check_name(parameter: str, name: str, allow_empty: bool = False) -> str:
    """
    An app, host or store name: not empty unless C{allow_empty}; any length.
    """
    if not name and not allow_empty:
        raise ParameterError(parameter, "must not be empty")
    return name
