# -*- test-case-name: test.unit.test_explain -*-
"""
L{Explainer}: the document C{GET /explain/<app>/mysql/<cluster>} answers
(docs/compatibility.md, "Explain"; the shape is the design contract's):
the decision a check would get now, and for each store its threshold,
hysteresis, aggregated value, inventory and every host's state.

Explaining is a dry run of the check (L{Throttler.explain_check}): it is not
counted, not recorded in recent apps and marks no low-priority denial; a
ratio throttle's dice roll as for a check. A follower explains its own view
(C{is_leader: false}, the decision C{not leader}, no host states: it does
not probe).

Times are both C{*_unix} (float POSIX seconds) where the contract has them
and ISO 8601 UTC strings; ages are whole milliseconds; a number JSON cannot
hold (NaN, infinities) is C{null}. Throttles and policies have the REST
API's shapes (L{freno.http.rest_io}). The check itself and the host
breakdown are the domain's (L{Throttler.explain_check},
L{freno.probe.breakdown}); this module only assembles the document.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Tuple

from twisted.internet.interfaces import IReactorTime

from freno.config.model import ClusterSettings, Config
from freno.consensus.interface import IConsensusService
from freno.http.rest_io import iso, policy_json, throttle_json
from freno.inventory.interfaces import IInventory
from freno.probe.breakdown import HostState
from freno.probe.metrics import STALE_PREFIX, AggregatedMetrics
from freno.throttle.checker import MYSQL, Throttler
from freno.throttle.flags import STANDARD, CheckFlags
from freno.throttle.reasons import reason_text
from freno.throttle.result import BUILT_IN, THROTTLED, CheckResult

#: Cluster name to its hosts' states (L{freno.probe.service.ProbeService.host_states}).
HostStates = Callable[[str], Tuple[HostState, ...]]

def number(value: Optional[float]) -> Optional[float]:
    """
    C{value}, or C{None} when it is C{None}, NaN or infinite.
    """
    if value is None or not math.isfinite(value):
        return None
    return value


def age_ms(now: float, at: Optional[float]) -> Optional[int]:
    """
    Milliseconds from C{at} to C{now}, rounded (never negative), or C{None}.
    """
    if at is None:
        return None
    return max(0, round((now - at) * 1000))


def host_json(state: HostState, now: float) -> Dict[str, Any]:
    """
    One host of a cluster.
    """
    return {
        "host": str(state.host),
        "value": number(state.value),
        "age_ms": age_ms(now, state.measured_at),
        "state": state.state,
        "why": state.why,
        "skipped_until": iso(state.skipped_until),
        "error": state.error,
    }


class Explainer:
    """
    Builds C{/explain} documents.

    @param clock: the time source.
    @param config: the clusters.
    @param throttler: the check algorithm (its dry run, throttles and
        hysteresis).
    @param consensus: leadership, the leader's id and (raft) the term.
    @param metrics: the aggregated metrics.
    @param inventory: every cluster's host list and refresh status, or
        C{None} (then C{inventory} says only the source kind).
    @param host_states: cluster name to its hosts' states
        (L{freno.probe.service.ProbeService.host_states}), or C{None} (no
        host breakdown).
    """

    def __init__(
        self,
        clock: IReactorTime,
        config: Config,
        throttler: Throttler,
        consensus: IConsensusService,
        metrics: AggregatedMetrics,
        inventory: Optional[IInventory] = None,
        host_states: Optional[HostStates] = None,
    ) -> None:
        self._clock = clock
        self._clusters = config.mysql.clusters
        self._throttler = throttler
        self._consensus = consensus
        self._metrics = metrics
        self._inventory = inventory
        self._host_states = host_states

    def explain(
        self, app: str, store_type: str, store_name: str, flags: CheckFlags = STANDARD
    ) -> Dict[str, Any]:
        """
        The explanation of a check of C{app} on C{store_type}/C{store_name}
        (a multi-store name is split as a check splits it).

        @raise freno.throttle.checker.InvalidCheck: too many stores.
        """
        now = self._clock.seconds()
        result, each = self._throttler.explain_check(app, store_type, store_name, flags)
        stores = [store for store, _ in each] if store_type == MYSQL else [store_name]
        consensus = self._consensus
        term = getattr(consensus, "term", None)
        leader = consensus.leader()
        why = result.explanation
        store = why.store or (stores[0] if stores else "")
        return {
            "app": app,
            "store_type": store_type,
            "stores": stores,
            "node": consensus.status().ServiceID,
            "is_leader": consensus.is_leader(),
            "leader": leader or None,
            "term": term() if callable(term) else None,
            "decision": self._decision(result, now),
            "clusters": [self._cluster(store, now) for store in stores] if store_type == MYSQL else [],
            "throttle": self._throttle(app, store, result, now),
            "policy": self._policy(app, store),
        }

    def _decision(self, result: CheckResult, now: float) -> Dict[str, Any]:
        why = result.explanation
        retry = why.retry_after_at(now)
        return {
            "status": result.status_code,
            "message": result.message,
            "reason": reason_text(result),
            "store": why.store or None,
            "value": number(result.value),
            "threshold": number(result.threshold),
            "data_age_ms": age_ms(now, why.measured_at),
            "retry_after_s": None if retry is None else max(1, math.ceil(retry)),
        }

    def _throttle(self, app: str, store: str, result: CheckResult, now: float) -> Optional[Dict[str, Any]]:
        why = result.explanation
        if why.kind in (THROTTLED, BUILT_IN) and why.throttle is not None:
            return throttle_json(why.key, why.throttle)
        apps = self._throttler.throttled_apps()
        for key in (f"{app}/{store}", app):
            throttle = apps.get(key)
            if throttle is not None and throttle.active(now):
                return throttle_json(key, throttle)
        return None

    def _policy(self, app: str, store: str) -> Optional[Dict[str, Any]]:
        policy = self._throttler.policy_for(app, store)
        return None if policy is None else policy_json(policy)

    def cluster(self, name: str) -> Dict[str, Any]:
        """
        One cluster as an explanation shows it now (its threshold,
        hysteresis, value, inventory and every host's state); the status
        page's per-host breakdown (L{freno.http.dashboard}).
        """
        return self._cluster(name, self._clock.seconds())

    def _cluster(self, name: str, now: float) -> Dict[str, Any]:
        cluster = self._clusters.get(name)
        if cluster is None:
            return {
                "name": name, "threshold": None, "resume_threshold": None, "holding": False,
                "value": None, "age_ms": None, "error": "no such cluster",
                "inventory": None, "hosts": [],
            }
        hysteresis = self._throttler.hysteresis
        metric = self._metrics.get(name)
        value = age = error = None
        if metric is not None:
            error = metric.error
            stale = error is not None and error.startswith(STALE_PREFIX) and (
                metric.measured_at < now - self._metrics.max_age
            )
            if error is None or stale:
                value, age = number(metric.value), age_ms(now, metric.measured_at)
        elif self._consensus.is_leader():
            error = "Metric not collected yet"
        states = self._host_states(name) if self._host_states is not None else ()
        return {
            "name": name,
            "threshold": number(cluster.throttle_threshold),
            "resume_threshold": cluster.resume_threshold,
            "holding": hysteresis.holding(name),
            "value": value,
            "age_ms": age,
            "error": error,
            "inventory": self._inventory_json(cluster),
            "hosts": [host_json(state, now) for state in states],
        }

    def _inventory_json(self, cluster: ClusterSettings) -> Dict[str, Any]:
        inventory = self._inventory
        hosts: Optional[int] = None
        last_refresh = glitch = None
        if inventory is not None:
            known = inventory.hosts(cluster.name)
            hosts = None if known is None else len(known)
            status = inventory.refresh_status(cluster.name)
            last_refresh, glitch = status.last_refresh, status.glitch
        return {
            "source": cluster.inventory_kind,
            "hosts": hosts,
            "last_refresh": iso(last_refresh),
            "last_refresh_unix": last_refresh,
            "glitch": glitch,
        }

