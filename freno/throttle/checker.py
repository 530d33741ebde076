# -*- test-case-name: test.unit.test_throttle,test.unit.test_new_leader_checks,test.unit.test_names,test.unit.test_throttle_policy,test.unit.test_check_headers,test.unit.test_hysteresis,test.unit.test_multistore -*-
"""
L{Throttler}: the check algorithm (freno's C{Check}/C{checkAppMetricResult};
docs/compatibility.md, "Check answers") and the control commands that change
throttles and skips. L{freno.http.site.build_site} builds it.

C{shared_domain} is a L{freno.consensus.mysql.shared_domain.SharedDomainHealth}
(or anything with its C{seconds_since_healthy(metric_name, now)}); C{None},
the default, leaves step 9 out.

Order of evaluation of L{Throttler.check}:

    0. A node that is not the leader (C{consensus.is_leader()} false) answers
       500 C{not leader} to every check, whatever the store type, app or
       flags; the if-exists conversion does not apply to it. Mysql checks are
       still counted and recorded (steps 10-11). Decision D1 of
       docs/decisions.md: freno answered from whatever residue its cache
       held, typically 404.
    1. A store type other than C{mysql}: 404 C{No such metric}, not counted
       and not recorded (as freno; D10: an unknown store type has no
       metric to protect).
    2. Low priority: with C{?p=low}, a metric on which a normal client got a
       429 within the last second is denied (L{LowPriorityDenials}).
    3. App throttles: the key C{<app>/<store>} first, then C{<app>}; an
       expired entry is skipped; otherwise a fresh C{random() < ratio} roll
       per key. The built-in C{abusing-app} is always throttled.
       Denied (2 or 3): value 0, threshold 0, C{App denied}.
    4. The cluster: an unknown cluster gives C{No such metric} with threshold
       0; a configured one without a metric gives C{Metric not collected
       yet} with its threshold, whatever the state of its inventory (never
       loaded, slow, failing, garbage) or of its probes; a metric error
       (including staleness, applied by L{AggregatedMetrics.get}) gives its
       text, value 0. A configured cluster is never unknown: it answers 500
       until its first probe result (D2; freno answered 404 for a cluster
       whose inventory had not loaded, which the if-exists routes turned
       into 200, so a new leader told C{-if-exists} clients "go" with no
       data at all).
    5. The threshold: the cluster's C{ThrottleThreshold}, then the app's
       policy (L{freno.consensus.state.Policy}; the key C{<app>/<store>}
       first, then C{<app>}; a policy without a threshold changes nothing):

           - a policy threshold applies when it is stricter (lower) than the
             cluster's: effective = min(cluster, policy);
           - an I{exempt} app's policy threshold applies even when higher:
             effective = policy;
           - check-read's override threshold (the HTTP layer only passes
             finite values above 0: D5) replaces the
             cluster's, and a policy still caps it, exempt or not:
             effective = min(override, policy). A client may ask for a
             stricter threshold than its policy, never a looser one (D54).

       The answer's C{Threshold} is the effective threshold.
    6. An empty app: 417 C{no app indicated}.
    7. C{App denied}: 417; C{No such metric} (unknown clusters only): 404;
       any other error, C{Metric not collected yet} included: 500.
    8. C{value > threshold}: 429 C{Threshold exceeded}; if the request is not
       low priority, not a check-read, the app is not C{freno} and the value
       is also above the I{cluster's} threshold, the metric is marked for
       low-priority denial (an app refused only by its own stricter policy
       does not make low-priority clients wait: the cluster is not over its
       threshold; D8, D54). Low-priority denial (step 2) itself is unchanged
       by policies.
    8b. Hysteresis (D60): a check that is no check-read, whose threshold is
       not looser than the cluster's (an exempt policy's higher threshold is
       its own), on a cluster that holds (L{Hysteresis}: its value went above
       its threshold and has not yet fallen below its C{ResumeThreshold}), is
       a 429 C{Threshold exceeded} too, marking low-priority denial (unless
       low priority or the app C{freno}).
    9. Shared-domain health (freno's step 8; only with a C{shared_domain}
       source, i.e. the MySQL backend with a C{ShareDomain}): if the app is
       not C{freno} and another domain's leader reports the metric
       C{mysql/<store>} unhealthy for at least 1 s
       (L{SharedDomainHealth.seconds_since_healthy} C{>= 1}), 429
       C{Threshold exceeded} with the I{local} value and threshold (so the
       body may show a value below the threshold, as freno). It applies to
       check-read and low-priority requests alike, and never marks
       low-priority denial. Otherwise 200.
    10. Count (L{CheckCounters}) with the status above, and
    11. record C{<app>/<remote_addr>} in the recent apps.
    12. if-exists routes turn a 404 into a 200 (a new result object; D9).

The check reads only C{consensus.throttled_apps()}, C{consensus.is_leader()},
L{AggregatedMetrics.get}, the hysteresis state and the clock: it never
waits on anything.

Every result carries an L{Explanation} (the kind of decision, the store
and host, when the value was measured, when to retry; D58, D59), from
which the HTTP layer renders the answer's headers. The 200, threshold-429
and holding-429 results of an unchanged aggregated metric are built once
and shared (frozen), so a steady metric costs no allocation per check.

B{Multi-store checks} (D61): a C{storeName} that is not a configured
cluster and holds commas names several stores (L{Throttler.stores_of}).
Steps 0 and 2-9 run for each store, each is counted (step 10) with its own
status, the request is recorded once (step 11), and the worst result
(L{SEVERITY}: 500 > 429 > 417 > 404 > 200, the first of equals) is the
answer, to which step 12 applies. An app-wide ratio throttle rolls once per
request. L{Throttler.explain_check} evaluates the same way without counting,
recording or marking anything (for C{/explain}).

Commands (L{Throttler.throttle_app}, L{Throttler.skip_host}, ...) take TTLs
in minutes, turn them into absolute expiry times and return the consensus
service's Deferred:

    - throttle, ttl 0 (no ttl given): permanent (C{expire_at=None}), as freno's
      code. D6, as freno: a ratio-only update (C{/throttle-app/x/ratio/r})
      also makes an existing entry permanent, because it carries no TTL; the
      ratio is kept when none is given.
    - skip, ttl 0: now + 60 minutes (freno's C{DefaultSkipTTLMinutes}).
    - a negative ttl keeps freno's meaning: the command becomes an unthrottle
      (or a recover). It is sent as such, so no backend can turn it into a
      permanent throttle (D6).
    - a ttl beyond L{MAX_TTL_MINUTES} (100 years) is refused with
      L{InvalidCommand} (freno wrapped such values into the past and silently
      unthrottled; D4).
    - names may be of any length (as freno); a throttle or skip that would
      break a bound of the replicated state (L{freno.consensus.state}: a key
      over 16,384 characters, more than 10,000 active throttled apps or
      skipped hosts, or more than 4 Mi characters of their names) is
      refused with L{InvalidCommand}, naming the bound, before it reaches
      consensus: nothing changes and memory stays bounded (D48).
    - unthrottle and recover always go through consensus (D6). freno sent
      an unthrottle only when the receiving node already had the app in its
      own map and otherwise answered 200 without a command, so an unthrottle
      sent to a node that had not yet applied the throttle (a restarted node
      catching up, a MySQL-backend follower between state polls) was
      acknowledged and lost; the chaos run (C{bench.chaos}) found exactly
      that. Unthrottling an app (or recovering a host) nobody throttled
      therefore commits a no-op, is audited, and, like every other command,
      fails when there is no leader.

The built-in C{abusing-app} (D7): a local throttle present on every
node from start, ratio 1, shown in C{/throttled-apps} with an expiry ten years
after start (freno's shape). It is not replicated, and throttling or
unthrottling the key C{abusing-app} is refused with L{InvalidCommand} (a 400),
rather than being silently restored at the next restart as in freno.
"""

