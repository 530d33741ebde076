"""
Tests for L{freno.consensus.raft.service}: real raft groups of
L{RaftConsensusService} objects on loopback, all in the trial reactor.

These are integration tests in real time: raft elects with randomised
timeouts of 0.4-1.4 s, so every wait is a poll with a deadline. The whole
module runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import statistics
import struct
import time
import zlib

from pysyncobj.encryptor import getEncryptor
from twisted.internet import reactor
from twisted.internet.defer import gatherResults, inlineCallbacks, returnValue
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from freno.config.model import Config
from freno.consensus.interface import (
    CommitTimeoutError,
    NotLeaderError,
)
from freno.consensus.raft import RaftConsensusService
from freno.consensus.raft.machine import (
    DUMP_NAME,
    LEADER_LEASE,
    ThrottleMachine,
    raft_settings,
)
from freno.consensus.raft.poller import ReactorPoller
from freno.consensus.state import ThrottleState
from freno.metrics import catalogue
from freno.metrics.expvar import variables
from freno.metrics.registry import Registry
from freno.sandbox.processes import free_port
from test.support import poll_on_reactor as wait_for

PASSWORD = "correct horse battery staple"
FUTURE = 4102444800.0  # 2100-01-01


def pause(seconds: float):
    return deferLater(reactor, seconds, lambda: None)


class Group:
    """
    C{n} raft members on free loopback ports, with data dirs under the test.
    """

    def __init__(self, case: TestCase, n: int, **kwargs) -> None:
        self.case = case
        self.kwargs = kwargs
        self.addresses = tuple(f"127.0.0.1:{free_port()}" for _ in range(n))
        self.dirs = [os.path.abspath(case.mktemp()) for _ in range(n)]
        self.services = [self.make(i) for i in range(n)]
        case.addCleanup(self.stop_all)

    def make(self, i: int, **kwargs) -> RaftConsensusService:
        config = Config(
            raft_bind=self.addresses[i],
            raft_nodes=self.addresses if len(self.addresses) > 1 else (),
            raft_data_dir=self.dirs[i],
            raft_password=PASSWORD if len(self.addresses) > 1 else "",
        )
        options = dict(self.kwargs)
        options.update(kwargs)
        return RaftConsensusService(reactor, config, registry=Registry(), **options)

    def start_all(self):
        for s in self.services:
            s.startService()

    def stop(self, i: int):
        return self.services[i].stopService()

    def stop_all(self):
        return gatherResults([s.stopService() for s in self.services if s.running])

    def replace(self, i: int) -> RaftConsensusService:
        """
        A new service object for member C{i} (as after a process restart).
        """
        self.services[i] = self.make(i)
        return self.services[i]

    def running(self):
        return [s for s in self.services if s.running]

    def leaders(self):
        return [s for s in self.running() if s.is_leader()]

    @inlineCallbacks
    def settled(self, timeout: float = 8.0):
        """
        Wait for one leader that every running member agrees on and is
        healthy with; return it.
        """

        def agreed():
            running = self.running()
            leaders = [s for s in running if s.is_leader()]
            if len(leaders) != 1:
                return None
            names = {s.leader() for s in running}
            if names != {leaders[0].status().ServiceID}:
                return None
            if not all(s.is_healthy() for s in running):
                return None
            return leaders[0]

        leader = yield wait_for(agreed, timeout, "an agreed leader")
        returnValue(leader)

    def followers(self):
        return [s for s in self.running() if not s.is_leader()]

    def all_have(self, apps=(), hosts=()):
        return all(
            set(apps) <= set(s.throttled_apps()) and set(hosts) <= set(s.skipped_hosts())
            for s in self.running()
        )


class ThreeNodeTests(TestCase):
    """
    A three-member group in one reactor.
    """

    timeout = 60

    @inlineCallbacks
    def test_one_leader_everyone_agrees(self):
        """
        One leader is elected, every member names it and is healthy, and the
        gauges say so once the members have ticked. (How fast the first
        leader comes is a benchmark's business, not a test's.)
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        states = sorted(s.state_description() for s in group.services)
        self.assertEqual(states, ["Follower", "Follower", "Leader"])
        self.assertEqual(leader.status().State, "Leader")
        for s in group.services:
            self.assertEqual(s.status().Leader, leader.status().ServiceID)

        def gauges_agree():
            # The gauges are refreshed at each member's next tick, which may
            # come just after the moment settled() saw the group agree.
            return all(
                variables(s._registry).gauges.get("raft.is_leader") == (1 if s is leader else 0)
                and variables(s._registry).gauges.get("raft.is_healthy") == 1
                and variables(s._registry).strings.get("raft.leader") == leader.leader()
                and (s._registry.value(catalogue.RAFT_TERM) or 0) >= 1
                for s in group.services
            )

        yield wait_for(gauges_agree, 5, "every member's gauges to agree")

    @inlineCallbacks
    def test_commands_on_leader_and_follower(self):
        """
        Commands sent to the leader and to a follower both reach every
        member; each Deferred fires after the change is applied on the node
        that took it; commits take milliseconds.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        follower = group.followers()[0]

        yield leader.throttle_app("via-leader", FUTURE, 0.5)
        self.assertEqual(leader.throttled_apps()["via-leader"].ratio, 0.5)
        yield follower.throttle_app("via-follower/store", None, None)
        self.assertEqual(follower.throttled_apps()["via-follower/store"].ratio, 1.0)
        yield follower.skip_host("db1", FUTURE)
        self.assertEqual(follower.skipped_hosts()["db1"], FUTURE)
        yield wait_for(
            lambda: group.all_have(["via-leader", "via-follower/store"], ["db1"]),
            3,
            "both commands everywhere",
        )
        yield leader.unthrottle_app("via-leader")
        yield follower.recover_host("db1")
        yield wait_for(
            lambda: all(
                "via-leader" not in s.throttled_apps() and "db1" not in s.skipped_hosts()
                for s in group.services
            ),
            3,
            "unthrottle and recover everywhere",
        )

        latencies = []
        for i, node in enumerate([leader, follower] * 10):
            t = time.perf_counter()
            yield node.throttle_app(f"app{i}", FUTURE, 0.1)
            latencies.append(time.perf_counter() - t)
        self.assertLess(statistics.median(latencies), 0.05)
        timer = leader._registry.value(catalogue.RAFT_COMMIT_LATENCY)
        self.assertGreaterEqual(timer.count, 10)

    @inlineCallbacks
    def test_long_names_replicate(self):
        """
        Keys as long as the state holds (16,384 characters, more than a
        request line carries) commit and reach every member, from the
        leader and from a follower; a longer one is refused on every member
        alike and changes nothing.
        """
        from freno.consensus.commands import MAX_KEY_LENGTH

        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        follower = group.followers()[0]
        app, host = "a" * MAX_KEY_LENGTH, "h" * MAX_KEY_LENGTH
        yield leader.throttle_app(app, FUTURE, 0.5)
        yield follower.skip_host(host, FUTURE)
        yield wait_for(lambda: group.all_have([app], [host]), 5, "long names everywhere")
        before = [s._state.snapshot() for s in group.services]
        try:
            yield leader.throttle_app(app + "x", FUTURE, 0.5)
        except Exception as e:
            self.assertIn("longer than", str(e))
        else:
            self.fail("a key over MAX_KEY_LENGTH was applied")
        yield leader.throttle_app("after", FUTURE, 0.5)
        yield wait_for(lambda: group.all_have(["after"]), 5, "the next command everywhere")
        for s, old in zip(group.services, before):
            self.assertNotIn(app + "x", s.throttled_apps())
            self.assertEqual(set(s.throttled_apps()) - set(old["throttledApps"]), {"after"})

    @inlineCallbacks
    def test_leader_stops_new_leader_keeps_state(self):
        """
        When the leader stops, another member is elected with every command,
        observers hear of both changes, and the old leader rejoins as a
        follower and catches up.
        """
        group = Group(self, 3)
        events = {id(s): [] for s in group.services}
        for s in group.services:
            s.add_leadership_observer(events[id(s)].append)
        group.start_all()
        leader = yield group.settled()
        self.assertEqual(events[id(leader)], [True])
        yield leader.throttle_app("kept", FUTURE, 0.3)
        yield group.followers()[0].skip_host("db9", FUTURE)

        old = group.services.index(leader)
        stopped = time.monotonic()
        yield group.stop(old)
        self.assertEqual(events[id(leader)], [True, False])
        new = yield group.settled()
        self.assertLess(time.monotonic() - stopped, 5.0)
        self.assertIsNot(new, leader)
        self.assertEqual(events[id(new)], [True])
        self.assertEqual(new.throttled_apps()["kept"].ratio, 0.3)
        self.assertIn("db9", new.skipped_hosts())
        yield new.throttle_app("after-failover", FUTURE, 1.0)

        leader.startService()
        yield wait_for(
            lambda: group.all_have(["kept", "after-failover"], ["db9"]),
            5,
            "the old leader to catch up",
        )
        again = yield group.settled()
        self.assertIs(again, new)
        self.assertEqual(leader.state_description(), "Follower")

    @inlineCallbacks
    def test_new_leader_leads_with_every_acknowledged_command(self):
        """
        A skip the leader acknowledged and then stopped (in the same turn of
        the reactor, so the followers never heard it was committed) is in
        the new leader's state the moment that node first says it leads
        (D89): a check it answers can never miss it.
        """
        group = Group(self, 3)
        seen = {}

        def observer(service):
            def observe(leading):
                if leading:
                    seen.setdefault(id(service), set(service.skipped_hosts()))

            return observe

        for s in group.services:
            s.add_leadership_observer(observer(s))
        group.start_all()
        leader = yield group.settled()
        seen.clear()
        stopping = []
        acknowledged = leader.skip_host("acked-then-gone", FUTURE)
        acknowledged.addCallback(lambda _: stopping.append(group.stop(group.services.index(leader))))
        yield acknowledged
        yield stopping[0]
        new = yield group.settled()
        self.assertIn("acked-then-gone", seen[id(new)])
        self.assertIn("acked-then-gone", new.skipped_hosts())

    @inlineCallbacks
    def test_no_majority(self):
        """
        A leader whose followers are gone stops being leader within 2 s and
        tells its observers; commands fail quickly, never hang.
        """
        group = Group(self, 3, command_timeout=1.0)
        group.start_all()
        leader = yield group.settled()
        events = []
        leader.add_leadership_observer(events.append)
        followers = [group.services.index(s) for s in group.followers()]
        yield gatherResults([group.stop(i) for i in followers])
        cut_off = time.monotonic()
        pending = leader.throttle_app("uncommitted", FUTURE, 1.0)

        yield wait_for(lambda: not leader.is_leader(), 3, "the leader to step down")
        self.assertLess(time.monotonic() - cut_off, 2.0)
        self.assertLessEqual(time.monotonic() - cut_off, LEADER_LEASE + 0.3)
        yield wait_for(lambda: events, 0.2, "the observers (told after the next tick)")
        self.assertEqual(events, [False])
        self.assertFalse(leader.is_healthy())
        self.assertEqual(leader.leader(), "")

        yield self.assertFailure(pending, CommitTimeoutError)

        t = time.monotonic()
        yield self.assertFailure(leader.throttle_app("refused", FUTURE, 1.0), NotLeaderError)
        self.assertLess(time.monotonic() - t, 0.1)
        self.assertNotIn("refused", leader.throttled_apps())

    @inlineCallbacks
    def test_follower_without_leader_refuses_at_once(self):
        """
        A follower whose leader and other peer are gone refuses commands at
        once.
        """
        group = Group(self, 3)
        group.start_all()
        yield group.settled()
        survivor = group.followers()[0]
        others = [i for i, s in enumerate(group.services) if s is not survivor]
        yield gatherResults([group.stop(i) for i in others])
        yield wait_for(lambda: not survivor.is_healthy(), 3, "the follower to notice")
        t = time.monotonic()
        yield self.assertFailure(survivor.throttle_app("x", FUTURE, 1.0), NotLeaderError)
        self.assertLess(time.monotonic() - t, 0.1)
        self.assertIn(survivor.state_description(), ("Follower", "Candidate"))

    @inlineCallbacks
    def test_full_restart_restores_everything(self):
        """
        Stopping every member and starting new ones on the same data
        directories restores every acknowledged command.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        follower = group.followers()[0]
        acknowledged = []
        for i in range(10):
            node = leader if i % 2 else follower
            yield node.throttle_app(f"app{i}", FUTURE, 0.1 * i)
            acknowledged.append(f"app{i}")
        yield leader.skip_host("db1", FUTURE)
        yield follower.unthrottle_app("app0")
        acknowledged.remove("app0")
        expected = leader.throttled_apps().copy()

        yield group.stop_all()
        for i in range(3):
            group.replace(i)
        group.start_all()
        yield group.settled()
        yield wait_for(lambda: group.all_have(acknowledged, ["db1"]), 5, "restored state")
        for s in group.services:
            self.assertEqual(dict(s.throttled_apps()), expected)

    @inlineCallbacks
    def test_empty_data_dir_catches_up_from_snapshot(self):
        """
        After the leader compacts its log into a snapshot, a member restarted
        with an empty data directory receives the snapshot (complete state,
        B5) and then the newer entries.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        for i in range(5):
            yield leader.throttle_app(f"old{i}", FUTURE, 0.5)
        yield leader.skip_host("db-old", FUTURE)
        dump = os.path.join(group.dirs[group.services.index(leader)], DUMP_NAME)
        leader.machine.forceLogCompaction()
        yield wait_for(lambda: os.path.exists(dump), 3, "the leader's snapshot")
        with open(dump) as f:
            self.assertIn("old4", json.load(f)["state"]["throttledApps"])
        yield wait_for(
            lambda: leader.machine._SyncObj__raftLog[0][1] > 1, 3, "log compaction"
        )
        yield leader.throttle_app("new", FUTURE, 0.2)

        victim = group.services.index(group.followers()[0])
        yield group.stop(victim)
        shutil.rmtree(group.dirs[victim])
        fresh = group.replace(victim)
        fresh.startService()
        names = [f"old{i}" for i in range(5)] + ["new"]
        yield wait_for(lambda: group.all_have(names, ["db-old"]), 8, "catch-up")
        self.assertEqual(fresh.throttled_apps()["old3"].ratio, 0.5)


class SingleNodeTests(TestCase):
    """
    C{"RaftNodes": []}: a group of one, which elects itself and persists.
    """

    timeout = 30

    @inlineCallbacks
    def test_persists_across_restart(self):
        """
        A throttle survives a stop and start of the same service, and of a
        new one on the same data directory.
        """
        group = Group(self, 1)
        node = group.services[0]
        node.startService()
        yield wait_for(node.is_leader, 3, "self-election")
        self.assertEqual(node.leader(), group.addresses[0])
        self.assertTrue(node.is_healthy())
        yield node.throttle_app("app", FUTURE, 0.7)
        yield node.skip_host("db", FUTURE)
        yield node.stopService()
        self.assertEqual(node.state_description(), "Shutdown")

        node.startService()
        yield wait_for(lambda: "app" in node.throttled_apps(), 3, "replay")
        yield group.stop(0)

        node = group.replace(0)
        node.startService()
        yield wait_for(lambda: "app" in node.throttled_apps(), 3, "replay")
        self.assertEqual(node.throttled_apps()["app"].ratio, 0.7)
        self.assertIn("db", node.skipped_hosts())
        yield wait_for(node.is_leader, 3, "self-election")
        yield node.throttle_app("more", None, None)

    @inlineCallbacks
    def test_snapshot_round_trip(self):
        """
        A forced compaction writes the complete state; a restart restores it
        from the snapshot plus the newer journal entries.
        """
        group = Group(self, 1)
        node = group.services[0]
        node.startService()
        yield wait_for(node.is_leader, 3, "self-election")
        for i in range(5):
            yield node.throttle_app(f"app{i}", FUTURE, 0.1)
        yield node.skip_host("db", FUTURE)
        node.machine.forceLogCompaction()
        dump = os.path.join(group.dirs[0], DUMP_NAME)
        yield wait_for(lambda: os.path.exists(dump), 3, "snapshot")
        yield wait_for(lambda: node.machine._SyncObj__raftLog[0][1] > 1, 3, "compaction")
        yield node.unthrottle_app("app0")
        expected = node._state.snapshot()
        yield node.stopService()

        node = group.replace(0)
        node.startService()
        yield wait_for(lambda: node._state.snapshot() == expected, 3, "restore")

    @inlineCallbacks
    def test_leader_when_started(self):
        """
        A group of one is leader (and says so everywhere) as soon as
        C{startService} returns, with no election timeout; after a restart
        it is leader at once again, with its journal already applied.
        """
        group = Group(self, 1)
        node = group.services[0]
        seen = []
        node.add_leadership_observer(seen.append)
        node.startService()
        self.assertTrue(node.is_leader())
        self.assertEqual(node.leader(), group.addresses[0])
        self.assertEqual(node.state_description(), "Leader")
        self.assertTrue(node.is_healthy())
        self.assertTrue(node.status().IsLeader)
        self.assertEqual(seen, [True])
        yield node.throttle_app("app", FUTURE, 0.7)
        yield node.stopService()

        node = group.replace(0)
        node.startService()
        self.assertTrue(node.is_leader())
        self.assertEqual(node.throttled_apps()["app"].ratio, 0.7)

    @inlineCallbacks
    def test_opens_no_port(self):
        """
        A single node listens nowhere: nothing can reach its raft code.
        """
        group = Group(self, 1)
        node = group.services[0]
        node.startService()
        yield wait_for(node.is_leader, 3, "self-election")
        host, port = group.addresses[0].split(":")
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex((host, int(port))), 0)


class FiveNodeTests(TestCase):
    """
    A five-member group.
    """

    timeout = 60

    @inlineCallbacks
    def test_loses_two_keeps_serving(self):
        """
        Losing two members (the leader among them) leaves a majority that
        elects a leader and keeps taking commands.
        """
        group = Group(self, 5)
        group.start_all()
        leader = yield group.settled(10)
        yield leader.throttle_app("before", FUTURE, 0.5)
        gone = [group.services.index(leader), group.services.index(group.followers()[0])]
        yield gatherResults([group.stop(i) for i in gone])
        new = yield group.settled(10)
        self.assertNotIn(group.services.index(new), gone)
        yield group.followers()[0].throttle_app("after", FUTURE, 0.5)
        yield wait_for(lambda: group.all_have(["before", "after"]), 3, "both commands")
        self.assertEqual(len(group.running()), 3)


class Marker:
    """
    Pickles to "create this file": what an attacker would send.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def frame(data: bytes) -> bytes:
    """
    pysyncobj's framing: native 4-byte length, then the payload.
    """
    return struct.pack("i", len(data)) + data


