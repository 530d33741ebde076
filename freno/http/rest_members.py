# -*- test-case-name: test.unit.test_http_members,test.unit.test_http_openapi -*-
"""
L{MembersAPI}: the raft group's membership under C{/api/v1/members}
(C{docs/api.md}, C{docs/openapi.json}; the procedure in
L{freno.consensus.raft.changes}).

    GET    /api/v1/members             members, learners, change in progress
    POST   /api/v1/members             add a caught-up learner   (role: admin)
    DELETE /api/v1/members/{address}   remove a member           (role: admin)

A change answers only once its entry is committed, with the id of its
audit record (recorded in the replicated audit log when the entry is
applied, on every node alike). Only the leader takes a change. Errors are
the REST API's (L{freno.http.rest}), plus: 409 C{not_leader} (the
C{leader} field names the leader's raft address when known),
C{change_in_progress}, C{already_member}, C{learner_not_ready},
C{is_leader}, C{unsupported} (a backend without membership changes), and
404 C{not_member}.
"""

from __future__ import annotations

from typing import Optional, Sequence

from twisted.internet.defer import inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource

from freno.consensus.membership import (
    UNSUPPORTED,
    IMembership,
    MemberState,
    MembershipRefused,
)
from freno.http.auth import Authenticator
from freno.http.control import audit_context, log_committed, log_refused
from freno.http.rest import _klein
from freno.http.rest_errors import (
    install_common_errors,
    openapi_routes,
)
from freno.http.rest_io import (
    invalid,
    json_response,
    query_text,
    read_json_object,
    text_field,
)

#: The path of the collection (and the prefix of its items).
PREFIX = b"/api/v1/members"

#: The fields of C{POST /api/v1/members} (checked against the OpenAPI file).
MEMBER_FIELDS = ("address", "reason")


def member_json(member: MemberState) -> dict:
    """
    One member or learner as the API shows it.
    """
    return {
        "address": member.address,
        "voter": member.voter,
        "self": member.is_self,
        "leader": member.leader,
        "reachable": member.reachable,
        "match_index": member.match_index,
    }


class MembersAPI:
    """
    The C{/api/v1/members} routes.

    @param clock: audit times.
    @param membership: the backend's L{IMembership}, or C{None} (every
        route answers 409 C{unsupported}).
    @param authenticator: the tokens (changes need C{admin}).
    """

    app = _klein()
    _log = Logger()

    def __init__(
        self,
        *,
        clock: IReactorTime,
        membership: Optional[IMembership],
        authenticator: Optional[Authenticator] = None,
    ) -> None:
        self._clock = clock
        self._membership = membership
        self._auth = authenticator if authenticator is not None else Authenticator()

    def _backend(self) -> IMembership:
        if self._membership is None:
            raise MembershipRefused(
                UNSUPPORTED,
                "this consensus backend has no membership changes (only a raft group has)",
            )
        return self._membership

    @app.route("/api/v1/members", methods=["GET"])
    def list_members(self, request):
        """
        The members, the connected learners and the change in progress.
        """
        view = self._backend().membership()
        return json_response(
            request,
            200,
            {
                "members": [member_json(m) for m in view.members],
                "learners": [member_json(m) for m in view.learners],
                "pending": view.pending,
                "bootstrap": list(view.bootstrap),
                "commit_index": view.commit_index,
                "self_learner": view.self_learner,
            },
        )

    @app.route("/api/v1/members", methods=["POST"])
    @inlineCallbacks
    def add_member(self, request):
        """
        Add a learner that has caught up: C{{"address", "reason"}}.
        """
        caller = self._auth.require(request, "admin")
        body = read_json_object(request, MEMBER_FIELDS)
        address = body.get("address")
        if not isinstance(address, str) or not address:
            raise invalid("address", "must be a non-empty host:port string")
        reason = text_field(body.get("reason"), "reason")
        backend = self._backend()
        context = audit_context(self._clock, caller, request, {"address": address}, reason)
        applied = yield backend.add_member(address, context)
        log_committed(context, applied)
        return json_response(
            request, 200, {"added": address, "members": self._addresses(), "audit_id": applied.audit_id}
        )

    @app.route("/api/v1/members/<name:address>", methods=["DELETE"])
    @inlineCallbacks
    def remove_member(self, request, address):
        """
        Remove member C{address} (not the leader).
        """
        caller = self._auth.require(request, "admin")
        reason = query_text(request, "reason")
        backend = self._backend()
        context = audit_context(self._clock, caller, request, {"address": address}, reason)
        applied = yield backend.remove_member(address, context)
        log_committed(context, applied)
        return json_response(
            request, 200, {"removed": address, "members": self._addresses(), "audit_id": applied.audit_id}
        )

    def _addresses(self) -> list:
        return [m.address for m in self._backend().membership().members]

    # -- errors --------------------------------------------------------------

    @app.handle_errors(MembershipRefused)
    def _membership_refused(self, request, failure):
        error = failure.value
        if request.method not in (b"GET", b"HEAD"):
            log_refused(request, self._auth.identify(request).actor, error.status, str(error))
        detail = {"status": error.status, "code": error.code, "message": str(error)}
        if error.leader is not None:
            detail["leader"] = error.leader
        return json_response(request, error.status, {"error": detail})


install_common_errors(MembersAPI.app, "membership request", "membership change")


def member_routes() -> Sequence[tuple]:
    """
    Every C{(method, path)} of L{MembersAPI}, in OpenAPI form, HEAD left
    out.
    """
    return openapi_routes(MembersAPI.app)


def owns(path: bytes) -> bool:
    """
    Whether C{path} is one of L{MembersAPI}'s.
    """
    return path == PREFIX or path.startswith(PREFIX + b"/")


class MembersResource(Resource):
    """
    The leaf resource serving L{MembersAPI}.
    """

    isLeaf = True

    def __init__(self, api: MembersAPI) -> None:
        super().__init__()
        self._klein = api.app.resource()

    def render(self, request):
        return self._klein.render(request)
