# -*- test-case-name: test.unit.test_throttle,test.unit.test_check_headers -*-
"""
L{CheckResult}: the answer to one check (freno's C{CheckResult}), and
L{Explanation}: what decided it, for the answer's headers and C{/explain}.

Results are frozen. freno kept shared, mutable result singletons and the
if-exists routes mutated them, so one C{/check-if-exists/a/nosuch/x} turned
every later unknown-store-type check into a 200. Here the
if-exists conversion builds a new object (L{CheckResult.converted_if_exists}),
so the module constants below can be shared safely (docs/decisions.md, D9).

Every result carries an L{Explanation}: which store and host decided, what
kind of rule, when the value was measured and when the client should look
again. Both are frozen and hashable, and everything an answer's headers say
is derived from the result alone (plus the node's leadership and the clock,
for the data's age), so the HTTP layer renders each distinct result's
headers once and caches them (L{freno.http.check_headers}).
"""

from __future__ import annotations

from typing import Any, Optional

import attr

#: Message of an app refused by a throttle, C{abusing-app} or low priority.
APP_DENIED = "App denied"
#: Message of an unknown store type or cluster (a configured cluster is never
#: unknown: without a value it is C{Metric not collected yet}, a 500).
NO_SUCH_METRIC = "No such metric"
#: Message of a value above the threshold.
THRESHOLD_EXCEEDED = "Threshold exceeded"
#: Message of a check with an empty app name.
NO_APP_INDICATED = "no app indicated"
#: Message of a check answered by a node that is not the leader.
NOT_LEADER = "not leader"


#: Kinds of decision (L{Explanation.kind}); L{freno.throttle.reasons} words
#: each.
OK = "ok"
#: The value is above the threshold.
THRESHOLD = "threshold"
#: Hysteresis: the value is at or below the threshold but the cluster still
#: holds (L{freno.throttle.hysteresis}).
HOLDING = "holding"
#: Another domain's leader reports the metric unhealthy.
SHARED_DOMAIN = "shared-domain"
#: An app throttle (replicated) denied the app.
THROTTLED = "throttled"
#: The built-in C{abusing-app} throttle.
BUILT_IN = "built-in"
#: A low-priority check while a normal client was refused recently.
LOW_PRIORITY = "low-priority"
#: The app name is empty.
NO_APP = "no-app"
#: The cluster is not configured.
NO_CLUSTER = "no-cluster"
#: The store type is not C{mysql}.
NO_STORE_TYPE = "no-store-type"
#: This node is not the leader.
NOT_LEADER_KIND = "not-leader"
#: A configured cluster without a first value.
NOT_COLLECTED = "not-collected"
#: The aggregated value is older than the freshness bound.
STALE = "stale"
#: A host's probe error (or no host at all) is the cluster's error.
ERROR = "error"

#: Where the threshold compared came from (L{Explanation.threshold_source}).
CLUSTER_THRESHOLD = ""
#: check-read's threshold from the path.
READ_THRESHOLD = "check-read"
#: The app's policy, stricter than the cluster's (or check-read's) threshold.
POLICY_THRESHOLD = "policy"
#: The app's exempt policy (its threshold applies even when looser).
EXEMPT_POLICY_THRESHOLD = "exempt policy"


@attr.s(frozen=True, slots=True, auto_attribs=True, cache_hash=True)
class Explanation:
    """
    What decided a check's answer (the I{why} behind a L{CheckResult}).

    @ivar kind: one of the kinds above (C{ok}, C{threshold}, ...).
    @ivar store: the store (cluster) name that decided (C{""} for checks
        that never reached a store: not leader, unknown store type).
    @ivar host: the host (C{host:port}) whose value or error decided, or
        C{""}.
    @ivar measured_at: when the value compared was measured (POSIX
        seconds), for C{X-Freno-Data-Age-Ms}; C{None} when no value was
        compared.
    @ivar quantity: what the metric is called in words: C{"lag"} or
        C{"value"} (L{freno.throttle.reasons.quantity_word}).
    @ivar threshold_source: where the threshold compared came from:
        L{CLUSTER_THRESHOLD}, L{READ_THRESHOLD}, L{POLICY_THRESHOLD} or
        L{EXEMPT_POLICY_THRESHOLD}.
    @ivar resume_threshold: the cluster's C{ResumeThreshold} (C{holding}).
    @ivar key: the throttle key that denied the app (C{throttled},
        C{built-in}), or the policy key whose threshold was compared.
    @ivar throttle: that throttle (its expiry and ratio).
    @ivar meta: who set that throttle and why (an
        L{freno.consensus.audit.EntryMeta}), where the backend keeps it.
    @ivar detail: words the kind needs that the result does not hold (the
        error text of C{error}; the age of a C{stale} value).
    @ivar retry_after: seconds until the client should look again, at most
        (429 and 417 only; C{None} otherwise).
    @ivar retry_until: when set, the wait ends at this time if that is
        sooner than C{retry_after} (a throttle's expiry, a low-priority
        window's end).
    """

    kind: str
    store: str = ""
    host: str = ""
    measured_at: Optional[float] = None
    quantity: str = "lag"
    threshold_source: str = CLUSTER_THRESHOLD
    resume_threshold: Optional[float] = None
    key: str = ""
    throttle: Any = None
    meta: Any = None
    detail: str = ""
    retry_after: Optional[float] = None
    retry_until: Optional[float] = None

    def retry_after_at(self, now: float) -> Optional[float]:
        """
        Seconds from C{now} until the client should look again (never
        negative), or C{None} when the answer carries no C{Retry-After}.
        """
        after = self.retry_after
        if after is None:
            return None
        until = self.retry_until
        if until is not None and until - now < after:
            after = max(0.0, until - now)
        return after


#: The explanation of a result built without one (it says nothing).
UNEXPLAINED = Explanation(ERROR)


@attr.s(frozen=True, slots=True, auto_attribs=True, cache_hash=True)
class CheckResult:
    """
    One check's outcome.

    @ivar status_code: the HTTP status (200, 404, 417, 429 or 500).
    @ivar value: the metric value compared (0 when there is none).
    @ivar threshold: the threshold it was compared with.
    @ivar message: C{""} on success, else the reason.
    @ivar explanation: what decided it.
    """

    status_code: int
    value: float
    threshold: float
    message: str
    explanation: Explanation = UNEXPLAINED

    def converted_if_exists(self) -> "CheckResult":
        """
        The result an if-exists route answers: a 404 becomes a 200 (the body's
        C{StatusCode} too), everything else is unchanged.
        """
        if self.status_code != 404:
            return self
        return CheckResult(200, self.value, self.threshold, self.message, self.explanation)


#: Unknown store type (freno's C{NoSuchMetricCheckResult}); frozen, so shareable.
NO_SUCH_METRIC_RESULT = CheckResult(404, 0.0, 0.0, NO_SUCH_METRIC, Explanation(NO_STORE_TYPE))
#: The answer of a node that is not the leader.
NOT_LEADER_RESULT = CheckResult(500, 0.0, 0.0, NOT_LEADER, Explanation(NOT_LEADER_KIND))
