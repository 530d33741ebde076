"""
Tests for L{freno.throttle.checker}: the check algorithm (freno's order, case by
case) and the control commands.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings
from freno.consensus.interface import NotLeaderError
from freno.consensus.commands import InvalidCommand, RecoverHost, UnthrottleApp
from freno.consensus.local import LocalConsensus
from freno.probe.metrics import AggregatedMetrics, ClusterMetric
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry
from freno.throttle.checker import (
    ABUSING_APP,
    MAX_TTL_MINUTES,
    Throttler,
)
from freno.throttle.flags import (
    LOW_PRIORITY,
    LOW_PRIORITY_OK_IF_NOT_EXISTS,
    OK_IF_NOT_EXISTS,
    STANDARD,
    CheckFlags,
)
from freno.throttle.result import NO_SUCH_METRIC_RESULT

START = 1_700_000_000.0


def freno_fields(result):
    """
    The four fields of freno's C{CheckResult} (its explanation is tested in
    L{test.unit.test_check_headers}).
    """
    return (result.status_code, result.value, result.threshold, result.message)


class Dice:
    """
    A scripted C{random()}: returns C{value}, counting calls.
    """

    def __init__(self, value: float = 0.5) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.value


def make_throttler(threshold: float = 1.0, value=0.5, dice=None):
    """
    A throttler over one cluster C{main} (metric C{value}, or none if
    C{None}) and one cluster C{empty} without a metric.
    """
    clock = Clock()
    clock.advance(START)
    clusters = {
        "main": ClusterSettings(name="main", throttle_threshold=threshold),
        "empty": ClusterSettings(name="empty", throttle_threshold=2.0),
    }
    config = Config(mysql=MySQLStoreSettings(clusters=clusters))
    metrics = AggregatedMetrics(clock, {"main": threshold, "empty": 2.0}, 5.0)
    if value is not None:
        metrics.set("main", ClusterMetric(value, None, clock.seconds()))
    consensus = LocalConsensus(clock)
    stats = Registry()
    throttler = Throttler(clock, config, consensus, metrics, stats, dice or Dice())
    return throttler, clock, consensus, metrics, stats


class CheckOrderTests(SynchronousTestCase):
    """
    L{Throttler.check} evaluates freno's steps in freno's order.
    """

    def test_ok(self):
        """
        A value at or below the threshold is 200 with an empty message.
        """
        t, *_ = make_throttler(value=1.0)
        self.assertEqual(freno_fields(t.check("a", "mysql", "main", "h")), (200, 1.0, 1.0, ""))

    def test_over_threshold(self):
        """
        A value strictly above the threshold is 429.
        """
        t, *_ = make_throttler(value=2.0)
        self.assertEqual(
            freno_fields(t.check("a", "mysql", "main", "h")),
            (429, 2.0, 1.0, "Threshold exceeded"),
        )

    def test_unknown_store_type(self):
        """
        A store type other than mysql is 404 with threshold 0, neither
        counted nor recorded; the if-exists flag makes it 200 without changing
        the shared result (B2).
        """
        t, _, _, _, stats = make_throttler()
        self.assertIs(t.check("a", "pg", "main", "h"), NO_SUCH_METRIC_RESULT)
        converted = t.check("a", "pg", "main", "h", OK_IF_NOT_EXISTS)
        self.assertEqual(freno_fields(converted), (200, 0.0, 0.0, "No such metric"))
        self.assertEqual(t.check("a", "pg", "main", "h").status_code, 404)
        self.assertEqual(variables(stats).counters, {})
        self.assertEqual(len(t.recent_apps), 0)

    def test_unknown_cluster(self):
        """
        An unknown cluster is 404 with threshold 0.
        """
        t, *_ = make_throttler()
        self.assertEqual(
            freno_fields(t.check("a", "mysql", "nosuch", "h")),
            (404, 0.0, 0.0, "No such metric"),
        )

    def test_known_cluster_without_metric(self):
        """
        A configured cluster with no metric is 500 C{Metric not collected
        yet} with its threshold, never 404: the if-exists routes and low
        priority do not turn it into a 200.
        """
        t, *_ = make_throttler()
        expected = (500, 0.0, 2.0, "Metric not collected yet")
        for flags in (STANDARD, LOW_PRIORITY, OK_IF_NOT_EXISTS,
                      LOW_PRIORITY_OK_IF_NOT_EXISTS):
            self.assertEqual(freno_fields(t.check("a", "mysql", "empty", "h", flags)), expected)
        for if_exists in (False, True):
            for low in (False, True):
                flags = CheckFlags(low, if_exists, 0.5)
                self.assertEqual(
                    freno_fields(t.check("a", "mysql", "empty", "h", flags)),
                    (500, 0.0, 0.5, "Metric not collected yet"),
                )

    def test_metric_error(self):
        """
        A metric error is 500 with its text and value 0.
        """
        t, clock, _, metrics, _ = make_throttler()
        metrics.set("main", ClusterMetric(0.0, "No hosts found", clock.seconds()))
        self.assertEqual(
            freno_fields(t.check("a", "mysql", "main", "h")),
            (500, 0.0, 1.0, "No hosts found"),
        )

    def test_stale_metric(self):
        """
        A value older than the freshness bound is a 500 error.
        """
        t, clock, *_ = make_throttler()
        clock.advance(6)
        result = t.check("a", "mysql", "main", "h")
        self.assertEqual(result.status_code, 500)
        self.assertIn("stale", result.message)

    def test_empty_app_takes_precedence(self):
        """
        An empty app is 417 "no app indicated" with the computed value and
        threshold, ahead of errors, throttles and the threshold.
        """
        t, _, consensus, _, _ = make_throttler(value=5.0)
        self.assertEqual(
            freno_fields(t.check("", "mysql", "main", "h")),
            (417, 5.0, 1.0, "no app indicated"),
        )
        self.assertEqual(
            freno_fields(t.check("", "mysql", "nosuch", "h")),
            (417, 0.0, 0.0, "no app indicated"),
        )

    def test_unknown_store_type_before_empty_app(self):
        """
        The unknown store type 404 comes before the empty-app 417.
        """
        t, *_ = make_throttler()
        self.assertEqual(t.check("", "x", "main", "h").status_code, 404)

    def test_throttled_app(self):
        """
        A throttled app is 417 "App denied" with value and threshold 0, ahead
        of the cluster lookup.
        """
        t, _, consensus, _, _ = make_throttler(value=5.0)
        consensus.throttle_app("a", None, 1.0)
        self.assertEqual(
            freno_fields(t.check("a", "mysql", "nosuch", "h")),
            (417, 0.0, 0.0, "App denied"),
        )

    def test_override_threshold_shown_when_denied(self):
        """
        check-read's override threshold is shown even for a denied app.
        """
        t, _, consensus, _, _ = make_throttler()
        consensus.throttle_app("a", None, 1.0)
        self.assertEqual(
            freno_fields(t.check("a", "mysql", "main", "h", CheckFlags(override_threshold=3.0))),
            (417, 0.0, 3.0, "App denied"),
        )

    def test_override_threshold(self):
        """
        check-read compares with the override threshold.
        """
        t, *_ = make_throttler(value=0.5)
        flags = CheckFlags(override_threshold=0.25)
        self.assertEqual(
            freno_fields(t.check("a", "mysql", "main", "h", flags)),
            (429, 0.5, 0.25, "Threshold exceeded"),
        )

    def test_if_exists_with_override(self):
        """
        check-read-if-exists on an unknown cluster answers 200 with the
        override threshold (the addendum's clarification).
        """
        t, *_ = make_throttler()
        flags = CheckFlags(ok_if_not_exists=True, override_threshold=1.0)
        self.assertEqual(
            freno_fields(t.check("a", "mysql", "nosuch", "h", flags)),
            (200, 0.0, 1.0, "No such metric"),
        )

    def test_store_scoped_throttle(self):
        """
        A store-scoped key C{app/store} throttles only that store.
        """
        t, _, consensus, _, _ = make_throttler()
        consensus.throttle_app("a/main", None, 1.0)
        self.assertEqual(t.check("a", "mysql", "main", "h").status_code, 417)
        self.assertEqual(t.check("a", "mysql", "empty", "h").status_code, 500)

    def test_ratio_rolls_per_key(self):
        """
        Each matching key gets its own roll: C{random() < ratio} throttles.
        """
        dice = Dice(0.5)
        t, _, consensus, _, _ = make_throttler(dice=dice)
        consensus.throttle_app("a/main", None, 0.4)
        consensus.throttle_app("a", None, 0.6)
        self.assertEqual(t.check("a", "mysql", "main", "h").status_code, 417)
        self.assertEqual(dice.calls, 2)
        dice.value = 0.7
        self.assertEqual(t.check("a", "mysql", "main", "h").status_code, 200)

    def test_ratio_zero_never_and_one_always(self):
        """
        Ratio 0 never throttles; ratio 1 always does.
        """
        dice = Dice(0.0)
        t, _, consensus, _, _ = make_throttler(dice=dice)
        consensus.throttle_app("a", None, 0.0)
        self.assertEqual(t.check("a", "mysql", "main", "h").status_code, 200)
        dice.value = 0.999999
        consensus.throttle_app("a", None, 1.0)
        self.assertEqual(t.check("a", "mysql", "main", "h").status_code, 417)

    def test_expired_throttle_skipped(self):
        """
        A throttle whose expiry has passed no longer applies, purged or not.
        """
        t, clock, consensus, metrics, _ = make_throttler()
        consensus.throttle_app("a", clock.seconds() + 60, 1.0)
        self.assertEqual(t.check("a", "mysql", "main", "h").status_code, 417)
        clock.advance(60)
        metrics.set("main", ClusterMetric(0.5, None, clock.seconds()))
        self.assertEqual(t.check("a", "mysql", "main", "h").status_code, 200)

    def test_abusing_app(self):
        """
        The built-in abusing-app is always denied and listed.
        """
        t, *_ = make_throttler()
        self.assertEqual(t.check(ABUSING_APP, "mysql", "main", "h").status_code, 417)
        self.assertIn(ABUSING_APP, t.throttled_apps())

    def test_not_leader(self):
        """
        A non-leader answers 500 "not leader" to every check, if-exists
        included, and still counts and records mysql checks.
        """
        t, _, consensus, _, stats = make_throttler()
        consensus.set_leader(False)
        for store_type, store in [("mysql", "main"), ("mysql", "nosuch"), ("x", "y")]:
            for flags in (STANDARD, OK_IF_NOT_EXISTS, LOW_PRIORITY):
                result = t.check("a", store_type, store, "h", flags)
                self.assertEqual(freno_fields(result), (500, 0.0, 0.0, "not leader"))
        self.assertEqual(variables(stats).counters["check.a.internal-error"], 6)
        self.assertEqual(len(t.recent_apps), 1)


class LowPriorityTests(SynchronousTestCase):
    """
    C{?p=low} is denied for one second after a normal client's 429.
    """

    def test_denied_after_normal_429(self):
        """
        After a normal 429, low priority gets 417 for one second, then is
        evaluated normally again.
        """
        t, clock, _, metrics, _ = make_throttler(value=2.0)
        self.assertEqual(t.check("lp", "mysql", "main", "h", LOW_PRIORITY).status_code, 429)
        self.assertEqual(t.check("n", "mysql", "main", "h").status_code, 429)
        self.assertEqual(
            freno_fields(t.check("lp", "mysql", "main", "h", LOW_PRIORITY)),
            (417, 0.0, 0.0, "App denied"),
        )
        metrics.set("main", ClusterMetric(0.5, None, clock.seconds()))
        self.assertEqual(t.check("lp", "mysql", "main", "h", LOW_PRIORITY).status_code, 417)
        clock.advance(1.0)
        metrics.set("main", ClusterMetric(0.5, None, clock.seconds()))
        self.assertEqual(t.check("lp", "mysql", "main", "h", LOW_PRIORITY).status_code, 200)

    def test_only_normal_429s_mark(self):
        """
        Low-priority 429s, check-read 429s and the app C{freno} never mark
        (B3/B4 fixed: no internal self-check marks either).
        """
        t, *_ = make_throttler(value=2.0)
        t.check("lp", "mysql", "main", "h", LOW_PRIORITY)
        t.check("r", "mysql", "main", "h", CheckFlags(override_threshold=0.5))
        t.check("freno", "mysql", "main", "h")
        self.assertEqual(t.check("lp", "mysql", "main", "h", LOW_PRIORITY).status_code, 429)

    def test_per_metric(self):
        """
        Denial is per metric name.
        """
        t, _, _, metrics, _ = make_throttler(value=2.0)
        t.check("n", "mysql", "main", "h")
        self.assertEqual(t.check("lp", "mysql", "empty", "h", LOW_PRIORITY).status_code, 500)

    def test_flags_do_not_leak(self):
        """
        A low-priority request leaves no trace on later normal requests (B3).
        """
        t, *_ = make_throttler(value=2.0)
        t.check("lp", "mysql", "main", "h", LOW_PRIORITY)
        t.check("n", "mysql", "main", "h")
        self.assertEqual(t.check("n", "mysql", "main", "h").status_code, 429)


class CommandTests(SynchronousTestCase):
    """
    L{Throttler}'s commands compute expiry and apply freno's semantics.
    """

    def test_throttle_permanent(self):
        """
        No TTL throttles permanently with ratio 1.
        """
        t, clock, consensus, _, _ = make_throttler()
        self.successResultOf(t.throttle_app("a"))
        self.assertEqual(consensus.throttled_apps()["a"].expire_at, None)
        self.assertEqual(consensus.throttled_apps()["a"].ratio, 1.0)

    def test_throttle_ttl(self):
        """
        A TTL in minutes expires at now + ttl*60; the check then passes.
        """
        t, clock, consensus, metrics, _ = make_throttler()
        self.successResultOf(t.throttle_app("a", 30, 0.5))
        self.assertEqual(consensus.throttled_apps()["a"].expire_at, START + 1800)
        self.assertEqual(consensus.throttled_apps()["a"].ratio, 0.5)

    def test_ratio_only_update_clears_ttl(self):
        """
        B10 decided as freno: a ratio-only update makes the entry permanent
        and a TTL-only update keeps the ratio.
        """
        t, clock, consensus, _, _ = make_throttler()
        self.successResultOf(t.throttle_app("a", 30, 0.5))
        self.successResultOf(t.throttle_app("a", 10))
        self.assertEqual(consensus.throttled_apps()["a"].ratio, 0.5)
        self.successResultOf(t.throttle_app("a", 0, 0.25))
        self.assertEqual(consensus.throttled_apps()["a"].expire_at, None)

    def test_negative_ttl_unthrottles(self):
        """
        A negative TTL unthrottles (and a negative skip TTL recovers).
        """
        t, clock, consensus, _, _ = make_throttler()
        self.successResultOf(t.throttle_app("a"))
        self.successResultOf(t.throttle_app("a", -5))
        self.assertNotIn("a", consensus.throttled_apps())
        self.successResultOf(t.skip_host("h1"))
        self.successResultOf(t.skip_host("h1", -1))
        self.assertNotIn("h1", consensus.skipped_hosts())

    def test_ttl_bound(self):
        """
        A TTL beyond 100 years is refused and nothing changes.
        """
        t, clock, consensus, _, _ = make_throttler()
        for ttl in (MAX_TTL_MINUTES + 1, -MAX_TTL_MINUTES - 1, 153722868, 2**63 - 1):
            self.assertRaises(InvalidCommand, t.throttle_app, "a", ttl)
            self.assertRaises(InvalidCommand, t.skip_host, "h", ttl)
        self.assertEqual(dict(consensus.throttled_apps()), {})
        self.assertEqual(dict(consensus.skipped_hosts()), {})
        self.successResultOf(t.throttle_app("a", MAX_TTL_MINUTES))

    def test_skip_default_ttl(self):
        """
        A skip without TTL lasts 60 minutes.
        """
        t, clock, consensus, _, _ = make_throttler()
        self.successResultOf(t.skip_host("h1"))
        self.assertEqual(consensus.skipped_hosts()["h1"], START + 3600)
        self.successResultOf(t.skip_host("h1", 5))
        self.assertEqual(consensus.skipped_hosts()["h1"], START + 300)

    def test_builtin_refused(self):
        """
        abusing-app cannot be throttled or unthrottled; its store-scoped key
        can.
        """
        t, *_ = make_throttler()
        self.assertRaises(InvalidCommand, t.unthrottle_app, ABUSING_APP)
        self.assertRaises(InvalidCommand, t.throttle_app, ABUSING_APP)
        self.successResultOf(t.throttle_app(ABUSING_APP + "/main"))

    def test_unthrottle_unknown_goes_through_consensus(self):
        """
        B12's unthrottle half, decided: an unthrottle of an app this node
        does not have (yet) is still committed, because another node may
        have it; so it succeeds with a leader and fails, like every
        command, without one.
        """
        t, clock, consensus, _, _ = make_throttler()
        self.successResultOf(t.unthrottle_app("nosuch"))
        self.assertNotIn("nosuch", consensus.throttled_apps())
        consensus.set_leader(False)
        consensus.reject_commands = NotLeaderError()
        self.failureResultOf(t.unthrottle_app("nosuch"), NotLeaderError)

    def test_unthrottle_reaches_a_node_that_has_the_throttle(self):
        """
        The unthrottle (and the recover) is submitted even though the local
        map lacks the name: a node whose state lags (here: one that never
        saw the throttle or skip) does not swallow it.
        """
        t, clock, consensus, _, _ = make_throttler()
        submitted = []
        submit = consensus._submit
        self.patch(consensus, "_submit", lambda command: submitted.append(command) or submit(command))
        self.successResultOf(t.unthrottle_app("elsewhere"))
        self.successResultOf(t.recover_host("db-elsewhere"))
        self.assertEqual(submitted, [UnthrottleApp("elsewhere"), RecoverHost("db-elsewhere")])

    def test_consensus_failure_propagates(self):
        """
        A consensus failure is the command's failure.
        """
        t, clock, consensus, _, _ = make_throttler()
        consensus.reject_commands = NotLeaderError()
        self.failureResultOf(t.throttle_app("a"), NotLeaderError)
