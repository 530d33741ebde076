# -*- test-case-name: test.unit.test_http_rest,test.unit.test_http_members,test.unit.test_http_rest_leadership -*-
"""
The error answers every C{/api/v1} Klein app gives alike (the throttles and
skips API in L{freno.http.rest}, the members routes in
L{freno.http.rest_members}, the leadership transfer in
L{freno.http.rest_leadership}): a refused token, a command that was not
committed, an unknown route, a method the route does not take, a bad
command, and an unexpected failure. L{install_common_errors} registers
the shared ones on each app after its own, so the bodies, status codes and
headers stay one definition. The shapes are in C{docs/api.md}.
"""

from __future__ import annotations

from typing import Iterable, List, Tuple

from twisted.logger import Logger
from twisted.python.failure import Failure
from werkzeug.exceptions import MethodNotAllowed, NotFound

from freno.consensus.commands import InvalidCommand
from freno.consensus.interface import CommitTimeoutError, ConsensusError, NotLeaderError
from freno.http.auth import AuthError
from freno.http.control import log_refused
from freno.http.rest_io import RestError, error_response, invalid

RETRY_AFTER = b"1"
"""
C{Retry-After} on a command that was not committed: a new leader is
usually elected well within a second.
"""


def auth_refused(request, error: AuthError) -> bytes:
    """
    401 (with C{WWW-Authenticate}) or 403 for a missing, wrong or
    under-privileged token, logged as refused.
    """
    log_refused(request, error.actor, error.status, error.message)
    headers = {b"www-authenticate": b'Bearer realm="freno"'} if error.status == 401 else {}
    return error_response(request, RestError(error.status, error.code, error.message, headers=headers))


def refused_request(request, actor: str, error: RestError) -> bytes:
    """
    The answer a handler's L{RestError} names; a 400 to a mutation (any
    method but GET and HEAD) is logged as refused.
    """
    if request.method not in (b"GET", b"HEAD") and error.status == 400:
        log_refused(request, actor, 400, error.message)
    return error_response(request, error)


def invalid_command(request, actor: str, error: InvalidCommand, why: str = "") -> bytes:
    """
    400 naming the field of a command the state machine refused, logged as
    refused (with C{why} instead of the error's text when given).
    """
    log_refused(request, actor, 400, why or str(error))
    return error_response(request, invalid(error.parameter, error.problem))


def not_committed(request, error: ConsensusError, log: Logger, what: str) -> bytes:
    """
    503 with C{Retry-After} for a command that was not committed:
    C{not_leader}, C{commit_timeout} or C{no_quorum}.

    @param what: what was not committed, for the warning logged.
    """
    if isinstance(error, NotLeaderError):
        code = "not_leader"
    elif isinstance(error, CommitTimeoutError):
        code = "commit_timeout"
    else:
        code = "no_quorum"
    log.warn("{what} not committed: {error}", what=what, error=str(error), path=request.path)
    return error_response(request, RestError(503, code, str(error), headers={b"retry-after": RETRY_AFTER}))


def route_not_found(request) -> bytes:
    """
    404 C{not_found} for a path no route matches.
    """
    return error_response(request, RestError(404, "not_found", "no such route"))


def method_not_allowed(request, valid_methods: Iterable[str]) -> bytes:
    """
    The answer to C{OPTIONS} (200 with C{Allow}), or 405 with C{Allow} for
    any other method the route does not take.
    """
    allow = ", ".join(sorted(set(valid_methods or ()) | {"OPTIONS"})).encode("ascii")
    if request.method == b"OPTIONS":
        request.setHeader(b"allow", allow)
        request.setResponseCode(200)
        request.setHeader(b"content-length", b"0")
        return b""
    message = f"{request.method.decode('ascii', 'replace')} is not allowed here"
    return error_response(request, RestError(405, "method_not_allowed", message, headers={b"allow": allow}))


def internal_error(request, failure: Failure, log: Logger, what: str) -> bytes:
    """
    500 C{internal} for an unexpected failure, logged with its traceback
    (never shown to the client).
    """
    log.failure("{what} failed", failure, what=what, path=request.path)
    return error_response(request, RestError(500, "internal", "internal error"))


def install_common_errors(app, what: str, command: str) -> None:
    """
    Register on the Klein C{app} the error answers every C{/api/v1} app
    gives alike: a L{RestError} a handler raised, a refused token, a
    command not committed or refused by the state machine, an unknown
    route, a method the route does not take, and (last, as the catch-all)
    an unexpected failure. Call it after the class body, so that the app's
    own handlers (its refusals, a finer answer to L{InvalidCommand}) are
    tried first: Klein tries handlers in the order they were registered.

    @param app: the class's C{Klein} app; its instances have a C{_log} and
        an C{_auth} (a L{freno.http.auth.Authenticator}).
    @param what: what a request to this app is, for the log of an
        unexpected failure (C{"REST request"}, ...).
    @param command: what this app commits, for the log of a command not
        committed (C{"command"}, C{"membership change"}, ...).
    """

    @app.handle_errors(RestError)
    def _rest_error(api, request, failure):
        return refused_request(request, api._auth.identify(request).actor, failure.value)

    @app.handle_errors(InvalidCommand)
    def _invalid(api, request, failure):
        return invalid_command(request, api._auth.identify(request).actor, failure.value)

    @app.handle_errors(AuthError)
    def _refused(api, request, failure):
        return auth_refused(request, failure.value)

    @app.handle_errors(ConsensusError)
    def _not_committed(api, request, failure):
        return not_committed(request, failure.value, api._log, command)

    @app.handle_errors(NotFound)
    def _not_found(api, request, failure):
        return route_not_found(request)

    @app.handle_errors(MethodNotAllowed)
    def _method_not_allowed(api, request, failure):
        return method_not_allowed(request, failure.value.valid_methods)

    @app.handle_errors(Exception)
    def _internal(api, request, failure):
        return internal_error(request, failure, api._log, what)


def openapi_routes(app) -> List[Tuple[str, str]]:
    """
    Every C{(method, path)} a Klein app routes, paths in OpenAPI form
    (C{/api/v1/throttles/{app}}), C{HEAD} and C{OPTIONS} left out.
    """
    routes = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<name:", "{").replace(">", "}")
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                routes.add((method, path))
    return sorted(routes)
