# -*- test-case-name: test.unit.test_client_fake -*-
"""
An in-memory freno for the client's tests: L{FakeFreno} (one node) speaks
the routes the client uses, as C{docs/compatibility.md} and C{docs/api.md}
describe them, and L{FakeTransport} (a verified L{Transport}) delivers
requests to fake nodes by base URL, or fails them as a dead node would.

A node can play an older freno (C{headers=False, rest=False}: the check
status and GET body only, no C{/api/v1}, no C{/explain}) or a newer one
(C{X-Freno-*} headers, C{Retry-After}, the REST API, C{/explain}). Nodes of
one group share a L{FakeGroupState} (throttles, skips, the audit log, who
leads). Nothing here is a real server: the integration tests run
C{twistd freno} for that.
"""

from __future__ import annotations

import datetime
import json
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from freno.client.answers import GO_NOT_FOUND, Response
from freno.client.durations import DurationError, parse_ttl
from freno.client.http import TransportError

_ZERO_TIME = "0001-01-01T00:00:00Z"


def _iso(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _go_float(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class FakeGroupState:
    """
    What the nodes of one fake group share.

    @ivar clusters: cluster name to C{(value, threshold)}, or to an error
        text (a probe error: checks answer 500 with it).
    @ivar throttles: key to C{(expires_at_unix or None, ratio)}.
    @ivar skips: host to expiry.
    @ivar tokens: bearer tokens accepted for mutations; empty: none needed.
    @ivar retry_after_ms: what newer nodes send in C{X-Freno-Retry-After-Ms}
        (and, rounded up, C{Retry-After}) on 429 and 417.
    @ivar members: the node ids of the group, for leadership transfers (a
        transfer makes the target, or the first other member, the leader).
    """

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.leader: Optional[str] = None
        self.term = 1
        self.clusters: Dict[str, Any] = {}
        self.data_age_ms = 40
        self.throttles: Dict[str, Tuple[Optional[float], float]] = {}
        self.skips: Dict[str, float] = {}
        self.audit: List[Dict[str, Any]] = []
        self.tokens: Dict[str, str] = {}
        self.retry_after_ms = 1500
        self.members: List[str] = []

    def record(self, actor: str, route: str, params: Dict[str, Any], reason: Optional[str]) -> int:
        """
        Append an audit record; return its id.
        """
        now = self.now()
        self.audit.append(
            {"id": len(self.audit) + 1, "time": _iso(now), "time_unix": now, "actor": actor,
             "route": route, "params": params, "reason": reason, "outcome": "applied"}
        )
        return len(self.audit)


class FakeFreno:
    """
    One fake node; L{handle} answers a request.

    @ivar requests: every C{(method, target, headers)} received.
    """

    def __init__(self, node_id: str, state: FakeGroupState, headers: bool = True, rest: bool = True) -> None:
        self.node_id = node_id
        self.state = state
        self.headers = headers
        self.rest = rest
        self.requests: List[Tuple[str, str, Mapping[str, str]]] = []

    # -- plumbing --------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.state.leader == self.node_id

    def _json(self, status: int, body: Any, headers: Optional[Dict[str, str]] = None) -> Response:
        data = (json.dumps(body, separators=(",", ":")) + "\n").encode()
        return Response(status, {"content-type": "application/json", **(headers or {})}, data)

    def _generic(self, status: int, message: str) -> Response:
        return self._json(status, {"StatusCode": status, "Message": message})

    def _rest_error(self, status: int, code: str, message: str, field: Optional[str] = None) -> Response:
        error: Dict[str, Any] = {"status": status, "code": code, "message": message}
        if field is not None:
            error["field"] = field
        return self._json(status, {"error": error})

    def _authorized(self, headers: Mapping[str, str]) -> Optional[str]:
        """
        The actor, or L{None} when a token is needed and missing or wrong.
        """
        if not self.state.tokens:
            return "remote:fake"
        value = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        token = value[len("Bearer "):] if value.startswith("Bearer ") else None
        name = self.state.tokens.get(token or "")
        return f"token:{name}" if name else None

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: Optional[bytes]) -> Response:
        """
        Answer one request.
        """
        self.requests.append((method, target, dict(headers)))
        parts = urlsplit(target)
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        answer = self._route(method, segments, query, headers, body)
        if method == "HEAD":
            answer = Response(answer.status, answer.headers, b"")
        return answer

    def _route(self, method, segments, query, headers, body) -> Response:
        head = segments[0] if segments else ""
        if method not in ("GET", "HEAD") and head != "api":
            return Response(405, {"allow": "GET, HEAD, OPTIONS"}, b"Method Not Allowed\n")
        if head in ("check", "check-read") and len(segments) in (4, 5):
            threshold = None
            if head == "check-read":
                if len(segments) != 5:
                    return Response(404, {}, GO_NOT_FOUND)
                threshold = float(segments[4])
            return self._check(segments[1], segments[2], segments[3], threshold)
        if head == "explain" and self.rest and len(segments) == 4:
            return self._explain(segments[1], segments[3])
        if head == "api" and self.rest and len(segments) >= 3 and segments[1] == "v1":
            return self._rest(method, segments[2:], query, headers, body)
        if head in ("throttle-app", "unthrottle-app", "skip-host", "recover-host") and len(segments) >= 2:
            if self._authorized(headers) is None:
                return self._generic(401, "unauthenticated: a token is needed")
            return self._freno_mutation(head, segments[1:], query)
        if segments == ["throttled-apps"]:
            return self._json(200, {
                key: {"ExpireAt": _iso(expiry) or _ZERO_TIME, "Ratio": ratio}
                for key, (expiry, ratio) in sorted(self._active_throttles().items())
            })
        if segments == ["skipped-hosts"]:
            return self._json(200, {host: _iso(expiry) for host, expiry in sorted(self._active_skips().items())})
        if segments == ["consensus", "status"]:
            return self._json(200, {
                "ServiceID": self.node_id, "Healthy": True, "IsLeader": self.is_leader,
                "Leader": self.state.leader or "", "State": "Leader" if self.is_leader else "Follower",
            })
        if segments == ["aggregated-metrics"]:
            if not self.is_leader:
                return self._json(200, {})
            return self._json(200, {
                f"mysql/{name}": (f"error: {entry}" if isinstance(entry, str) else f"{entry[0]:f}")
                for name, entry in sorted(self.state.clusters.items())
            })
        if segments == ["lb-check"]:
            return self._generic(200, "OK")
        return Response(404, {"content-type": "text/plain; charset=utf-8"}, GO_NOT_FOUND)

    # -- checks ---------------------------------------------------------------------

    def _active_throttles(self) -> Dict[str, Tuple[Optional[float], float]]:
        now = self.state.now()
        return {k: v for k, v in self.state.throttles.items() if v[0] is None or v[0] > now}

    def _active_skips(self) -> Dict[str, float]:
        now = self.state.now()
        return {k: v for k, v in self.state.skips.items() if v > now}

    def _decide(self, app: str, store_type: str, store: str, threshold: Optional[float]) -> Dict[str, Any]:
        """
        One store's decision: status, message, reason, value, threshold.
        """
        if not self.is_leader:
            return {"status": 500, "message": "not leader", "reason": "not leader", "value": 0, "threshold": 0}
        if store_type != "mysql":
            return {"status": 404, "message": "No such metric", "reason": "no such store type",
                    "value": 0, "threshold": 0}
        throttles = self._active_throttles()
        for key in (f"{app}/{store}", app):
            if key in throttles and throttles[key][1] > 0:
                return {"status": 417, "message": "App denied", "reason": f"app throttled ({key})",
                        "value": 0, "threshold": 0}
        entry = self.state.clusters.get(store)
        if entry is None:
            return {"status": 404, "message": "No such metric", "reason": "no such cluster",
                    "value": 0, "threshold": 0}
        if isinstance(entry, str):
            return {"status": 500, "message": entry, "reason": entry, "value": 0, "threshold": 1}
        value, store_threshold = entry
        limit = store_threshold if threshold is None else threshold
        if not app:
            return {"status": 417, "message": "no app indicated", "reason": "no app indicated",
                    "value": value, "threshold": limit}
        if value > limit:
            return {"status": 429, "message": "Threshold exceeded",
                    "reason": f"lag {value:g} on {store} > {limit:g}", "value": value, "threshold": limit}
        return {"status": 200, "message": "", "reason": f"lag {value:g} <= {limit:g}",
                "value": value, "threshold": limit}

    def _check(self, app: str, store_type: str, stores: str, threshold: Optional[float]) -> Response:
        names = stores.split(",") if self.rest else [stores]
        decisions = [dict(self._decide(app, store_type, name, threshold), store=name) for name in names]
        decision = next((d for d in decisions if d["status"] != 200), decisions[0])
        status = decision["status"]
        headers: Dict[str, str] = {}
        if self.headers:
            headers["x-freno-reason"] = decision["reason"]
            headers["x-freno-value"] = _go_float(decision["value"])
            headers["x-freno-threshold"] = _go_float(decision["threshold"])
            headers["x-freno-store"] = decision["store"]
            headers["x-freno-leader"] = (
                f"node={self.node_id}; leader={'true' if self.is_leader else 'false'}; term={self.state.term}"
            )
            if status in (200, 429):
                headers["x-freno-data-age-ms"] = str(self.state.data_age_ms)
            if status in (417, 429):
                headers["retry-after"] = str(max(1, math.ceil(self.state.retry_after_ms / 1000)))
                headers["x-freno-retry-after-ms"] = str(self.state.retry_after_ms)
        body = {"StatusCode": status, "Value": decision["value"], "Threshold": decision["threshold"],
                "Message": decision["message"]}
        return self._json(status, body, headers)

    def _explain(self, app: str, stores: str) -> Response:
        decisions = [dict(self._decide(app, "mysql", name, None), store=name) for name in stores.split(",")]
        decision = next((d for d in decisions if d["status"] != 200), decisions[0])
        return self._json(200, {
            "app": app, "store_type": "mysql", "stores": stores.split(","), "node": self.node_id,
            "is_leader": self.is_leader, "leader": self.state.leader, "term": self.state.term,
            "decision": {"status": decision["status"], "message": decision["message"],
                         "reason": decision["reason"], "store": decision["store"],
                         "value": decision["value"], "threshold": decision["threshold"],
                         "data_age_ms": self.state.data_age_ms, "retry_after_s": None},
            "clusters": [], "throttle": None, "policy": None,
        })

    # -- freno's control routes ------------------------------------------------------------

    def _freno_mutation(self, route: str, args: List[str], query: Dict[str, str]) -> Response:
        name, rest = args[0], args[1:]
        options: Dict[str, str] = {}
        while len(rest) >= 2:
            options[rest[0]] = rest[1]
            rest = rest[2:]
        if rest or set(options) - {"ttl", "ratio"}:
            return Response(404, {}, GO_NOT_FOUND)
        try:
            minutes = int(options["ttl"]) if "ttl" in options else 0
            ratio = float(options["ratio"]) if "ratio" in options else None
        except ValueError:
            return self._generic(400, "ttlMinutes or ratio: not a number")
        now = self.state.now()
        route_text = "GET /" + "/".join([route] + args)
        if route == "throttle-app":
            key = f"{name}/{query['store_name']}" if query.get("store_name") else name
            old = self.state.throttles.get(key)
            keep = old[1] if old else 1.0
            self.state.throttles[key] = (now + minutes * 60 if minutes else None, keep if ratio is None else ratio)
        elif route == "unthrottle-app":
            key = f"{name}/{query['store_name']}" if query.get("store_name") else name
            if self.state.throttles.pop(key, None) is None:
                return self._generic(200, "OK")
        elif route == "skip-host":
            self.state.skips[name] = now + (minutes or 60) * 60
        else:
            if self.state.skips.pop(name, None) is None:
                return self._generic(200, "OK")
        self.state.record("remote:fake", route_text, dict(options, **query), query.get("reason"))
        return self._generic(200, "OK")

    # -- the REST API -----------------------------------------------------------------------

    def _throttle_json(self, key: str) -> Dict[str, Any]:
        expiry, ratio = self.state.throttles[key]
        app, _, store = key.partition("/")
        return {"key": key, "app": app, "store": store or None, "ratio": ratio, "expires_at": _iso(expiry),
                "expires_at_unix": expiry, "reason": None, "actor": None, "audit_id": None}

    def _rest(self, method, path, query, headers, body) -> Response:
        mutation = method in ("POST", "DELETE", "PUT")
        actor = self._authorized(headers)
        if mutation and actor is None:
            return self._rest_error(401, "unauthenticated", "a bearer token is needed")
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return self._rest_error(400, "invalid_parameter", "body: not JSON", "body")
        now = self.state.now()
        if path == ["status"] and method == "GET":
            clusters = [
                {"name": n, "value": None if isinstance(e, str) else e[0],
                 "threshold": None if isinstance(e, str) else e[1], "age_ms": self.state.data_age_ms,
                 "error": e if isinstance(e, str) else None, "hosts": 2}
                for n, e in sorted(self.state.clusters.items())
            ] if self.is_leader else []
            return self._json(200, {
                "node": self.node_id, "leader": self.state.leader, "is_leader": self.is_leader,
                "term": self.state.term, "state": "Leader" if self.is_leader else "Follower",
                "healthy": True, "backend": "raft", "members": [], "clusters": clusters, "time_unix": now,
            })
        if path == ["throttles"] and method == "GET":
            return self._json(200, {"throttles": [self._throttle_json(k) for k in sorted(self._active_throttles())]})
        if path == ["throttles"] and method == "POST":
            try:
                seconds = parse_ttl(data.get("ttl"))
            except DurationError as e:
                return self._rest_error(400, "invalid_parameter", str(e), "ttl")
            key = f"{data['app']}/{data['store']}" if data.get("store") else data["app"]
            old = self.state.throttles.get(key)
            ratio = data.get("ratio", old[1] if old else 1.0)
            self.state.throttles[key] = (None if seconds is None else now + seconds, ratio)
            audit_id = self.state.record(actor, "POST /api/v1/throttles", data, data.get("reason"))
            return self._json(200, {"throttle": self._throttle_json(key), "audit_id": audit_id})
        if len(path) == 2 and path[0] in ("throttles", "skips") and method == "DELETE":
            table = self.state.throttles if path[0] == "throttles" else self.state.skips
            key = f"{path[1]}/{query['store']}" if query.get("store") else path[1]
            had = table.pop(key, None) is not None
            audit_id = self.state.record(actor, f"DELETE /api/v1/{path[0]}/{path[1]}", query, query.get("reason"))
            return self._json(200, {"removed": had, "audit_id": audit_id})
        if path == ["skips"] and method == "GET":
            return self._json(200, {"skips": [
                {"host": h, "expires_at": _iso(e), "expires_at_unix": e, "reason": None, "actor": None,
                 "audit_id": None} for h, e in sorted(self._active_skips().items())
            ]})
        if path == ["skips"] and method == "POST":
            seconds = parse_ttl(data.get("ttl")) or 3600.0
            self.state.skips[data["host"]] = now + seconds
            audit_id = self.state.record(actor, "POST /api/v1/skips", data, data.get("reason"))
            return self._json(200, {"skip": {"host": data["host"], "expires_at_unix": now + seconds},
                                    "audit_id": audit_id})
        if path == ["leadership", "transfer"] and method == "POST":
            if not self.is_leader:
                return self._rest_error(409, "not_leader", f"this node is not the raft leader ({self.state.leader} is)")
            members = [m for m in self.state.members if m != self.node_id]
            to = data.get("to")
            if to is not None and to not in members:
                return self._rest_error(400, "invalid_parameter", f"{to!r} is not another member", "to")
            if not members:
                return self._rest_error(409, "unsupported", "a group of one has nobody to hand off to")
            audit_id = self.state.record(actor, "POST /api/v1/leadership/transfer", {"to": to}, data.get("reason"))
            new = to or members[0]
            self.state.leader = new
            self.state.term += 1
            return self._json(200, {"from": self.node_id, "to": new, "seconds": 0.02, "audit_id": audit_id})
        if path == ["audit"] and method == "GET":
            since = int(query.get("since", "0"))
            limit = int(query.get("limit", "100"))
            records = [r for r in self.state.audit if r["id"] > since][:limit]
            return self._json(200, {"records": records, "next": records[-1]["id"] if records else since,
                                    "oldest": 1 if self.state.audit else None})
        return self._rest_error(404, "not_found", "no such route")


class FakeTransport:
    """
    A L{freno.client.http.Transport} delivering to L{FakeFreno} nodes by
    base URL. A base URL without a node, or marked C{down}, fails as a dead
    node does (L{TransportError}); C{on_request} is called before each
    delivery (tests use it to change the world mid-call).

    @ivar sent: every C{(base_url, method, target, timeout)}.
    """

    def __init__(self, nodes: Optional[Dict[str, FakeFreno]] = None) -> None:
        self.nodes: Dict[str, FakeFreno] = dict(nodes or {})
        self.down: Dict[str, str] = {}
        self.sent: List[Tuple[str, str, str, float]] = []
        self.on_request: Optional[Callable[[str, str, str], None]] = None
        self.closed = 0

    def request(self, base_url, method, target, headers, body, timeout) -> Response:
        """
        See L{freno.client.http.Transport.request}.
        """
        self.sent.append((base_url, method, target, timeout))
        if self.on_request is not None:
            self.on_request(base_url, method, target)
        if base_url in self.down:
            raise TransportError(self.down[base_url])
        node = self.nodes.get(base_url)
        if node is None:
            raise TransportError("connection refused")
        return node.handle(method, target, headers, body)

    def close(self) -> None:
        """
        See L{freno.client.http.Transport.close}.
        """
        self.closed += 1
