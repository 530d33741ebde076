"""
Tests for the control-plane parts of the replicated state: audit contexts on
commands (L{freno.consensus.commands}), the audit log
(L{freno.consensus.audit}), policies, limits, the replicated purge and
snapshots (L{freno.consensus.state}).
"""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.audit import APPLIED, Applied, AuditLog, AuditPage, EntryMeta
from freno.consensus.commands import (
    MAX_PARAMS_LENGTH,
    AuditContext,
    InvalidCommand,
    PurgeExpired,
    RecoverHost,
    RemovePolicy,
    SetPolicy,
    SkipHost,
    ThrottleApp,
    UnthrottleApp,
    command_from_dict,
    command_to_dict,
    validate,
)
from freno.consensus.state import (
    MAX_ENTRIES,
    AppThrottle,
    Policy,
    ThrottleState,
    limit_problem,
)


def ctx(t=100.0, actor="token:ops", route="POST /api/v1/throttles", reason=None, **params):
    """
    An audit context.
    """
    return AuditContext(t, actor, route, params, reason)


class AuditLogTests(SynchronousTestCase):
    """
    L{AuditLog}: consecutive ids, a bounded tail, pages.
    """

    def test_ids_and_bound(self):
        """
        Ids count from 1; only the last C{size} records are kept, the next id
        keeps counting.
        """
        log = AuditLog(3)
        for i in range(5):
            log.append(float(i), "a", "r", {}, None, APPLIED)
        self.assertEqual([r.id for r in log.records], [3, 4, 5])
        self.assertEqual(log.next_id, 6)
        self.assertEqual(log.oldest, 3)

    def test_pages(self):
        """
        A page holds the records after C{since}, at most C{limit}; C{next}
        is the last id returned, or C{since} when none.
        """
        log = AuditLog(10)
        for i in range(7):
            log.append(float(i), "a", "r", {}, None, APPLIED)
        page = log.page(2, 3)
        self.assertEqual([r.id for r in page.records], [3, 4, 5])
        self.assertEqual((page.next, page.oldest), (5, 1))
        page = log.page(5, 100)
        self.assertEqual([r.id for r in page.records], [6, 7])
        self.assertEqual(log.page(7, 10), AuditPage((), 7, 1))
        self.assertEqual(log.page(100, 10), AuditPage((), 100, 1))
        self.assertEqual(AuditLog().page(0, 10), AuditPage((), 0, None))

    @settings(deadline=None)
    @given(
        st.integers(1, 20), st.integers(0, 40), st.integers(0, 45), st.integers(1, 30)
    )
    def test_pages_any(self, size, count, since, limit):
        """
        Paging from 0 to the end returns every kept record once, in order.
        """
        log = AuditLog(size)
        for i in range(count):
            log.append(float(i), "a", "r", {"i": i}, None, APPLIED)
        page = log.page(since, limit)
        expected = [r for r in log.records if r.id > since][:limit]
        self.assertEqual(list(page.records), expected)
        seen, cursor = [], 0
        while True:
            page = log.page(cursor, limit)
            if not page.records:
                break
            seen.extend(page.records)
            cursor = page.next
        self.assertEqual(seen, list(log.records))

    def test_snapshot_round_trip(self):
        """
        A snapshot restores the records and the next id; a smaller log keeps
        only the newest.
        """
        log = AuditLog(10)
        for i in range(4):
            log.append(float(i), "a", "r", {"k": [i]}, "why", APPLIED)
        copy = AuditLog(10)
        copy.restore(json.loads(json.dumps(log.snapshot())))
        self.assertEqual(copy, log)
        small = AuditLog(2)
        small.restore(log.snapshot())
        self.assertEqual([r.id for r in small.records], [3, 4])
        self.assertEqual(small.next_id, 5)
        empty = AuditLog(2)
        empty.restore(None)
        self.assertEqual((len(empty), empty.next_id), (0, 1))


