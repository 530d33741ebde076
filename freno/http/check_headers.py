# -*- test-case-name: test.unit.test_check_headers -*-
"""
The headers of every check answer (GET and HEAD, all four check routes;
docs/compatibility.md, "Check answer headers"; docs/decisions.md, D58 and
D59):

    - C{X-Freno-Reason}: L{freno.throttle.reasons.reason_text};
    - C{X-Freno-Value}, C{X-Freno-Threshold}: the body's C{Value} and
      C{Threshold}, as Go-style number text;
    - C{X-Freno-Store}: the store (cluster) that decided, when a store was
      reached (a multi-store check names the one that decided);
    - C{X-Freno-Data-Age-Ms}: how old the value compared is, in whole
      milliseconds (only when a value was compared: 200, 429, a stale 500);
    - C{Retry-After} (whole seconds, at least 1) and C{X-Freno-Retry-After-Ms}
      (precise) on 429 and 417 (L{Explanation.retry_after_at});
    - C{X-Freno-Leader}: C{node=<id>; leader=<true|false>; term=<n>}, the
      node that answered, whether it leads, and the raft term (left out on a
      backend without terms: the MySQL backend and the in-memory one).

Everything but the data's age, a retry that ends sooner than its usual
wait (a throttle expiring within the minute) and the leadership header is
a function of the L{CheckResult} alone, so
each distinct result's block of headers is rendered once and cached
(bounded in count, and only for results whose names are short, as the
bodies of L{freno.http.responses.check_result_body}); the
rest costs one clock read and an integer's formatting per request.

The cached block goes into the response's headers with one dict update
(L{write_check_headers}). Setting eight headers one by one through
C{Headers.setRawHeaders} cost about 9 us a request, some 10 % of the check
path's throughput; so the block's names are Twisted's own canonical forms
(taken from a real L{Headers} at import) and its values tuples that
nothing can append to, and the update writes them into the response's
header dict directly. Should a Twisted release store headers differently,
L{write_check_headers} falls back to C{setRawHeaders}.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

from twisted.web.http_headers import Headers

from freno.http.gojson import go_float
from freno.throttle.reasons import clean, reason_text
from freno.throttle.result import NOT_LEADER_KIND, CheckResult


def _canonical(name: bytes) -> bytes:
    headers = Headers()
    headers.setRawHeaders(name, [b""])
    return next(iter(headers.getAllRawHeaders()))[0]


REASON = _canonical(b"x-freno-reason")
VALUE = _canonical(b"x-freno-value")
THRESHOLD = _canonical(b"x-freno-threshold")
STORE = _canonical(b"x-freno-store")
DATA_AGE = _canonical(b"x-freno-data-age-ms")
RETRY_AFTER = _canonical(b"retry-after")
RETRY_AFTER_MS = _canonical(b"x-freno-retry-after-ms")
LEADER = _canonical(b"x-freno-leader")

Block = Dict[bytes, Tuple[bytes, ...]]

_BLOCK_CACHE_SIZE = 4096
#: Rendered header blocks by result (bounded by L{_BLOCK_CACHE_SIZE}).
_BLOCKS: Dict[CheckResult, Block] = {}
#: Results naming longer stores or throttle keys are rendered at each answer
#: rather than cached, so that long names cannot fill memory.
CACHED_NAME_LENGTH = 512


def cacheable(result: CheckResult) -> bool:
    """
    Whether C{result}'s renderings may be cached: its names are short.
    """
    why = result.explanation
    return len(why.store) + len(why.key) <= CACHED_NAME_LENGTH


def _text(text: str) -> bytes:
    return clean(text).encode("utf-8", "surrogateescape")


def retry_headers(seconds: float) -> Block:
    """
    C{Retry-After} (whole seconds, rounded up, at least 1) and
    C{X-Freno-Retry-After-Ms} (rounded to the millisecond) for a wait of
    C{seconds}.
    """
    whole = max(1, math.ceil(seconds))
    return {
        RETRY_AFTER: (b"%d" % (whole,),),
        RETRY_AFTER_MS: (b"%d" % (round(seconds * 1000),),),
    }


def header_block(result: CheckResult) -> Block:
    """
    The headers of C{result} that depend on it alone (cached).
    """
    block = _BLOCKS.get(result)
    if block is None:
        why = result.explanation
        block = {
            REASON: (_text(reason_text(result)),),
            VALUE: (go_float(result.value).encode("ascii"),),
            THRESHOLD: (go_float(result.threshold).encode("ascii"),),
        }
        if why.store:
            block[STORE] = (_text(why.store),)
        if why.retry_after is not None:
            block.update(retry_headers(why.retry_after))
        if cacheable(result):
            if len(_BLOCKS) >= _BLOCK_CACHE_SIZE:
                _BLOCKS.clear()
            _BLOCKS[result] = block
    return block


class LeaderHeader:
    """
    The C{X-Freno-Leader} value of this node, cached per (leads, term).

    @param node_id: this node's id (C{consensus.status().ServiceID}); a
        callable is called once, at the first answer.
    @param term: a callable giving the current raft term, or C{None} for a
        backend without terms.
    """

    def __init__(self, node_id, term: Optional[Callable[[], int]] = None) -> None:
        self._node_id = node_id
        self._term = term
        self._values: Dict[object, Tuple[bytes, ...]] = {}

    @classmethod
    def of(cls, consensus) -> "LeaderHeader":
        """
        The header of the node whose consensus service is C{consensus}: its
        C{status().ServiceID}, and its C{term()} when it has one (raft).
        """
        term = getattr(consensus, "term", None)
        return cls(lambda: consensus.status().ServiceID, term if callable(term) else None)

    def value(self, leads: bool) -> Tuple[bytes, ...]:
        """
        The header's value (as a header value tuple) for a node that leads
        or not.
        """
        term = self._term() if self._term is not None else None
        key = (leads, term) if term is not None else leads
        value = self._values.get(key)
        if value is None:
            if callable(self._node_id):
                self._node_id = self._node_id()
            text = f"node={clean(self._node_id) or 'unknown'}; leader={'true' if leads else 'false'}"
            if term is not None:
                text += f"; term={term}"
            value = self._values[key] = (text.encode("utf-8", "surrogateescape"),)
            if len(self._values) > 64:
                self._values = {key: value}
        return value


def write_check_headers(request, result: CheckResult, now: float, leader: LeaderHeader) -> None:
    """
    Put every check-answer header of C{result} on C{request}'s response
    (see the module docstring).
    """
    why = result.explanation
    headers = request.responseHeaders
    raw = getattr(headers, "_rawHeaders", None)
    if type(raw) is not dict:
        _write_slowly(headers, result, now, leader)
        return
    raw.update(header_block(result))
    measured_at = why.measured_at
    if measured_at is not None:
        raw[DATA_AGE] = (b"%d" % (max(0, round((now - measured_at) * 1000)),),)
    until = why.retry_until
    if until is not None and why.retry_after is not None and until - now < why.retry_after:
        raw.update(retry_headers(why.retry_after_at(now)))
    raw[LEADER] = leader.value(why.kind != NOT_LEADER_KIND)


def _write_slowly(headers: Headers, result: CheckResult, now: float, leader: LeaderHeader) -> None:
    """
    L{write_check_headers} through the public C{setRawHeaders}.
    """
    why = result.explanation
    for name, values in header_block(result).items():
        headers.setRawHeaders(name, list(values))
    if why.measured_at is not None:
        headers.setRawHeaders(DATA_AGE, [b"%d" % (max(0, round((now - why.measured_at) * 1000)),)])
    until = why.retry_until
    if until is not None and why.retry_after is not None and until - now < why.retry_after:
        for name, values in retry_headers(why.retry_after_at(now)).items():
            headers.setRawHeaders(name, list(values))
    headers.setRawHeaders(LEADER, list(leader.value(why.kind != NOT_LEADER_KIND)))
