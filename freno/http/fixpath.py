# -*- test-case-name: test.unit.test_http_redirects -*-
"""
L{PathFixer}: the canonical path for a request path that matched no route,
as freno's router (julienschmidt/httprouter v1.3, C{RedirectTrailingSlash}
and C{RedirectFixedPath}) finds it, for the redirect (301 on GET, 307
otherwise; L{freno.http.responses.redirect} writes it).

A path is fixed when it matches a route pattern with the fixed segments
compared case-insensitively, with or without one trailing slash:
C{/LB-CHECK} and C{/lb-check/} become C{/lb-check}, C{/CHECK/App/mysql/Main}
becomes C{/check/App/mysql/Main} (parameters keep the case given). Matching
is on the percent-decoded path (C{%2F} separates segments, as everywhere in
this API) and the canonical path is percent-encoded again as Go's
C{url.URL.String} does, so C{/LB-CHECK} with a query keeps its query and a
parameter with a space is sent back as C{%20}.

I{Decision} (docs/decisions.md, D12): freno's router also cleaned the path
first (C{CleanPath}: C{//}, C{/./} and C{/../} removed); that is not done
here, since an empty segment is a valid (empty) parameter in this API and
C{..} a possible name.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote, unquote_to_bytes

#: What Go's path escaping leaves as is, besides letters, digits and C{-_.~}.
_PATH_SAFE = "/$&+,:;=@"

#: A compiled pattern: per segment the lower-cased literal, or C{None} for a
#: parameter; and the literal segments as registered.
_Pattern = Tuple[Tuple[Optional[str], ...], Tuple[str, ...]]


def _compile(pattern: str) -> _Pattern:
    segments = pattern.split("/")
    lowered = tuple(
        None if segment.startswith((":", "<")) else segment.lower() for segment in segments
    )
    return lowered, tuple(segments)


class PathFixer:
    """
    Finds the canonical form of a path among route patterns.

    @param patterns: route patterns in httprouter's syntax (C{/skip-host/:hostName})
        or werkzeug's (C{/skip-host/<seg:host>}); a parameter is one whole
        segment.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self._by_length: Dict[int, List[_Pattern]] = {}
        for pattern in patterns:
            compiled = _compile(pattern)
            self._by_length.setdefault(len(compiled[0]), []).append(compiled)

    def _match(self, segments: List[str]) -> Optional[str]:
        for lowered, literal in self._by_length.get(len(segments), ()):
            for want, got in zip(lowered, segments):
                if want is not None and want != got.lower():
                    break
            else:
                return "/".join(
                    got if want is None else canonical
                    for want, canonical, got in zip(lowered, literal, segments)
                )
        return None

    def fixed(self, path: bytes) -> Optional[bytes]:
        """
        The canonical path (percent-encoded, no query) that C{path} (raw,
        without query) should redirect to, or C{None} when there is none or
        C{path} is already canonical.
        """
        try:
            text = unquote_to_bytes(path).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not text.startswith("/"):
            return None
        segments = text.split("/")
        canonical = self._match(segments)
        if canonical is None and len(segments) > 2 and segments[-1] == "":
            canonical = self._match(segments[:-1])
        if canonical is None or canonical == text:
            return None
        return quote(canonical, safe=_PATH_SAFE).encode("ascii")


__all__ = ["PathFixer"]
