# -*- test-case-name: test.unit.test_metrics_registry,test.unit.test_metrics_exports -*-
"""
The recording side of the metrics: a L{Family} says what one metric is, and a
L{Registry} holds its values. A writer records each event with one call on a
family's handle (L{Counter.inc}, L{Gauge.set}, L{Timer.observe},
L{Text.set}); both exports (L{freno.metrics.expvar} and
L{freno.metrics.prometheus}) are rendered from the same values
(docs/decisions.md, D62).

Every family of the service is defined once, in L{freno.metrics.catalogue}.
A family's series are keyed by the tuple of its label values, in the order of
L{Family.labels} (C{()} for a family without labels). Counting is a dict
update: nothing is built per event.

Label cardinality is bounded by the writers (apps beyond a limit fold into
one label value, see L{freno.throttle.counters}); the Prometheus export caps
series as a second line of defence.
"""

from __future__ import annotations

import re
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import attr

#: The kinds of family.
COUNTER = "counter"
GAUGE = "gauge"
TIMER = "timer"
TEXT = "text"
KINDS = (COUNTER, GAUGE, TIMER, TEXT)

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: The C{/debug/vars} names of one series, from its label values.
VarsNames = Callable[[tuple], Tuple[str, ...]]


def _check_labels(instance, attribute, labels: Tuple[str, ...]) -> None:
    for name in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__") or name == "quantile":
            raise ValueError(f"invalid label name {name!r}")


@attr.s(frozen=True, eq=False, auto_attribs=True)
class Family:
    """
    One metric: what it counts, its labels, and its names in both exports.

    @ivar kind: L{COUNTER}, L{GAUGE}, L{TIMER} (a duration in seconds,
        exported as a summary and as go-metrics' timer fields) or L{TEXT}
        (one string, unlabeled).
    @ivar help: the C{# HELP} text in C{/metrics}.
    @ivar name: the family's own series name in C{/metrics} (counters end in
        C{_total}), or C{None} for a family exported there only under its
        C{/debug/vars} names (as C{freno_vars_*}).
    @ivar labels: the label names, in the order writers give the values.
    @ivar vars: the C{/debug/vars} names a series contributes to, from its
        label values, or C{None} for a family absent from C{/debug/vars}.
        A counter's series adds its value to each name; a gauge's series
        sets its (single) name; a timer has one name for the whole family
        (its series' samples are pooled, see L{Timer}); a text has one name.
    """

    kind: str = attr.ib(validator=attr.validators.in_(KINDS))
    help: str
    name: Optional[str] = None
    labels: Tuple[str, ...] = attr.ib(default=(), validator=_check_labels)
    vars: Optional[VarsNames] = None

    def __attrs_post_init__(self) -> None:
        if self.name is None and self.vars is None:
            raise ValueError("a family needs a /metrics name or /debug/vars names")
        if self.kind == TEXT and self.labels:
            raise ValueError("a text has no labels")


@attr.s(auto_attribs=True)
class Reservoir:
    """
    The state of one timer series: count, sum and a bounded reservoir of
    recent samples (seconds), enough for freno's percentiles.
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


class Counter:
    """
    The handle writers count a counter family with.
    """

    def __init__(self, registry: "Registry", family: Family) -> None:
        self.family = family
        self.series: Dict[tuple, float] = {}
        self._registry = registry

    def inc(self, labels: tuple = (), amount: float = 1) -> None:
        """
        Add C{amount} to the series of C{labels} (label values).
        """
        series = self.series
        value = series.get(labels)
        if value is None:
            self._registry._started(self)
            series[labels] = amount
        else:
            series[labels] = value + amount


class Gauge:
    """
    The handle writers set a gauge family with.
    """

    def __init__(self, registry: "Registry", family: Family) -> None:
        self.family = family
        self.series: Dict[tuple, float] = {}
        self._registry = registry

    def set(self, value: float, labels: tuple = ()) -> None:
        """
        Set the series of C{labels} (label values) to C{value}.
        """
        series = self.series
        if not series:
            self._registry._started(self)
        series[labels] = value


class Timer:
    """
    The handle writers time a timer family with.

    Reservoirs of recent samples cannot be merged, so a labeled timer with a
    C{/debug/vars} name also keeps one reservoir for the whole family
    (L{pooled}), fed by the same L{observe} call.
    """

    def __init__(self, registry: "Registry", family: Family) -> None:
        self.family = family
        self.series: Dict[tuple, Reservoir] = {}
        self.pooled: Optional[Reservoir] = None
        self._pool = bool(family.labels) and family.vars is not None
        self._registry = registry

    def observe(self, seconds: float, labels: tuple = ()) -> None:
        """
        Record one duration on the series of C{labels} (label values).
        """
        reservoir = self.series.get(labels)
        if reservoir is None:
            if not self.series:
                self._registry._started(self)
            reservoir = self.series[labels] = Reservoir()
        reservoir.observe(seconds)
        if self._pool:
            pooled = self.pooled
            if pooled is None:
                pooled = self.pooled = Reservoir()
            pooled.observe(seconds)

    def whole(self) -> Optional[Reservoir]:
        """
        The family's C{/debug/vars} timer: the pooled reservoir, or the
        single series of an unlabeled family (C{None} before any sample).
        """
        if self._pool:
            return self.pooled
        return self.series.get(())


class Text:
    """
    The handle writers set a text family with.
    """

    def __init__(self, registry: "Registry", family: Family) -> None:
        self.family = family
        self.series: Dict[tuple, str] = {}
        self._registry = registry

    def set(self, text: str) -> None:
        """
        Set the text.
        """
        if not self.series:
            self._registry._started(self)
        self.series[()] = text


_HANDLES = {COUNTER: Counter, GAUGE: Gauge, TIMER: Timer, TEXT: Text}


class Registry:
    """
    The values of every family of this process.

    One handle per family: every writer asking for a family shares its
    series. Families are kept in the order they were first recorded into,
    which is the order L{freno.metrics.prometheus} exports them in.
    """

    def __init__(self) -> None:
        self._handles: Dict[Family, object] = {}
        self._recorded: Dict[Family, object] = {}

    def _handle(self, family: Family, kind: str):
        if family.kind != kind:
            raise TypeError(f"{family.name or family.vars} is a {family.kind}, not a {kind}")
        handle = self._handles.get(family)
        if handle is None:
            handle = self._handles[family] = _HANDLES[kind](self, family)
        return handle

    def counter(self, family: Family) -> Counter:
        """
        The handle of counter C{family}.
        """
        return self._handle(family, COUNTER)

    def gauge(self, family: Family) -> Gauge:
        """
        The handle of gauge C{family}.
        """
        return self._handle(family, GAUGE)

    def timer(self, family: Family) -> Timer:
        """
        The handle of timer C{family}.
        """
        return self._handle(family, TIMER)

    def text(self, family: Family) -> Text:
        """
        The handle of text C{family}.
        """
        return self._handle(family, TEXT)

    def _started(self, handle) -> None:
        self._recorded.setdefault(handle.family, handle)

    def recorded(self) -> Iterator:
        """
        The handle of every family recorded into, in first-record order.
        """
        return iter(list(self._recorded.values()))

    def value(self, family: Family, labels: tuple = ()):
        """
        The current value of one series (a L{Reservoir} for a timer), or
        C{None} when it was never recorded.
        """
        handle = self._handles.get(family)
        if handle is None:
            return None
        return handle.series.get(labels)

    def series(self, family: Family) -> Dict[tuple, object]:
        """
        A copy of every series of C{family}, keyed by label values.
        """
        handle = self._handles.get(family)
        return {} if handle is None else dict(handle.series)
