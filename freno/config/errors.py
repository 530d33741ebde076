# -*- test-case-name: test.unit.test_config -*-
"""
L{ConfigError}: the one error a bad configuration produces.

Its string form is a single line naming the file, the key path and the
problem, for example::

    conf/x.json: Stores.MySQL.Clusters.main.ThrottleThreshold: expected a number >= 0, got "abc"

Values of secret keys (passwords) are never rendered: L{describe_value} is
given C{secret=True} for them and says only what I{type} of value it saw.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import attr

#: Strings longer than this are shortened in messages.
_MAX_SHOWN = 60


@attr.s(auto_exc=True, auto_attribs=True, eq=False)
class ConfigError(Exception):
    """
    A configuration that cannot be used.

    @ivar file: where the bad value came from: a file name, C{"command line"},
        or a description of the files searched.
    @ivar key_path: the dotted key path, e.g.
        C{Stores.MySQL.Clusters.main.Port}, with C{[i]} for list items; C{""}
        when the problem concerns the configuration as a whole.
    @ivar problem: what is wrong, in words. Never contains a secret value.
    """

    file: str
    key_path: str
    problem: str

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.key_path) if p]
        text = ": ".join(parts + [self.problem])
        text = text.replace("\r", "\\r").replace("\n", "\\n")
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def format_path(parts: Sequence[str]) -> str:
    """
    Join key path components: C{("RaftNodes", "[2]")} is C{RaftNodes[2]},
    C{("Stores", "MySQL")} is C{Stores.MySQL}.
    """
    text = ""
    for part in parts:
        if part.startswith("[") or not text:
            text += part
        else:
            text += "." + part
    return text


def describe_value(value: Any, secret: bool = False) -> str:
    """
    Render a JSON value for an error message: C{"abc"}, C{-1}, C{true},
    C{NaN}, C{a list}, C{an object}.

    @param secret: when true, name only the kind of value, never the value.
    """
    kind = _kind(value)
    if secret:
        return f"{kind} (value hidden)"
    if isinstance(value, (list, dict)) or kind == "an object":
        return kind
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str) and len(value) > _MAX_SHOWN:
        value = value[:_MAX_SHOWN] + "..."
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "a huge integer"
    return json.dumps(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