from __future__ import annotations

import random as _random
from types import SimpleNamespace
from typing import Callable, Dict, Mapping, Optional, Protocol, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from freno.config.model import Config
from freno.consensus.interface import IConsensusService
from freno.consensus.audit import Applied
from freno.consensus.commands import (
    AuditContext,
    Command,
    InvalidCommand,
    LimitReached,
    RecoverHost,
    SkipHost,
    ThrottleApp,
    UnthrottleApp,
    check_ratio,
)
from freno.consensus.state import AppThrottle, Policy, limit_problem
from freno.probe.aggregate import NOT_COLLECTED
from freno.probe.metrics import STALE_PREFIX, AggregatedMetrics, ClusterMetric
from freno.metrics.registry import Registry
from freno.throttle.counters import CheckCounters
from freno.throttle.flags import STANDARD, CheckFlags
from freno.throttle.hysteresis import Hysteresis
from freno.throttle.lowpriority import LowPriorityDenials
from freno.throttle.reasons import quantity_word
from freno.throttle.recent import RecentApps
from freno.throttle.result import (
    APP_DENIED,
    BUILT_IN,
    CLUSTER_THRESHOLD,
    ERROR,
    EXEMPT_POLICY_THRESHOLD,
    HOLDING,
    LOW_PRIORITY,
    NO_APP,
    NO_APP_INDICATED,
    NO_CLUSTER,
    NO_SUCH_METRIC,
    NO_SUCH_METRIC_RESULT,
    NOT_COLLECTED as NOT_COLLECTED_KIND,
    NOT_LEADER_RESULT,
    OK,
    POLICY_THRESHOLD,
    READ_THRESHOLD,
    SHARED_DOMAIN,
    STALE,
    THRESHOLD,
    THRESHOLD_EXCEEDED,
    THROTTLED,
    CheckResult,
    Explanation,
)

