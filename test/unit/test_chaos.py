"""
Tests for the chaos analysis (L{bench.chaos_analysis}) on hand-made timelines:
leader regions, checks outside leadership, overlaps against the lease bound,
and the final state that throttles, skips, unthrottles and recovers decide
(fast, pure). The bounded chaos run on real processes is in
L{test.integration.test_chaos}.
"""

from __future__ import annotations


from twisted.trial.unittest import SynchronousTestCase

from bench.chaos_analysis import (
    DEPOSITION_WINDOW,
    DOWN,
    INF,
    LEASE_SLACK,
    NO_ANSWER,
    CommandRecord,
    NodeState,
    Observation,
    analyse,
    checks_outside_leadership,
    expectations,
    leader_regions,
    overlaps,
    serving_runs,
    state_violations,
)
from freno.consensus.raft.machine import LEADER_LEASE


def rounded(regions):
    return [(round(lo, 6), round(hi, 6)) for lo, hi in regions]


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


class LeaderRegionTests(SynchronousTestCase):
    """
    L{leader_regions}: the sampling granularity and no more.
    """

    def test_run_bracketed_by_neighbours(self):
        """
        A run of 200 samples may extend from the sending of the sample
        before it to the answer of the sample after it.
        """
        s = samples("a", 404, 200, 200, 404)
        self.assertEqual(rounded(leader_regions(s)), [(0.0, 0.31)])

    def test_open_ended(self):
        """
        Without a definite sample before or after, the region is open.
        """
        self.assertEqual(rounded(leader_regions(samples("a", 200, 404))), [(-INF, 0.11)])
        self.assertEqual(rounded(leader_regions(samples("a", 404, 200))), [(0.0, INF)])

    def test_no_answer_carries_no_information(self):
        """
        Timed-out samples neither end a run nor bound it; refused
        connections do (nothing listened).
        """
        s = samples("a", 404, 200, NO_ANSWER, 200, NO_ANSWER, 404)
        self.assertEqual(rounded(leader_regions(s)), [(0.0, 0.51)])
        s = samples("a", 200, DOWN, 200)
        self.assertEqual(len(leader_regions(s)), 2)

    def test_never_leader(self):
        self.assertEqual(leader_regions(samples("a", 404, 404, DOWN)), [])


class CheckOutsideLeadershipTests(SynchronousTestCase):
    """
    Property 2a.
    """

    def test_inside(self):
        """
        200 checks within the node's sampled leadership are fine, including
        at the uncertain edges.
        """
        s = samples("a", 404, 200, 200, 404)
        c = checks("a", 0.02, 0.30)
        self.assertEqual(checks_outside_leadership(c, s), [])

    def test_outside(self):
        """
        A 200 check entirely between two 404 samples with no 200 sample in
        between is a violation, reported with the samples around it.
        """
        s = samples("a", 404, 200, 404, 404, 404)
        bad = Observation("a", 0.32, 0.35, 200)
        found = checks_outside_leadership([bad], s)
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0].kind, "check-200-from-non-leader")
        self.assertIn("before: 404 [0.300, 0.310]", found[0].detail)
        self.assertIn("after: 404 [0.400, 0.410]", found[0].detail)

    def test_other_node_leadership_does_not_count(self):
        s = samples("a", 404, 404, 404) + samples("b", 200, 200, 200)
        found = checks_outside_leadership([Observation("a", 0.12, 0.15, 200)], s)
        self.assertEqual(len(found), 1)

    def test_non_200_ignored(self):
        s = samples("a", 404, 404)
        c = [Observation("a", 0.05, 0.06, 500), Observation("a", 0.05, 0.06, NO_ANSWER)]
        self.assertEqual(checks_outside_leadership(c, s), [])


