# -*- test-case-name: test.unit.test_throttle -*-
"""
L{CheckResult}: the answer to one check (freno's C{CheckResult}).

Results are frozen. freno kept shared, mutable result singletons and the
if-exists routes mutated them, so one C{/check-if-exists/a/nosuch/x} turned
every later unknown-store-type check into a 200. Here the
if-exists conversion builds a new object (L{CheckResult.converted_if_exists}),
so the module constants below can be shared safely (docs/decisions.md, D9).
"""

from __future__ import annotations

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


@attr.s(frozen=True, slots=True, auto_attribs=True)
class CheckResult:
    """
    One check's outcome.

    @ivar status_code: the HTTP status (200, 404, 417, 429 or 500).
    @ivar value: the metric value compared (0 when there is none).
    @ivar threshold: the threshold it was compared with.
    @ivar message: C{""} on success, else the reason.
    """

    status_code: int
    value: float
    threshold: float
    message: str

    def converted_if_exists(self) -> "CheckResult":
        """
        The result an if-exists route answers: a 404 becomes a 200 (the body's
        C{StatusCode} too), everything else is unchanged.
        """
        if self.status_code != 404:
            return self
        return CheckResult(200, self.value, self.threshold, self.message)


#: Unknown store type (freno's C{NoSuchMetricCheckResult}); frozen, so shareable.
NO_SUCH_METRIC_RESULT = CheckResult(404, 0.0, 0.0, NO_SUCH_METRIC)
#: The answer of a node that is not the leader.
NOT_LEADER_RESULT = CheckResult(500, 0.0, 0.0, NOT_LEADER)
