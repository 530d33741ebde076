# -*- test-case-name: test.unit.test_dashboard_views -*-
"""
L{DashboardViews}: the JSON documents the status page polls, each built at
most once a second (L{PerSecondCache}) and served as the same bytes to every
page that asks within that second:

    - C{GET /dashboard/state.json}: the node and its consensus view (as
      C{GET /api/v1/status} shows it), the member URLs, the leadership
      changes this node saw, one summary row per cluster (value against
      threshold, hysteresis, data age, host counts, a status word), the
      throttled apps, the recently checked apps with their last status and
      the latest audit records;
    - C{GET /dashboard/clusters/<name>.json}: one cluster host by host, as
      C{/explain} shows it (L{Explainer.cluster});
    - C{GET /api/v1/history}: the leader's ring buffer of every cluster's
      value (L{History}); a follower answers with no points.

Rows are sorted problems first (L{SEVERITY}): C{error} (no usable value),
C{over} (above the threshold, or held by hysteresis: checks answer 429),
C{warn} (at or above the resume threshold when there is one, else 80% of
the threshold), C{ok}, then C{unknown} (no value because this node does not
probe: a follower).

A follower's own values are not the serving data: its state says
C{is_leader: false} and names the leader with its URL (C{leader_url}), which
the page links to and follows.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from twisted.internet.interfaces import IReactorTime

from freno.consensus.interface import IConsensusService
from freno.http.dashboard.audit_tail import AuditTail
from freno.http.dashboard.cache import PerSecondCache
from freno.http.dashboard.history import History
from freno.http.dashboard.leadership import LeadershipLog
from freno.http.dashboard.sampler import INTERVAL
from freno.http.explain import Explainer
from freno.http.rest import node_json
from freno.http.rest_io import audit_json, json_bytes, throttle_json
from freno.probe.breakdown import COUNTED, ERROR, FAILED, IGNORED, SKIPPED, STALE
from freno.throttle.checker import Throttler

#: Row status words, most severe first.
SEVERITY = ("error", "over", "warn", "ok", "unknown")
#: Without a resume threshold, a value at or above this share of the
#: threshold is C{warn}.
WARN_SHARE = 0.8
#: Recently checked apps shown.
RECENT_SHOWN = 12
#: Host states counted as failing.
FAILING = (FAILED, STALE, ERROR)


def row_status(
    value: Optional[float],
    threshold: Optional[float],
    resume: Optional[float],
    holding: bool,
    error: Optional[str],
    probing: bool,
) -> str:
    """
    The status word of one cluster row (see the module docstring).
    """
    if value is None or threshold is None:
        return "error" if probing else "unknown"
    if holding or value > threshold:
        return "over"
    warn_at = resume if resume is not None else WARN_SHARE * threshold
    if value >= warn_at:
        return "warn"
    return "ok"


def host_counts(hosts: Iterable[Mapping[str, Any]]) -> Dict[str, int]:
    """
    C{total}, C{counted}, C{ignored}, C{skipped} and C{failing} (failed,
    stale or in error) among a cluster's hosts.
    """
    counts = {"total": 0, "counted": 0, "ignored": 0, "skipped": 0, "failing": 0}
    for host in hosts:
        counts["total"] += 1
        state = host["state"]
        if state == COUNTED:
            counts["counted"] += 1
        elif state == IGNORED:
            counts["ignored"] += 1
        elif state == SKIPPED:
            counts["skipped"] += 1
        elif state in FAILING:
            counts["failing"] += 1
    return counts


def default_url(member: str, backend: str, listen_port: int) -> Optional[str]:
    """
    A member's HTTP base URL when C{DashboardURLs} does not name it: the
    MySQL backend's ids are C{host:ListenPort} already; a raft member is
    taken to listen on this node's C{ListenPort} on its raft host.
    """
    if not member:
        return None
    if backend == "mysql":
        return f"http://{member}"
    host = member.rsplit(":", 1)[0] if ":" in member else member
    return f"http://{host}:{listen_port}"


def _round(value: Optional[float], digits: int = 6) -> Optional[float]:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


class DashboardViews:
    """
    @param clock: the time source.
    @param consensus: leadership, members, the replicated throttles.
    @param throttler: throttled apps (built-in ones too), recent apps,
        hysteresis.
    @param explainer: one cluster host by host.
    @param clusters: cluster name to C{(threshold, resume threshold)}.
    @param history: the leader's ring buffer.
    @param leadership: this node's leadership changes.
    @param audit: the audit tail, or C{None} (restricted: not shown).
    @param listen_port: this node's C{ListenPort} (default member URLs).
    @param urls: C{DashboardURLs}: member id to base URL.
    @param cache: the per-second cache.
    """

    def __init__(
        self,
        *,
        clock: IReactorTime,
        consensus: IConsensusService,
        throttler: Throttler,
        explainer: Explainer,
        clusters: Mapping[str, Tuple[float, Optional[float]]],
        history: History,
        leadership: LeadershipLog,
        audit: Optional[AuditTail],
        listen_port: int,
        urls: Mapping[str, str],
        cache: Optional[PerSecondCache] = None,
    ) -> None:
        self._clock = clock
        self._consensus = consensus
        self._throttler = throttler
        self._explainer = explainer
        self._clusters = dict(clusters)
        self._history = history
        self._leadership = leadership
        self._audit = audit
        self._listen_port = listen_port
        self._urls = dict(urls)
        self.cache = cache if cache is not None else PerSecondCache(clock)

    # -- cached bytes ----------------------------------------------------

    def state_bytes(self) -> bytes:
        """
        L{state}, as served (cached per second).
        """
        return self._cached("state", self.state)

    def cluster_bytes(self, name: str) -> Optional[bytes]:
        """
        L{cluster}, as served (cached per second), or C{None} for a name
        that is not a configured cluster.
        """
        if name not in self._clusters:
            return None
        return self._cached(("cluster", name), lambda: self.cluster(name))

    def history_bytes(self, since: Optional[float] = None) -> bytes:
        """
        L{history}, as served (cached per second and C{since}: pages polling
        together ask for the same C{since}, the last point they hold).
        """
        return self._cached(("history", since), lambda: self.history(since))

    def _cached(self, key, build: Callable[[], Dict[str, Any]]) -> bytes:
        return self.cache.get(key, lambda: json_bytes(build()))  # type: ignore[return-value]

    # -- documents ------------------------------------------------------

    def member_url(self, member: str, backend: str) -> Optional[str]:
        """
        The HTTP base URL of C{member} (C{DashboardURLs}, else
        L{default_url}).
        """
        url = self._urls.get(member)
        return url if url is not None else default_url(member, backend, self._listen_port)

    def state(self) -> Dict[str, Any]:
        """
        The page's main document (see the module docstring).
        """
        now = self._clock.seconds()
        node = node_json(self._consensus)
        backend = node["backend"]
        for member in node["members"]:
            member["url"] = self.member_url(member["id"], backend)
        node["leader_url"] = self.member_url(node["leader"], backend) if node["leader"] else None
        probing = node["is_leader"]
        rows = [self._row(name, probing) for name in self._clusters]
        rows.sort(key=lambda r: (SEVERITY.index(r["status"]), r["name"]))
        return {
            **node,
            "time_unix": now,
            "leadership_changes": [
                {"time_unix": c.at, "leader": c.leader or None, "term": c.term}
                for c in reversed(self._leadership.changes())
            ],
            "clusters": rows,
            "throttles": self._throttles(now),
            "recent_apps": self._recent(now),
            "audit": None if self._audit is None else [audit_json(r) for r in self._audit.records()],
        }

    def _row(self, name: str, probing: bool) -> Dict[str, Any]:
        doc = self._explainer.cluster(name)
        value, threshold = doc["value"], doc["threshold"]
        resume, holding = doc["resume_threshold"], doc["holding"]
        error = doc["error"]
        inventory = doc.get("inventory") or {}
        counts = host_counts(doc["hosts"])
        if not doc["hosts"] and inventory.get("hosts") is not None:
            counts["total"] = inventory["hosts"]
        return {
            "name": name,
            "status": row_status(value, threshold, resume, holding, error, probing),
            "value": value,
            "threshold": threshold,
            "resume_threshold": resume,
            "holding": holding,
            "age_ms": doc["age_ms"],
            "error": error,
            "hosts": counts,
        }

    def _throttles(self, now: float) -> List[Dict[str, Any]]:
        apps = self._throttler.throttled_apps()
        builtin = self._throttler.builtin_apps
        shown = []
        for key in apps:
            throttle = apps[key]
            if key in builtin or not throttle.active(now):
                continue
            entry = throttle_json(key, throttle)
            at = throttle.expire_at
            entry["expires_in_s"] = None if at is None else max(0.0, round(at - now, 3))
            shown.append(entry)
        far = float("inf")
        shown.sort(key=lambda e: (far if e["expires_in_s"] is None else e["expires_in_s"], e["key"]))
        return shown

    def _recent(self, now: float) -> List[Dict[str, Any]]:
        out = []
        for key, at, status in self._throttler.recent_apps.latest(now, RECENT_SHOWN):
            app, _, remote = key.rpartition("/")
            out.append(
                {"app": app, "remote": remote, "checked_unix": at, "ago_s": round(now - at, 3), "status": status}
            )
        return out

    def cluster(self, name: str) -> Dict[str, Any]:
        """
        One cluster host by host (C{/explain}'s cluster object), with this
        node's leadership.
        """
        consensus = self._consensus
        return {
            "node": consensus.status().ServiceID,
            "is_leader": consensus.is_leader(),
            "time_unix": self._clock.seconds(),
            "cluster": self._explainer.cluster(name),
        }

    def history(self, since: Optional[float] = None) -> Dict[str, Any]:
        """
        The history document: every configured cluster's points (oldest
        first, C{[time_unix, value]}, the value C{null} where there was
        none), only those after C{since} when given; no points on a
        follower.
        """
        consensus = self._consensus
        leading = consensus.is_leader()
        history = self._history
        clusters = []
        for name in history.clusters():
            threshold, resume = self._clusters.get(name, (None, None))
            points = (
                [[round(t, 3), _round(v)] for t, v in history.points(name)
                 if since is None or round(t, 3) > since]
                if leading else []
            )
            clusters.append(
                {"name": name, "threshold": threshold, "resume_threshold": resume, "points": points}
            )
        leader = consensus.leader() or None
        return {
            "node": consensus.status().ServiceID,
            "is_leader": leading,
            "leader": leader,
            "time_unix": self._clock.seconds(),
            "interval_s": INTERVAL,
            "capacity": history.capacity,
            "started_unix": history.started_at if leading else None,
            "clusters": clusters,
        }
