"""
Tests for L{freno.metrics.registry} and L{freno.metrics.catalogue}: the
recording API, the catalogue's invariants, and that no module outside
L{freno.metrics} names a metric or records through anything but a catalogue
family (so no writer records one event under two naming schemes; D62, D63).
"""

from __future__ import annotations

import ast
import pathlib
from typing import List

from twisted.trial.unittest import SynchronousTestCase

import freno
from freno.metrics import catalogue
from freno.metrics.expvar import variables
from freno.metrics.prometheus import DROPPED_METRIC, VARS_PREFIX
from freno.metrics.registry import COUNTER, GAUGE, TEXT, TIMER, Family, Registry

ROOT = pathlib.Path(freno.__file__).parent

#: Prefixes of freno's /debug/vars names.
VARS_PREFIXES = (
    "check.any.",
    "probes.",
    "httpcheck.",
    "raft.",
    "consensus.",
    "backend.mysql.",
    "sharedomain.",
    "reactor.",
    "throttled_states.",
    "aggregated.mysql.",
)

#: The methods of the former registry, one per naming scheme.
OLD_RECORDERS = {
    "incr",
    "incr_labeled",
    "set_gauge",
    "set_gauge_labeled",
    "observe_labeled",
    "set_string",
}

HANDLE_METHODS = {"counter", "gauge", "timer", "text"}


class RegistryTests(SynchronousTestCase):
    """
    Handles record into shared series.
    """

    def test_counter(self) -> None:
        """
        Counts add up per label values; every handle of a family shares them.
        """
        registry = Registry()
        registry.counter(catalogue.PROBES).inc(("c", "h:1"))
        registry.counter(catalogue.PROBES).inc(("c", "h:1"), 2)
        registry.counter(catalogue.PROBES).inc(("c", "h:2"))
        self.assertIs(registry.counter(catalogue.PROBES), registry.counter(catalogue.PROBES))
        self.assertEqual(registry.series(catalogue.PROBES), {("c", "h:1"): 3, ("c", "h:2"): 1})
        self.assertEqual(variables(registry).counters, {"probes.total": 4})

    def test_gauge_and_text(self) -> None:
        """
        A gauge and a text keep the last value set.
        """
        registry = Registry()
        registry.gauge(catalogue.RAFT_IS_LEADER).set(1)
        registry.gauge(catalogue.RAFT_IS_LEADER).set(0)
        registry.text(catalogue.RAFT_LEADER).set("a:1")
        registry.text(catalogue.RAFT_LEADER).set("b:1")
        self.assertEqual(registry.value(catalogue.RAFT_IS_LEADER), 0)
        found = variables(registry)
        self.assertEqual(found.gauges, {"raft.is_leader": 0})
        self.assertEqual(found.strings, {"raft.leader": "b:1"})

    def test_timer_pools_labeled_series(self) -> None:
        """
        A labeled timer with a /debug/vars name also keeps one pooled
        reservoir, fed by the same call; an unlabeled one is its own whole.
        """
        registry = Registry()
        latency = registry.timer(catalogue.PROBE_LATENCY)
        latency.observe(0.5, ("c", "h:1"))
        latency.observe(0.25, ("c", "h:2"))
        self.assertEqual(registry.value(catalogue.PROBE_LATENCY, ("c", "h:1")).count, 1)
        self.assertEqual(sorted(variables(registry).timers["probes.latency"].samples), [0.25, 0.5])
        registry.timer(catalogue.REACTOR_LAG).observe(0.125)
        self.assertIs(
            variables(registry).timers["reactor.lag"], registry.value(catalogue.REACTOR_LAG)
        )
        commit = registry.timer(catalogue.RAFT_COMMIT_LATENCY)
        commit.observe(0.1)
        self.assertIsNone(commit.pooled)

    def test_reservoir_bounded(self) -> None:
        """
        A timer keeps at most 1,028 samples, whatever it counts.
        """
        registry = Registry()
        lag = registry.timer(catalogue.REACTOR_LAG)
        for i in range(5000):
            lag.observe(i / 1000.0)
        reservoir = registry.value(catalogue.REACTOR_LAG)
        self.assertEqual((reservoir.count, len(reservoir.samples)), (5000, 1028))

    def test_wrong_kind(self) -> None:
        """
        Asking for a family as another kind is refused.
        """
        registry = Registry()
        self.assertRaises(TypeError, registry.gauge, catalogue.PROBES)
        self.assertRaises(TypeError, registry.counter, catalogue.RAFT_LEADER)

    def test_unrecorded(self) -> None:
        """
        Families never recorded into are absent from both exports' sources.
        """
        registry = Registry()
        registry.counter(catalogue.PROBES)
        self.assertEqual(list(registry.recorded()), [])
        self.assertIsNone(registry.value(catalogue.PROBES, ("c", "h")))
        self.assertEqual(registry.series(catalogue.CHECKS), {})

    def test_bad_families(self) -> None:
        """
        A family needs a name in at least one export, valid label names, and
        a known kind; a text has no labels.
        """
        self.assertRaises(ValueError, Family, COUNTER, "x")
        self.assertRaises(ValueError, Family, COUNTER, "x", name="a_total", labels=("bad-label",))
        self.assertRaises(ValueError, Family, COUNTER, "x", name="a_total", labels=("quantile",))
        self.assertRaises(ValueError, Family, "histogram", "x", name="a")
        self.assertRaises(ValueError, Family, TEXT, "x", name="a", labels=("a",))


