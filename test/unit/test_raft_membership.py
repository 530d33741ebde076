"""
Tests for the raft membership (L{freno.consensus.raft.membership}: entries
and their derivation; L{freno.consensus.raft.members_machine}: what a real
L{ThrottleMachine} makes of them, on a memory disk with a scripted network;
L{freno.consensus.raft.changes}: the refusals of the service).
"""

from __future__ import annotations

import os
import pickle

from pysyncobj import FAIL_REASON
from pysyncobj.monotonic import monotonic
from pysyncobj.node import TCPNode
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.config.model import Config
from freno.consensus.audit import Applied
from freno.consensus.commands import AuditContext, InvalidCommand
from freno.consensus.membership import (
    ALREADY_MEMBER,
    CHANGE_IN_PROGRESS,
    IS_LEADER,
    LEARNER_NOT_READY,
    NOT_LEADER,
    NOT_MEMBER,
    UNSUPPORTED,
    FakeMembership,
    IMembership,
    MembershipRefused,
    check_member_address,
)
from freno.consensus.raft.machine import RESTART_HOLD, ThrottleMachine, raft_settings
from freno.consensus.raft.memorydisk import MemoryDirectory
from freno.consensus.raft.membership import (
    ADD,
    REMOVE,
    Membership,
    MembershipChange,
    bootstrap_members,
    encode_change,
    fold,
    parse_change,
)
from freno.consensus.raft.poller import ReactorPoller
from freno.consensus.raft.service import RaftConsensusService
from freno.consensus.raft.snapshot import DUMP_NAME, SnapshotFile
from freno.consensus.raft.transport import HoldUntilSynced
from freno.consensus.state import ThrottleState
from test.unit.test_raft_durability import Wire, append
from test.unit.test_raft_poller import FakeFDSet

SELF, A, B, D = "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"
NO_OP = b"\x01"
CONTEXT = {"time": 5.0, "actor": "token:ops", "route": "POST /api/v1/members", "params": {"address": D}, "reason": "grow"}


def S(*members):
    """
    Members in the order the derivation gives them (sorted).
    """
    return tuple(sorted(members))


def entry(change: MembershipChange) -> bytes:
    """
    The log entry pysyncobj writes for C{change}.
    """
    return b"\x02" + encode_change(change)


class EntryTests(SynchronousTestCase):
    """
    Membership entries, written and read.
    """

    def test_round_trip(self):
        """
        An entry carries its kind, address, the complete member list and
        the audit context.
        """
        change = MembershipChange(ADD, D, (A, B, D, SELF), CONTEXT)
        self.assertEqual(parse_change(entry(change)), change)

    def test_pysyncobj_reads_it(self):
        """
        pysyncobj reads the first three items: the kind, the node id, and
        the node as a string it turns into a C{TCPNode}.
        """
        request = pickle.loads(encode_change(MembershipChange(REMOVE, A, (B, SELF))))
        self.assertEqual(request[:3], ["rem", A, A])

    def test_pysyncobj_entry(self):
        """
        An entry pysyncobj wrote itself (a pickled C{TCPNode}) is read too,
        without a member list.
        """
        command = b"\x02" + pickle.dumps(["add", D, TCPNode(D)], protocol=2)
        self.assertEqual(parse_change(command), MembershipChange(ADD, D))

    def test_refuses_other_classes(self):
        """
        An entry whose pickle names any other class is not read (and so
        never builds it).
        """
        command = b"\x02" + pickle.dumps(["add", D, Config()], protocol=2)
        self.assertIsNone(parse_change(command))

    def test_not_a_change(self):
        """
        Other entries, and garbage, are not changes.
        """
        for command in (NO_OP, b"\x00abc", b"\x02not a pickle", b""):
            self.assertIsNone(parse_change(command))

    def test_fold(self):
        """
        A change with a member list sets it; one without adds or removes.
        """
        self.assertEqual(fold((A, B), [MembershipChange(ADD, D)]), S(A, B, D))
        self.assertEqual(fold((A, B), [MembershipChange(ADD, A)]), S(A, B))
        self.assertEqual(fold((A, B), [MembershipChange(REMOVE, A)]), (B,))
        self.assertEqual(fold((A, B), [MembershipChange(ADD, D, (B, D))]), S(B, D))

    def test_bootstrap(self):
        """
        The bootstrap list is RaftNodes, stripped and de-duplicated (a
        joiner's address is simply not in it), or this node alone.
        """
        self.assertEqual(bootstrap_members([A, " B:1 ", A, ""], A), (A, "B:1"))
        self.assertEqual(bootstrap_members([], A), (A,))

    def test_check_address(self):
        """
        Member addresses are C{host:port}.
        """
        self.assertEqual(check_member_address(" h:1 "), "h:1")
        for bad in ("", "h", "h:0", "h:x", ":1", None, 5, "a b:1", "h:" + "1" * 2000):
            self.assertRaises(InvalidCommand, check_member_address, bad)


