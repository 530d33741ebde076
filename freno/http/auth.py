# -*- test-case-name: test.unit.test_http_auth -*-
"""
Who may change what: bearer tokens, roles and the actor of a request.

Configuration (C{ControlTokens}, L{freno.config.model.ControlToken})::

    "ControlTokens": {
        "ops":    {"Token": "${FRENO_OPS_TOKEN}", "Role": "admin"},
        "deploy": {"Token": "${FRENO_DEPLOY_TOKEN}", "Role": "throttle"}
    }

Roles are cumulative: C{throttle} (throttle and unthrottle apps) <
C{operator} (also skip and recover hosts, set and remove policies whose
thresholds are stricter than the store's) < C{admin} (also exempt apps from
the store's threshold, read a restricted audit log, and whatever later work
reserves to admins). A separate C{audit} role may read a restricted audit log
and nothing else. L{PERMISSIONS} maps each permission a route needs to the
roles that have it.

Without C{ControlTokens} (the default) nothing needs a token: freno's
behaviour. With tokens, every mutation, on every route (freno's GET routes
included), needs C{Authorization: Bearer <token>}; read-only routes and the
check routes stay open. A missing or unknown token is L{Unauthenticated}
(401, with C{WWW-Authenticate: Bearer}); a known token whose role lacks the
permission is L{Forbidden} (403, naming the role needed). Nothing changes in
either case.

Tokens are compared in constant time: the SHA-256 digest of the presented
token is compared with each configured token's digest by
C{hmac.compare_digest}, always against every token, so neither the
position of the first differing byte, nor the token's length, nor which
token matched shows in the time taken. Tokens are never logged; a token's
I{name} is.

The actor recorded in the audit log is C{token:<name>}, or, when no token
was used, C{remote:<address>} followed by the request's
C{X-Forwarded-For} (truncated) when it has one: C{remote:127.0.0.1
(X-Forwarded-For: 10.0.0.7)}. The forwarded address is the client's claim,
recorded as such.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Dict, FrozenSet, Mapping, Optional, Sequence, Tuple

import attr

from freno.config.model import ControlToken
from freno.consensus.commands import MAX_ACTOR_LENGTH

#: The roles that have each permission.
PERMISSIONS: Mapping[str, FrozenSet[str]] = {
    "throttle": frozenset({"throttle", "operator", "admin"}),
    "skip": frozenset({"operator", "admin"}),
    "policy": frozenset({"operator", "admin"}),
    "admin": frozenset({"admin"}),
    "audit": frozenset({"audit", "admin"}),
}

#: How a refusal names the role a permission needs.
ROLE_NEEDED: Mapping[str, str] = {
    "throttle": "throttle, operator or admin",
    "skip": "operator or admin",
    "policy": "operator or admin",
    "admin": "admin",
    "audit": "audit or admin",
}

#: What each permission allows, for messages.
ACTIONS: Mapping[str, str] = {
    "throttle": "throttle or unthrottle apps",
    "skip": "skip or recover hosts",
    "policy": "change app policies",
    "admin": "do this",
    "audit": "read the audit log",
}

#: How much of C{X-Forwarded-For} an actor keeps.
MAX_FORWARDED_LENGTH = 200


class AuthError(Exception):
    """
    A request may not do what it asks; nothing changed.

    @ivar status: 401 or 403.
    @ivar code: C{unauthenticated} or C{forbidden}.
    @ivar actor: who asked (for the log), as far as known.
    """

    status = 0
    code = ""

    def __init__(self, message: str, actor: str) -> None:
        super().__init__(message)
        self.message = message
        self.actor = actor


class Unauthenticated(AuthError):
    """
    No token, or a token that is not configured (401).
    """

    status = 401
    code = "unauthenticated"


class Forbidden(AuthError):
    """
    A known token whose role lacks the permission (403).
    """

    status = 403
    code = "forbidden"


@attr.s(frozen=True, auto_attribs=True)
class Caller:
    """
    Who made a request.

    @ivar actor: C{token:<name>} or C{remote:<address>...}.
    @ivar token: the token's name, or C{None} when none was used.
    @ivar role: the token's role, or C{None}.
    """

    actor: str
    token: Optional[str] = None
    role: Optional[str] = None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def remote_actor(request) -> str:
    """
    C{remote:<peer address>}, with the request's C{X-Forwarded-For}.
    """
    address = request.getClientAddress()
    host = getattr(address, "host", None) or "unknown"
    actor = f"remote:{host}"
    forwarded = request.getHeader(b"x-forwarded-for")
    if forwarded:
        text = forwarded.decode("latin-1")
        if len(text) > MAX_FORWARDED_LENGTH:
            text = text[:MAX_FORWARDED_LENGTH] + "..."
        actor += f" (X-Forwarded-For: {text})"
    if len(actor) > MAX_ACTOR_LENGTH:
        actor = actor[: MAX_ACTOR_LENGTH - 4] + "...)"
    return actor


def bearer_token(request) -> Optional[str]:
    """
    The token of C{Authorization: Bearer <token>}, or C{None} when the
    header is absent or not a bearer credential.
    """
    header = request.getHeader(b"authorization")
    if not header:
        return None
    scheme, _, credential = header.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    credential = credential.strip()
    return credential or None


class Authenticator:
    """
    Checks requests against the configured tokens.

    @param tokens: the C{ControlTokens}; empty: authentication is off.
    """

    def __init__(self, tokens: Sequence[ControlToken] = ()) -> None:
        self._tokens: Tuple[Tuple[bytes, ControlToken], ...] = tuple(
            (_digest(t.token), t) for t in tokens
        )
        self.by_name: Dict[str, ControlToken] = {t.name: t for t in tokens}

    @property
    def enabled(self) -> bool:
        """
        Whether tokens are configured (so mutations need one).
        """
        return bool(self._tokens)

    def match(self, presented: str) -> Optional[ControlToken]:
        """
        The configured token equal to C{presented}, compared in constant time
        against every token, or C{None}.
        """
        digest = _digest(presented)
        found = None
        for known, token in self._tokens:
            if hmac.compare_digest(digest, known):
                found = token
        return found

    def identify(self, request) -> Caller:
        """
        Who made C{request}: the token's name when a configured token was
        presented, else the remote address.
        """
        presented = bearer_token(request) if self._tokens else None
        if presented is not None:
            token = self.match(presented)
            if token is not None:
                return Caller(f"token:{token.name}", token.name, token.role)
        return Caller(remote_actor(request))

    def require(self, request, permission: str) -> Caller:
        """
        The caller of C{request}, if it may use C{permission}.

        @raise Unauthenticated: tokens are configured and the request has
            none, or an unknown one.
        @raise Forbidden: its token's role lacks C{permission}.
        """
        if not self._tokens:
            return Caller(remote_actor(request))
        presented = bearer_token(request)
        if presented is None:
            raise Unauthenticated(
                "this action needs a bearer token (Authorization: Bearer <token>)",
                remote_actor(request),
            )
        token = self.match(presented)
        if token is None:
            raise Unauthenticated("unknown token", remote_actor(request))
        caller = Caller(f"token:{token.name}", token.name, token.role)
        if token.role not in PERMISSIONS[permission]:
            raise Forbidden(
                f"token {token.name!r} has role {token.role!r}, which may not "
                f"{ACTIONS[permission]}: it needs role {ROLE_NEEDED[permission]}",
                caller.actor,
            )
        return caller

    def allows(self, caller: Caller, permission: str) -> bool:
        """
        Whether C{caller} has C{permission} (always, without tokens).
        """
        return not self._tokens or caller.role in PERMISSIONS[permission]
