# -*- test-case-name: test.unit.test_client_routes -*-
"""
The requests the client sends, built without doing any I/O: one function per
operation, each returning a L{Request} (method, target, headers, body) that
either flavour of the client (L{freno.client.client}, L{freno.client.tx})
sends to a base URL.

Two families: freno's own routes (C{/check/...}, C{/throttle-app/...}, ...,
C{docs/compatibility.md}), which every freno serves, and the REST API under
C{/api/v1} plus C{/explain} (C{docs/api.md}).

Names (apps, clusters, hosts, stores) travel as single path segments, so
they must be non-empty and must not contain C{/} (freno splits paths after
percent-decoding, so C{%2F} would split too): such names raise
L{ValueError} here, before anything is sent.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, Mapping, Optional, Sequence, Union
from urllib.parse import quote, urlencode

from freno.client.durations import DurationError

#: The only store type freno serves.
STORE_TYPE = "mysql"

JSON_TYPE = "application/json"


@dataclasses.dataclass(frozen=True)
class Request:
    """
    One HTTP request, relative to a base URL.

    @ivar target: the path and query (C{/check/a/mysql/main?p=low}), already
        percent-encoded.
    @ivar mutation: whether it changes state (sent to one node at a time;
        never repeated on the same node after it answered).
    """

    method: str
    target: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    body: Optional[bytes] = None
    mutation: bool = False


def segment(name: Any, what: str) -> str:
    """
    C{name} percent-encoded as one path segment.

    @raise ValueError: not a string, empty, containing C{/}, or not
        encodable as UTF-8.
    """
    if not isinstance(name, str):
        raise ValueError(f"{what}: must be a string, got {type(name).__name__}")
    if not name:
        raise ValueError(f"{what}: must not be empty")
    if "/" in name:
        raise ValueError(f"{what}: must not contain '/' (got {name[:60]!r})")
    try:
        return quote(name, safe="", encoding="utf-8", errors="strict")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: not valid text (got {name[:60]!r})") from None


def clusters_segment(cluster: Union[str, Sequence[str]]) -> str:
    """
    One cluster, or several joined with C{,} for a multi-store check.

    @raise ValueError: a bad name (see L{segment}), a name with C{,} in a
        list, or an empty list.
    """
    if isinstance(cluster, str):
        return segment(cluster, "cluster")
    names = list(cluster)
    if not names:
        raise ValueError("cluster: at least one cluster is needed")
    for name in names:
        if isinstance(name, str) and "," in name:
            raise ValueError(f"cluster: a name in a list must not contain ',' (got {name[:60]!r})")
    return ",".join(segment(name, "cluster") for name in names)


def _query(params: Mapping[str, Optional[str]]) -> str:
    present = {k: v for k, v in params.items() if v is not None}
    return ("?" + urlencode(present, quote_via=quote)) if present else ""


def _float_text(value: float) -> str:
    """
    A finite float as freno's routes read it (C{0.5}, C{1}).
    """
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _auth(token: Optional[str]) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _json_request(method: str, target: str, body: Mapping[str, Any], token: Optional[str]) -> Request:
    headers = {"Content-Type": JSON_TYPE, "Accept": JSON_TYPE, **_auth(token)}
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return Request(method, target, headers, data, mutation=True)


def check_ratio(ratio: Optional[float]) -> Optional[float]:
    """
    A throttle ratio: L{None}, or a number in [0, 1].

    @raise ValueError: anything else.
    """
    if ratio is None:
        return None
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        raise ValueError(f"ratio: must be a number from 0 to 1, got {ratio!r}")
    return float(ratio)


def _ttl_minutes(ttl: Optional[float]) -> Optional[int]:
    """
    A TTL in seconds as freno's C{ttlMinutes} (whole minutes).

    @raise DurationError: not a whole number of minutes.
    """
    if ttl is None:
        return None
    minutes = round(ttl / 60.0, 6)  # "1.1h" is 66 minutes, whatever float rounding says
    if minutes != math.floor(minutes) or minutes < 1:
        raise DurationError(
            "ttl: freno's routes take whole minutes (e.g. 30m, 2h); "
            "use the REST API (a token, or api='rest') for other TTLs"
        )
    return int(minutes)


# -- checks ------------------------------------------------------------------


def check(
    app: str,
    cluster: Union[str, Sequence[str]],
    low_priority: bool = False,
    threshold: Optional[float] = None,
) -> Request:
    """
    C{GET /check/<app>/mysql/<cluster>}, or C{/check-read/.../<threshold>}
    when C{threshold} is given.

    GET rather than HEAD: every freno answers a GET with C{Value},
    C{Threshold} and C{Message} in the body (a follower's C{not leader}
    among them), so the client can tell "not leader" from any other 500 and
    report value and threshold even from servers without the C{X-Freno-*}
    headers. The body is about 60 bytes.

    @raise ValueError: a bad name, or a threshold that is not a finite
        number above 0.
    """
    path = f"/check/{segment(app, 'app')}/{STORE_TYPE}/{clusters_segment(cluster)}"
    if threshold is not None:
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not math.isfinite(threshold)
            or threshold <= 0
        ):
            raise ValueError(f"threshold: must be a finite number above 0, got {threshold!r}")
        path = "/check-read" + path[len("/check"):] + "/" + _float_text(threshold)
    return Request("GET", path + (_query({"p": "low"}) if low_priority else ""))


def explain(app: str, cluster: Union[str, Sequence[str]]) -> Request:
    """
    C{GET /explain/<app>/mysql/<cluster>}.
    """
    target = f"/explain/{segment(app, 'app')}/{STORE_TYPE}/{clusters_segment(cluster)}"
    return Request("GET", target, {"Accept": JSON_TYPE})


# -- the REST API --------------------------------------------------------------


def rest_throttle(
    app: str,
    ttl: Optional[Union[str, float]],
    ratio: Optional[float],
    reason: Optional[str],
    store: Optional[str],
    token: Optional[str],
) -> Request:
    """
    C{POST /api/v1/throttles}. C{ttl} is sent as given (a duration string
    or seconds; the server reads the same grammar); L{None} means permanent.
    """
    segment(app, "app")
    body: Dict[str, Any] = {"app": app}
    if store is not None:
        segment(store, "store")
        body["store"] = store
    if ratio is not None:
        body["ratio"] = check_ratio(ratio)
    if ttl is not None:
        body["ttl"] = ttl
    if reason is not None:
        body["reason"] = reason
    return _json_request("POST", "/api/v1/throttles", body, token)


def rest_unthrottle(app: str, store: Optional[str], reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{DELETE /api/v1/throttles/<app>[?store=...&reason=...]}.
    """
    if store is not None:
        segment(store, "store")
    target = f"/api/v1/throttles/{segment(app, 'app')}" + _query({"store": store, "reason": reason})
    return Request("DELETE", target, {"Accept": JSON_TYPE, **_auth(token)}, mutation=True)