class CommandTests(SynchronousTestCase):
    """
    Audit contexts and policy commands: validation and the dict form.
    """

    def test_context_round_trip(self):
        """
        A command's context survives its dict form; a command without one
        keeps freno's plain form.
        """
        command = ThrottleApp("a", 5.0, 0.5, ctx(reason="deploy", app="a", ttl="1h"))
        data = json.loads(json.dumps(command_to_dict(command)))
        self.assertEqual(command_from_dict(data), command)
        self.assertNotIn("context", command_to_dict(ThrottleApp("a", None, None)))
        for command in (
            SetPolicy("a/s", "a", "s", 0.5, True, ctx()),
            RemovePolicy("a", ctx()),
            PurgeExpired(12.5),
            RecoverHost("h", ctx()),
        ):
            self.assertEqual(command_from_dict(command_to_dict(command)), command)

    def test_malformed_context(self):
        """
        A context that is not an object, or has unknown fields, is refused.
        """
        self.assertRaises(ValueError, command_from_dict, {"op": "unthrottle", "key": "a", "context": 3})
        self.assertRaises(
            ValueError, command_from_dict, {"op": "unthrottle", "key": "a", "context": {"x": 1}}
        )

    def test_validation(self):
        """
        Bad contexts and policies are refused naming the field.
        """
        cases = [
            (UnthrottleApp("a", ctx(t=float("nan"))), "time"),
            (UnthrottleApp("a", AuditContext(1.0, 5, "r")), "actor"),
            (UnthrottleApp("a", AuditContext(1.0, "a", "r", {}, "x" * 2000)), "reason"),
            (UnthrottleApp("a", AuditContext(1.0, "a", "r", {"x": "y" * MAX_PARAMS_LENGTH})), "params"),
            (UnthrottleApp("a", AuditContext(1.0, "a", "r", {"x": object()})), "params"),
            (UnthrottleApp("a", AuditContext(1.0, "a", "r", {"x": float("inf")})), "params"),
            (SetPolicy("a", "a", None, 0.0), "threshold"),
            (SetPolicy("a", "a", None, float("inf")), "threshold"),
            (SetPolicy("a", "a", None, True), "threshold"),
            (SetPolicy("b", "a", None, 1.0), "key"),
            (SetPolicy("a/", "a", "", 1.0), "store"),
            (SetPolicy("a", "a", None, 1.0, "yes"), "exempt"),
            (RemovePolicy(""), "app"),
            (PurgeExpired(float("inf")), "now"),
        ]
        for command, field in cases:
            e = self.assertRaises(InvalidCommand, validate, command)
            self.assertEqual(e.parameter, field, command)
        validate(SetPolicy("a/s", "a", "s", None, False, ctx()))


