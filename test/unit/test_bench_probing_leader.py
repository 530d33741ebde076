"""
Tests for the probing leader of the check-path benchmark
(L{bench.probing_leader}): reading what a node exposes and summing up a
saturation, on fixed inputs.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from bench.probing_leader import (
    NodeReader,
    ProbingGroup,
    Saturation,
    lag_ms,
    probes_due_per_second,
)
from freno.config.model import ProbeSettings

METRICS = b"""\
# HELP freno_raft_term The current raft term.
# TYPE freno_raft_term gauge
freno_raft_term 3.0
# HELP freno_raft_leader_changes_total Leadership changes this node saw.
# TYPE freno_raft_leader_changes_total counter
freno_raft_leader_changes_total 2.0
freno_raft_leader_changes_created 1.7e+09
"""


class FakeNode:
    """
    Answers C{get} from a dict of path to C{(status, body)}.
    """

    name = "node9"

    def __init__(self, answers):
        self.answers = answers

    def get(self, path, method="GET", timeout=1.0):
        return self.answers.get(path, (404, b""))


class NodeReaderTests(SynchronousTestCase):
    """
    L{NodeReader} reads C{/metrics} and C{/debug/vars}.
    """

    def test_raft(self) -> None:
        """
        The term and the leadership changes are read from C{/metrics}.
        """
        self.assertEqual(NodeReader(FakeNode({"/metrics": (200, METRICS)})).raft(), (3.0, 2.0))

    def test_raft_missing(self) -> None:
        """
        No answer, or no term: an error naming the node.
        """
        e = self.assertRaises(RuntimeError, NodeReader(FakeNode({})).raft)
        self.assertIn("node9", str(e))
        self.assertRaises(RuntimeError, NodeReader(FakeNode({"/metrics": (200, b"x 1\n")})).raft)

    def test_vars_and_lag(self) -> None:
        """
        C{/debug/vars} is JSON; the reactor lag is given in ms.
        """
        body = b'{"reactor.lag.99-percentile": 2500000.0, "reactor.lag.max": 9000000}'
        variables = NodeReader(FakeNode({"/debug/vars": (200, body)})).vars()
        self.assertEqual(lag_ms(variables), {"p99": 2.5, "max": 9.0})
        self.assertRaises(KeyError, lag_ms, {})
        self.assertRaises(RuntimeError, NodeReader(FakeNode({})).vars)


class SaturationFiguresTests(SynchronousTestCase):
    """
    L{Saturation.figures} sums up what was watched.
    """

    def test_figures(self) -> None:
        """
        Term changes per node, probes per second (successes only) and the
        stale answers are derived from the readings before and after.
        """
        watch = Saturation(ProbingGroup("unused"))
        watch.before = {
            "time": 100.0, "raft": {"node0": (2.0, 1.0), "node1": (2.0, 1.0)},
            "probes_total": 1000, "probes_error": 10,
        }
        watch.after = {
            "time": 110.0, "raft": {"node0": (2.0, 1.0), "node1": (3.0, 2.0)},
            "probes_total": 1800, "probes_error": 30,
        }
        watch.checks = {"200": 90, "500: Metric is stale": 3}
        watch.lag = [{"p99": 3.0, "max": 9.0}]
        figures = watch.figures()
        self.assertEqual(figures["term_changes"], 1)
        self.assertEqual(figures["leader_changes_seen_by_nodes"], 1)
        self.assertEqual(figures["probes_ok_per_s"], 78.0)
        self.assertEqual(figures["probe_errors"], 20)
        self.assertEqual(figures["stale_answers"], 3)
        self.assertEqual(figures["probes_due_per_s"], probes_due_per_second())

    def test_due(self) -> None:
        """
        Probes due: every host of both clusters once per default interval.
        """
        self.assertEqual(probes_due_per_second(2), 4 / ProbeSettings().interval)