def rest_skip(host: str, ttl: Optional[Union[str, float]], reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{POST /api/v1/skips}; no C{ttl} means freno's 60 minutes.
    """
    segment(host, "host")
    body: Dict[str, Any] = {"host": host}
    if ttl is not None:
        body["ttl"] = ttl
    if reason is not None:
        body["reason"] = reason
    return _json_request("POST", "/api/v1/skips", body, token)


def rest_transfer(to: Optional[str], reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{POST /api/v1/leadership/transfer} (C{to}: a member's C{host:port}, or
    L{None} for the best follower).
    """
    body: Dict[str, Any] = {}
    if to is not None:
        body["to"] = to
    if reason is not None:
        body["reason"] = reason
    return _json_request("POST", "/api/v1/leadership/transfer", body, token)


def rest_recover(host: str, reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{DELETE /api/v1/skips/<host>[?reason=...]}.
    """
    target = f"/api/v1/skips/{segment(host, 'host')}" + _query({"reason": reason})
    return Request("DELETE", target, {"Accept": JSON_TYPE, **_auth(token)}, mutation=True)


def rest_add_member(address: str, reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{POST /api/v1/members} C{{"address", "reason"}}.
    """
    if not isinstance(address, str) or not address:
        raise ValueError("address: must be a non-empty host:port string")
    body: Dict[str, Any] = {"address": address}
    if reason is not None:
        body["reason"] = reason
    return _json_request("POST", "/api/v1/members", body, token)


def rest_remove_member(address: str, reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{DELETE /api/v1/members/<address>[?reason=...]}.
    """
    target = f"/api/v1/members/{segment(address, 'address')}" + _query({"reason": reason})
    return Request("DELETE", target, {"Accept": JSON_TYPE, **_auth(token)}, mutation=True)


def rest_get(path: str, token: Optional[str] = None, **query: Optional[str]) -> Request:
    """
    A C{GET} of a REST resource (C{/api/v1/throttles}, C{/api/v1/status},
    C{/api/v1/audit?since=...}).
    """
    return Request("GET", path + _query(query), {"Accept": JSON_TYPE, **_auth(token)})


# -- freno's routes --------------------------------------------------------------


def freno_throttle(
    app: str,
    ttl: Optional[float],
    ratio: Optional[float],
    reason: Optional[str],
    store: Optional[str],
    token: Optional[str],
) -> Request:
    """
    C{GET /throttle-app/<app>[/ttl/<minutes>][/ratio/<ratio>][?store_name=...]}.
    C{reason} goes in C{?reason=} (recorded by servers with an audit log,
    ignored by others).

    @raise DurationError: a TTL that is not whole minutes.
    """
    target = f"/throttle-app/{segment(app, 'app')}"
    minutes = _ttl_minutes(ttl)
    if minutes is not None:
        target += f"/ttl/{minutes}"
    ratio = check_ratio(ratio)
    if ratio is not None:
        target += f"/ratio/{_float_text(ratio)}"
    if store is not None:
        segment(store, "store")
    target += _query({"store_name": store, "reason": reason})
    return Request("GET", target, _auth(token), mutation=True)


def freno_unthrottle(app: str, store: Optional[str], reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{GET /unthrottle-app/<app>[?store_name=...]}.
    """
    if store is not None:
        segment(store, "store")
    target = f"/unthrottle-app/{segment(app, 'app')}" + _query({"store_name": store, "reason": reason})
    return Request("GET", target, _auth(token), mutation=True)


def freno_skip(host: str, ttl: Optional[float], reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{GET /skip-host/<host>[/ttl/<minutes>]}.

    @raise DurationError: a TTL that is not whole minutes.
    """
    target = f"/skip-host/{segment(host, 'host')}"
    minutes = _ttl_minutes(ttl)
    if minutes is not None:
        target += f"/ttl/{minutes}"
    return Request("GET", target + _query({"reason": reason}), _auth(token), mutation=True)


def freno_recover(host: str, reason: Optional[str], token: Optional[str]) -> Request:
    """
    C{GET /recover-host/<host>}.
    """
    target = f"/recover-host/{segment(host, 'host')}" + _query({"reason": reason})
    return Request("GET", target, _auth(token), mutation=True)


def freno_get(path: str) -> Request:
    """
    A C{GET} of one of freno's read routes (C{/throttled-apps},
    C{/skipped-hosts}, C{/consensus/status}, C{/aggregated-metrics}).
    """
    return Request("GET", path)
