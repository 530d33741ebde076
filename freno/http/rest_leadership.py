# -*- test-case-name: test.unit.test_http_rest_leadership,test.unit.test_http_openapi -*-
"""
L{LeadershipAPI}: C{POST /api/v1/leadership/transfer}, the on-demand
leadership hand-off (C{docs/handoff.md}; C{docs/api.md} and
C{docs/openapi.json} document it).

Send it to the leader (through HAProxy it reaches the leader). The body is
optional: C{{"to": "host:port", "reason": "..."}}; without C{to} the best
up-to-date follower is chosen. Role: C{admin} when tokens are configured.
The request is recorded in the replicated audit log (a
L{RecordTransfer <freno.consensus.commands.RecordTransfer>} command,
committed before the hand-off starts), then the hand-off runs, bounded
(L{freno.consensus.raft.handoff.HANDOFF_BOUND}). Answers:

    - 200 C{{"from", "to", "seconds", "audit_id"}}: another member leads;
    - 400 C{invalid_parameter} (C{to} is not another member, bad body);
    - 401/403 as every mutation;
    - 409 C{not_leader} (the message and C{error.leader} name the leader
      when known),
      C{unsupported} (a group of one, or a backend without raft),
      C{in_progress}: nothing was recorded or changed;
    - 503 C{no_target} (no follower was up to date within the bound),
      C{timed_out} (one was asked but no new leader was seen),
      C{not_leader}/C{no_quorum}/C{commit_timeout} (the audit record could
      not be committed): with C{Retry-After}; this node still leads unless
      the message says otherwise.
"""

from __future__ import annotations

from typing import Optional, Sequence

from klein import Klein
from twisted.internet.defer import inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource

from freno.consensus.commands import RecordTransfer
from freno.consensus.interface import (
    IConsensusService,
)
from freno.consensus.transfer import HandoffRefused, ILeadershipTransfer
from freno.http.auth import Authenticator
from freno.http.control import audit_context, log_committed, log_refused
from freno.http.rest_errors import (
    install_common_errors,
    RETRY_AFTER,
    openapi_routes,
)
from freno.http.rest_io import (
    RestError,
    error_response,
    invalid,
    json_response,
    read_json_object,
    text_field,
)

#: The prefix of the leadership routes.
PREFIX = b"/api/v1/leadership"
#: The fields the transfer body may hold (C{docs/openapi.json} documents the same).
TRANSFER_FIELDS = ("to", "reason")

_REFUSED_STATUS = {"unknown_member": 400}


class LeadershipAPI:
    """
    The C{/api/v1/leadership} routes.

    @param clock: the time source (audit times).
    @param consensus: the consensus service; transfers need it to provide
        L{ILeadershipTransfer}.
    @param authenticator: the tokens.
    """

    app = Klein()
    app.url_map.strict_slashes = False
    _log = Logger()

    def __init__(
        self,
        *,
        clock: IReactorTime,
        consensus: IConsensusService,
        authenticator: Optional[Authenticator] = None,
    ) -> None:
        self._clock = clock
        self._consensus = consensus
        self._auth = authenticator if authenticator is not None else Authenticator()

    def _body(self, request) -> dict:
        length = request.getHeader(b"content-length")
        if request.getHeader(b"content-type") is None and length in (None, b"0"):
            return {}  # `curl -X POST` with no body: the best follower
        return read_json_object(request, TRANSFER_FIELDS)

    @app.route("/api/v1/leadership/transfer", methods=["POST"])
    @inlineCallbacks
    def transfer(self, request):
        """
        Hand leadership to C{to}, or to the best up-to-date follower.
        """
        caller = self._auth.require(request, "admin")
        body = self._body(request)
        target = text_field(body.get("to"), "to")
        if target is not None and not target:
            raise invalid("to", "must be a member's host:port, or absent")
        reason = text_field(body.get("reason"), "reason")
        if not ILeadershipTransfer.providedBy(self._consensus):
            raise HandoffRefused("unsupported", "this backend has no leadership to hand off")
        transfer = self._consensus
        transfer.check_transfer(target)
        source = self._consensus.status().ServiceID
        context = audit_context(self._clock, caller, request, {"to": target}, reason)
        applied = yield self._consensus.submit(RecordTransfer(source, target, context))
        log_committed(context, applied)
        result = yield transfer.transfer_leadership(target)
        if not result.transferred:
            message = {
                "no_target": "no follower was up to date within the bound; this node still leads",
                "timed_out": f"{result.target} was asked to stand but no new leader was seen",
            }.get(result.outcome, f"hand-off ended: {result.outcome}")
            raise RestError(
                503,
                result.outcome,
                f"{message} (audit {applied.audit_id})",
                headers={b"retry-after": RETRY_AFTER},
            )
        return json_response(
            request,
            200,
            {
                "from": source,
                "to": result.leader,
                "seconds": round(result.seconds, 3),
                "audit_id": applied.audit_id,
            },
        )

    # -- errors --------------------------------------------------------------

    @app.handle_errors(HandoffRefused)
    def _refused_handoff(self, request, failure):
        error = failure.value
        status = _REFUSED_STATUS.get(error.code, 409)
        log_refused(request, self._auth.identify(request).actor, status, str(error))
        if status == 400:
            return error_response(request, invalid("to", str(error)))
        detail = {"status": status, "code": error.code, "message": str(error)}
        if error.leader is not None:
            detail["leader"] = error.leader  # as the members routes do
        return json_response(request, status, {"error": detail})


install_common_errors(LeadershipAPI.app, "leadership request", "transfer record")


def leadership_routes() -> Sequence[tuple]:
    """
    Every C{(method, path)} L{LeadershipAPI} routes, HEAD and OPTIONS left
    out.
    """
    return openapi_routes(LeadershipAPI.app)


class LeadershipResource(Resource):
    """
    The leaf resource serving L{LeadershipAPI}.
    """

    isLeaf = True

    def __init__(self, api: LeadershipAPI) -> None:
        super().__init__()
        self._klein = api.app.resource()

    def render(self, request):
        return self._klein.render(request)
