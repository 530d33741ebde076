"""
Tests for L{freno.probe.aggregate}: freno's C{TestAggregateMySQLProbes*}
tables and the behaviours we fixed (B6, B14, immediate skips).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.hosts import HostKey
from freno.probe.aggregate import (
    NO_HOSTS,
    NOT_COLLECTED,
    AggregationRules,
    HostResult,
    aggregate,
    reduce_values,
)

NOW = 1000.0
VALUES = [1.2, 1.7, 0.3, 0.6, 1.1]
HOSTS = [HostKey(f"h{i}", 3306) for i in range(len(VALUES))]


def results(values, at=NOW):
    return {HOSTS[i]: HostResult(v, None, at) for i, v in enumerate(values)}


def run(res, hosts=None, count=0, threshold=0.0, **kw):
    rules = AggregationRules(
        ignore_hosts_count=count,
        ignore_hosts_threshold=threshold,
        ignore_hosts=kw.pop("ignore_hosts", ()),
        ignore_dial_tcp_errors=kw.pop("dial", False),
    )
    return aggregate(
        hosts if hosts is not None else sorted(res), res, rules, kw.pop("now", NOW),
        kw.pop("freshness", 0.5), **kw
    )


class NoErrorsTests(SynchronousTestCase):
    """
    C{TestAggregateMySQLProbesNoErrors} and its threshold variant.
    """

    def test_ignore_hosts_count(self):
        """
        IgnoreHostsCount 0..5 gives 1.7, 1.2, 1.1, 0.6, 0.3, 0.3.
        """
        got = [run(results(VALUES), count=n).value for n in range(6)]
        self.assertEqual(got, [1.7, 1.2, 1.1, 0.6, 0.3, 0.3])

    def test_ignore_hosts_threshold(self):
        """
        With IgnoreHostsThreshold 1.0: 1.7, 1.2, 1.1, 0.6, 0.6, 0.6.
        """
        got = [run(results(VALUES), count=n, threshold=1.0).value for n in range(6)]
        self.assertEqual(got, [1.7, 1.2, 1.1, 0.6, 0.6, 0.6])

    def test_no_error(self):
        """
        A plain aggregate has no error and its measured_at is the oldest
        contributing value's.
        """
        res = results(VALUES)
        res[HOSTS[2]] = HostResult(0.3, None, NOW - 0.2)
        metric = run(res)
        self.assertIsNone(metric.error)
        self.assertEqual(metric.measured_at, NOW - 0.2)

    def test_measured_at_ignores_dropped(self):
        """
        A value dropped by the budget does not make the aggregate older.
        """
        res = results(VALUES)
        res[HOSTS[1]] = HostResult(1.7, None, NOW - 0.4)
        self.assertEqual(run(res, count=1).measured_at, NOW)


class WithErrorsTests(SynchronousTestCase):
    """
    C{TestAggregateMySQLProbesWithErrors}.
    """

    def test_one_error(self):
        """
        One erroring host: count 0 gives its error; 1 gives 1.7; 2 gives 1.2.
        """
        res = results(VALUES)
        res[HostKey("bad", 3306)] = HostResult(0, "No such metric", NOW)
        self.assertEqual(run(res, count=0).error, "No such metric")
        self.assertEqual(run(res, count=1).value, 1.7)
        self.assertIsNone(run(res, count=1).error)
        self.assertEqual(run(res, count=2).value, 1.2)

    def test_two_errors(self):
        """
        Two erroring hosts: counts 0 and 1 give an error; 2 gives 1.7.
        """
        res = results(VALUES)
        res[HostKey("bad1", 3306)] = HostResult(0, "boom", NOW)
        res[HostKey("bad2", 3306)] = HostResult(0, "boom", NOW)
        self.assertEqual(run(res, count=0).error, "boom")
        self.assertEqual(run(res, count=1).error, "boom")
        self.assertEqual(run(res, count=2).value, 1.7)

    def test_not_collected_is_not_budgeted(self):
        """
        A host without a result makes the cluster "Metric not collected yet"
        whatever the budget.
        """
        res = results(VALUES)
        hosts = sorted(res) + [HostKey("new", 3306)]
        self.assertEqual(run(res, hosts=hosts, count=3).error, NOT_COLLECTED)

    def test_dial_errors_ignored(self):
        """
        With IgnoreDialTcpErrors a connect error is left out without spending
        budget; other errors are not.
        """
        res = results(VALUES)
        res[HostKey("down", 3306)] = HostResult(0, "dial tcp down:3306: refused", NOW, True)
        self.assertEqual(run(res, dial=True).value, 1.7)
        self.assertEqual(run(res, dial=True, count=1).value, 1.2)
        self.assertIn("dial tcp", run(res).error)
        res[HostKey("down", 3306)] = HostResult(0, "Error 1146: no table", NOW, False)
        self.assertIn("1146", run(res, dial=True).error)

    def test_all_dial_errors(self):
        """
        Every host left out for dial errors is "No hosts found".
        """
        res = {HOSTS[0]: HostResult(0, "dial tcp", NOW, True)}
        self.assertEqual(run(res, dial=True).error, NO_HOSTS)

    def test_no_hosts(self):
        """
        An empty inventory is "No hosts found".
        """
        self.assertEqual(run({}, hosts=[]).error, NO_HOSTS)


class ExclusionTests(SynchronousTestCase):
    """
    HTTP-check 404s (C{TestAggregateMySQLProbesWithHttpChecks}), IgnoreHosts
    and skipped hosts.
    """

    def test_http_not_found(self):
        """
        An erroring host that answered 404 is excluded; excluding the 1.7
        host as well gives 1.2; all hosts 404 is an error.
        """
        res = results(VALUES)
        bad = HostKey("bad", 3306)
        res[bad] = HostResult(0, "boom", NOW)
        self.assertEqual(run(res, http_not_found={bad}).value, 1.7)
        self.assertEqual(run(res, http_not_found={bad, HOSTS[1]}).value, 1.2)
        self.assertEqual(run(res, http_not_found=set(res)).error, NO_HOSTS)

    def test_ignore_hosts_substring(self):
        """
        An IgnoreHosts entry that is a substring of host:port excludes it.
        """
        res = results(VALUES)
        self.assertEqual(run(res, ignore_hosts=("h1:33",)).value, 1.2)
        self.assertEqual(run(res, ignore_hosts=("nomatch",)).value, 1.7)

    def test_skipped_hosts(self):
        """
        A skipped hostname with a future expiry is excluded; an expired skip
        is not.
        """
        res = results(VALUES)
        self.assertEqual(run(res, skipped_hosts={"h1": NOW + 60}).value, 1.2)
        self.assertEqual(run(res, skipped_hosts={"h1": NOW - 1}).value, 1.7)


class FreshnessTests(SynchronousTestCase):
    """
    A host value older than the freshness bound no longer counts (B14).
    """

    def test_stale_host_is_error(self):
        """
        A stale value is the cluster's error with no budget.
        """
        res = results(VALUES)
        res[HOSTS[3]] = HostResult(0.6, None, NOW - 0.8)
        metric = run(res, freshness=0.5)
        self.assertIn("Metric is stale", metric.error)
        self.assertIn("h3:3306", metric.error)

    def test_stale_host_budgeted(self):
        """
        The ignore budget absorbs a stale host like any erroring host.
        """
        res = results(VALUES)
        res[HOSTS[1]] = HostResult(1.7, None, NOW - 0.8)
        self.assertEqual(run(res, count=1, freshness=0.5).value, 1.2)


class ReduceValuesTests(SynchronousTestCase):
    """
    Properties of L{reduce_values}.
    """

    @given(
        st.lists(st.floats(0, 1e6), min_size=1, max_size=20),
        st.integers(0, 25),
        st.floats(0, 1e6),
    )
    def test_properties(self, values, count, threshold):
        """
        At least one value is kept, at most C{count} are dropped, only the
        largest are dropped, and with a threshold nothing at or below it is.
        """
        kept, dropped = reduce_values(values, count, threshold)
        self.assertGreaterEqual(len(kept), 1)
        self.assertLessEqual(dropped, count)
        self.assertEqual(kept, sorted(values)[: len(kept)])
        if threshold > 0:
            for value in sorted(values)[len(kept):]:
                self.assertGreater(value, threshold)