def plain(message) -> bytes:
    """
    A frame as a pysyncobj peer without a password sends it.
    """
    return frame(zlib.compress(pickle.dumps(message, 2), 3))


class SecurityTests(TestCase):
    """
    A peer without the group's secret can neither run code nor inject a
    command.
    """

    timeout = 60

    @inlineCallbacks
    def attack(self, address: str, frames) -> None:
        """
        Send C{frames} on a fresh connection and wait for the node to hang up.
        """
        host, port = address.split(":")
        s = socket.create_connection((host, int(port)), timeout=1)
        self.addCleanup(s.close)
        s.sendall(b"".join(frames))
        s.setblocking(False)

        def closed():
            try:
                return s.recv(4096) == b""
            except BlockingIOError:
                return False
            except OSError:
                return True

        yield wait_for(closed, 3, "the node to drop the connection")

    @inlineCallbacks
    def test_crafted_frames_do_nothing(self):
        """
        A pickle that would create a file, a fake read-only member sending a
        command, and frames encrypted with a wrong password are all dropped:
        no file, no command, and the group is as it was.
        """
        group = Group(self, 3)
        group.start_all()
        leader = yield group.settled()
        marker = os.path.abspath(self.mktemp())
        command = b"\x00" + pickle.dumps(
            (0, ({"op": "throttle", "key": "evil", "expire_at": None, "ratio": 1.0},)), 2
        )
        inject = [
            plain("readonly"),
            plain({"type": "apply_command", "command": command}),
        ]
        wrong = getEncryptor("not the password")
        wrong_frames = [
            frame(wrong.encrypt(zlib.compress(pickle.dumps(Marker(marker), 2))))
        ]
        for target in group.services:
            address = target.status().ServiceID
            yield self.attack(address, [plain(Marker(marker))])
            yield self.attack(address, inject)
            yield self.attack(address, wrong_frames)
        yield pause(0.5)
        self.assertFalse(os.path.exists(marker))
        for s in group.services:
            self.assertNotIn("evil", s.throttled_apps())
        self.assertIs((yield group.settled()), leader)
        yield group.followers()[0].throttle_app("legit", FUTURE, 1.0)
        yield wait_for(lambda: group.all_have(["legit"]), 3, "a real command")

    @inlineCallbacks
    def test_frame_runs_code_without_password(self):
        """
        The same frame I{does} run code on a pysyncobj member without a
        password: this is why multi-node groups must have one (and shows the
        frames above are well-formed).
        """
        marker = os.path.abspath(self.mktemp())
        data_dir = os.path.abspath(self.mktemp())
        os.makedirs(data_dir)
        address = f"127.0.0.1:{free_port()}"
        state = ThrottleState()
        poller = ReactorPoller(reactor, lambda: None)
        conf = raft_settings(data_dir, None, address)
        machine = ThrottleMachine(address, [f"127.0.0.1:{free_port()}"], conf, poller, state)
        self.addCleanup(poller.close)
        self.addCleanup(machine.close_leftovers)
        self.addCleanup(machine.destroy)
        host, port = address.split(":")
        with socket.create_connection((host, int(port)), timeout=1) as s:
            s.sendall(plain(Marker(marker)))
            yield wait_for(lambda: os.path.exists(marker), 3, "the code to run")
