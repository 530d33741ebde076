# -*- test-case-name: test.unit.test_bench_loadgen -*-
"""
The HTTP load generators the benchmarks use (C{wrk}, C{hey}), and the
reading of their output into L{Load} records that count failures apart.

Both tools count a failed request as a request in their headline rate:
C{wrk}'s C{Requests/sec} includes answers other than 2xx/3xx, and C{hey}'s
includes requests that got no answer at all (a refused connection counts).
The readers here count successes (2xx), other answers and errors (no
answer: socket errors, timeouts) apart, and L{Load.rps} is the rate of
successes only. In C{hey}'s CSV output failed requests are simply absent, so
L{hey_csv} is run with a fixed request count (C{-n}) and the shortfall is the
error count.

The parsers are pure (unit-tested on fixed outputs); the C{run_*} functions
run the tool, with a deadline, and raise L{LoadError} when it fails.
"""

from __future__ import annotations

import re
import time
import statistics
import subprocess
from typing import Dict, List, Optional, Sequence

import attr

#: Seconds a tool may run past its own duration before it is killed.
GRACE = 60.0


class LoadError(Exception):
    """
    A load generator could not be run, failed, or printed output that could
    not be read; the message says which, with the tail of its output.
    """


@attr.s(frozen=True, auto_attribs=True)
class Load:
    """
    One load run's figures.

    @ivar tool: the command line that ran (for the report).
    @ivar seconds: how long the run lasted.
    @ivar ok: answers with a 2xx status.
    @ivar non2xx: answers with another status.
    @ivar errors: requests with no answer (refused, reset, timed out).
    @ivar error_kinds: a count per kind of error or non-2xx status.
    @ivar p50_ms: median latency of the answered requests, ms.
    @ivar p99_ms: 99th percentile, ms.
    @ivar slowest_ms: the slowest answered request, ms (C{None} if the tool
        does not say).
    @ivar over_200ms: answered requests that took more than 200 ms
        (C{None} if the tool does not say).
    """

    tool: str
    seconds: float
    ok: int
    non2xx: int
    errors: int
    p50_ms: float
    p99_ms: float
    slowest_ms: Optional[float] = None
    over_200ms: Optional[int] = None
    error_kinds: Dict[str, int] = attr.ib(factory=dict)

    @property
    def rps(self) -> float:
        """
        Successful (2xx) answers per second.
        """
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> int:
        """
        Requests that did not get the 2xx that was due.
        """
        return self.non2xx + self.errors

    def to_json(self) -> dict:
        """
        A JSON-ready dict, C{rps} included.
        """
        out = attr.asdict(self)
        out["rps"] = self.rps
        return out


_DURATION = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(number: str, unit: str) -> float:
    return float(number) * _DURATION[unit]


def parse_wrk(out: str, tool: str = "wrk") -> Load:
    """
    Read C{wrk --latency}'s output.

    @raise LoadError: a figure is missing.
    """
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", out)
    if done is None:
        raise LoadError(f"{tool}: no request count in its output:\n{_tail(out)}")
    requests = int(done.group(1))
    seconds = _ms(done.group(2), done.group(3)) / 1e3
    latency = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", out, re.M)
        if m is None:
            if requests == 0:
                latency[pct] = float("nan")
                continue
            raise LoadError(f"{tool}: no {pct}% latency in its output:\n{_tail(out)}")
        latency[pct] = _ms(m.group(1), m.group(2))
    kinds: Dict[str, int] = {}
    errors = 0
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sock is not None:
        for name, count in zip(("connect", "read", "write", "timeout"), sock.groups()):
            if int(count):
                kinds[f"socket {name} error"] = int(count)
                errors += int(count)
    non2xx = 0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad is not None:
        non2xx = int(bad.group(1))
        kinds["non-2xx answer"] = non2xx
    return Load(
        tool, seconds, requests - non2xx, non2xx, errors, latency["50"], latency["99"],
        error_kinds=kinds,
    )


def parse_hey(out: str, tool: str = "hey") -> Load:
    """
    Read C{hey}'s summary output.

    @raise LoadError: a figure is missing.
    """
    total = re.search(r"Total:\s+([\d.]+) secs", out)
    if total is None:
        raise LoadError(f"{tool}: no total time in its output:\n{_tail(out)}")
    kinds: Dict[str, int] = {}
    ok = non2xx = errors = 0
    for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out):
        if code.startswith("2"):
            ok += int(count)
        else:
            non2xx += int(count)
            kinds[f"status {code}"] = kinds.get(f"status {code}", 0) + int(count)
    section = out.split("Error distribution:", 1)
    if len(section) == 2:
        for count, text in re.findall(r"^\s+\[(\d+)\]\s+(.+)$", section[1], re.M):
            kind = _error_kind(text)
            kinds[kind] = kinds.get(kind, 0) + int(count)
            errors += int(count)
    latency = {}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%+ in ([\d.]+) secs", out)
        if m is None:
            if ok + non2xx == 0:
                latency[pct] = float("nan")
                continue
            raise LoadError(f"{tool}: no {pct}% latency in its output:\n{_tail(out)}")
        latency[pct] = float(m.group(1)) * 1e3
    slowest = re.search(r"Slowest:\s+([\d.]+) secs", out)
    return Load(
        tool, float(total.group(1)), ok, non2xx, errors, latency["50"], latency["99"],
        slowest_ms=float(slowest.group(1)) * 1e3 if slowest and ok + non2xx else None,
        error_kinds=kinds,
    )


