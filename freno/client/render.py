# -*- test-case-name: test.unit.test_client_cli -*-
"""
Text output of C{freno-cli}: check results, the status table (value,
threshold and age coloured by health), listings, explanations and audit
records. Pure functions from data to text; colour is an argument (the CLI
turns it on only for a terminal).
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Dict, List, Optional, Sequence

from freno.client.durations import format_duration
from freno.client.result import ALLOWED, THROTTLED, CheckResult, Skip, Throttle

GREEN, YELLOW, RED, BOLD, RESET = "\033[32m", "\033[33m", "\033[31m", "\033[1m", "\033[0m"

#: A value older than this (milliseconds) is shown yellow, and red beyond
#: L{AGE_RED_MS}.
AGE_YELLOW_MS = 1000
AGE_RED_MS = 5000


def paint(text: str, colour: Optional[str], enabled: bool) -> str:
    """
    C{text} in C{colour} when C{enabled}.
    """
    return f"{colour}{text}{RESET}" if enabled and colour else text


def number(value: Optional[float]) -> str:
    """
    A value or threshold for a table: up to 3 decimals, C{-} for none.
    """
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return str(value)
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value)}"


def when(seconds: Optional[float], now: float) -> str:
    """
    An expiry as C{"2026-12-05T10:30:00Z (in 29m59s)"}, or C{never}.
    """
    if seconds is None:
        return "never"
    try:
        stamp = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        left = seconds - now
        return f"{stamp} (in {format_duration(round(left))})" if left > 0 else f"{stamp} (expired)"
    except (OverflowError, OSError, ValueError):
        return str(seconds)


def table(rows: Sequence[Sequence[str]], widths_from: Optional[Sequence[Sequence[str]]] = None) -> List[str]:
    """
    Left-aligned columns; C{widths_from} (the uncoloured cells) sets the
    widths when C{rows} carry colour codes.
    """
    plain = widths_from if widths_from is not None else rows
    widths = [max(len(row[i]) for row in plain) for i in range(len(plain[0]))]
    lines = []
    for row, bare in zip(rows, plain):
        cells = [cell + " " * (widths[i] - len(bare[i])) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def check_line(result: CheckResult, colour: bool) -> str:
    """
    One line for a check: C{allowed 200: lag 0.1 <= 1 (value 0.1, threshold 1, age 40ms) [node]}.
    """
    tint = GREEN if result.kind == ALLOWED else YELLOW if result.kind == THROTTLED else RED
    head = paint(f"{result.kind} {result.status or 'no answer'}", tint, colour)
    details = []
    if result.value is not None:
        details.append(f"value {number(result.value)}")
    if result.threshold is not None:
        details.append(f"threshold {number(result.threshold)}")
    if result.data_age_ms is not None:
        details.append(f"age {result.data_age_ms}ms")
    if result.retry_after is not None:
        details.append(f"retry after {format_duration(result.retry_after)}")
    if result.store:
        details.append(f"store {result.store}")
    line = f"{head}: {result.reason}"
    if details:
        line += f" ({', '.join(details)})"
    if result.node:
        line += f" [{result.node}]"
    return line


def _real(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _cluster_tints(cluster: Dict[str, Any]) -> List[Optional[str]]:
    value, threshold, age = (_real(cluster.get(k)) for k in ("value", "threshold", "age_ms"))
    if cluster.get("error") or value is None:
        value_tint = RED
    elif threshold is None:
        value_tint = None
    else:
        value_tint = RED if value > threshold else GREEN
    if age is None:
        age_tint = RED if cluster.get("error") else None
    else:
        age_tint = GREEN if age < AGE_YELLOW_MS else YELLOW if age < AGE_RED_MS else RED
    return [value_tint, value_tint, age_tint]


def status_lines(status: Dict[str, Any], colour: bool) -> List[str]:
    """
    The status report: leader, members, clusters.
    """
    leader = status.get("leader")
    head = f"leader: {paint(str(leader), GREEN, colour) if leader else paint('none', RED, colour)}"
    extras = [f"{k} {status[k]}" for k in ("term", "backend") if status.get(k) is not None]
    if status.get("node"):
        extras.append(f"answered by {status['node']}")
    if status.get("source") == "freno routes":
        extras.append("from freno's routes: no thresholds or ages")
    lines = [head + (f" ({', '.join(extras)})" if extras else "")]
    members = status.get("members") or []
    if members:
        rows = [["MEMBER", "ROLE", "REACHABLE"]]
        tinted = [list(rows[0])]
        for member in members:
            role = "leader" if member.get("leader") else ("follower" if member.get("leader") is False else "-")
            reachable = member.get("reachable")
            reach = "yes" if reachable else ("no" if reachable is False else "-")
            name = str(member.get("id")) + (" (this node)" if member.get("self") else "")
            rows.append([name, role, reach])
            tinted.append([name, paint(role, GREEN if role == "leader" else None, colour),
                           paint(reach, RED if reachable is False else None, colour)])
        lines += [""] + table(tinted, rows)
    clusters = status.get("clusters") or []
    if clusters:
        rows = [["CLUSTER", "VALUE", "THRESHOLD", "AGE", "HOSTS", "ERROR"]]
        tinted = [list(rows[0])]
        for cluster in clusters:
            age = cluster.get("age_ms")
            cells = [
                str(cluster.get("name")), number(cluster.get("value")), number(cluster.get("threshold")),
                "-" if age is None else f"{age}ms",
                "-" if cluster.get("hosts") is None else str(cluster.get("hosts")),
                str(cluster.get("error") or ""),
            ]
            tints = _cluster_tints(cluster)
            rows.append(cells)
            tinted.append(cells[:1] + [paint(c, t, colour) for c, t in zip(cells[1:4], tints)] + cells[4:])
        lines += [""] + table(tinted, rows)
    elif status.get("is_leader") is False or not leader:
        lines += ["", "no cluster values (no leader answered)"]
    return lines


def throttle_lines(throttles: List[Throttle], now: float) -> List[str]:
    """
    The throttled apps as a table.
    """
    if not throttles:
        return ["no throttled apps"]
    rows = [["APP", "RATIO", "EXPIRES", "BY", "REASON"]]
    for t in throttles:
        rows.append([t.key, number(t.ratio), when(t.expires_at_unix, now), t.actor or "-", t.reason or ""])
    return table(rows)


def skip_lines(skips: List[Skip], now: float) -> List[str]:
    """
    The skipped hosts as a table.
    """
    if not skips:
        return ["no skipped hosts"]
    rows = [["HOST", "EXPIRES", "BY", "REASON"]]
    for s in skips:
        rows.append([s.host, when(s.expires_at_unix, now), s.actor or "-", s.reason or ""])
    return table(rows)


def explain_lines(explain: Dict[str, Any], colour: bool) -> List[str]:
    """
    An C{/explain} answer in words: the decision, then each cluster and its
    hosts.
    """
    decision = explain.get("decision") or {}
    status = decision.get("status")
    tint = GREEN if status == 200 else YELLOW if status in (417, 429) else RED
    lines = [
        f"{explain.get('app')} on {','.join(explain.get('stores') or [])}: "
        + paint(f"{status} {decision.get('message') or ''}".rstrip(), tint, colour)
        + (f": {decision['reason']}" if decision.get("reason") else ""),
        f"node {explain.get('node')} ({'leader' if explain.get('is_leader') else 'not the leader'}; "
        f"leader {explain.get('leader')}, term {explain.get('term')})",
    ]
    if explain.get("throttle"):
        t = explain["throttle"]
        lines.append(f"throttle: {t.get('key')} ratio {t.get('ratio')} until {t.get('expires_at') or 'never'}"
                     + (f" ({t['reason']})" if t.get("reason") else ""))
    if explain.get("policy"):
        p = explain["policy"]
        lines.append(f"policy: {p.get('key')} threshold {p.get('threshold')}"
                     + (" exempt" if p.get("exempt") else ""))
    for cluster in explain.get("clusters") or []:
        lines.append("")
        hold = " (holding: hysteresis)" if cluster.get("holding") else ""
        resume = cluster.get("resume_threshold")
        lines.append(
            f"cluster {cluster.get('name')}: value {number(cluster.get('value'))}, threshold "
            f"{number(cluster.get('threshold'))}"
            + (f", resume below {number(resume)}" if resume is not None else "")
            + (f", age {cluster['age_ms']}ms" if cluster.get("age_ms") is not None else "")
            + hold
            + (f", error: {cluster['error']}" if cluster.get("error") else "")
        )
        inventory = cluster.get("inventory") or {}
        if inventory:
            lines.append(f"  inventory: {inventory.get('source')}, {inventory.get('hosts')} host(s)"
                         + (f", glitch: {inventory['glitch']}" if inventory.get("glitch") else ""))
        rows = [["HOST", "STATE", "VALUE", "AGE", "WHY"]]
        for host in cluster.get("hosts") or []:
            rows.append([str(host.get("host")), str(host.get("state")), number(host.get("value")),
                         "-" if host.get("age_ms") is None else f"{host['age_ms']}ms",
                         str(host.get("why") or host.get("error") or "")])
        if len(rows) > 1:
            lines += ["  " + line for line in table(rows)]
    return lines


def member_lines(view: Dict[str, Any]) -> List[str]:
    """
    C{GET /api/v1/members} as a table: address, role, leader, reachable.
    """
    rows = [["ADDRESS", "ROLE", "LEADER", "REACHABLE", "MATCH"]]
    for key, role in (("members", "member"), ("learners", "learner")):
        for m in view.get(key) or []:
            reachable = m.get("reachable")
            rows.append([
                str(m.get("address")) + (" (this node)" if m.get("self") else ""),
                role,
                "yes" if m.get("leader") else "",
                "?" if reachable is None else ("yes" if reachable else "no"),
                "-" if m.get("match_index") is None else str(m["match_index"]),
            ])
    lines = table(rows)
    if view.get("pending"):
        lines.append(f"change in progress: {view['pending']}")
    if view.get("self_learner"):
        lines.append("this node is a learner: not a member yet")
    return lines


def audit_line(record: Dict[str, Any]) -> str:
    """
    One audit record on one line.
    """
    line = f"#{record.get('id')} {record.get('time')} {record.get('actor')} {record.get('route')}"
    line += f" {record.get('outcome')}"
    if record.get("reason"):
        line += f" reason={record['reason']!r}"
    return line