class MembershipTests(SynchronousTestCase):
    """
    L{Membership}: the members a log and a snapshot say.
    """

    def setUp(self):
        self.log = [(NO_OP, 1, 0)]
        self.members = Membership(self.log, (SELF, A, B))

    def add(self, index, change):
        self.log.append((entry(change), index, 1))

    def test_bootstrap(self):
        """
        Without entries, the bootstrap list.
        """
        self.assertEqual(self.members.current(), S(A, B, SELF))
        self.assertIsNone(self.members.pending(1))

    def test_log_wins_over_bootstrap(self):
        """
        Every entry counts, committed or not; C{at} and C{pending} tell
        them apart.
        """
        self.add(2, MembershipChange(ADD, D, (A, B, D, SELF)))
        self.add(3, MembershipChange(REMOVE, A, (B, D, SELF)))
        self.assertEqual(self.members.current(), S(B, D, SELF))
        self.assertEqual(self.members.at(2), S(A, B, D, SELF))
        self.assertEqual(self.members.at(1), S(A, B, SELF))
        self.assertEqual(self.members.pending(2)[0], 3)
        self.assertIsNone(self.members.pending(3))

    def test_truncation(self):
        """
        An entry cut from the log (a leader change) no longer counts.
        """
        self.add(2, MembershipChange(ADD, D, (A, B, D, SELF)))
        self.assertIn(D, self.members.current())
        del self.log[1:]
        self.log.append((NO_OP, 2, 2))
        self.assertNotIn(D, self.members.current())

    def test_snapshot_base(self):
        """
        A snapshot's members replace the bootstrap list, and entries up to
        it no longer count.
        """
        self.add(2, MembershipChange(REMOVE, A, (B, SELF)))
        self.members.set_base(5, (B, D, SELF))
        self.assertEqual(self.members.current(), S(B, D, SELF))
        self.assertEqual(self.members.base, (5, S(B, D, SELF)))


class Machines(SynchronousTestCase):
    """
    Real machines on memory disks with a scripted network.
    """

    def machine(self, disk, bootstrap, self_address=SELF) -> ThrottleMachine:
        poller = ReactorPoller(FakeFDSet(), lambda: None)
        data_dir = os.path.abspath(self.mktemp())
        transport = type("Net", (HoldUntilSynced, NamedWire), {"disk": disk})
        machine = ThrottleMachine(
            self_address,
            [],
            raft_settings(data_dir, None, None),
            poller,
            ThrottleState(),
            transport_class=transport,
            directory=disk,
            bootstrap=bootstrap,
        )
        self.addCleanup(poller.close)
        self.addCleanup(machine.close_leftovers)
        self.addCleanup(machine.destroy)
        return machine

    def follow(self, machine, entries, commit):
        """
        Leader C{A} sends C{entries} (after the no-op at index 1) and the
        commit index.
        """
        machine._SyncObj__transport.deliver(A, append(1, (1, 0), entries, commit))
        machine.doTick(0.0)


class NamedWire(Wire):
    """
    L{Wire} for a learner too (no self node).
    """

    def __init__(self, syncObj, selfNode, otherNodes) -> None:
        super(Wire, self).__init__(syncObj, selfNode, otherNodes)
        self.self_id = selfNode.id if selfNode is not None else "learner"
        self.sent = []
        self.broken = []