class ApplyTests(SynchronousTestCase):
    """
    Applying audited commands: the mutation and its record together.
    """

    def test_records_and_meta(self):
        """
        Each audited command gets the next id; the entry it sets remembers
        the id, actor and reason; unaudited commands leave no record.
        """
        state = ThrottleState()
        self.assertEqual(
            state.apply(ThrottleApp("a", None, 0.5, ctx(reason="incident 7"))), Applied(1)
        )
        self.assertEqual(state.apps["a"].meta, EntryMeta(1, "token:ops", "incident 7"))
        self.assertEqual(state.apply(ThrottleApp("b", None, None)), Applied())
        self.assertIsNone(state.apps["b"].meta)
        self.assertEqual(state.apply(SkipHost("h", 500.0, ctx(actor="remote:1.2.3.4"))), Applied(2))
        self.assertEqual(state.skip_meta["h"], EntryMeta(2, "remote:1.2.3.4", None))
        self.assertEqual(state.apply(RecoverHost("h", ctx())), Applied(3))
        self.assertNotIn("h", state.skip_meta)
        state.apply(SetPolicy("a/main", "a", "main", 0.5, False, ctx()))
        self.assertEqual(state.policies["a/main"], Policy("a", "main", 0.5, False))
        self.assertEqual(state.policies["a/main"].meta.audit_id, 4)
        state.apply(RemovePolicy("a/main", ctx()))
        self.assertEqual(state.policies, {})
        self.assertEqual([r.id for r in state.audit.records], [1, 2, 3, 4, 5])
        self.assertEqual({r.outcome for r in state.audit.records}, {APPLIED})
        # A ratio-only update without context keeps the entry's meta.
        state.apply(ThrottleApp("a", None, 0.25))
        self.assertEqual(state.apps["a"].meta.audit_id, 1)

    def test_removing_absent_is_still_audited(self):
        """
        A committed command that changes nothing is still recorded (the HTTP
        layer does not send one for an absent key).
        """
        state = ThrottleState()
        self.assertEqual(state.apply(UnthrottleApp("nobody", ctx())), Applied(1))
        self.assertEqual(state.audit.records[0].outcome, APPLIED)

    def test_limits(self):
        """
        A command adding an entry to a full table is refused and recorded as
        refused; updates of present entries pass; expired entries are dropped
        first (at the command's own time), so they hold no slot.
        """
        state = ThrottleState()
        for i in range(MAX_ENTRIES):
            state.apps[f"a{i}"] = AppThrottle(None, 1.0)
        before = dict(state.apps)
        applied = state.apply(ThrottleApp("new", None, None, ctx()))
        self.assertEqual(applied.audit_id, 1)
        self.assertEqual(applied.field, "app")
        self.assertIn("at most 10000 throttled apps at a time; unthrottle some first", applied.refused)
        self.assertEqual(state.apps, before)
        self.assertTrue(state.audit.records[-1].outcome.startswith("refused: "))
        self.assertEqual(state.apply(ThrottleApp("a1", None, 0.5, ctx())).refused, None)
        # An expired throttle (acts as an unthrottle) is never refused.
        self.assertIsNone(state.apply(ThrottleApp("new", 50.0, None, ctx(t=100.0))).refused)
        del state.apps["new"]
        state.apps["a0"] = AppThrottle(99.0, 1.0)  # expired at t=100
        self.assertIsNone(state.apply(ThrottleApp("new", None, None, ctx(t=100.0))).refused)
        self.assertFalse("a0" in state.apps, "the expired entry was not purged")
        self.assertTrue("new" in state.apps)
        self.assertEqual(len(state.apps), MAX_ENTRIES)
        # Unaudited commands (a mirror of the MySQL tables) are never refused.
        state.apply(ThrottleApp("mirror", None, None))
        self.assertIn("mirror", state.apps)

    def test_skip_and_policy_limits(self):
        """
        Skips and policies have their own limits, naming their field.
        """
        state = ThrottleState()
        state.skipped = {f"h{i}": 1e9 for i in range(MAX_ENTRIES)}
        applied = state.apply(SkipHost("new", 2e9, ctx()))
        self.assertEqual((applied.field, "new" in state.skipped), ("host", False))
        state.policies = {f"p{i}": Policy(f"p{i}", None, 1.0) for i in range(MAX_ENTRIES)}
        applied = state.apply(SetPolicy("new", "new", None, 1.0, False, ctx()))
        self.assertEqual((applied.field, "new" in state.policies), ("app", False))
        self.assertIsNone(state.apply(SetPolicy("p1", "p1", None, 0.5, False, ctx())).refused)

    def test_limit_problem(self):
        """
        L{limit_problem} is what the HTTP layer asks before sending.
        """
        state = ThrottleState()
        self.assertIsNone(limit_problem(state, ThrottleApp("a", None, None), 0.0))
        state.apps = {f"a{i}": AppThrottle(None, 1.0) for i in range(MAX_ENTRIES)}
        field, message = limit_problem(state, ThrottleApp("b", None, None), 0.0)
        self.assertEqual(field, "app")
        self.assertIsNone(limit_problem(state, UnthrottleApp("b"), 0.0))


def contexts():
    return st.builds(
        AuditContext,
        st.floats(0, 1000),
        st.sampled_from(["token:ops", "remote:10.0.0.1"]),
        st.sampled_from(["POST /api/v1/throttles", "GET /skip-host/h1"]),
        st.fixed_dictionaries({"n": st.integers(0, 5)}),
        st.one_of(st.none(), st.text(max_size=5)),
    )


