"""
The bounded chaos run (L{bench.chaos}): a slow integration test (about 40 s)
of three real C{twistd freno} processes probing a sandbox primary of our own,
under load, with two leader kills and two leader freezes, asserting the
analysis finds no violation in what it recorded: no acknowledged throttle or
skip lost, none resurrected after its acknowledged unthrottle or recover, no
C{/check} 200 outside a node's leadership.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from bench import chaos
from freno.sandbox.cluster import constant_store
from freno.sandbox.nodes import FrenoGroup
from test.support import start_sandbox


class ChaosProcessTests(SynchronousTestCase):
    """
    Slow integration test: the bounded chaos run (2 kills, 2 freezes) on
    three real C{twistd freno} processes.
    """

    def test_bounded_chaos(self):
        sandbox = start_sandbox(self, replicas=0)
        group = FrenoGroup(os.path.abspath(self.mktemp()), size=3, store=constant_store(sandbox))
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
        self.assertEqual(
            {c.kind for c in acknowledged}, {"throttle", "skip", "unthrottle", "recover"}, report
        )
        self.assertEqual(len(result.states), 3, report)
        self.assertTrue(any(o.status == 200 for o in result.recorder.checks), report)
        times = result.failover_times()
        self.assertEqual(len(times["kill"]["check"]), 2, report)
        self.assertEqual(len(times["freeze"]["check"]), 2, report)