class MachineTests(Machines):
    """
    What L{ThrottleMachine} makes of membership entries.
    """

    def test_follower_applies_and_audits(self):
        """
        A follower changes its members when the entry arrives, and records
        the audit context when it is applied.
        """
        disk = MemoryDirectory()
        machine = self.machine(disk, (SELF, A, B))
        added = MembershipChange(ADD, D, (A, B, D, SELF), CONTEXT)
        self.follow(machine, [(entry(added), 2, 1)], 1)
        self.assertEqual({n.id for n in machine.otherNodes}, {A, B, D})
        self.assertEqual(len(machine._state.audit), 0)
        self.follow(machine, [(entry(added), 2, 1)], 2)
        record = machine._state.audit.records[0]
        self.assertEqual((record.actor, record.route, record.reason), ("token:ops", "POST /api/v1/members", "grow"))
        self.assertEqual(machine.committed_members(), S(A, B, D, SELF))

    def test_restart_follows_the_log(self):
        """
        A member restarted with a stale bootstrap list (its configuration
        file) runs with the members its log holds.
        """
        disk = MemoryDirectory()
        machine = self.machine(disk, (SELF, A, B))
        change = MembershipChange(REMOVE, B, (A, SELF))
        self.follow(machine, [(entry(change), 2, 1)], 2)
        machine.destroy()
        again = self.machine(disk, (SELF, A, B))
        self.assertEqual({n.id for n in again.otherNodes}, {A})
        self.assertEqual(again.membership.current(), S(A, SELF))
        self.assertFalse(again.is_learner)

    def test_restart_holds_the_first_election(self):
        """
        A member restarted with a term on disk waits L{RESTART_HOLD} beyond
        its election timeout before it first stands, so that a live leader
        reaches it first (D87); a member that never was in a group does
        not wait.
        """
        disk = MemoryDirectory()
        fresh = self.machine(disk, (SELF, A, B))
        self.assertEqual(fresh.raftCurrentTerm, 0)
        self.assertFalse(fresh.hold_first_election_after_restart())
        self.follow(fresh, [], 1)  # heard from leader A in term 1
        self.assertEqual(fresh.raftCurrentTerm, 1)
        fresh.destroy()
        again = self.machine(disk, (SELF, A, B))
        before = again._SyncObj__raftElectionDeadline
        self.assertTrue(again.hold_first_election_after_restart())
        held = again._SyncObj__raftElectionDeadline
        self.assertGreaterEqual(held - before, RESTART_HOLD - 0.05)
        self.assertGreaterEqual(held - monotonic(), RESTART_HOLD - 0.05)

    def test_learner(self):
        """
        A node its log does not list runs as a learner (no self node, no
        vote) until the change adding it is committed in its log.
        """
        disk = MemoryDirectory()
        learner = self.machine(disk, (A, B), self_address=D)
        self.assertTrue(learner.is_learner)
        self.assertIsNone(learner.selfNode)
        added = MembershipChange(ADD, D, (A, B, D))
        self.follow(learner, [(entry(added), 2, 1)], 1)
        self.assertNotIn(D, learner.committed_members())
        self.follow(learner, [(entry(added), 2, 1)], 2)
        self.assertIn(D, learner.committed_members())
        learner.destroy()
        member = self.machine(disk, (A, B), self_address=D)
        self.assertFalse(member.is_learner)
        self.assertEqual(member.selfNode.id, D)
        self.assertEqual({n.id for n in member.otherNodes}, {A, B})

    def test_snapshot_records_members_as_of_its_end(self):
        """
        A snapshot records the members as of its last entry, not the
        uncommitted change after it; loading it sets the base.
        """
        disk = MemoryDirectory()
        machine = self.machine(disk, (SELF, A, B))
        self.follow(machine, [(NO_OP, 2, 1), (NO_OP, 3, 1), (entry(MembershipChange(ADD, D, (A, B, D, SELF))), 4, 1)], 3)
        machine.forceLogCompaction()
        machine.doTick(0.0)
        parsed = SnapshotFile.parse(bytes(disk.files[DUMP_NAME]))
        self.assertEqual(parsed.members, S(A, B, SELF))
        self.assertEqual(machine.membership.current(), S(A, B, D, SELF))

    def test_utility_changes_refused(self):
        """
        pysyncobj's C{add}/C{remove} utility messages on the raft port are
        refused: members change only through the API.
        """
        machine = self.machine(MemoryDirectory(), (SELF, A, B))
        answers = []
        callbacks = machine._SyncObj__transport._onUtilityMessageCallbacks
        callbacks["add"]([D], lambda res, err: answers.append(err))
        callbacks["remove"]([A], lambda res, err: answers.append(err))
        self.assertEqual(answers, [FAIL_REASON.REQUEST_DENIED] * 2)
        self.assertEqual({n.id for n in machine.otherNodes}, {A, B})

    def test_apply_without_context(self):
        """
        A change without an audit context (pysyncobj's own format) is
        applied and not audited.
        """
        machine = self.machine(MemoryDirectory(), (SELF, A, B))
        result = machine._SyncObj__doApplyCommand(b"\x02" + pickle.dumps(["add", D, TCPNode(D)], protocol=2))
        self.assertEqual(result, Applied())


