# -*- test-case-name: test.unit.test_config_resolve,test.unit.test_config -*-
"""
C{${NAME}} expansion of configuration strings.

freno replaced the I{whole} value by the variable when the value contained a
C{${NAME}} anywhere (C{"pre-${X}"} became the value of C{X}), and used C{""}
for an unset variable, except in C{HAProxySettings.Addresses}, where it
substituted every occurrence in place and refused unset or empty variables.

We substitute every occurrence in place for every expanded key
(docs/decisions.md, D42). For the usual
whole-value use (C{"${MYSQL_PASSWORD}"}) this is identical to freno; for a
value with text around the reference it does what the text says. An unset
variable is an error everywhere (freno silently used C{""}, which for a
password means connecting without one). A variable set to C{""} expands to
C{""}, except in C{HAProxySettings.Addresses}, where freno's error is kept.
"""

from __future__ import annotations

import re
from typing import Mapping

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class EnvironmentProblem(ValueError):
    """
    A reference that cannot be expanded. Its message never contains the
    string being expanded, only the variable name.
    """


def expand(text: str, environ: Mapping[str, str], allow_empty: bool = True) -> str:
    """
    Replace every C{${NAME}} in C{text} by C{environ[NAME]}.

    @param allow_empty: when false, a variable set to C{""} is an error too.
    @raise EnvironmentProblem: an unset (or, with C{allow_empty} false,
        empty) variable, or a malformed name such as C{${}}.
    """

    def replace(match: "re.Match[str]") -> str:
        name = match.group(1)
        if not _NAME.match(name):
            raise EnvironmentProblem("malformed environment variable reference (expected ${NAME})")
        if name not in environ:
            raise EnvironmentProblem(f"environment variable {name} is not set")
        value = environ[name]
        if not value and not allow_empty:
            raise EnvironmentProblem(f"environment variable {name} is empty")
        return value

    return _REFERENCE.sub(replace, text)
