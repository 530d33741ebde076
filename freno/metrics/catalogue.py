# -*- test-case-name: test.unit.test_metrics_exports,test.unit.test_metrics_registry -*-
"""
Every metric of the service, defined once: its kind, C{/metrics} name and
help, labels, and the C{/debug/vars} names (freno's) its series map to.

Writers record into these families through a L{freno.metrics.registry.Registry}
and never name a metric themselves. The C{/debug/vars} names keep freno's
document as it was (docs/api.md); where freno kept two counts of one event
(for example C{check.any.total} and C{check.<app>.total}), they are derived
from one labeled series when the document is rendered (docs/decisions.md,
D62).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import attr

from freno.metrics.registry import COUNTER, GAUGE, TEXT, TIMER, Family


@attr.s(frozen=True, auto_attribs=True)
class VarsName:
    """
    One C{/debug/vars} name per series: C{template} formatted with the
    series' label values (C{"probes.total"}, C{"httpcheck.{}"}).
    """

    template: str

    def __call__(self, labels: tuple) -> Tuple[str, ...]:
        """
        The series' name, in a 1-tuple.
        """
        return (self.template.format(*labels),)


@lru_cache(maxsize=8192)
def check_vars_names(labels: Tuple[str, str, str, str]) -> Tuple[str, ...]:
    """
    freno's counters of one check series C{(app, store type, store name,
    status)}: for each C{<x>} of C{total}, C{error} (status not 200) and
    C{internal-error} (status 500), C{check.any.<x>}, C{check.<app>.<x>},
    C{check.any.<storeType>.<storeName>.<x>} and
    C{check.<app>.<storeType>.<storeName>.<x>}.
    """
    app, store_type, store_name, status = labels
    kinds = ["total"]
    if status != "200":
        kinds.append("error")
    if status == "500":
        kinds.append("internal-error")
    names = []
    for kind in kinds:
        names += [
            f"check.any.{kind}",
            f"check.{app}.{kind}",
            f"check.any.{store_type}.{store_name}.{kind}",
            f"check.{app}.{store_type}.{store_name}.{kind}",
        ]
    return tuple(names)


# -- checks (freno.throttle.counters) ----------------------------------------

CHECKS = Family(
    COUNTER,
    "Checks answered, by app, store and HTTP status.",
    name="freno_checks_total",
    labels=("app", "store_type", "store_name", "status"),
    vars=check_vars_names,
)

# -- probing (freno.probe) ----------------------------------------------------

PROBES = Family(
    COUNTER,
    "Probes of a host (non-cached reads).",
    name="freno_probes_total",
    labels=("cluster", "host"),
    vars=VarsName("probes.total"),
)
PROBE_ERRORS = Family(
    COUNTER,
    "Probes of a host that failed.",
    name="freno_probe_errors_total",
    labels=("cluster", "host"),
    vars=VarsName("probes.error"),
)
PROBE_LATENCY = Family(
    TIMER,
    "How long probes of a host took.",
    name="freno_probe_latency_seconds",
    labels=("cluster", "host"),
    vars=VarsName("probes.latency"),
)
THRESHOLD = Family(
    GAUGE, "A cluster's throttle threshold.", name="freno_threshold", labels=("cluster",)
)
AGGREGATED_VALUE = Family(
    GAUGE,
    "A cluster's aggregated metric (e.g. replication lag).",
    name="freno_aggregated_value",
    labels=("cluster",),
)
AGGREGATED_AGE = Family(
    GAUGE,
    "Age of a cluster's aggregated metric.",
    name="freno_aggregated_age_seconds",
    labels=("cluster",),
)
HTTP_CHECKS = Family(
    COUNTER,
    "HTTP checks of a host, by outcome (skip, error or the HTTP status).",
    labels=("outcome",),
    vars=VarsName("httpcheck.{}"),
)
REACTOR_LAG = Family(
    TIMER,
    "How late the reactor ran timed calls (recent samples).",
    name="freno_reactor_lag_seconds",
    vars=VarsName("reactor.lag"),
)

# -- inventory (freno.inventory.refresh) --------------------------------------

INVENTORY_REFRESHES = Family(
    COUNTER,
    "Inventory refreshes of a cluster.",
    name="freno_inventory_refreshes_total",
    labels=("cluster",),
)
INVENTORY_GLITCHES = Family(
    COUNTER,
    "Inventory refreshes of a cluster that failed.",
    name="freno_inventory_glitches_total",
    labels=("cluster",),
)
INVENTORY_HOSTS = Family(
    GAUGE, "Hosts in a cluster's inventory.", name="freno_inventory_hosts", labels=("cluster",)
)

# -- consensus (freno.consensus) ----------------------------------------------

CONSENSUS_IS_LEADER = Family(
    GAUGE,
    "1 while this node leads (forced leadership included), any backend.",
    vars=VarsName("consensus.is_leader"),
)
CONSENSUS_IS_HEALTHY = Family(
    GAUGE,
    "1 while this node's consensus backend is healthy, any backend.",
    vars=VarsName("consensus.is_healthy"),
)
RAFT_IS_LEADER = Family(
    GAUGE,
    "1 while this node is the leader.",
    name="freno_raft_is_leader",
    vars=VarsName("raft.is_leader"),
)
RAFT_IS_HEALTHY = Family(
    GAUGE, "1 while raft has a leader this node reaches.", vars=VarsName("raft.is_healthy")
)
RAFT_LEADER = Family(TEXT, "The raft leader's address.", vars=VarsName("raft.leader"))
RAFT_TERM = Family(GAUGE, "The current raft term.", name="freno_raft_term")
RAFT_LEADER_CHANGES = Family(
    COUNTER, "Leadership changes this node saw.", name="freno_raft_leader_changes_total"
)
RAFT_COMMIT_LATENCY = Family(
    TIMER,
    "How long control commands took to commit.",
    name="freno_raft_commit_latency_seconds",
)
MYSQL_IS_LEADER = Family(
    GAUGE,
    "1 while this node holds the MySQL backend's election row.",
    vars=VarsName("backend.mysql.is_leader"),
)
MYSQL_IS_HEALTHY = Family(
    GAUGE,
    "1 while the MySQL backend's election rounds succeed.",
    vars=VarsName("backend.mysql.is_healthy"),
)
SHARED_DOMAIN_FETCHES = Family(
    COUNTER,
    "Shared-domain health fetches from other domains' leaders.",
    vars=VarsName("sharedomain.fetch.total"),
)
SHARED_DOMAIN_FETCH_ERRORS = Family(
    COUNTER,
    "Shared-domain health fetches that failed.",
    vars=VarsName("sharedomain.fetch.error"),
)

# -- memcache (freno.publish.memcache) ----------------------------------------

MEMCACHE_WRITES = Family(
    COUNTER,
    "Commands sent to a memcached server.",
    name="freno_memcache_writes_total",
    labels=("server",),
)
MEMCACHE_ERRORS = Family(
    COUNTER,
    "Failed commands and connection attempts to a memcached server.",
    name="freno_memcache_errors_total",
    labels=("server",),
)

# -- computed when /debug/vars is rendered (freno.metrics.expvar) ------------

THROTTLED_STATES = Family(
    GAUGE,
    "1 for each throttled app, 0 for one throttled before and no more.",
    labels=("app",),
    vars=VarsName("throttled_states.{}"),
)
AGGREGATED = Family(
    GAUGE,
    "A cluster's aggregated metric, unless it is an error.",
    labels=("cluster",),
    vars=VarsName("aggregated.mysql.{}"),
)
SECONDS_SINCE_HEALTHY = Family(
    GAUGE,
    "Whole seconds since a cluster's metric was last at or below its threshold.",
    labels=("cluster",),
    vars=VarsName("check.mysql.{}.seconds_since_healthy"),
)


def families() -> Tuple[Family, ...]:
    """
    Every family defined above.
    """
    return tuple(value for value in globals().values() if isinstance(value, Family))