class ServiceRefusalTests(SynchronousTestCase):
    """
    The service refuses changes it cannot make, before anything is sent.
    """

    def service(self, nodes=(SELF, A, B)) -> RaftConsensusService:
        config = Config(
            raft_bind=SELF,
            raft_nodes=tuple(nodes),
            raft_data_dir=os.path.abspath(self.mktemp()),
            raft_password="secret-secret-secret" if len(nodes) > 1 else "",
        )
        return RaftConsensusService(Clock(), config)

    def refused(self, d, code):
        error = self.failureResultOf(d, MembershipRefused).value
        self.assertEqual(error.code, code)
        return error

    def test_interface(self):
        """
        The raft service provides L{IMembership}.
        """
        self.assertTrue(IMembership.implementedBy(RaftConsensusService))

    def test_not_running(self):
        """
        A stopped or single-node service refuses with C{unsupported}; a bad
        address is refused first.
        """
        service = self.service()
        self.refused(service.add_member(D), UNSUPPORTED)
        self.failureResultOf(service.add_member("nope"), InvalidCommand)
        self.refused(self.service(nodes=()).remove_member(A), UNSUPPORTED)


class FakeTests(SynchronousTestCase):
    """
    L{FakeMembership} behaves as the interface says.
    """

    def test_verify(self):
        """
        It provides L{IMembership}.
        """
        verifyObject(IMembership, FakeMembership())

    def test_changes_and_refusals(self):
        """
        Adds need a learner, removals a member other than the leader; a
        follower refuses, naming the leader.
        """
        fake = FakeMembership()
        context = AuditContext(1.0, "a", "r")
        self.assertEqual(
            self.failureResultOf(fake.add_member("n4:1"), MembershipRefused).value.code, LEARNER_NOT_READY
        )
        fake.learners.add("n4:1")
        self.assertEqual(self.successResultOf(fake.add_member("n4:1", context)), Applied(1))
        self.assertEqual(self.failureResultOf(fake.add_member("n4:1"), MembershipRefused).value.code, ALREADY_MEMBER)
        self.assertEqual(self.failureResultOf(fake.remove_member("n1:10008"), MembershipRefused).value.code, IS_LEADER)
        self.assertEqual(self.failureResultOf(fake.remove_member("zz:1"), MembershipRefused).value.status, 404)
        self.assertEqual(self.failureResultOf(fake.remove_member("zz:1"), MembershipRefused).value.code, NOT_MEMBER)
        fake.pending = "add x:1"
        self.assertEqual(
            self.failureResultOf(fake.remove_member("n2:10008"), MembershipRefused).value.code, CHANGE_IN_PROGRESS
        )
        fake.pending = None
        fake.leader = "n2:10008"
        error = self.failureResultOf(fake.remove_member("n3:10008"), MembershipRefused).value
        self.assertEqual((error.code, error.leader), (NOT_LEADER, "n2:10008"))


class StubMachine:
    """
    What L{freno.consensus.raft.changes} asks of a running machine: a
    leader with the given members, learners and commit index.
    """

    def __init__(self, members=(SELF, A, B), leader=True) -> None:
        self.membership = Membership([(NO_OP, 1, 0)], members)
        self.leader = leader
        self.raftCommitIndex = 7
        self.learner_matches = {}
        self.submitted = []
        self.pending = None
        self.selfNode = TCPNode(SELF)
        self.otherNodes = {TCPNode(m) for m in members if m != SELF}
        self.is_learner = False
        self.adopted = []

    def has_majority_lease(self):
        return self.leader

    def _getLeader(self):
        return self.selfNode if self.leader else TCPNode(A)

    def isNodeConnected(self, node):
        return True

    def pending_change(self):
        return self.pending

    def learner_match(self, address):
        return self.learner_matches.get(address)

    def learners(self):
        return sorted(self.learner_matches.items())

    def submit_change(self, change, callback):
        self.submitted.append((change, callback))

    def adopt_learner_progress(self, address):
        self.adopted.append(address)


