"""
The bounded chaos run (L{bench.chaos}): a slow integration test (about 40 s)
of three real C{twistd freno} processes under load, with two leader kills and
two leader freezes, asserting the analysis finds no violation in what it
recorded.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from bench import chaos
from bench.chaos_analysis import (
    Observation,
)
from freno.sandbox.nodes import FrenoGroup


def samples(node, *timeline, period=0.1, latency=0.01):
    """
    Sequential samples of C{node}: one status per C{period}, starting at 0.
    """
    return [
        Observation(node, i * period, i * period + latency, status)
        for i, status in enumerate(timeline)
    ]


def checks(node, start, stop, status=200, period=0.05, latency=0.01):
    """
    Checks of C{node} every C{period} from C{start} to C{stop}.
    """
    out, t = [], start
    while t < stop - 1e-9:
        out.append(Observation(node, t, t + latency, status))
        t += period
    return out


class ChaosProcessTests(SynchronousTestCase):
    """
    Slow integration test: the bounded chaos run (2 kills, 2 freezes) on
    three real C{twistd freno} processes and the shared MariaDB.
    """

    def test_bounded_chaos(self):
        group = FrenoGroup(os.path.abspath(self.mktemp()), size=3, store=chaos.STORE)
        self.addCleanup(group.stop)
        group.start(30)
        result = chaos.run(
            group,
            rounds=4,
            freeze_seconds=(2.2, 2.8),
            settle_seconds=(0.3, 0.8),
            check_threads=1,
        )
        report = chaos.summary(result, 4)
        self.assertEqual(result.violations, [], report)
        self.assertEqual(result.rounds_done, 4, report)
        self.assertEqual(sorted(f["kind"] for f in result.faults), ["freeze", "freeze", "kill", "kill"])
        acknowledged = [c for c in result.recorder.commands if c.acknowledged]
        self.assertGreater(len(acknowledged), 10, report)
        self.assertEqual(len(result.states), 3, report)
        self.assertTrue(any(o.status == 200 for o in result.recorder.checks), report)
        times = result.failover_times()
        self.assertEqual(len(times["kill"]["check"]), 2, report)
        self.assertEqual(len(times["freeze"]["check"]), 2, report)
