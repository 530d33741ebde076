"""
Tests for L{freno.consensus.state}: the deterministic throttle state machine.
"""

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.commands import (
    RecoverHost,
    SkipHost,
    ThrottleApp,
    UnthrottleApp,
    command_from_dict,
    command_to_dict,
)
from freno.consensus.state import AppThrottle, ThrottleState


class ThrottleTests(SynchronousTestCase):
    """
    Throttle commands follow freno's C{Throttler.ThrottleApp} table.
    """

    def test_new_entry_without_ratio_gets_one(self):
        """
        A new throttle with no ratio throttles fully.
        """
        state = ThrottleState()
        state.apply(ThrottleApp("app", None, None))
        self.assertEqual(state.apps, {"app": AppThrottle(None, 1.0)})

    def test_update_without_ratio_keeps_ratio(self):
        """
        Re-throttling with a TTL and no ratio keeps the existing ratio.
        """
        state = ThrottleState()
        state.apply(ThrottleApp("app", None, 0.25))
        state.apply(ThrottleApp("app", 100.0, None))
        self.assertEqual(state.apps["app"], AppThrottle(100.0, 0.25))

    def test_update_without_expiry_is_permanent(self):
        """
        A ratio-only update makes the entry permanent (freno's behaviour).
        """
        state = ThrottleState()
        state.apply(ThrottleApp("app", 100.0, 0.5))
        state.apply(ThrottleApp("app", None, 0.75))
        self.assertEqual(state.apps["app"], AppThrottle(None, 0.75))

    def test_past_expiry_is_inactive(self):
        """
        An expiry in the past leaves an entry that no reader counts.
        """
        state = ThrottleState()
        state.apply(ThrottleApp("app", 10.0, None))
        self.assertFalse(state.apps["app"].active(11.0))
        self.assertTrue(state.apps["app"].active(9.0))

    def test_unthrottle(self):
        """
        Unthrottle removes the key, and only that key.
        """
        state = ThrottleState()
        state.apply(ThrottleApp("app", None, None))
        state.apply(ThrottleApp("app/store", None, None))
        state.apply(UnthrottleApp("app"))
        state.apply(UnthrottleApp("unknown"))
        self.assertEqual(list(state.apps), ["app/store"])

    def test_purge_expired(self):
        """
        Purging drops expired throttles and skips, keeps permanent and live ones.
        """
        state = ThrottleState()
        state.apply(ThrottleApp("old", 5.0, None))
        state.apply(ThrottleApp("live", 50.0, None))
        state.apply(ThrottleApp("forever", None, None))
        state.apply(SkipHost("h1", 5.0))
        state.apply(SkipHost("h2", 50.0))
        state.purge_expired(10.0)
        self.assertEqual(sorted(state.apps), ["forever", "live"])
        self.assertEqual(state.skipped, {"h2": 50.0})


class SkipTests(SynchronousTestCase):
    """
    Skip and recover.
    """

    def test_skip_and_recover(self):
        """
        Skipping overwrites the expiry; recovering removes the host.
        """
        state = ThrottleState()
        state.apply(SkipHost("h", 10.0))
        state.apply(SkipHost("h", 20.0))
        self.assertEqual(state.skipped, {"h": 20.0})
        state.apply(RecoverHost("h"))
        self.assertEqual(state.skipped, {})


commands = st.one_of(
    st.builds(
        ThrottleApp,
        st.sampled_from(["a", "b", "a/s"]),
        st.one_of(st.none(), st.floats(0, 1000)),
        st.one_of(st.none(), st.floats(0, 1)),
    ),
    st.builds(UnthrottleApp, st.sampled_from(["a", "b", "a/s"])),
    st.builds(SkipHost, st.sampled_from(["h1", "h2"]), st.floats(0, 1000)),
    st.builds(RecoverHost, st.sampled_from(["h1", "h2"])),
)


class SnapshotTests(SynchronousTestCase):
    """
    Snapshots hold the complete state (freno's were empty, B5).
    """

    @given(st.lists(commands, max_size=30))
    def test_snapshot_round_trip(self, log):
        """
        Restoring a snapshot gives the same state as replaying the log.
        """
        state = ThrottleState()
        for command in log:
            state.apply(command)
        restored = ThrottleState()
        restored.apply(ThrottleApp("stale", None, None))
        restored.restore(state.snapshot())
        self.assertEqual(restored, state)

    @given(commands)
    def test_command_dict_round_trip(self, command):
        """
        Commands survive their dict form.
        """
        self.assertEqual(command_from_dict(command_to_dict(command)), command)

    def test_unknown_operation(self):
        """
        An unknown or malformed command is a ValueError.
        """
        self.assertRaises(ValueError, command_from_dict, {"op": "explode"})
        self.assertRaises(ValueError, command_from_dict, {"op": "skip", "nope": 1})