apps = st.sampled_from(["a", "b", "a/main"])
hosts = st.sampled_from(["h1", "h2"])
audited = st.one_of(
    st.builds(ThrottleApp, apps, st.one_of(st.none(), st.floats(0, 1000)),
              st.one_of(st.none(), st.floats(0, 1)), st.one_of(st.none(), contexts())),
    st.builds(UnthrottleApp, apps, st.one_of(st.none(), contexts())),
    st.builds(SkipHost, hosts, st.floats(0, 1000), st.one_of(st.none(), contexts())),
    st.builds(RecoverHost, hosts, st.one_of(st.none(), contexts())),
    st.builds(
        lambda app, store, t, e, c: SetPolicy(f"{app}/{store}" if store else app, app, store, t, e, c),
        st.sampled_from(["a", "b"]), st.sampled_from([None, "main"]),
        st.one_of(st.none(), st.floats(0.01, 10)), st.booleans(), st.one_of(st.none(), contexts()),
    ),
    st.builds(RemovePolicy, st.sampled_from(["a", "b/main"]), st.one_of(st.none(), contexts())),
    st.builds(PurgeExpired, st.floats(0, 1000)),
)


class DeterminismTests(SynchronousTestCase):
    """
    Every node applying the same log reaches the same state, audit log and
    answers included; snapshots hold all of it.
    """

    @settings(max_examples=60, deadline=None)
    @given(st.lists(audited, max_size=40), st.integers(1, 10))
    def test_replay_and_snapshot(self, log, size):
        """
        Two states applying the same (journaled) log agree exactly; a state
        restored from a snapshot of one of them takes the rest of the log to
        the same end.
        """
        first = ThrottleState(audit=AuditLog(size))
        second = ThrottleState(audit=AuditLog(size))
        half = len(log) // 2
        answers = [first.apply(c) for c in log]
        journal = [json.loads(json.dumps(command_to_dict(c))) for c in log]
        self.assertEqual([second.apply(command_from_dict(d)) for d in journal], answers)
        self.assertEqual(first.snapshot(), second.snapshot())

        third = ThrottleState(audit=AuditLog(size))
        for command in log[:half]:
            third.apply(command)
        restored = ThrottleState(audit=AuditLog(size))
        restored.apply(ThrottleApp("stale", None, None))
        restored.restore(json.loads(json.dumps(third.snapshot())))
        for command in log[half:]:
            restored.apply(command)
        self.assertEqual(restored.snapshot(), first.snapshot())
        self.assertEqual(restored, first)

    def test_purge_is_a_command(self):
        """
        C{PurgeExpired(now)} drops exactly what expired at C{now}, whatever
        the applying node's clock; permanent entries stay.
        """
        state = ThrottleState()
        state.apply(ThrottleApp("old", 10.0, None, ctx()))
        state.apply(ThrottleApp("new", 30.0, None, ctx()))
        state.apply(ThrottleApp("forever", None, None, ctx()))
        state.apply(SkipHost("h-old", 10.0, ctx()))
        state.apply(SkipHost("h-new", 30.0, ctx()))
        self.assertTrue(state.expired(20.0))
        self.assertEqual(state.apply(PurgeExpired(20.0)), Applied())
        self.assertEqual(set(state.apps), {"new", "forever"})
        self.assertEqual(set(state.skipped), {"h-new"})
        self.assertEqual(set(state.skip_meta), {"h-new"})
        self.assertFalse(state.expired(20.0))
        self.assertEqual(len(state.audit), 5)  # purges are not audited

    def test_old_snapshot_restores(self):
        """
        A snapshot written before audit and policies existed restores with
        an empty audit log and no policies.
        """
        state = ThrottleState()
        state.restore({"throttledApps": {"a": {"ExpireAt": None, "Ratio": 0.5}}, "skippedHosts": {"h": 5.0}})
        self.assertEqual(state.apps, {"a": AppThrottle(None, 0.5)})
        self.assertEqual((state.policies, len(state.audit), state.audit.next_id), ({}, 0, 1))
        self.assertEqual(state.apply(UnthrottleApp("a", ctx())), Applied(1))