def parse_hey_csv(out: str, requested: int, seconds: float, tool: str = "hey") -> Load:
    """
    Read C{hey -o csv}'s per-request lines. Failed requests are absent from
    them: C{requested} minus the lines is the error count.

    @param requested: how many requests hey was told to send.
    @param seconds: the run's wall time (hey's CSV does not give it).
    @raise LoadError: the header is missing, a line cannot be read, or
        there are more lines than requests.
    """
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("response-time,"):
        raise LoadError(f"{tool}: no CSV header in its output:\n{_tail(out)}")
    header = lines[0].split(",")
    try:
        t_col, s_col = header.index("response-time"), header.index("status-code")
        rows = [line.split(",") for line in lines[1:]]
        times = sorted(float(r[t_col]) * 1e3 for r in rows)
        statuses = [int(r[s_col]) for r in rows]
    except (ValueError, IndexError) as e:
        raise LoadError(f"{tool}: unreadable CSV line ({e}):\n{_tail(out)}") from None
    if len(rows) > requested:
        raise LoadError(f"{tool}: {len(rows)} answers for {requested} requests")
    kinds: Dict[str, int] = {}
    for status in statuses:
        if not 200 <= status < 300:
            kinds[f"status {status}"] = kinds.get(f"status {status}", 0) + 1
    ok = sum(1 for s in statuses if 200 <= s < 300)
    errors = requested - len(rows)
    if errors:
        kinds["no answer (absent from hey's CSV)"] = errors
    return Load(
        tool, seconds, ok, len(rows) - ok, errors,
        percentile(times, 0.50), percentile(times, 0.99),
        slowest_ms=times[-1] if times else None,
        over_200ms=sum(1 for t in times if t > 200.0),
        error_kinds=kinds,
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """
    The C{q} quantile of sorted C{ordered} (nearest rank); NaN when empty.
    """
    if not ordered:
        return float("nan")
    rank = max(1, int(-(-q * len(ordered) // 1)))  # ceil(q * n), at least 1
    return ordered[min(len(ordered), rank) - 1]


def _error_kind(text: str) -> str:
    # hey prints the Go error, with the URL: keep what kind it is.
    for marker in (
        "connection refused", "connection reset", "broken pipe", "Client.Timeout",
        "deadline exceeded", "EOF", "i/o timeout", "too many open files",
    ):
        if marker in text:
            return marker
    return text.split(": ")[-1][:80]


def _tail(out: str, lines: int = 15) -> str:
    return "\n".join(out.strip().splitlines()[-lines:])


def _run(argv: Sequence[str], timeout: float) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LoadError(f"{' '.join(argv)}: no result after {timeout:.0f} s") from None
    except OSError as e:
        raise LoadError(f"{argv[0]}: {e}") from None
    if done.returncode != 0:
        raise LoadError(
            f"{' '.join(argv)} exited with status {done.returncode}:\n"
            f"{_tail(done.stdout + done.stderr)}"
        )
    return done.stdout


def run_wrk(url: str, seconds: int, threads: int = 1, connections: int = 50, lua: Optional[str] = None) -> Load:
    """
    C{wrk -t<threads> -c<connections> -d<seconds>s --latency [-s lua] url}.
    """
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if lua:
        argv += ["-s", lua]
    return parse_wrk(_run(argv + [url], seconds + GRACE), " ".join(argv[:4]))


def run_hey(url: str, seconds: int, method: str = "GET", connections: int = 50, rate: int = 0) -> Load:
    """
    C{hey -z <seconds>s -c <connections> -m <method> [-q rate] url}; C{rate}
    is per connection (hey's C{-q} is per worker).
    """
    argv = ["hey", "-z", f"{seconds}s", "-c", str(connections), "-m", method]
    if rate:
        argv += ["-q", str(rate)]
    return parse_hey(_run(argv + [url], seconds + GRACE), " ".join(argv))


def run_hey_csv(url: str, requests: int, method: str = "HEAD", connections: int = 200,
                keepalive: bool = False, timeout: float = 120.0) -> Load:
    """
    C{hey -n <requests> -c <connections> [-disable-keepalive] -m <method> -o
    csv url}, timed here. C{requests} is rounded down to a multiple of
    C{connections} (hey gives each worker C{n / c}).
    """
    requests -= requests % connections
    argv = ["hey", "-n", str(requests), "-c", str(connections)]
    if not keepalive:
        argv.append("-disable-keepalive")
    argv += ["-m", method, "-o", "csv"]
    began = time.monotonic()
    out = _run(argv + [url], timeout)
    return parse_hey_csv(out, requests, time.monotonic() - began, " ".join(argv))


def medians(loads: List[Load]) -> Dict[str, float]:
    """
    Median successful rate, p50 and p99 of C{loads} (for printing).
    """
    return {
        "rps": statistics.median(x.rps for x in loads),
        "p50_ms": statistics.median(x.p50_ms for x in loads),
        "p99_ms": statistics.median(x.p99_ms for x in loads),
    }
