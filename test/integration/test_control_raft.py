"""
The control plane on real raft groups of L{RaftConsensusService} objects in
the trial reactor (L{test.integration.test_raft.Group}): audit ids assigned
on apply, identical on every member; the leader's replicated purge; the
audit log and policies in snapshots and across restarts.
"""

from __future__ import annotations

import time

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from freno.consensus.commands import AuditContext, SetPolicy
from test.integration.test_raft import FUTURE, Group, wait_for


def ctx(**params):
    return AuditContext(time.time(), "token:ops", "POST /api/v1/test", params, "raft")


def audit_of(service):
    return [(r.id, r.params) for r in service._state.audit.records]


class RaftControlTests(TestCase):
    """
    Three raft members in one reactor.
    """

    timeout = 60

    @inlineCallbacks
    def test_audit_identical_everywhere(self):
        """
        Commands through the leader and followers get consecutive audit ids,
        the same on every member, and answer them.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        followers = [s for s in group.services if s is not leader]
        answers = []
        for i in range(6):
            node = (leader, *followers)[i % 3]
            applied = yield node.throttle_app(f"a{i}", FUTURE, None, ctx(i=i))
            answers.append(applied.audit_id)
        self.assertEqual(answers, [1, 2, 3, 4, 5, 6])
        yield node.submit(SetPolicy("a0", "a0", None, 0.5, False, ctx(i=6)))
        yield wait_for(
            lambda: all(len(s._state.audit) == 7 for s in group.services), 5, "the log everywhere"
        )
        logs = [audit_of(s) for s in group.services]
        self.assertEqual(logs[0], logs[1])
        self.assertEqual(logs[0], logs[2])
        self.assertEqual([p["i"] for _, p in logs[0]], list(range(7)))
        for s in group.services:
            self.assertEqual(s.throttled_apps()["a3"].meta.audit_id, 4)
            self.assertEqual(s.policies()["a0"].threshold, 0.5)

    @inlineCallbacks
    def test_purge_replicated(self):
        """
        Expired throttles and skips disappear from every member's state
        through the leader's purge command; live ones stay.
        """
        group = Group(self, 3, purge_interval=0.3)
        group.start_all()
        leader = yield group.settled()
        follower = [s for s in group.services if s is not leader][0]
        yield follower.throttle_app("short", time.time() + 0.5, None, ctx())
        yield follower.skip_host("h-short", time.time() + 0.5, ctx())
        yield follower.throttle_app("long", FUTURE, None, ctx())
        yield wait_for(
            lambda: all(
                set(s.throttled_apps()) == {"long"} and not s.skipped_hosts() for s in group.services
            ),
            10, "the expired entries purged everywhere",
        )
        self.assertEqual(len(leader._state.audit), 3)

    @inlineCallbacks
    def test_restart_keeps_audit(self):
        """
        A member stopped and replaced (a restart) has the same audit log
        and policies, from its journal.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        for i in range(3):
            yield leader.skip_host(f"h{i}", FUTURE, ctx(i=i))
        yield leader.submit(SetPolicy("p", "p", None, 2.0, True, ctx(i=3)))
        follower = [s for s in group.services if s is not leader][0]
        yield wait_for(lambda: len(follower._state.audit) == 4, 5, "the log on the follower")
        index = group.services.index(follower)
        yield group.stop(index)
        fresh = group.replace(index)
        fresh.startService()
        yield wait_for(lambda: len(fresh._state.audit) == 4, 10, "the log after the restart")
        self.assertEqual(audit_of(fresh), audit_of(leader))
        self.assertTrue(fresh.policies()["p"].exempt)
        self.assertEqual(fresh._state.audit.next_id, 5)
