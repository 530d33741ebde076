# -*- test-case-name: test.unit.test_throttle,test.unit.test_new_leader_checks,test.unit.test_names,test.unit.test_throttle_policy -*-
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
L{AggregatedMetrics.get} and the clock: it never waits on anything.

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

The built-in C{abusing-app} (D7): a local throttle present on every
node from start, ratio 1, shown in C{/throttled-apps} with an expiry ten years
after start (freno's shape). It is not replicated, and throttling or
unthrottling the key C{abusing-app} is refused with L{InvalidCommand} (a 400),
rather than being silently restored at the next restart as in freno.
"""

from __future__ import annotations

import random as _random
from types import SimpleNamespace
from typing import Callable, Dict, Mapping, Optional, Protocol

from twisted.internet.defer import Deferred, succeed
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
from freno.probe.metrics import AggregatedMetrics
from freno.stats import Stats
from freno.throttle.counters import CheckCounters
from freno.throttle.flags import STANDARD, CheckFlags
from freno.throttle.lowpriority import LowPriorityDenials
from freno.throttle.recent import RecentApps
from freno.throttle.result import (
    APP_DENIED,
    NO_APP_INDICATED,
    NO_SUCH_METRIC,
    NO_SUCH_METRIC_RESULT,
    NOT_LEADER_RESULT,
    THRESHOLD_EXCEEDED,
    CheckResult,
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
    @param stats: where checks are counted.
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
        stats: Stats,
        random: Callable[[], float] = _random.random,
        shared_domain: Optional[SharedDomainSource] = None,
    ) -> None:
        self._clock = clock
        self._config = config
        self._clusters = config.mysql.clusters
        self._consensus = consensus
        self._metrics = metrics
        self._stats = stats
        self._random = random
        self._shared_domain = shared_domain
        self.recent_apps = RecentApps()
        self.low_priority = LowPriorityDenials()
        self.counters = CheckCounters(stats, self._clusters)
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
        Evaluate one check (see the module docstring for the order).
        """
        if store_type != MYSQL:
            if not self._consensus.is_leader():
                return NOT_LEADER_RESULT
            result = NO_SUCH_METRIC_RESULT
        else:
            now = self._clock.seconds()
            result = self._evaluate(app, store_name, flags, now)
            self.counters.count(app, MYSQL, store_name, result.status_code)
            self.recent_apps.record(f"{app}/{remote_addr}", now)
        if flags.ok_if_not_exists:
            return result.converted_if_exists()
        return result

    def _evaluate(
        self, app: str, store_name: str, flags: CheckFlags, now: float
    ) -> CheckResult:
        if not self._consensus.is_leader():
            return NOT_LEADER_RESULT
        error: Optional[str]
        policy_threshold: Optional[float] = None
        exempt = False
        if (
            flags.low_priority
            and self.low_priority.denied("mysql/" + store_name, now)
        ) or self.is_app_throttled(app, store_name, now):
            value, threshold, error = 0.0, 0.0, APP_DENIED
        else:
            cluster = self._clusters.get(store_name)
            if cluster is None:
                value, threshold, error = 0.0, 0.0, NO_SUCH_METRIC
            else:
                threshold = cluster.throttle_threshold
                policy = self.policy_for(app, store_name)
                if policy is not None and policy.threshold is not None:
                    policy_threshold, exempt = policy.threshold, policy.exempt
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
        override = flags.override_threshold
        if override is not None and override > 0:
            threshold = override
        if policy_threshold is not None:
            if exempt and (override is None or override <= 0):
                threshold = policy_threshold
            else:
                threshold = min(threshold, policy_threshold)
        if not app:
            return CheckResult(417, value, threshold, NO_APP_INDICATED)
        if error is not None:
            if error == APP_DENIED:
                return CheckResult(417, value, threshold, APP_DENIED)
            if error == NO_SUCH_METRIC:
                return CheckResult(404, value, threshold, NO_SUCH_METRIC)
            return CheckResult(500, value, threshold, error)
        if value > threshold:
            if (
                not flags.low_priority
                and override is None
                and app != FRENO_APP
                and value > cluster_threshold
            ):
                self.low_priority.mark("mysql/" + store_name, now)
            return CheckResult(429, value, threshold, THRESHOLD_EXCEEDED)
        shared = self._shared_domain
        if shared is not None and app != FRENO_APP:
            seconds = shared.seconds_since_healthy("mysql/" + store_name, now)
            if seconds is not None and seconds >= 1:
                return CheckResult(429, value, threshold, THRESHOLD_EXCEEDED)
        return CheckResult(200, value, threshold, "")

    def is_app_throttled(self, app: str, store_name: str, now: float) -> bool:
        """
        Whether C{app} is refused on C{store_name} at C{now}: the store-scoped
        key first, then the app key, each with its own ratio roll.
        """
        if app in self.builtin_apps:
            return True
        apps = self._consensus.throttled_apps()
        if not apps:
            return False
        for key in (f"{app}/{store_name}", app):
            throttle = apps.get(key)
            if throttle is None or not throttle.active(now):
                continue
            if self._random() < throttle.ratio:
                return True
        return False

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
        Unthrottle C{app_key} if this node knows it as throttled (as freno:
        an unknown key answers OK without a command, so it is not audited
        either: nothing happened).

        @raise InvalidCommand: the built-in app.
        """
        self.refuse_builtin(app_key)
        if app_key not in self._consensus.throttled_apps():
            return succeed(Applied())
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
        Stop skipping C{hostname} if this node knows it as skipped; an
        unknown host answers OK without a command (like unthrottle: a
        command that would change nothing is not sent, nor audited).
        """
        if hostname not in self._consensus.skipped_hosts():
            return succeed(Applied())
        return self.submit(RecoverHost(hostname, context))
