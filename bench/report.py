# -*- test-case-name: test.unit.test_bench_all -*-
"""
The figures of a benchmark run and their rendering as C{BENCHMARKS.md}.

The data (L{Metric}, L{Section}) and the rendering (L{render}) are pure: the
rendering of fixed inputs is unit-tested. L{machine} and L{load_average}
read the machine; C{bench.all} calls them and hands the result to L{render}.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from typing import Dict, Optional, Sequence, Tuple

import attr

_OPS = {
    "<=": (lambda x, t: x <= t, "≤"),
    "<": (lambda x, t: x < t, "<"),
    ">=": (lambda x, t: x >= t, "≥"),
    ">": (lambda x, t: x > t, ">"),
}


@attr.s(frozen=True, auto_attribs=True)
class Target:
    """
    A bound the median must satisfy, e.g. C{Target("<=", 3.0)}.
    """

    op: str = attr.ib(validator=attr.validators.in_(_OPS))
    value: float = attr.ib(converter=float)

    def met(self, median: float) -> bool:
        """
        Whether C{median} satisfies the bound.
        """
        return _OPS[self.op][0](median, self.value)

    def text(self, unit: str, digits: int) -> str:
        """
        The bound for the table, e.g. C{"≤ 3.00 s"}.
        """
        return f"{_OPS[self.op][1]} {_number(self.value, digits)}{_unit(unit)}"


@attr.s(frozen=True, auto_attribs=True)
class Spread:
    """
    The summary of a metric's samples: median, min, max and, from 4 samples
    on, the interquartile range (C{q1}, C{q3}; else C{None}).
    """

    n: int
    median: float
    low: float
    high: float
    q1: Optional[float]
    q3: Optional[float]


def spread(values: Sequence[float]) -> Optional[Spread]:
    """
    Summarise C{values}; C{None} when there are none.
    """
    if not values:
        return None
    ordered = sorted(float(v) for v in values)
    q1 = q3 = None
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Spread(len(ordered), statistics.median(ordered), ordered[0], ordered[-1], q1, q3)


@attr.s(frozen=True, auto_attribs=True)
class Metric:
    """
    One measured quantity: its samples (one per round), its unit, an
    optional target, and a note (e.g. the original freno's figure).

    @ivar every: the target must hold for every sample, not only for the
        median: counts of errors, failed requests and slow requests are
        judged this way, so that one bad round among good ones is a miss.
    """

    name: str
    unit: str
    values: Tuple[float, ...] = attr.ib(converter=tuple)
    target: Optional[Target] = None
    digits: int = 2
    note: str = ""
    every: bool = False

    @property
    def spread(self) -> Optional[Spread]:
        """
        The summary of the samples.
        """
        return spread(self.values)

    @property
    def verdict(self) -> str:
        """
        C{"met"}, C{"missed"}, C{"no data"} or C{""} (no target).
        """
        s = self.spread
        if s is None:
            return "no data"
        if self.target is None:
            return ""
        if self.every:
            return "met" if all(self.target.met(v) for v in self.values) else "missed"
        return "met" if self.target.met(s.median) else "missed"

    @property
    def target_text(self) -> str:
        """
        The target for the tables (C{""} without one), e.g. C{"≤ 0 (every
        run)"} for a target judged on every sample.
        """
        if self.target is None:
            return ""
        text = self.target.text(self.unit, self.digits)
        return f"{text} (every round)" if self.every else text


@attr.s(frozen=True, auto_attribs=True)
class Section:
    """
    One benchmark: how it was run, what it measured, and its figures (or
    why it failed).

    @ivar error: why the run failed (it exited non-zero, timed out, or its
        output could not be read), with the tail of its output; C{None} when
        it completed. The figures of a failed run are never rendered as
        results.
    """

    key: str
    title: str
    command: str
    method: str
    metrics: Tuple[Metric, ...] = attr.ib(converter=tuple, default=())
    notes: Tuple[str, ...] = attr.ib(converter=tuple, default=())
    error: Optional[str] = None
    seconds: float = 0.0


def _unit(unit: str) -> str:
    if not unit:
        return ""
    return unit if unit == "%" else f" {unit}"


def _number(value: float, digits: int) -> str:
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _cell(value: Optional[float], metric: Metric) -> str:
    if value is None:
        return "—"
    return f"{_number(value, metric.digits)}{_unit(metric.unit)}"


def render_table(metrics: Sequence[Metric]) -> str:
    """
    A markdown table: one row per metric with its median, min–max, IQR,
    sample count, target and verdict.
    """
    rows = [
        "| Measure | Median | Min – max | IQR (q1 – q3) | n | Target | Result | Note |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for m in metrics:
        s = m.spread
        if s is None:
            median = range_ = iqr = "—"
            n = "0"
        else:
            median = _cell(s.median, m)
            range_ = f"{_number(s.low, m.digits)} – {_cell(s.high, m)}"
            iqr = "—" if s.q1 is None else f"{_number(s.q1, m.digits)} – {_cell(s.q3, m)}"
            n = str(s.n)
        rows.append(
            f"| {m.name} | {median} | {range_} | {iqr} | {n} | {m.target_text} | "
            f"{_verdict(m)} | {m.note} |"
        )
    return "\n".join(rows)


def _verdict(metric: Metric) -> str:
    v = metric.verdict
    return {"missed": "**missed**", "no data": "**no data**"}.get(v, v)


def failure_reason(section: Section) -> str:
    """
    The first line of a failed section's error, for the summary.
    """
    lines = (section.error or "").strip().splitlines()
    return lines[0] if lines else "failed"


def render_summary(sections: Sequence[Section]) -> str:
    """
    A markdown table of every targeted metric of every section; targets
    judged on every round that were met are counted in one row per section
    (each is in the section's own table), those missed have a row each.
    """
    rows = [
        "| Benchmark | Measure | Median (or worst round) | Target | Result |",
        "|---|---|---:|---|---|",
    ]
    for section in sections:
        if section.error is not None:
            reason = failure_reason(section).replace("|", "\\|")
            rows.append(f"| {section.title} | run failed: {reason} | — | | **failed** |")
            continue
        every_met = 0
        for m in section.metrics:
            if m.target is None:
                continue
            if m.every and m.verdict == "met":
                every_met += 1
                continue
            rows.append(
                f"| {section.title} | {m.name} | {_summary_value(m)} | "
                f"{m.target_text} | {_verdict(m)} |"
            )
        if every_met:
            rows.append(
                f"| {section.title} | other every-round checks (errors, failures, "
                f"violations): {every_met}, see below | — | | met |"
            )
    return "\n".join(rows)


def _summary_value(metric: Metric) -> str:
    """
    The median; for a target judged on every round, the worst round.
    """
    s = metric.spread
    if s is None:
        return "—"
    if metric.every and metric.target is not None:
        worst = s.low if metric.target.op in (">", ">=") else s.high
        return f"worst {_cell(worst, metric)}"
    return _cell(s.median, metric)


def render(
    machine_info: Dict[str, str],
    load_start: str,
    load_end: str,
    sections: Sequence[Section],
    command: str,
    started: str,
    elapsed: float,
) -> str:
    """
    The whole C{BENCHMARKS.md}.
    """
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {started} in {elapsed / 60:.1f} minutes. "
        "Do not edit by hand: run `make bench` again.",
        "",
        "**The machine is shared and noisy.** It is a small virtual machine whose two cores "
        "are shared with other work (other agents building and testing this project ran "
        "alongside); the load averages below show how busy it was. Every figure is a median "
        "over rounds with its spread, and should be read as \"on a busy 2-core box\", "
        "not as a capacity figure for dedicated hardware. The targets are the issues' targets; "
        "a target is met when the median meets it, except targets marked \"every round\" "
        "(errors, failed requests, slow requests), which every round must meet. A run that "
        "failed (exited non-zero, timed out, or wrote no readable figures) reports no "
        "figures; a measurement that saw errors (failed probes, failed requests, answers "
        "other than the 2xx that was due) reports its errors as a miss and no figures.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    for key, value in machine_info.items():
        out.append(f"| {key} | {value} |")
    out.append(f"| load average (1, 5, 15 min) at start | {load_start} |")
    out.append(f"| load average (1, 5, 15 min) at end | {load_end} |")
    out += ["", "## Summary", "", render_summary(sections), ""]
    for section in sections:
        out += [
            f"## {section.title}",
            "",
            f"Command: `{section.command}` ({section.seconds:.0f} s).",
            "",
            section.method.strip(),
            "",
        ]
        if section.error is not None:
            out += [
                "**This run failed; its figures are not reported:**",
                "",
                "```",
                section.error.strip(),
                "```",
                "",
            ]
        elif section.metrics:
            out += [render_table(section.metrics), ""]
        if section.notes:
            out += [f"- {note}" for note in section.notes] + [""]
    return "\n".join(out).rstrip() + "\n"


# -- reading the machine -------------------------------------------------------


def _first_line(cmd: Sequence[str]) -> str:
    binary = shutil.which(cmd[0]) or (
        f"/usr/sbin/{cmd[0]}" if os.path.exists(f"/usr/sbin/{cmd[0]}") else None
    )
    if binary is None:
        return "not installed"
    try:
        done = subprocess.run(
            [binary, *cmd[1:]], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def load_average() -> str:
    """
    The 1, 5 and 15 minute load averages, e.g. C{"1.02, 2.50, 3.10"}.
    """
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> Dict[str, str]:
    """
    What the figures were measured on: CPU, cores, memory, kernel, OS and
    the versions of Python, Twisted, MariaDB, HAProxy and the load tools.
    """
    import twisted

    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)', _read("/etc/os-release"), re.M)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "CPU": cpu.group(1).strip() if cpu else platform.processor() or "unknown",
        "cores (nproc)": str(usable),
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "OS": os_name.group(1) if os_name else "unknown",
        "Python": sys.version.split()[0],
        "Twisted": twisted.__version__,
        "MariaDB": _first_line(["mariadbd", "--version"]),
        "HAProxy": _first_line(["haproxy", "-v"]),
        "wrk": _first_line(["wrk", "-v"]),
    }
