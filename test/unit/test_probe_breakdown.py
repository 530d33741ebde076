"""
Tests for L{freno.probe.breakdown}: each host's state, and that the
breakdown always tells the same story as L{aggregate} (which host decided,
which value or error), for any hosts, results and rules.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.hosts import HostKey
from freno.probe.aggregate import NO_HOSTS, NOT_COLLECTED, AggregationRules, HostResult, aggregate
from freno.probe.breakdown import (
    COUNTED,
    ERROR,
    FAILED,
    IGNORED,
    SKIPPED,
    STALE,
    breakdown,
)

NOW = 1000.0
HOSTS = [HostKey(f"h{i}", 3306) for i in range(6)]


def run(results, hosts=HOSTS, **kw):
    rules = AggregationRules(
        ignore_hosts_count=kw.pop("count", 0),
        ignore_hosts_threshold=kw.pop("threshold", 0.0),
        ignore_hosts=kw.pop("ignore_hosts", ()),
        ignore_dial_tcp_errors=kw.pop("dial", False),
    )
    args = (hosts, results, rules, NOW, 0.5)
    return aggregate(*args, **kw), breakdown(*args, **kw)


class StateTests(SynchronousTestCase):
    """
    Host states, one case each.
    """

    def test_deciding_host(self):
        """
        The largest value decides, and the aggregate names its host; of
        equal values the later host.
        """
        results = {h: HostResult(v, None, NOW) for h, v in zip(HOSTS, [0.1, 0.9, 0.3, 0.9, 0.2, 0.0])}
        metric, states = run(results)
        self.assertEqual((metric.value, metric.host), (0.9, HOSTS[3]))
        self.assertEqual({s.state for s in states}, {COUNTED})
        metric, _ = run(results, count=1)
        self.assertEqual((metric.value, metric.host), (0.9, HOSTS[1]))

    def test_every_exclusion(self):
        """
        IgnoreHosts, skips and HTTP 404s, in that order of precedence.
        """
        results = {h: HostResult(0.1, None, NOW) for h in HOSTS}
        _, states = run(
            results,
            ignore_hosts=("h0", "h1"),
            skipped_hosts={"h1": NOW + 5, "h2": NOW + 5, "h3": NOW - 1},
            http_not_found={HOSTS[2], HOSTS[4]},
        )
        self.assertEqual(
            [(s.state, s.why, s.skipped_until) for s in states],
            [
                (IGNORED, 'IgnoreHosts "h0"', None),
                (IGNORED, 'IgnoreHosts "h1"', None),
                (SKIPPED, None, NOW + 5),
                (COUNTED, None, None),
                (FAILED, "HTTP check answered 404", None),
                (COUNTED, None, None),
            ],
        )

    def test_errors(self):
        """
        Errors absorbed by the budget are ignored with their error; the first
        one not absorbed is the cluster's; later ones are still described.
        """
        results = {h: HostResult(0.1, None, NOW) for h in HOSTS}
        results[HOSTS[1]] = HostResult(0.0, "boom 1", NOW)
        results[HOSTS[2]] = HostResult(0.5, None, NOW - 0.6)
        results[HOSTS[4]] = HostResult(0.0, "boom 4", NOW)
        del results[HOSTS[5]]
        metric, states = run(results, count=1)
        self.assertEqual((metric.error, metric.host), (states[2].error, HOSTS[2]))
        self.assertEqual(
            [(s.state, s.value) for s in states],
            [(COUNTED, 0.1), (IGNORED, None), (STALE, 0.5), (COUNTED, 0.1), (ERROR, None), (ERROR, None)],
        )
        self.assertEqual(states[1].why, "IgnoreHostsCount 1 (absorbed its error)")
        self.assertEqual(states[1].error, "boom 1")
        self.assertEqual(states[5].error, NOT_COLLECTED)


def _result(draw_value, draw_error, draw_age, dial):
    return HostResult(draw_value, draw_error, NOW - draw_age, dial)


results_strategy = st.dictionaries(
    st.sampled_from(HOSTS),
    st.builds(
        _result,
        st.floats(min_value=0, max_value=20, allow_nan=False),
        st.one_of(st.none(), st.sampled_from(["boom", "dial tcp x: refused"])),
        st.sampled_from([0.0, 0.1, 0.6]),
        st.booleans(),
    ),
)


class AgreementTests(SynchronousTestCase):
    """
    The breakdown and the aggregate agree, whatever the inputs.
    """

    @settings(max_examples=400)
    @given(
        results_strategy,
        st.integers(min_value=0, max_value=4),
        st.sampled_from([0.0, 1.0, 5.0]),
        st.lists(st.sampled_from(["h1", "h4:3306", "h9"]), max_size=2),
        st.booleans(),
        st.frozensets(st.sampled_from([h.hostname for h in HOSTS])),
        st.frozensets(st.sampled_from(HOSTS)),
    )
    def test_agree(self, results, count, threshold, ignore, dial, skipped, not_found):
        """
        A value: its host is counted, with that value, the largest counted
        (later host on ties). An error: the first host in error or stale is
        its host, with its error. No hosts: none counted, none in error.
        """
        metric, states = run(
            results, count=count, threshold=threshold, ignore_hosts=tuple(ignore), dial=dial,
            skipped_hosts={name: NOW + 1 for name in skipped}, http_not_found=not_found,
        )
        self.assertEqual([s.host for s in states], HOSTS)
        counted = [s for s in states if s.state == COUNTED]
        failing = [s for s in states if s.state in (ERROR, STALE)]
        if metric.error is None:
            self.assertEqual(failing, [])
            decider = [s for s in states if s.host == metric.host]
            self.assertEqual(len(decider), 1)
            self.assertEqual((decider[0].state, decider[0].value), (COUNTED, metric.value))
            self.assertEqual(max(s.value for s in counted), metric.value)
            later = [s for s in counted if s.value == metric.value]
            self.assertEqual(later[-1].host, metric.host)
        elif metric.error == NO_HOSTS:
            self.assertEqual((counted, failing, metric.host), ([], [], None))
        else:
            self.assertEqual((failing[0].host, failing[0].error), (metric.host, metric.error))
