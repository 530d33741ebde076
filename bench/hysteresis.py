# -*- test-case-name: test.unit.test_bench_hysteresis -*-
"""
Benchmark of hysteresis (C{ResumeThreshold}, docs/decisions.md, D60):
C{python -m bench.hysteresis [--seeds N] [--minutes M] [--json PATH]}.

A heavy writer against one cluster, simulated in memory on a C{task.Clock}
through the real probing and check path: the real L{ProbeService} probes
three replicas (a L{FakeMetricSource} answering each replica's simulated
lag) every 50 ms, aggregates, and the real L{Throttler} answers the
writer's checks. The writer checks every 100 ms (gh-ost's interval) and
writes while allowed (200), nothing while refused (429). Each replica
applies the writer's changes at 30-70 % of the rate they are written (per
seed), so its lag grows at 0.3-0.7 s per second while the writer writes.
What happens when the writer stops depends on the replica, so two models
are run:

    - C{linear}: the lag falls at once, by 1-3 s per second (per seed), down
      to 0: a replica whose backlog is cheap to apply;
    - C{queue}: the backlog is applied in order at the same rate, so the lag
      keeps growing until the writer's last change is applied, then drops
      to 0: a replica whose SQL thread is the bottleneck.

The lag each probe reads has a little noise (+-0.05 s, heartbeat
granularity).

Each seed (its own replica rates and noise) runs without hysteresis
(threshold 1.0) and with C{ResumeThreshold} 0.8 and 0.5, the same minutes
each. Measured: transitions 200<->429 per minute (consecutive checks with
different answers), the share of checks that were allowed (the writer's
throughput), and the lag the writer caused (mean and 99th percentile of
the aggregated value). Medians over the seeds are printed, and the share
of transitions hysteresis removed against the run without, paired per
seed.

Nothing but the simulated clock is used: no process, socket or wall
clock, so the figures are the same on any machine for the same seeds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from bench.report import Metric, Target

#: The cluster's threshold (seconds of lag).
THRESHOLD = 1.0
#: The resume thresholds compared with none.
RESUMES = (0.8, 0.5)
#: The writer's check interval (gh-ost's default), seconds.
CHECK_INTERVAL = 0.1
#: The simulation's step, seconds.
STEP = 0.01
#: The probe interval, seconds (freno's).
PROBE_INTERVAL = 0.05
#: The replica models (see the module docstring).
MODELS = ("linear", "queue")


def simulate(seed: int, minutes: float, resume: Optional[float], model: str = "linear") -> Dict[str, float]:
    """
    One run; see the module docstring.

    @return: C{transitions_per_minute}, C{allowed_share}, C{lag_mean},
        C{lag_p99}, C{checks}.
    """
    from twisted.internet.task import Clock

    from freno.config.model import (
        ClusterSettings,
        Config,
        MySQLStoreSettings,
        ProbeSettings,
        StaticHostsSettings,
    )
    from freno.consensus.local import LocalConsensus
    from freno.hosts import HostKey
    from freno.inventory.fake import FakeInventory
    from freno.probe.fake import FakeMetricSource
    from freno.probe.metrics import AggregatedMetrics
    from freno.probe.service import ProbeService
    from freno.metrics.registry import Registry
    from freno.throttle.checker import Throttler

    rng = random.Random(seed)
    clock = Clock()
    clock.advance(1_700_000_000)
    hosts = [HostKey(f"replica{i}", 3306) for i in range(3)]
    apply_rate = [rng.uniform(0.3, 0.7) for _ in hosts]
    catch_up = [rng.uniform(1.0, 3.0) for _ in hosts]
    lag = [0.0 for _ in hosts]
    backlog: List[List[List[float]]] = [[] for _ in hosts]  # queue model: [written at, work left]
    cluster = ClusterSettings(
        name="main",
        throttle_threshold=THRESHOLD,
        resume_threshold=resume,
        static_hosts=StaticHostsSettings(tuple(str(h) for h in hosts)),
    )
    config = Config(
        mysql=MySQLStoreSettings(
            clusters={"main": cluster},
            probe=ProbeSettings(interval=PROBE_INTERVAL, freshness=0.5),
        )
    )
    consensus = LocalConsensus(clock)
    metrics = AggregatedMetrics(clock, {"main": THRESHOLD}, 0.5)
    source = FakeMetricSource(clock)
    registry = Registry()
    service = ProbeService(
        clock, config, consensus, FakeInventory({"main": hosts}), source, metrics, registry
    )
    throttler = Throttler(clock, config, consensus, metrics, registry, rng.random)

    def publish() -> None:
        for host, value in zip(hosts, lag):
            source.set_value(host, max(0.0, value + rng.uniform(-0.05, 0.05)))

    publish()
    service.startService()
    steps = int(round(minutes * 60 / STEP))
    per_check = int(round(CHECK_INTERVAL / STEP))
    writing = False
    statuses: List[int] = []
    values: List[float] = []
    for step in range(steps):
        if step % per_check == 0:
            status = throttler.check("writer", "mysql", "main", "10.0.0.9").status_code
            statuses.append(status)
            writing = status == 200
            metric = metrics.get("main")
            if metric is not None and metric.error is None:
                values.append(metric.value)
        now = step * STEP
        for i in range(len(lag)):
            if model == "linear":
                if writing:
                    lag[i] += (1.0 - apply_rate[i]) * STEP
                else:
                    lag[i] = max(0.0, lag[i] - catch_up[i] * STEP)
                continue
            queue = backlog[i]
            if writing:
                queue.append([now, STEP])
            budget = apply_rate[i] * STEP
            while queue and budget > 0:
                done = min(budget, queue[0][1])
                queue[0][1] -= done
                budget -= done
                if queue[0][1] <= 1e-12:
                    queue.pop(0)
            lag[i] = now + STEP - queue[0][0] if queue else 0.0
        publish()
        clock.advance(STEP)
    service.stopService()
    clock.advance(60)
    transitions = sum(
        1 for a, b in zip(statuses, statuses[1:]) if a != b and {a, b} == {200, 429}
    )
    ordered = sorted(values)
    return {
        "transitions_per_minute": transitions / minutes,
        "allowed_share": statuses.count(200) / len(statuses),
        "lag_mean": statistics.fmean(values) if values else 0.0,
        "lag_p99": ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
        "checks": float(len(statuses)),
        "other_statuses": float(sum(1 for s in statuses if s not in (200, 429))),
    }


Results = Dict[str, Dict[str, List[Dict[str, float]]]]


def run(
    seeds: int, minutes: float, models: Sequence[str] = MODELS, echo: Callable[[str], object] = print
) -> Results:
    """
    Every seed, for each model, without hysteresis and with each of
    L{RESUMES}; each seed's line goes to C{echo}.

    @return: model to C{"none"} and C{"resume <r>"} to one result per seed.
    """
    results: Results = {}
    for model in models:
        by_kind: Dict[str, List[Dict[str, float]]] = {"none": []}
        for resume in RESUMES:
            by_kind[f"resume {resume}"] = []
        results[model] = by_kind
        for seed in range(1, seeds + 1):
            by_kind["none"].append(simulate(seed, minutes, None, model))
            for resume in RESUMES:
                by_kind[f"resume {resume}"].append(simulate(seed, minutes, resume, model))
            row = "  ".join(
                f"{kind}: {rows[-1]['transitions_per_minute']:5.1f}/min "
                f"allowed {rows[-1]['allowed_share']:.2f} lag p99 {rows[-1]['lag_p99']:.2f}"
                for kind, rows in by_kind.items()
            )
            echo(f"{model} seed {seed}: {row}")
    return results


def reductions(by_kind: Dict[str, List[Dict[str, float]]], kind: str) -> List[float]:
    """
    Per seed, the share of transitions per minute that C{kind} removed
    against the run without hysteresis (1: all of them; negative: more).
    """
    return [
        1.0 - (r["transitions_per_minute"] / n["transitions_per_minute"])
        if n["transitions_per_minute"] else 0.0
        for n, r in zip(by_kind["none"], by_kind[kind])
    ]


def metrics(data: dict) -> Tuple[List[Metric], List[str]]:
    """
    The figures of a C{--json} file, for C{bench.all}. As every reader of
    L{bench.readers}: checks that answered neither 200 nor 429 (the
    simulation went wrong) are a metric judged on every run, and such a
    run gives no figures.

    @raise ValueError: there are no runs.
    """
    results = data["results"]
    if not results or not all(by_kind.get("none") for by_kind in results.values()):
        raise ValueError("no runs")
    out: List[Metric] = []
    notes: List[str] = []
    for model, by_kind in results.items():
        for kind, rows in by_kind.items():
            label = f"{model} replicas, " + (
                "no hysteresis" if kind == "none" else f"ResumeThreshold {kind.split()[1]}"
            )
            out.append(
                Metric(
                    f"{label}: checks answered neither 200 nor 429",
                    "",
                    [r["other_statuses"] for r in rows],
                    Target("<=", 0),
                    digits=0,
                    every=True,
                )
            )
            good = [r for r in rows if not r["other_statuses"]]
            if len(good) < len(rows):
                notes.append(f"{label}: {len(rows) - len(good)} run(s) left out (unexpected answers).")
            out += [
                Metric(f"{label}: 200↔429 transitions", "/min", [r["transitions_per_minute"] for r in good], digits=1),
                Metric(f"{label}: checks allowed", "%", [100 * r["allowed_share"] for r in good], digits=1),
                Metric(f"{label}: lag p99", "s", [r["lag_p99"] for r in good]),
            ]
            if kind != "none":
                paired = [
                    x for x, n, r in zip(reductions(by_kind, kind), by_kind["none"], rows)
                    if not n["other_statuses"] and not r["other_statuses"]
                ]
                out.append(
                    Metric(
                        f"{label}: transitions removed (paired with no hysteresis)",
                        "%",
                        [100 * x for x in paired],
                        digits=1,
                    )
                )
    seeds = len(next(iter(results.values()))["none"])
    notes.insert(
        0,
        f"{seeds} seeds × {data['minutes']:g} simulated minutes per run and model; threshold "
        f"{THRESHOLD:g} s, writer checks every {CHECK_INTERVAL * 1000:.0f} ms; no target: the figures "
        "describe what hysteresis does to this writer under each replica model.",
    )
    return out, notes


def method(args: Sequence[str]) -> str:
    """
    How the benchmark runs, for BENCHMARKS.md.
    """
    args = list(args)
    seeds = args[args.index("--seeds") + 1] if "--seeds" in args else "7"
    minutes = args[args.index("--minutes") + 1] if "--minutes" in args else "10"
    return f"""\