class ChangeTests(SynchronousTestCase):
    """
    The leader's side of a change (L{freno.consensus.raft.changes}), on a
    service whose machine is a stub and whose clock is a L{Clock}.
    """

    def setUp(self):
        self.clock = Clock()
        config = Config(
            raft_bind=SELF,
            raft_nodes=(SELF, A, B),
            raft_data_dir=os.path.abspath(self.mktemp()),
            raft_password="secret-secret-secret",
        )
        self.service = RaftConsensusService(self.clock, config)
        self.machine = self.service._machine = StubMachine()
        self.service._schedule_tick = lambda: None  # no pysyncobj to tick
        self.context = AuditContext(5.0, "token:ops", "POST /api/v1/members", {"address": D}, "grow")

    def refused(self, d, code):
        error = self.failureResultOf(d, MembershipRefused).value
        self.assertEqual(error.code, code)
        return error

    def test_add_waits_for_the_learner(self):
        """
        The change is submitted only once the learner's log matches the
        commit index of the request's time, with the complete member list
        and the audit context; the answer comes with the commit.
        """
        self.machine.learner_matches[D] = 3
        d = self.service.add_member(D, self.context)
        self.assertNoResult(d)
        self.assertEqual(self.machine.submitted, [])
        self.assertEqual(self.service.membership().pending, f"add {D}")
        self.refused(self.service.remove_member(A), CHANGE_IN_PROGRESS)
        self.machine.learner_matches[D] = 7
        self.clock.advance(0.01)
        change, callback = self.machine.submitted[0]
        self.assertEqual(change, MembershipChange(ADD, D, S(SELF, A, B, D), change.context))
        self.assertEqual(change.context["actor"], "token:ops")
        self.assertNoResult(d)
        callback(Applied(9), FAIL_REASON.SUCCESS)
        self.assertEqual(self.successResultOf(d), Applied(9))
        self.assertEqual(self.machine.adopted, [D])
        self.assertIsNone(self.service.membership().pending)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_no_learner(self):
        """
        Without a connected learner the request fails after the catch-up
        bound, saying how to start one; a learner that lags says how far
        it is.
        """
        d = self.service.add_member(D)
        self.clock.advance(5.0)
        self.assertIn("no learner", str(self.refused(d, LEARNER_NOT_READY)))
        self.machine.learner_matches[D] = 2
        d = self.service.add_member(D)
        self.clock.advance(5.0)
        self.assertIn("up to 2 of 7", str(self.refused(d, LEARNER_NOT_READY)))
        self.assertEqual(self.machine.submitted, [])

    def test_refusals(self):
        """
        A bad address, a member, the leader itself, a non-member, an
        uncommitted change and a follower are refused before anything is
        submitted.
        """
        self.failureResultOf(self.service.add_member("x"), InvalidCommand)
        self.refused(self.service.add_member(A), ALREADY_MEMBER)
        self.refused(self.service.remove_member(SELF), IS_LEADER)
        self.assertEqual(self.refused(self.service.remove_member(D), NOT_MEMBER).status, 404)
        self.machine.pending = (8, MembershipChange(REMOVE, B))
        self.refused(self.service.remove_member(A), CHANGE_IN_PROGRESS)
        self.machine.pending = None
        self.machine.leader = False
        self.assertEqual(self.refused(self.service.remove_member(A), NOT_LEADER).leader, A)
        self.assertEqual(self.machine.submitted, [])

    def test_remove_denied(self):
        """
        A change pysyncobj refuses (REQUEST_DENIED: the previous change or
        the term's first entry is not applied yet) is 409
        C{change_in_progress}.
        """
        d = self.service.remove_member(B)
        change, callback = self.machine.submitted[0]
        self.assertEqual(change.members, S(SELF, A))
        callback(None, FAIL_REASON.REQUEST_DENIED)
        self.refused(d, CHANGE_IN_PROGRESS)

    def test_leadership_lost_while_waiting(self):
        """
        A leader that loses its lease while waiting for the learner
        refuses with C{not_leader}.
        """
        d = self.service.add_member(D)
        self.machine.leader = False
        self.clock.advance(0.01)
        self.refused(d, NOT_LEADER)
