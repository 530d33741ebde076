# -*- test-case-name: test.unit.test_client_routes,test.unit.test_client -*-
"""
Which route a mutation or a listing takes, shared by both client flavours.

With C{api="auto"} (the default) the REST API (C{/api/v1}) is used when the
client has a token, and freno's own GET routes otherwise, which every freno
serves; C{api="rest"} and C{api="freno"} force one. A token is sent on
freno's routes too (a server with C{ControlTokens} needs it there).

Differences a caller may notice:

- freno's routes count TTLs in whole minutes: another TTL raises
  L{DurationError<freno.client.durations.DurationError>} rather than being
  rounded;
- a reason travels as C{?reason=} on freno's routes (servers with an audit
  log record it, older ones ignore it), in the body on the REST API;
- the REST API answers with the entry, its expiry and the audit id, and says
  whether an unthrottle or recover removed anything.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple, Union

from freno.client import answers, routes
from freno.client.durations import parse_ttl
from freno.client.result import ControlResult, Skip, Throttle
from freno.client.routes import Request

#: The values of the C{api} option.
API_CHOICES = ("auto", "rest", "freno")

TTL = Union[str, int, float, None]


def check_api(api: str) -> str:
    """
    @raise ValueError: not one of L{API_CHOICES}.
    """
    if api not in API_CHOICES:
        raise ValueError(f"api: must be one of {', '.join(API_CHOICES)}, got {api!r}")
    return api


def uses_rest(api: str, token: Optional[str]) -> bool:
    """
    Whether mutations and listings go through the REST API.
    """
    return api == "rest" or (api == "auto" and bool(token))


def _rest_ttl(ttl: TTL) -> Union[str, float, None]:
    """
    A validated TTL as the REST API takes it: a duration string as written
    (so the audit log shows it), or seconds (for numbers, and for strings
    without a unit, which the REST API does not read as seconds).
    """
    seconds = parse_ttl(ttl)
    if seconds is None:
        return None
    if isinstance(ttl, str) and ttl.strip()[-1:] in ("d", "h", "m", "s"):
        return ttl.strip()
    return seconds


def throttle(api: str, token: Optional[str], app: str, ttl: TTL, ratio: Optional[float],
             reason: Optional[str], store: Optional[str]) -> Request:
    """
    The request that throttles C{app} (C{store}: only on that store).
    """
    if uses_rest(api, token):
        return routes.rest_throttle(app, _rest_ttl(ttl), ratio, reason, store, token)
    return routes.freno_throttle(app, parse_ttl(ttl), ratio, reason, store, token)


def unthrottle(api: str, token: Optional[str], app: str, store: Optional[str],
               reason: Optional[str]) -> Request:
    """
    The request that removes C{app}'s throttle (C{store}: the store-scoped one).
    """
    if uses_rest(api, token):
        return routes.rest_unthrottle(app, store, reason, token)
    return routes.freno_unthrottle(app, store, reason, token)


def skip(api: str, token: Optional[str], host: str, ttl: TTL, reason: Optional[str]) -> Request:
    """
    The request that skips C{host} (no TTL: freno's 60 minutes).
    """
    if uses_rest(api, token):
        return routes.rest_skip(host, _rest_ttl(ttl), reason, token)
    return routes.freno_skip(host, parse_ttl(ttl), reason, token)


def recover(api: str, token: Optional[str], host: str, reason: Optional[str]) -> Request:
    """
    The request that stops skipping C{host}.
    """
    if uses_rest(api, token):
        return routes.rest_recover(host, reason, token)
    return routes.freno_recover(host, reason, token)


def list_throttles(api: str, token: Optional[str]) -> Tuple[Request, Callable[[Any], List[Throttle]]]:
    """
    The listing request for throttles, and the function reading its JSON.
    """
    if uses_rest(api, token):
        return routes.rest_get("/api/v1/throttles", token), answers.throttles_from_rest
    return routes.freno_get("/throttled-apps"), answers.throttles_from_freno


def list_skips(api: str, token: Optional[str]) -> Tuple[Request, Callable[[Any], List[Skip]]]:
    """
    The listing request for skipped hosts, and the function reading its JSON.
    """
    if uses_rest(api, token):
        return routes.rest_get("/api/v1/skips", token), answers.skips_from_rest
    return routes.freno_get("/skipped-hosts"), answers.skips_from_freno


def result(request: Request, url: str, response: answers.Response) -> ControlResult:
    """
    A mutation's answer as a L{ControlResult}.
    """
    body = response.json()
    via = "rest" if request.target.startswith("/api/") else "freno"
    removed = audit_id = None
    if isinstance(body, dict):
        if isinstance(body.get("removed"), bool):
            removed = body["removed"]
        if isinstance(body.get("audit_id"), int) and not isinstance(body.get("audit_id"), bool):
            audit_id = body["audit_id"]
    return ControlResult(via=via, node=url, body=body, removed=removed, audit_id=audit_id)
