"""
Tests for L{freno.consensus.raft.snapshot}: complete snapshots as JSON
(freno's B5) and their durable store.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.node import TCPNode
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.raft.memorydisk import MemoryDirectory
from freno.consensus.raft.snapshot import DUMP_NAME, SnapshotFile, SnapshotStore
from freno.consensus.commands import SkipHost, ThrottleApp
from freno.consensus.state import ThrottleState

RAFT = (
    (b"\x00last", 7, 2),
    (b"\x00prev", 6, 2),
    {TCPNode("127.0.0.1:1"), TCPNode("127.0.0.1:2")},
)


def sample_state() -> ThrottleState:
    state = ThrottleState()
    state.apply(ThrottleApp("app", 1900000000.0, 0.25))
    state.apply(ThrottleApp("forever/store", None, None))
    state.apply(SkipHost("db1", 1900000000.5))
    return state


class SnapshotFileTests(SynchronousTestCase):
    """
    L{SnapshotFile} encodes the complete state as JSON and loads it by
    replacing the state.
    """

    def setUp(self):
        self.state = sample_state()

    def test_round_trip(self):
        """
        What is encoded is loaded back, state and pysyncobj's part alike.
        """
        data = SnapshotFile(self.state).encode(RAFT)
        restored = ThrottleState()
        restored.apply(ThrottleApp("stale", None, 1.0))
        last, previous, cluster = SnapshotFile(restored).load(data)
        self.assertEqual(restored, self.state)
        self.assertEqual((last, previous), RAFT[:2])
        self.assertEqual({n.id for n in cluster}, {"127.0.0.1:1", "127.0.0.1:2"})

    def test_document_is_json_with_the_state(self):
        """
        The document is plain JSON (no pickle of ours goes over the wire).
        """
        document = json.loads(SnapshotFile(self.state).encode(RAFT))
        self.assertEqual(document["state"], self.state.snapshot())
        self.assertEqual(document["state"]["throttledApps"]["app"]["Ratio"], 0.25)

    def test_bad_documents_change_nothing(self):
        """
        Anything that is not our snapshot raises L{ValueError} and leaves
        the state alone.
        """
        good = json.loads(SnapshotFile(self.state).encode(RAFT))
        broken_state = dict(good, state={"skippedHosts": {"db2": "not a time"}})
        bad = [
            b"\xff\xfe",
            b"not json",
            b"[]",
            json.dumps({"format": 99, "state": {}}).encode(),
            json.dumps(broken_state).encode(),
            json.dumps(dict(good, last=["!!", 1, 1])).encode(),
            json.dumps(dict(good, state=[])).encode(),
            json.dumps({k: v for k, v in good.items() if k != "cluster"}).encode(),
        ]
        before = self.state.snapshot()
        for data in bad:
            self.assertRaises(ValueError, SnapshotFile(self.state).load, data)
        self.assertEqual(self.state.snapshot(), before)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=300))
    def test_any_bytes(self, data):
        """
        Arbitrary bytes are refused with L{ValueError} or loaded, never
        anything else.
        """
        try:
            SnapshotFile.parse(data)
        except ValueError:
            pass


class SnapshotStoreTests(SynchronousTestCase):
    """
    L{SnapshotStore}, pysyncobj's serializer made durable.
    """

    def setUp(self):
        self.disk = MemoryDirectory()
        self.state = sample_state()
        self.store = SnapshotStore(self.disk, SnapshotFile(self.state), chunk_size=10)

    def test_serialize_is_durable_before_success(self):
        """
        By the time pysyncobj hears of success (and drops log entries), the
        snapshot survives a crash; success is reported once.
        """
        self.assertEqual(self.store.checkSerializing(), (SERIALIZER_STATE.NOT_SERIALIZING, None))
        self.store.serialize((None,) + RAFT, 6)
        self.disk.crash()
        self.assertIn(DUMP_NAME, self.disk.files)
        self.assertEqual(self.store.checkSerializing(), (SERIALIZER_STATE.SUCCESS, 6))
        self.assertEqual(self.store.checkSerializing(), (SERIALIZER_STATE.NOT_SERIALIZING, None))
        self.assertEqual(self.disk.operations, [("replace", DUMP_NAME)])
        self.assertEqual(self.store.boundary(), (RAFT[1], RAFT[0]))

    def test_serialize_failure(self):
        """
        A snapshot that cannot be written is reported as failed (pysyncobj
        then keeps its log).
        """

        class Full(MemoryDirectory):
            def replace(self, name, data):
                raise OSError(28, "No space left on device")

        store = SnapshotStore(Full(), SnapshotFile(self.state), 10)
        store.serialize((None,) + RAFT, 6)
        self.assertEqual(store.checkSerializing(), (SERIALIZER_STATE.FAILED, 6))
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_deserialize(self):
        """
        The stored snapshot replaces the state; pysyncobj gets its part.
        """
        self.store.serialize((None,) + RAFT, 6)
        other = ThrottleState()
        store = SnapshotStore(self.disk, SnapshotFile(other), 10)
        data = store.deserialize()
        self.assertIsNone(data[0])
        self.assertEqual(data[1:3], RAFT[:2])
        self.assertEqual(other, self.state)
        self.assertRaises(ValueError, SnapshotStore(MemoryDirectory(), SnapshotFile(other), 10).deserialize)

    def transmit(self, sender: SnapshotStore, receiver: SnapshotStore, node="n") -> list:
        results = []
        while True:
            chunk = sender.getTransmissionData(node)
            results.append(receiver.setTransmissionData(chunk))
            if chunk is None or chunk[2]:
                return results

    def test_transmission(self):
        """
        A follower receives the snapshot in chunks and stores it durably
        before pysyncobj is told it is complete.
        """
        self.store.serialize((None,) + RAFT, 6)
        follower_disk = MemoryDirectory()
        follower = SnapshotStore(follower_disk, SnapshotFile(ThrottleState()), 10)
        results = self.transmit(self.store, follower)
        self.assertGreater(len(results), 3)
        self.assertEqual(results[-1], True)
        self.assertEqual(set(results[:-1]), {False})
        follower_disk.crash()
        self.assertEqual(follower_disk.read(DUMP_NAME), self.disk.read(DUMP_NAME))

    def test_nothing_to_transmit(self):
        """
        Without a stored snapshot there is nothing to send.
        """
        self.assertIsNone(self.store.getTransmissionData("n"))
        self.assertFalse(self.store.setTransmissionData(None))

    def test_transmission_restarts_after_a_new_snapshot(self):
        """
        A cancelled transmission, or one overtaken by a new snapshot, starts
        again from the first chunk.
        """
        self.store.serialize((None,) + RAFT, 6)
        self.store.checkSerializing()
        first = self.store.getTransmissionData("n")
        self.assertTrue(first[1])
        self.assertFalse(self.store.getTransmissionData("n")[1])
        self.store.cancelTransmisstion("n")
        self.assertTrue(self.store.getTransmissionData("n")[1])
        self.store.serialize((None,) + RAFT, 6)
        self.store.checkSerializing()
        self.assertTrue(self.store.getTransmissionData("n")[1])

    def test_chunk_without_start_ignored(self):
        """
        A chunk that is not the first of a transmission, with none started,
        is ignored.
        """
        self.assertFalse(self.store.setTransmissionData((b"middle", False, False)))
        self.assertFalse(self.store.setTransmissionData((b"", False, True)))
        self.assertIsNone(self.disk.read(DUMP_NAME))

    def test_invalid_snapshot_refused(self):
        """
        A received snapshot that is not valid is neither stored nor
        reported complete, and the stored one is kept.
        """
        self.store.serialize((None,) + RAFT, 6)
        before = self.disk.read(DUMP_NAME)
        self.assertFalse(self.store.setTransmissionData((b"not a snapshot", True, False)))
        self.assertFalse(self.store.setTransmissionData((b"", False, True)))
        self.assertEqual(self.disk.read(DUMP_NAME), before)
        self.assertEqual(self.disk.operations, [("replace", DUMP_NAME)])