class OverlapTests(SynchronousTestCase):
    """
    Property 2b.
    """

    def test_serving_runs_break_on_other_answers_and_gaps(self):
        c = checks("a", 0, 1) + [Observation("a", 1.0, 1.01, 500)] + checks("a", 1.05, 2)
        self.assertEqual(len(serving_runs(c)), 2)
        c = checks("a", 0, 1) + checks("a", 2, 3)
        runs = serving_runs(c, max_gap=0.5)
        self.assertEqual(len(runs), 2)
        self.assertAlmostEqual(runs[0][0], 0.01)
        self.assertAlmostEqual(runs[0][1], 0.95)

    def test_single_answer_is_no_span(self):
        """
        One answer, however slow (sent before a freeze, answered after it),
        certainly covers no span.
        """
        self.assertEqual(serving_runs([Observation("a", 0.0, 5.0, 200)]), [])

    def test_handover_within_window(self):
        """
        The old leader serving on for less than 2 s after the new one
        started is allowed.
        """
        c = checks("a", 0, 5) + checks("b", 3.5, 8)
        longest, found = overlaps(c, "/check")
        self.assertEqual(found, [])
        self.assertAlmostEqual(longest, 1.5 - 0.06, places=6)

    def test_two_at_once_beyond_window(self):
        c = checks("a", 0, 5) + checks("b", 2, 8)
        longest, found = overlaps(c, "/check")
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0].kind, "two-nodes-at-once")
        self.assertGreater(longest, 2.0)

    def test_window_is_the_lease_bound(self):
        """
        The window is the 1.5 s lease plus the documented slack: an overlap
        of 1.7 s is allowed, one of 1.85 s (allowed by the old 2 s window)
        is not.
        """
        self.assertEqual(DEPOSITION_WINDOW, LEADER_LEASE + LEASE_SLACK)
        self.assertEqual((LEADER_LEASE, LEASE_SLACK), (1.5, 0.25))
        for overlap, violations in ((1.7, 0), (1.85, 1)):
            c = checks("a", 0, 5, period=0.01, latency=0) + checks("b", 5 - overlap, 8, period=0.01, latency=0)
            longest, found = overlaps(c, "/check")
            self.assertAlmostEqual(longest, overlap - 0.01, places=6)
            self.assertEqual(len(found), violations)

    def test_alternating_leaders_are_fine(self):
        """
        a, then b, then a again (re-elected after a restart) never overlap.
        """
        c = checks("a", 0, 3) + checks("b", 3.5, 6) + checks("a", 6.5, 9)
        c += checks("a", 3.0, 6.5, status=DOWN, period=0.1)
        c += checks("b", 6.0, 9, status=500, period=0.1)
        self.assertEqual(overlaps(c, "/check")[1], [])


