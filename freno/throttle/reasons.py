# -*- test-case-name: test.unit.test_check_headers -*-
"""
The words of a check's answer: L{reason_text} turns a L{CheckResult} and
its L{Explanation} into the text of C{X-Freno-Reason} (and of C{reason} in
C{/explain}), for example:

    - C{lag 2.31 on db7:3306 > 1.0} (429), C{lag 0.31 on db2:3306 <= 1.0} (200);
      C{lag 0.6 on db7:3306 > 0.5 (policy gh-ost)} when an app's policy set
      the threshold;
    - C{lag 0.92 on db7:3306 not below resume threshold 0.8 (holding since it
      went above 1.0)} (429, hysteresis);
    - C{app throttled by ops until 2026-12-05T10:00:00Z (ratio 1)} (417);
    - C{metric stale: value 1.2 s old (measured on db7:3306)} (500);
    - C{db7:3306: replication not running; ...} (500, a probe's error);
    - C{metric not collected yet}, C{no such cluster}, C{not leader}.

Numbers are short (L{freno.probe.breakdown.format_number}); times are ISO
8601 UTC to the second. The text never holds a control character (names
and an operator's reason are cleaned: they come from clients), and an
operator's reason is cut to L{MAX_OPERATOR_REASON} characters.

It is called once per distinct result (the HTTP layer caches the rendered
headers), never per request.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Optional

from freno.probe.breakdown import format_number
from freno.throttle.result import (
    BUILT_IN,
    HOLDING,
    LOW_PRIORITY,
    NO_APP,
    NO_CLUSTER,
    NO_STORE_TYPE,
    NOT_COLLECTED,
    NOT_LEADER_KIND,
    OK,
    EXEMPT_POLICY_THRESHOLD,
    POLICY_THRESHOLD,
    READ_THRESHOLD,
    SHARED_DOMAIN,
    STALE,
    THRESHOLD,
    THROTTLED,
    CheckResult,
)

#: The most characters of an operator's reason quoted.
MAX_OPERATOR_REASON = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clean(text: str) -> str:
    """
    C{text} with every run of control characters turned into one space.
    """
    return _CONTROL.sub(" ", text)


def quantity_word(metric_query: str) -> str:
    """
    What a cluster's metric is called in reasons: C{"lag"} for replication
    lag (an empty C{MetricQuery}) and for queries that name a heartbeat or
    a lag, else C{"value"}.
    """
    query = metric_query.strip().lower()
    if not query or "lag" in query or "heartbeat" in query:
        return "lag"
    return "value"


def iso_time(t: Optional[float]) -> str:
    """
    POSIX seconds as C{2026-12-05T10:00:00Z}, or C{"never"} (C{None} or out
    of range).
    """
    if t is None:
        return "never"
    try:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "never"


def _throttled(result: CheckResult) -> str:
    why = result.explanation
    throttle = why.throttle
    words = ["app throttled"]
    if "/" in why.key:
        words.append(f"on {clean(why.store)}")
    meta = why.meta
    actor = getattr(meta, "actor", None)
    if actor:
        words.append(f"by {clean(actor)}")
    expire_at = getattr(throttle, "expire_at", None)
    words.append("with no expiry" if expire_at is None else f"until {iso_time(expire_at)}")
    ratio = getattr(throttle, "ratio", 1.0)
    text = " ".join(words) + f" (ratio {format_number(ratio).removesuffix('.0')})"
    reason = getattr(meta, "reason", None)
    if reason:
        text += ": " + clean(reason[:MAX_OPERATOR_REASON])
    return text


def _compared(result: CheckResult, relation: str) -> str:
    why = result.explanation
    text = f"{why.quantity} {format_number(result.value)}"
    if why.host is not None and why.host != "":
        text += f" on {clean(str(why.host))}"
    text += f" {relation} {format_number(result.threshold)}"
    if why.threshold_source == READ_THRESHOLD:
        text += " (check-read threshold)"
    elif why.threshold_source in (POLICY_THRESHOLD, EXEMPT_POLICY_THRESHOLD):
        text += f" ({why.threshold_source} {clean(why.key)})"
    return text


def reason_text(result: CheckResult) -> str:
    """
    The human text of C{result}: see the module docstring.
    """
    why = result.explanation
    kind = why.kind
    host = clean(str(why.host)) if why.host else ""
    if kind == OK:
        return _compared(result, "<=")
    if kind == THRESHOLD:
        return _compared(result, ">")
    if kind == HOLDING:
        resume = format_number(why.resume_threshold or 0.0)
        text = f"{why.quantity} {format_number(result.value)}"
        if host:
            text += f" on {host}"
        return (
            f"{text} not below resume threshold {resume} "
            f"(holding since it went above {format_number(result.threshold)})"
        )
    if kind == SHARED_DOMAIN:
        return f"another domain's leader reports mysql/{clean(why.store)} unhealthy"
    if kind == THROTTLED:
        return _throttled(result)
    if kind == BUILT_IN:
        return f"app {clean(why.key)} is always throttled (built in)"
    if kind == LOW_PRIORITY:
        return (
            f"low priority: a normal client was refused on mysql/{clean(why.store)} "
            "within the last second"
        )
    if kind == NO_APP:
        return "no app indicated"
    if kind == NO_CLUSTER:
        return "no such cluster"
    if kind == NO_STORE_TYPE:
        return "no such store type"
    if kind == NOT_LEADER_KIND:
        return "not leader"
    if kind == NOT_COLLECTED:
        return f"metric not collected yet (no result from {host} yet)" if host else "metric not collected yet"
    if kind == STALE:
        text = f"metric stale: {clean(why.detail)}"
        return f"{text} (measured on {host})" if host else text
    message = clean(result.message)
    if host and host not in message:
        return f"{host}: {message}"
    return message