#: The only store type.
MYSQL = "mysql"
#: The built-in, always throttled app.
ABUSING_APP = "abusing-app"
#: How long after start the built-in throttle claims to expire (freno: 10 years).
ABUSING_APP_TTL = 24 * 365 * 10 * 3600.0
#: The internal app name freno's self-checks use; its 429s never mark
#: low-priority denial.
FRENO_APP = "freno"
#: The largest TTL accepted, in minutes: 100 years.
MAX_TTL_MINUTES = 100 * 365 * 24 * 60
#: Skip TTL when none is given, in minutes (freno's C{DefaultSkipTTLMinutes}).
DEFAULT_SKIP_TTL_MINUTES = 60
#: The longest C{Retry-After}, in seconds: a permanent or long throttle
#: still asks the client to look again within a minute, so that it notices
#: an unthrottle (docs/decisions.md, D59).
MAX_RETRY_AFTER = 60.0
#: The shared-domain health is fetched this often (seconds): a 429 it causes
#: cannot change sooner.
SHARED_DOMAIN_INTERVAL = 1.0
#: The most (distinct) stores one multi-store check may name.
MAX_STORES = 64
#: The most comma-separated parts a store name may have (repeats included):
#: a bound on the work of splitting it.
MAX_PARTS = 1024
#: Worst first: a multi-store check answers the store result ranked highest
#: (500 > 429 > 417 > 404 > 200; docs/decisions.md, D61).
SEVERITY = {500: 4, 429: 3, 417: 2, 404: 1, 200: 0}
_STORE_LIST_CACHE_SIZE = 4096
#: The bound on each memo of shared results (one entry per cluster, and per
#: cluster and policy or check-read route).
_MEMO_SIZE = 4096
#: Longer store names are parsed (and their results built) at each check
#: rather than cached.
_CACHED_NAME_LENGTH = 512


