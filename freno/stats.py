# -*- test-case-name: test.unit.test_publish_prometheus,test.unit.test_http_api -*-
"""
L{Stats}: the in-process metric registry, with freno's metric names (its
C{/debug/vars} section), from which both C{/debug/vars} and C{/metrics} are
rendered.

Labeled series (for C{/metrics}) are keyed by C{(metric, ((label, value), ...))};
their names follow Prometheus conventions (C{freno_checks_total}, ...).

Counters and gauges are plain dict entries so that the check path can count
with a dict update and nothing more. Label cardinality is bounded by the
writers (see L{freno.throttle}).
"""

from __future__ import annotations

from typing import Dict, List

import attr


@attr.s(auto_attribs=True)
class Timer:
    """
    A latency timer: count, sum and a bounded reservoir of recent samples
    (seconds), enough for freno's percentiles.
    """

    count: int = 0
    total: float = 0.0
    samples: List[float] = attr.ib(factory=list)
    max_samples: int = 1028

    def observe(self, seconds: float) -> None:
        """
        Record one duration.
        """
        self.count += 1
        self.total += seconds
        samples = self.samples
        if len(samples) >= self.max_samples:
            samples[self.count % self.max_samples] = seconds
        else:
            samples.append(seconds)


@attr.s(auto_attribs=True)
class Stats:
    """
    Named counters, gauges and timers.

    @ivar labeled: labeled counters for Prometheus, keyed by
        C{(metric, ((label, value), ...))}.
    """

    counters: Dict[str, int] = attr.ib(factory=dict)
    gauges: Dict[str, float] = attr.ib(factory=dict)
    timers: Dict[str, Timer] = attr.ib(factory=dict)
    strings: Dict[str, str] = attr.ib(factory=dict)
    labeled: Dict[tuple, float] = attr.ib(factory=dict)
    labeled_gauges: Dict[tuple, float] = attr.ib(factory=dict)
    labeled_timers: Dict[tuple, Timer] = attr.ib(factory=dict)

    def incr(self, name: str, amount: int = 1) -> None:
        """
        Add C{amount} to counter C{name}.
        """
        counters = self.counters
        counters[name] = counters.get(name, 0) + amount

    def incr_labeled(self, metric: str, labels: tuple, amount: float = 1) -> None:
        """
        Add to a labeled counter; C{labels} is a tuple of C{(name, value)}.
        """
        key = (metric, labels)
        self.labeled[key] = self.labeled.get(key, 0) + amount

    def set_gauge_labeled(self, metric: str, labels: tuple, value: float) -> None:
        """
        Set a labeled gauge; C{labels} is a tuple of C{(name, value)}.
        """
        self.labeled_gauges[(metric, labels)] = value

    def observe_labeled(self, metric: str, labels: tuple, seconds: float) -> None:
        """
        Record a duration on a labeled timer.
        """
        key = (metric, labels)
        timer = self.labeled_timers.get(key)
        if timer is None:
            timer = self.labeled_timers[key] = Timer()
        timer.observe(seconds)

    def set_gauge(self, name: str, value: float) -> None:
        """
        Set gauge C{name}.
        """
        self.gauges[name] = value

    def set_string(self, name: str, value: str) -> None:
        """
        Set a string variable (freno's C{raft.leader}).
        """
        self.strings[name] = value

    def observe(self, name: str, seconds: float) -> None:
        """
        Record a duration on timer C{name}.
        """
        timer = self.timers.get(name)
        if timer is None:
            timer = self.timers[name] = Timer()
        timer.observe(seconds)