class CatalogueTests(SynchronousTestCase):
    """
    Every metric is defined once, with names that cannot collide.
    """

    def test_unique_names(self) -> None:
        """
        Each /metrics name belongs to one family, counters end in C{_total},
        and no family name uses the C{freno_vars_} prefix.
        """
        names = [f.name for f in catalogue.families() if f.name is not None]
        self.assertEqual(len(names), len(set(names)))
        for family in catalogue.families():
            if family.name is None:
                continue
            self.assertFalse(family.name.startswith(VARS_PREFIX), family.name)
            self.assertNotEqual(family.name, DROPPED_METRIC)
            self.assertEqual(family.kind == COUNTER, family.name.endswith("_total"), family.name)

    def test_vars_names_disjoint(self) -> None:
        """
        No two families feed the same /debug/vars name (for sample label
        values), so no event reaches /debug/vars through two families.
        """
        owner = {}
        for family in catalogue.families():
            if family.vars is None:
                continue
            labels = tuple(f"v{i}" for i in range(len(family.labels)))
            if family is catalogue.CHECKS:
                labels = ("a", "mysql", "main", "500")
            for name in family.vars(labels):
                self.assertNotIn(name, owner, (family.help, owner.get(name)))
                owner[name] = family.help

    def test_check_names(self) -> None:
        """
        A check series maps to freno's four names per kind of count.
        """
        self.assertEqual(
            catalogue.check_vars_names(("a", "mysql", "main", "200")),
            ("check.any.total", "check.a.total", "check.any.mysql.main.total", "check.a.mysql.main.total"),
        )
        self.assertEqual(len(catalogue.check_vars_names(("a", "mysql", "main", "404"))), 8)
        self.assertEqual(len(catalogue.check_vars_names(("a", "mysql", "main", "500"))), 12)

    def test_kinds(self) -> None:
        """
        Every family has one of the four kinds.
        """
        self.assertEqual(
            {f.kind for f in catalogue.families()}, {COUNTER, GAUGE, TIMER, TEXT}
        )


def _modules_outside_metrics() -> List[pathlib.Path]:
    return [
        path
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).parts[0] != "metrics"
    ]


def _docstrings(tree: ast.AST) -> set:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


class OneSchemeTests(SynchronousTestCase):
    """
    Outside L{freno.metrics}, metrics are recorded only through catalogue
    families: no module names a metric in either scheme, and none uses the
    former registry's per-scheme methods.
    """

    def setUp(self) -> None:
        self.names = {f.name for f in catalogue.families() if f.name is not None}
        self.names.add(DROPPED_METRIC)
        self.vars_names = set()
        for family in catalogue.families():
            template = getattr(family.vars, "template", None)
            if template is not None and "{" not in template:
                self.vars_names.add(template)

    def test_no_metric_names(self) -> None:
        """
        No string outside docstrings is a metric name of either export.
        """
        found = []
        for path in _modules_outside_metrics():
            tree = ast.parse(path.read_text(), str(path))
            docstrings = _docstrings(tree)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                    continue
                if id(node) in docstrings:
                    continue
                text = node.value
                if (
                    text in self.names
                    or text in self.vars_names
                    or text.startswith(VARS_PREFIX)
                    or text.startswith(VARS_PREFIXES)
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
        self.assertEqual(found, [])

    def test_records_through_catalogue_families(self) -> None:
        """
        Every C{registry.counter/gauge/timer/text(...)} outside the package
        names a family of the catalogue, and nothing calls the former
        registry's per-scheme methods.
        """
        found = []
        for path in _modules_outside_metrics():
            tree = ast.parse(path.read_text(), str(path))
            imported = {
                alias.asname or alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "freno.metrics.catalogue"
                for alias in node.names
            }
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                method = node.func.attr
                if method in OLD_RECORDERS:
                    found.append(f"{where}: {method}()")
                if method in HANDLE_METHODS and len(node.args) == 1 and not node.keywords:
                    arg = node.args[0]
                    by_module = (
                        isinstance(arg, ast.Attribute)
                        and isinstance(arg.value, ast.Name)
                        and arg.value.id == "catalogue"
                        and isinstance(getattr(catalogue, arg.attr, None), Family)
                    )
                    by_name = isinstance(arg, ast.Name) and arg.id in imported
                    if not (by_module or by_name):
                        found.append(f"{where}: {method}({ast.unparse(arg)})")
        self.assertEqual(found, [])

    def test_scan_sees_writers(self) -> None:
        """
        The scan is not vacuous: the writers' handle calls are found.
        """
        calls = 0
        for path in _modules_outside_metrics():
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in HANDLE_METHODS
                    and node.args
                    and isinstance(node.args[0], ast.Attribute)
                    and getattr(node.args[0].value, "id", None) == "catalogue"
                ):
                    calls += 1
        self.assertGreaterEqual(calls, 20)