class CommandTests(SynchronousTestCase):
    """
    Property 1: the final state the acknowledged commands decide.
    """

    def command(self, kind, name, status=200, ratio=None, start=0.0, end=0.1):
        return CommandRecord(kind, name, "n", start, end, status, 60, ratio)

    def kinds(self, commands, state):
        return sorted(v.kind for v in state_violations(commands, state, "n0"))

    def test_present(self):
        commands = [self.command("throttle", "p-a", ratio=0.5), self.command("skip", "p-h")]
        state = NodeState({"p-a": 0.5}, ["p-h"])
        self.assertEqual(state_violations(commands, state, "n0"), [])

    def test_missing_and_wrong_ratio(self):
        commands = [
            self.command("throttle", "p-a", ratio=0.5),
            self.command("throttle", "p-b", ratio=0.5),
            self.command("skip", "p-h"),
            self.command("skip", "p-unacked", status=500),
        ]
        state = NodeState({"p-a": 0.25}, [])
        self.assertEqual(self.kinds(commands, state), ["lost-command", "lost-command", "wrong-ratio"])
        names = sorted(v.name for v in state_violations(commands, state, "n0"))
        self.assertEqual(names, ["p-a", "p-b", "p-h"])

    def test_unreadable(self):
        found = state_violations([], NodeState(None, []), "n0")
        self.assertEqual([v.kind for v in found], ["state-unreadable"])

    def undone(self, undo_status=200, undo_start=0.2, do_status=200):
        """
        A throttle of C{p-a} and a skip of C{p-h} (sent at 0, answered at
        0.1), each undone by a command sent at C{undo_start}.
        """
        return [
            self.command("throttle", "p-a", ratio=0.5, status=do_status),
            self.command("skip", "p-h", status=do_status),
            self.command("unthrottle", "p-a", status=undo_status, start=undo_start, end=undo_start + 0.1),
            self.command("recover", "p-h", status=undo_status, start=undo_start, end=undo_start + 0.1),
        ]

    def test_acknowledged_undo_must_hold(self):
        """
        An unthrottle or recover acknowledged after the throttle or skip was
        acknowledged leaves the name absent on every node; present, it is
        resurrected.
        """
        commands = self.undone()
        self.assertEqual(state_violations(commands, NodeState({}, []), "n0"), [])
        found = state_violations(commands, NodeState({"p-a": 0.5}, ["p-h"]), "n0")
        self.assertEqual(sorted((v.kind, v.name) for v in found), [("resurrected", "p-a"), ("resurrected", "p-h")])
        self.assertIn("p-a is throttled after the acknowledged unthrottle", found[0].detail + found[1].detail)
        self.assertIn("p-h is skipped after the acknowledged recover", found[0].detail + found[1].detail)

    def test_undo_of_unknown_outcome_is_undecided(self):
        """
        An unthrottle or recover without an answer, or answered 500, may or
        may not have been applied: the name may be present or absent, and
        counts as undecided.
        """
        for status in (500, NO_ANSWER):
            commands = self.undone(undo_status=status)
            for state in (NodeState({}, []), NodeState({"p-a": 0.5}, ["p-h"])):
                self.assertEqual(state_violations(commands, state, "n0"), [])
            expected, undecided = expectations(commands)
            self.assertEqual((expected, sorted(undecided)), ({}, [("apps", "p-a"), ("hosts", "p-h")]))

    def test_refused_undo_was_never_applied(self):
        """
        A refused connection delivered nothing: after a refused unthrottle
        or recover the throttle and skip must still be there.
        """
        commands = self.undone(undo_status=DOWN)
        self.assertEqual(state_violations(commands, NodeState({"p-a": 0.5}, ["p-h"]), "n0"), [])
        self.assertEqual(self.kinds(commands, NodeState({}, [])), ["lost-command", "lost-command"])

    def test_undo_sent_before_the_answer_is_undecided(self):
        """
        An unthrottle sent before the throttle was acknowledged may have been
        committed before it: the order, and so the final state, is unknown.
        """
        commands = self.undone(undo_start=0.05)
        expected, undecided = expectations(commands)
        self.assertEqual((expected, len(undecided)), ({}, 2))
        self.assertEqual(state_violations(commands, NodeState({"p-a": 0.5}, ["p-h"]), "n0"), [])

    def test_undo_of_unacknowledged_command_is_undecided(self):
        """
        A throttle that was never acknowledged may be committed at any time,
        even after an acknowledged unthrottle of the same name.
        """
        commands = self.undone(do_status=NO_ANSWER)
        self.assertEqual(len(expectations(commands)[1]), 2)
        self.assertEqual(state_violations(commands, NodeState({"p-a": 0.5}, ["p-h"]), "n0"), [])

    def test_expectations(self):
        """
        L{expectations} names the deciding command; names with no
        acknowledged command are neither expected nor undecided.
        """
        commands = self.undone() + [self.command("throttle", "p-b", ratio=0.3), self.command("skip", "p-x", status=500)]
        expected, undecided = expectations(commands)
        self.assertEqual(undecided, [])
        self.assertEqual(
            {k: (e.present, e.decided_by.kind, e.ratio) for k, e in expected.items()},
            {
                ("apps", "p-a"): (False, "unthrottle", None),
                ("hosts", "p-h"): (False, "recover", None),
                ("apps", "p-b"): (True, "throttle", 0.3),
            },
        )

    def test_analyse(self):
        """
        L{analyse} puts the properties together: phantoms, a missing final
        leader, resurrected entries, the undecided count and the
        leader-check overlap are reported too.
        """
        commands = [self.command("throttle", "p-a", ratio=1.0)]
        states = {"a": NodeState({"p-a": 1.0, "p-zz": 1.0}, []), "b": NodeState({}, [])}
        result = analyse([], [], commands, None, states, "p-")
        kinds = sorted(v.kind for v in result.violations)
        self.assertEqual(kinds, ["lost-command", "no-final-leader", "phantom-entry"])
        commands = self.undone() + [self.command("recover", "p-y", status=500)]
        commands.append(self.command("skip", "p-y", status=200, start=-1.0, end=-0.9))
        result = analyse([], [], commands, "a", {"a": NodeState({"p-a": 0.5}, ["p-y"])}, "p-")
        self.assertEqual([v.kind for v in result.violations], ["resurrected"])
        self.assertEqual(result.undecided, 1)
        s = samples("a", *[200] * 40) + samples("b", *[200] * 40)
        result = analyse([], s, [], "a", {}, "p-")
        self.assertEqual([v.kind for v in result.violations], ["two-nodes-at-once"])