A heavy writer against one cluster of three replicas, simulated in memory on a `task.Clock` through the real
`ProbeService` (a `FakeMetricSource` answering each replica's simulated lag, probed every 50 ms) and the real
`Throttler`. The writer checks every 100 ms and writes while allowed; each replica applies its changes at 30–70 % of
the rate they are written (per seed), so its lag grows at 0.3–0.7 s per second while the writer writes. When the
writer stops, the `linear` model's lag falls at 1–3 s per second; the `queue` model applies the backlog in order at
the same rate, so the lag keeps growing until the last change is applied and then drops to 0. Each probe reads the
lag ± 0.05 s. {seeds} seeds × {minutes} simulated minutes per model, each seed run without hysteresis (threshold
1 s) and with `ResumeThreshold` 0.8 and 0.5. Transitions are consecutive checks whose answers differ (200↔429);
the share removed is paired per seed against the run without hysteresis. Deterministic for given seeds (no wall
clock). No target: the figures describe what hysteresis does under each model."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: linear,queue")
    parser.add_argument("--json", default=None, help="write every run's figures to this file")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - set(MODELS)
    if unknown or not models:
        parser.error(f"unknown model(s): {', '.join(sorted(unknown)) or 'none given'}")
    if args.seeds < 1 or not args.minutes > 0:
        parser.error("--seeds must be >= 1 and --minutes > 0")
    results = run(args.seeds, args.minutes, models, lambda line: print(line, flush=True))
    for model, by_kind in results.items():
        print(f"\n{model} replicas, medians over {args.seeds} seeds, {args.minutes:g} simulated minutes each:")
        for kind, rows in by_kind.items():
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            removed = "" if kind == "none" else (
                f", removes {100 * statistics.median(reductions(by_kind, kind)):.1f} % of the transitions"
            )
            print(
                f"  {kind:10}: {med['transitions_per_minute']:6.1f} transitions/min, "
                f"allowed {100 * med['allowed_share']:5.1f} %, lag mean {med['lag_mean']:.2f} s, "
                f"p99 {med['lag_p99']:.2f} s{removed}"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seeds": args.seeds, "minutes": args.minutes, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
