"""
Tests for per-app policy thresholds in L{freno.throttle.checker}: how a
policy, an exemption, check-read's override threshold and C{p=low} combine.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.state import Policy
from freno.throttle.flags import LOW_PRIORITY, STANDARD, CheckFlags
from test.unit.test_throttle import freno_fields, make_throttler


def with_policy(consensus, app, store, threshold, exempt=False):
    key = f"{app}/{store}" if store else app
    consensus.state.policies[key] = Policy(app, store, threshold, exempt)


class PolicyThresholdTests(SynchronousTestCase):
    """
    The effective threshold of an app with a policy.
    """

    def test_stricter_applies(self):
        """
        A policy threshold below the cluster's applies to that app only.
        """
        t, _, consensus, *_ = make_throttler(threshold=1.0, value=0.5)
        with_policy(consensus, "etl", "main", 0.4)
        self.assertEqual(freno_fields(t.check("etl", "mysql", "main", "h")), (429, 0.5, 0.4, "Threshold exceeded"))
        self.assertEqual(t.check("web", "mysql", "main", "h").status_code, 200)

    def test_looser_does_not_apply(self):
        """
        A non-exempt policy above the cluster's threshold changes nothing.
        """
        t, _, consensus, *_ = make_throttler(threshold=1.0, value=1.5)
        with_policy(consensus, "etl", None, 2.0)
        self.assertEqual(freno_fields(t.check("etl", "mysql", "main", "h")), (429, 1.5, 1.0, "Threshold exceeded"))

    def test_exempt(self):
        """
        An exempt app's policy threshold applies even when higher.
        """
        t, _, consensus, *_ = make_throttler(threshold=1.0, value=1.5)
        with_policy(consensus, "batch", "main", 2.0, exempt=True)
        self.assertEqual(freno_fields(t.check("batch", "mysql", "main", "h")), (200, 1.5, 2.0, ""))
        self.assertEqual(t.check("other", "mysql", "main", "h").status_code, 429)
        with_policy(consensus, "batch", "main", 0.5, exempt=True)
        self.assertEqual(t.check("batch", "mysql", "main", "h").threshold, 0.5)

    def test_store_key_first(self):
        """
        The store-scoped policy wins over the app-wide one; an app-wide
        policy applies on every store.
        """
        t, _, consensus, *_ = make_throttler(threshold=1.0, value=0.5)
        with_policy(consensus, "etl", None, 0.2)
        with_policy(consensus, "etl", "main", 0.8)
        self.assertEqual(t.check("etl", "mysql", "main", "h").threshold, 0.8)
        del consensus.state.policies["etl/main"]
        self.assertEqual(t.check("etl", "mysql", "main", "h").threshold, 0.2)

    def test_without_threshold(self):
        """
        A policy without a threshold changes nothing.
        """
        t, _, consensus, *_ = make_throttler(threshold=1.0, value=0.5)
        with_policy(consensus, "etl", None, None, exempt=True)
        self.assertEqual(freno_fields(t.check("etl", "mysql", "main", "h")), (200, 0.5, 1.0, ""))

    def test_check_read(self):
        """
        check-read's override replaces the cluster threshold; a policy
        still caps it, exempt or not.
        """
        t, _, consensus, *_ = make_throttler(threshold=1.0, value=0.5)
        read = CheckFlags(override_threshold=3.0)
        with_policy(consensus, "etl", None, 0.4)
        self.assertEqual(freno_fields(t.check("etl", "mysql", "main", "h", read)), (429, 0.5, 0.4, "Threshold exceeded"))
        with_policy(consensus, "etl", None, 2.0, exempt=True)
        self.assertEqual(t.check("etl", "mysql", "main", "h", read).threshold, 2.0)
        tight = CheckFlags(override_threshold=0.3)
        self.assertEqual(t.check("etl", "mysql", "main", "h", tight).threshold, 0.3)

    def test_denied_and_unknown_untouched(self):
        """
        A throttled app is still denied with threshold 0; an unknown
        cluster is still a 404 with threshold 0.
        """
        t, clock, consensus, *_ = make_throttler(threshold=1.0, value=0.5)
        with_policy(consensus, "etl", None, 5.0, exempt=True)
        consensus.throttle_app("etl", None, None)
        self.assertEqual(freno_fields(t.check("etl", "mysql", "main", "h")), (417, 0.0, 0.0, "App denied"))
        self.assertEqual(t.check("x", "mysql", "nope", "h").threshold, 0.0)

    def test_low_priority(self):
        """
        An app refused only by its own stricter policy does not make
        low-priority clients wait; one over the cluster's threshold does.
        """
        t, clock, consensus, metrics, _ = make_throttler(threshold=1.0, value=0.5)
        with_policy(consensus, "strict", None, 0.4)
        self.assertEqual(t.check("strict", "mysql", "main", "h").status_code, 429)
        self.assertEqual(t.check("lowpri", "mysql", "main", "h", LOW_PRIORITY).status_code, 200)
        with_policy(consensus, "batch", None, 3.0, exempt=True)
        from freno.probe.metrics import ClusterMetric

        metrics.set("main", ClusterMetric(4.0, None, clock.seconds()))
        self.assertEqual(t.check("batch", "mysql", "main", "h").status_code, 429)
        self.assertEqual(t.check("lowpri", "mysql", "main", "h", LOW_PRIORITY).status_code, 417)

    @settings(deadline=None)
    @given(
        st.floats(0.01, 10), st.floats(0, 10), st.one_of(st.none(), st.floats(0.01, 10)),
        st.booleans(), st.one_of(st.none(), st.floats(0.01, 10)),
    )
    def test_rule(self, cluster, value, policy, exempt, override):
        """
        The effective threshold is: without a policy threshold, the
        override or the cluster's; with one, min(override, policy) when
        there is an override, else the policy when exempt, else
        min(cluster, policy).
        """
        t, _, consensus, *_ = make_throttler(threshold=cluster, value=value)
        if policy is not None:
            with_policy(consensus, "a", None, policy, exempt)
        flags = STANDARD if override is None else CheckFlags(override_threshold=override)
        base = override if override is not None else cluster
        if policy is None:
            expected = base
        elif override is not None:
            expected = min(override, policy)
        elif exempt:
            expected = policy
        else:
            expected = min(cluster, policy)
        result = t.check("a", "mysql", "main", "h", flags)
        self.assertEqual(result.threshold, expected)
        self.assertEqual(result.status_code, 429 if value > expected else 200)
