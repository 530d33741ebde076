# -*- test-case-name: test.unit.test_http_auth,test.unit.test_http_rest -*-
"""
What every mutation route shares, on freno's routes and the REST API alike:
building the L{AuditContext} a command carries, writing the structured
audit log, and the refusals freno's routes answer (L{GetMutationsDisabled},
L{error_generic_body}).

Every mutation is logged once, on the node that accepted it, under the
namespace C{freno.audit} (at C{info}; L{freno.logs} always writes that
namespace, whatever the level): committed ones with their audit id and
outcome, refused ones (401, 403, 400, 405) with the reason of the refusal.
Refused requests are I{only} logged: they are never replicated, so a client
without a token cannot fill the replicated audit log. Tokens never appear:
the actor names the token.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from freno.consensus.audit import Applied
from freno.consensus.commands import MAX_ROUTE_LENGTH, AuditContext, check_reason
from freno.http.auth import Caller
from freno.http.responses import generic_body

#: The structured audit log.
AUDIT_LOG = Logger(namespace="freno.audit")

#: The REST route replacing each kind of freno mutation route.
REST_ROUTES = {
    "throttle": "POST /api/v1/throttles",
    "unthrottle": "DELETE /api/v1/throttles/{app}",
    "skip": "POST /api/v1/skips",
    "recover": "DELETE /api/v1/skips/{host}",
}


class GetMutationsDisabled(Exception):
    """
    A freno GET mutation route was called with C{AllowGetMutations} false.

    @param kind: C{throttle}, C{unthrottle}, C{skip} or C{recover}.
    @ivar rest_route: the REST route to use instead.
    """

    def __init__(self, kind: str) -> None:
        rest_route = REST_ROUTES[kind]
        super().__init__(
            f"GET mutation routes are disabled (AllowGetMutations is false): use {rest_route}"
        )
        self.rest_route = rest_route


def error_generic_body(status: int, code: str, message: str) -> bytes:
    """
    freno's generic body with our C{"error"} object added (a refused mutation
    on freno's routes: old scripts read C{StatusCode} and C{Message}, new
    tools the same error object as the REST API's).
    """
    error = json.dumps({"status": status, "code": code, "message": message})
    return generic_body(status, f"{code}: {message}")[:-2] + b',"error":' + error.encode() + b"}\n"


def route_of(request) -> str:
    """
    C{"<METHOD> <decoded path>"}, at most L{MAX_ROUTE_LENGTH} characters.
    """
    method = request.method.decode("ascii", "replace")
    path = unquote_to_bytes(request.path).decode("utf-8", "replace")
    route = f"{method} {path}"
    if len(route) > MAX_ROUTE_LENGTH:
        route = route[: MAX_ROUTE_LENGTH - 3] + "..."
    return route


#: The longest text a parameter keeps in an audit record (names may be of any
#: length; the record is bounded: docs/decisions.md, D56).
MAX_PARAM_TEXT = 256


def _shortened(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_PARAM_TEXT:
        return f"{value[:MAX_PARAM_TEXT]}...(+{len(value) - MAX_PARAM_TEXT} characters)"
    return value


def audit_context(
    clock: IReactorTime,
    caller: Caller,
    request,
    params: Mapping[str, Any],
    reason: Optional[str],
) -> AuditContext:
    """
    The audit context of a mutation: the caller, the route, the parameters
    (a text longer than L{MAX_PARAM_TEXT} characters, such as a very long
    app name, is kept shortened, with its length), the reason, and this
    node's time.

    @raise freno.consensus.commands.InvalidCommand: a bad C{reason}.
    """
    check_reason(reason)
    shortened = {name: _shortened(value) for name, value in params.items()}
    return AuditContext(clock.seconds(), caller.actor, route_of(request), shortened, reason)


def log_committed(context: AuditContext, applied: Applied) -> None:
    """
    Log a committed mutation (its audit record).
    """
    outcome = "applied" if applied.refused is None else f"refused: {applied.refused}"
    AUDIT_LOG.info(
        "audit {audit_id}: {actor} {route} {outcome}",
        audit_id=applied.audit_id,
        actor=context.actor,
        route=context.route,
        params=dict(context.params),
        reason=context.reason,
        outcome=outcome,
        committed_at=context.time,
    )


def log_refused(request, actor: str, status: int, why: str) -> None:
    """
    Log a mutation refused before any command was sent.
    """
    AUDIT_LOG.info(
        "refused {status}: {actor} {route}: {why}",
        status=status,
        actor=actor,
        route=route_of(request),
        why=why,
    )
