# -*- test-case-name: test.unit.test_client_answers -*-
"""
The values the client returns: L{CheckResult} for a check, L{Throttle} and
L{Skip} for listings, L{ControlResult} for a mutation, and the errors it
raises.

Frozen dataclasses rather than attrs classes (the house style): this package
imports nothing outside the standard library, so that any script can use it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional

#: L{CheckResult.kind}: freno answered 200 (or the client failed open).
ALLOWED = "allowed"
#: L{CheckResult.kind}: freno answered 429 (lag above threshold) or 417 (the
#: app is throttled, or a low-priority check was refused).
THROTTLED = "throttled"
#: L{CheckResult.kind}: no decision: no answer, no leader, no such cluster,
#: no metric yet, a probe error, a bad request.
ERROR = "error"


def kind_of(status: int) -> str:
    """
    The kind of a check answer's HTTP status: L{ALLOWED} for 200 only,
    L{THROTTLED} for 429 and 417, L{ERROR} for anything else (0 meaning no
    answer).
    """
    if status == 200:
        return ALLOWED
    if status in (417, 429):
        return THROTTLED
    return ERROR


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """
    The answer to one check.

    @ivar status: the HTTP status that decided (0 when no node answered).
    @ivar kind: L{ALLOWED}, L{THROTTLED} or L{ERROR} (see L{kind_of}).
    @ivar value: the metric's value (lag in seconds), when known.
    @ivar threshold: the threshold it was compared with, when known.
    @ivar reason: why, in words: freno's C{X-Freno-Reason}, else the body's
        C{Message}, else the status's reason phrase, or what went wrong.
    @ivar data_age_ms: how old the value was, in milliseconds, when the
        server says (C{X-Freno-Data-Age-Ms}).
    @ivar retry_after: seconds the server asked us to wait before asking
        again (C{X-Freno-Retry-After-Ms} or C{Retry-After}), if it did.
    @ivar store: the store that decided (C{X-Freno-Store}; multi-store checks).
    @ivar node: the base URL of the node that answered, if any.
    @ivar leader: C{X-Freno-Leader} read into a dict (C{node}, C{leader},
        C{term}), if sent.
    @ivar failed_open: true when no node could answer for longer than the
        client's C{fail_open_after} and the client allowed the write anyway.
    """

    status: int
    kind: str
    value: Optional[float] = None
    threshold: Optional[float] = None
    reason: str = ""
    data_age_ms: Optional[int] = None
    retry_after: Optional[float] = None
    store: Optional[str] = None
    node: Optional[str] = None
    leader: Optional[Mapping[str, Any]] = None
    failed_open: bool = False

    @property
    def allowed(self) -> bool:
        """
        Whether the caller may write now.
        """
        return self.kind == ALLOWED

    @property
    def throttled(self) -> bool:
        """
        Whether freno said no (429 or 417).
        """
        return self.kind == THROTTLED

    def to_json(self) -> Dict[str, Any]:
        """
        A JSON-ready dict of every field, plus C{allowed}.
        """
        data = dataclasses.asdict(self)
        data["leader"] = dict(self.leader) if self.leader is not None else None
        data["allowed"] = self.allowed
        return data


@dataclasses.dataclass(frozen=True)
class Throttle:
    """
    One throttled app, from C{GET /api/v1/throttles} or freno's
    C{/throttled-apps}.

    @ivar key: C{app}, or C{app/store} for a store-scoped throttle.
    @ivar expires_at_unix: POSIX seconds, or L{None} for "never".
    @ivar reason, actor, audit_id: from the REST API only (L{None} from
        freno's routes).
    """

    key: str
    app: str
    store: Optional[str]
    ratio: float
    expires_at_unix: Optional[float]
    reason: Optional[str] = None
    actor: Optional[str] = None
    audit_id: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Skip:
    """
    One skipped host, from C{GET /api/v1/skips} or freno's C{/skipped-hosts}.
    """

    host: str
    expires_at_unix: Optional[float]
    reason: Optional[str] = None
    actor: Optional[str] = None
    audit_id: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class ControlResult:
    """
    The answer to a mutation (throttle, unthrottle, skip, recover).

    @ivar via: C{"rest"} (C{/api/v1}) or C{"freno"} (freno's GET routes).
    @ivar node: the base URL of the node that answered.
    @ivar body: the answer's JSON (the REST answer, or freno's generic
        C{{"StatusCode": 200, "Message": "OK"}}).
    @ivar removed: for unthrottle and recover through the REST API: whether
        there was something to remove.
    @ivar audit_id: the audit record's id (REST API only).
    """

    via: str
    node: str
    body: Any
    removed: Optional[bool] = None
    audit_id: Optional[int] = None


class FrenoError(Exception):
    """
    Base class of the client's errors.
    """


class FrenoUnavailable(FrenoError):
    """
    No node gave a usable answer: none answered, or each answered that it
    could not do it now (5xx). C{attempts} maps each base URL tried to what
    happened there.
    """

    def __init__(self, message: str, attempts: Mapping[str, str]) -> None:
        super().__init__(message)
        self.attempts = dict(attempts)


class FrenoAPIError(FrenoError):
    """
    A node refused the request (4xx): a bad parameter, a missing or weak
    token, ...

    @ivar status: the HTTP status.
    @ivar code: the REST API's error code (C{invalid_parameter},
        C{unauthenticated}, ...), or L{None} from freno's routes.
    @ivar field: the field a 400 names, if any.
    @ivar node: the base URL of the node that answered.
    """

    def __init__(
        self,
        message: str,
        status: int,
        code: Optional[str] = None,
        field: Optional[str] = None,
        node: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field
        self.node = node


class RouteNotServed(FrenoAPIError):
    """
    The node does not serve this route at all (an older freno: no
    C{/api/v1}, no C{/explain}).
    """


class NotAllowed(FrenoError):
    """
    L{freno.client.FrenoClient.wait_until_allowed} gave up: the deadline
    passed (or the server asked us to wait beyond it) without a 200.

    @ivar result: the last L{CheckResult}.
    @ivar waited: seconds spent waiting.
    @ivar attempts: how many checks were made.
    """

    def __init__(self, result: CheckResult, waited: float, attempts: int) -> None:
        super().__init__(
            f"not allowed after {waited:.1f}s and {attempts} check(s): "
            f"{result.status or 'no answer'} {result.reason}".rstrip()
        )
        self.result = result
        self.waited = waited
        self.attempts = attempts