class InvalidCheck(ValueError):
    """
    A check that cannot be evaluated as asked (answered 400).

    @ivar field: the parameter at fault.
    @ivar problem: what is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _check_refused(applied: Applied, field: Optional[str] = None) -> Applied:
    if applied.refused is not None:
        raise LimitReached(field or applied.field or "app", applied.refused, applied.audit_id)
    return applied


class SharedDomainSource(Protocol):
    """
    What the check path needs from the shared-domain health
    (L{freno.consensus.mysql.shared_domain.SharedDomainHealth}).
    """

    def seconds_since_healthy(self, metric_name: str, now: float) -> Optional[float]:
        """
        The other domains' worst C{SecondsSinceLastHealthy} for
        C{metric_name}, or C{None} when none is known.
        """


class Throttler:
    """
    Answers checks and issues control commands.

    @param clock: the time source.
    @param config: the configuration (clusters and thresholds).
    @param consensus: the throttled apps, skipped hosts and leadership.
    @param metrics: the aggregated metrics, freshness applied by its C{get}.
    @param registry: where checks are counted.
    @param random: a callable returning a float in [0, 1) (the ratio dice).
    @param shared_domain: the shared-domain health source (step 9), or
        C{None}.
    """

    def __init__(
        self,
        clock: IReactorTime,
        config: Config,
        consensus: IConsensusService,
        metrics: AggregatedMetrics,
        registry: Registry,
        random: Callable[[], float] = _random.random,
        shared_domain: Optional[SharedDomainSource] = None,
    ) -> None:
        self._clock = clock
        self._config = config
        self._clusters = config.mysql.clusters
        self._consensus = consensus
        self._metrics = metrics
        self._random = random
        self._shared_domain = shared_domain
        self.recent_apps = RecentApps()
        self.low_priority = LowPriorityDenials()
        self.counters = CheckCounters(registry, self._clusters)
        self.hysteresis = Hysteresis(clock, self._clusters)
        metrics.add_observer(self.hysteresis.observe)
        consensus.add_leadership_observer(self.hysteresis.reset)
        #: The retry pace of 429s: two probe intervals (docs/decisions.md, D59).
        self._pace = 2 * config.mysql.probe.interval
        self._quantities = {
            name: quantity_word(cluster.metric_query) for name, cluster in self._clusters.items()
        }
        self._max_commas = max((name.count(",") for name in self._clusters), default=0)
        self._store_lists: Dict[str, Tuple[str, ...]] = {}
        self._ok: Dict[object, Tuple[ClusterMetric, float, CheckResult]] = {}
        self._over: Dict[object, Tuple[ClusterMetric, float, CheckResult]] = {}
        self._held: Dict[object, Tuple[ClusterMetric, float, CheckResult]] = {}
        self.builtin_apps: Dict[str, AppThrottle] = {
            ABUSING_APP: AppThrottle(clock.seconds() + ABUSING_APP_TTL, 1.0)
        }

    # -- checks ------------------------------------------------------------

    def check(
        self,
        app: str,
        store_type: str,
        store_name: str,
        remote_addr: str,
        flags: CheckFlags = STANDARD,
    ) -> CheckResult:
        """
        Evaluate one check (see the module docstring for the order); a
        C{store_name} naming several stores is a multi-store check (see the
        module docstring and L{stores_of}).

        @raise InvalidCheck: more than L{MAX_STORES} stores.
        """
        if store_type != MYSQL:
            if not self._consensus.is_leader():
                return NOT_LEADER_RESULT
            result = NO_SUCH_METRIC_RESULT
        else:
            now = self._clock.seconds()
            if store_name in self._clusters or "," not in store_name:
                result = self._evaluate(app, store_name, flags, now, None, False)
                self.counters.count(app, MYSQL, store_name, result.status_code)
            else:
                result = None
                rolls: Dict[str, bool] = {}
                for store in self.stores_of(store_name):
                    one = self._evaluate(app, store, flags, now, rolls, False)
                    self.counters.count(app, MYSQL, store, one.status_code)
                    if result is None or SEVERITY[one.status_code] > SEVERITY[result.status_code]:
                        result = one
                assert result is not None
            self.recent_apps.record(f"{app}/{remote_addr}", now, result.status_code)
        if flags.ok_if_not_exists:
            return result.converted_if_exists()
        return result

    def explain_check(
        self, app: str, store_type: str, store_name: str, flags: CheckFlags = STANDARD
    ) -> Tuple[CheckResult, Tuple[Tuple[str, CheckResult], ...]]:
        """
        What a check would answer now, without counting it, recording it or
        marking low-priority denial (the ratio dice still roll, as for a
        check): the final result and each store's result.

        @raise InvalidCheck: more than L{MAX_STORES} stores.
        """
        if store_type != MYSQL:
            result = NO_SUCH_METRIC_RESULT if self._consensus.is_leader() else NOT_LEADER_RESULT
            return result.converted_if_exists() if flags.ok_if_not_exists else result, ()
        now = self._clock.seconds()
        rolls: Dict[str, bool] = {}
        each = tuple(
            (store, self._evaluate(app, store, flags, now, rolls, True))
            for store in self.stores_of(store_name)
        )
        result = each[0][1]
        for _, one in each[1:]:
            if SEVERITY[one.status_code] > SEVERITY[result.status_code]:
                result = one
        if flags.ok_if_not_exists:
            result = result.converted_if_exists()
        return result, each

    def stores_of(self, store_name: str) -> Tuple[str, ...]:
        """
        The stores a check's C{storeName} names: itself when it is a
        configured cluster (commas and all) or holds no comma; else its
        comma-separated parts, where adjacent parts that together spell a
        configured cluster name with commas are that cluster (the longest
        such name first). Repeated stores count once; order is kept.

        @raise InvalidCheck: more than L{MAX_STORES} stores, or more than
            L{MAX_PARTS} parts.
        """
        if store_name in self._clusters or "," not in store_name:
            return (store_name,)
        cached = self._store_lists.get(store_name)
        if cached is not None:
            return cached
        parts = store_name.split(",")
        span = self._max_commas + 1
        if len(parts) > MAX_PARTS:
            raise InvalidCheck("storeName", f"at most {MAX_STORES} stores in one check")
        stores: Dict[str, None] = {}
        index = 0
        while index < len(parts):
            for end in range(min(len(parts), index + span), index + 1, -1):
                name = ",".join(parts[index:end])
                if name in self._clusters:
                    break
            else:
                name, end = parts[index], index + 1
            stores[name] = None
            index = end
        if len(stores) > MAX_STORES:
            raise InvalidCheck("storeName", f"at most {MAX_STORES} stores in one check")
        result = tuple(stores)
        if len(store_name) <= _CACHED_NAME_LENGTH:
            if len(self._store_lists) >= _STORE_LIST_CACHE_SIZE:
                self._store_lists.clear()
            self._store_lists[store_name] = result
        return result

    def _evaluate(
        self,
        app: str,
        store_name: str,
        flags: CheckFlags,
        now: float,
        rolls: Optional[Dict[str, bool]],
        dry_run: bool,
    ) -> CheckResult:
        if not self._consensus.is_leader():
            return NOT_LEADER_RESULT
        error: Optional[str]
        denial = None
        if flags.low_priority:
            until = self.low_priority.denied_until("mysql/" + store_name, now)
            if until is not None:
                denial = Explanation(
                    LOW_PRIORITY, store_name, retry_after=self.low_priority.window,
                    retry_until=until,
                )
        if denial is None:
            denial = self._app_denial(app, store_name, now, rolls)
        metric = None
        policy = None
        if denial is not None:
            value, threshold, error = 0.0, 0.0, APP_DENIED
        else:
            cluster = self._clusters.get(store_name)
            if cluster is None:
                value, threshold, error = 0.0, 0.0, NO_SUCH_METRIC
            else:
                threshold = cluster.throttle_threshold
                policy = self.policy_for(app, store_name)
                if policy is not None and policy.threshold is None:
                    policy = None
                metric = self._metrics.get(store_name)
                if metric is None:
                    # Configured, but no probe result yet (inventory not
                    # loaded, or hosts not answered): never 404 (step 4).
                    value, error = 0.0, NOT_COLLECTED
                elif metric.error is not None:
                    value, error = 0.0, metric.error
                else:
                    value, error = metric.value, None
        cluster_threshold = threshold
        source = CLUSTER_THRESHOLD
        override = flags.override_threshold
        if override is not None and override > 0:
            threshold, source = override, READ_THRESHOLD
        if policy is not None:
            if policy.exempt and (override is None or override <= 0):
                threshold, source = policy.threshold, EXEMPT_POLICY_THRESHOLD
            elif policy.threshold < threshold:
                threshold, source = policy.threshold, POLICY_THRESHOLD
        if not app:
            return CheckResult(
                417, value, threshold, NO_APP_INDICATED,
                Explanation(NO_APP, store_name, retry_after=MAX_RETRY_AFTER),
            )
        if error is not None:
            if error == APP_DENIED:
                return CheckResult(417, value, threshold, APP_DENIED, denial)
            if error == NO_SUCH_METRIC:
                return CheckResult(404, value, threshold, NO_SUCH_METRIC, Explanation(NO_CLUSTER, store_name))
            return CheckResult(500, value, threshold, error, self._error_why(store_name, metric, now))
        assert metric is not None
        key = "" if policy is None or source == READ_THRESHOLD or source == CLUSTER_THRESHOLD else policy.key
        if value > threshold:
            if (
                not flags.low_priority
                and override is None
                and app != FRENO_APP
                and value > cluster_threshold
                and not dry_run
            ):
                self.low_priority.mark("mysql/" + store_name, now)
            return self._memo(self._over, THRESHOLD, 429, THRESHOLD_EXCEEDED, store_name, metric, threshold, source, key)
        if (
            override is None
            and threshold <= cluster_threshold
            and self.hysteresis.holding(store_name)
        ):
            if not flags.low_priority and app != FRENO_APP and not dry_run:
                self.low_priority.mark("mysql/" + store_name, now)
            return self._memo(self._held, HOLDING, 429, THRESHOLD_EXCEEDED, store_name, metric, threshold, source, key)
        shared = self._shared_domain
        if shared is not None and app != FRENO_APP:
            seconds = shared.seconds_since_healthy("mysql/" + store_name, now)
            if seconds is not None and seconds >= 1:
                why = Explanation(
                    SHARED_DOMAIN, store_name, metric.host, metric.measured_at,
                    self._quantities.get(store_name, "value"),
                    retry_after=max(self._pace, SHARED_DOMAIN_INTERVAL),
                )
                return CheckResult(429, value, threshold, THRESHOLD_EXCEEDED, why)
        return self._memo(self._ok, OK, 200, "", store_name, metric, threshold, source, key)

    def _memo(
        self,
        memo: Dict[object, Tuple[ClusterMetric, float, CheckResult]],
        kind: str,
        status: int,
        message: str,
        store_name: str,
        metric: ClusterMetric,
        threshold: float,
        source: str,
        key: str,
    ) -> CheckResult:
        """
        The result of C{kind} for C{metric}: built once per aggregated
        metric, threshold and its source (cluster, check-read, a policy),
        then shared (results are frozen), so the hot path allocates nothing
        while the metric is unchanged.
        """
        slot: object = store_name if source == CLUSTER_THRESHOLD else (store_name, source, key)
        entry = memo.get(slot)
        if entry is not None and entry[0] is metric and entry[1] == threshold:
            return entry[2]
        why = Explanation(
            kind,
            store_name,
            metric.host,
            metric.measured_at,
            self._quantities.get(store_name, "value"),
            source,
            self.hysteresis.resume_threshold(store_name) if kind == HOLDING else None,
            key=key,
            retry_after=None if status == 200 else self._pace,
        )
        result = CheckResult(status, metric.value, threshold, message, why)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[slot] = (metric, threshold, result)
        return result

    def _error_why(self, store_name: str, metric: Optional[ClusterMetric], now: float) -> Explanation:
        """
        The explanation of a 500 from a configured cluster: no value yet, a
        stale value, or a host's error.
        """
        if metric is None:
            return Explanation(NOT_COLLECTED_KIND, store_name)
        error = metric.error or ""
        if error == NOT_COLLECTED:
            return Explanation(NOT_COLLECTED_KIND, store_name, metric.host)
        if error.startswith(STALE_PREFIX) and metric.measured_at < now - self._metrics.max_age:
            return Explanation(
                STALE, store_name, metric.host, metric.measured_at,
                self._quantities.get(store_name, "value"),
                detail=f"value {now - metric.measured_at:.1f} s old",
            )
        return Explanation(ERROR, store_name, metric.host)

    def _app_denial(
        self, app: str, store_name: str, now: float, rolls: Optional[Dict[str, bool]]
    ) -> Optional[Explanation]:
        """
        Why C{app} is refused on C{store_name} at C{now}, or C{None}: the
        built-in C{abusing-app}, else the store-scoped key, then the app key,
        each active one with its own ratio roll. C{rolls} (one per request
        of a multi-store check) keeps the app key's roll, so that one request
        rolls it once whatever the number of stores.
        """
        builtin = self.builtin_apps.get(app)
        if builtin is not None:
            return Explanation(
                BUILT_IN, store_name, key=app, throttle=builtin, retry_after=MAX_RETRY_AFTER
            )
        apps = self._consensus.throttled_apps()
        if not apps:
            return None
        for key in (f"{app}/{store_name}", app):
            throttle = apps.get(key)
            if throttle is None or not throttle.active(now):
                continue
            if rolls is not None and key == app:
                denied = rolls.get(key)
                if denied is None:
                    denied = rolls[key] = self._random() < throttle.ratio
            else:
                denied = self._random() < throttle.ratio
            if denied:
                return Explanation(
                    THROTTLED, store_name, key=key, throttle=throttle,
                    meta=getattr(throttle, "meta", None),
                    retry_after=MAX_RETRY_AFTER if throttle.ratio >= 1 else self._pace,
                    retry_until=throttle.expire_at,
                )
        return None

    def is_app_throttled(self, app: str, store_name: str, now: float) -> bool:
        """
        Whether C{app} is refused on C{store_name} at C{now}: the store-scoped
        key first, then the app key, each with its own ratio roll.
        """
        return self._app_denial(app, store_name, now, None) is not None

    def policy_for(self, app: str, store_name: str) -> Optional[Policy]:
        """
        The policy that applies to C{app} on C{store_name}: C{<app>/<store>}
        first, then C{<app>}; C{None} when there is none.
        """
        policies = self._consensus.policies()
        if not policies:
            return None
        policy = policies.get(f"{app}/{store_name}")
        return policy if policy is not None else policies.get(app)

    def throttled_apps(self) -> Mapping[str, AppThrottle]:
        """
        The throttled apps as C{/throttled-apps} shows them: the replicated
        ones plus the built-in C{abusing-app}.
        """
        apps = dict(self._consensus.throttled_apps())
        apps.update(self.builtin_apps)
        return apps

    # -- commands ----------------------------------------------------------

    def _expire_at(self, ttl_minutes: int) -> float:
        if abs(ttl_minutes) > MAX_TTL_MINUTES:
            raise InvalidCommand(
                "ttlMinutes", f"must be at most {MAX_TTL_MINUTES} (100 years)"
            )
        return self._clock.seconds() + ttl_minutes * 60.0

    def refuse_builtin(self, app_key: str) -> None:
        """
        Refuse to change a built-in throttle (C{abusing-app}).

        @raise InvalidCommand: C{app_key} is built in.
        """
        if app_key in self.builtin_apps:
            raise InvalidCommand(
                "app", f"{app_key} is a built-in throttled app and cannot be changed"
            )

    def submit(self, command: Command, field: Optional[str] = None) -> Deferred:
        """
        Send C{command} to consensus, refusing it first if it would add an
        entry to a full table (so a refused request is never replicated),
        and fail with L{LimitReached} if it was refused when applied (a
        race with another node's command; its audit record then says so).

        @param field: the field a refusal names, when the route calls it
            something else than the REST API does (freno's C{hostName}).
        @return: a Deferred firing with the command's L{Applied}.
        @raise InvalidCommand: an invalid command or a full table.
        """
        consensus = self._consensus
        view = SimpleNamespace(
            apps=consensus.throttled_apps(),
            skipped=consensus.skipped_hosts(),
            policies=consensus.policies(),
        )
        problem = limit_problem(view, command, self._clock.seconds())  # type: ignore[arg-type]
        if problem is not None:
            raise LimitReached(field or problem[0], problem[1])
        d = consensus.submit(command)
        d.addCallback(_check_refused, field)
        return d

    def throttle_app(
        self,
        app_key: str,
        ttl_minutes: int = 0,
        ratio: Optional[float] = None,
        context: Optional[AuditContext] = None,
    ) -> Deferred:
        """
        Throttle C{app_key} for C{ttl_minutes} (0: permanently; negative:
        unthrottle) with C{ratio} (C{None}: keep, or 1.0 for a new entry).

        @param context: the audit record's content.
        @raise InvalidCommand: the built-in app, a TTL beyond 100 years, a
            ratio outside [0, 1], or no room in the state.
        """
        self.refuse_builtin(app_key)
        if ratio is not None:
            check_ratio(ratio)  # also when the command becomes an unthrottle
        expire_at = self._expire_at(ttl_minutes) if ttl_minutes else None
        if ttl_minutes < 0:
            return self.unthrottle_app(app_key, context)
        return self.submit(ThrottleApp(app_key, expire_at, ratio, context))

    def unthrottle_app(self, app_key: str, context: Optional[AuditContext] = None) -> Deferred:
        """
        Unthrottle C{app_key} through consensus, whether or not this node
        has applied its throttle yet (D6; freno skipped the command for keys
        it did not know, so an unthrottle sent to a node that lagged was
        acknowledged and lost). It is audited like any command, also when no
        node had the app.

        @raise InvalidCommand: the built-in app.
        """
        self.refuse_builtin(app_key)
        return self.submit(UnthrottleApp(app_key, context))

    def skip_host(
        self, hostname: str, ttl_minutes: int = 0, context: Optional[AuditContext] = None
    ) -> Deferred:
        """
        Skip C{hostname} for C{ttl_minutes} (0: 60 minutes; negative: recover).

        @raise InvalidCommand: a TTL beyond 100 years, or no room in the state.
        """
        expire_at = self._expire_at(ttl_minutes or DEFAULT_SKIP_TTL_MINUTES)
        if ttl_minutes < 0:
            return self.recover_host(hostname, context)
        return self.submit(SkipHost(hostname, expire_at, context), field="hostName")

    def recover_host(self, hostname: str, context: Optional[AuditContext] = None) -> Deferred:
        """
        Stop skipping C{hostname}, through consensus whether or not this
        node has applied its skip yet (D6, as unthrottle: a node that lagged
        would otherwise acknowledge the recover and lose it). It is audited
        like any command, also when no node had the host.
        """
        return self.submit(RecoverHost(hostname, context))
