# -*- test-case-name: test.unit.test_raft_snapshot -*-
"""
Raft snapshots: L{SnapshotFile} (what a snapshot holds, as JSON) and
L{SnapshotStore} (where it is kept, durably, in place of pysyncobj's
C{Serializer}).

Complete snapshots (freno's B5, fixed)
======================================

pysyncobj's log compaction asks for a snapshot with its own bookkeeping (the
last two applied log entries and the member list). L{SnapshotFile} encodes
that together with L{ThrottleState.snapshot} as one JSON document and, on
load, replaces the whole state. The same document is what a leader streams to
a follower that is too far behind, so a snapshot never carries a pickle of
ours.

Durable and atomic (docs/decisions.md, D50)
===========================================

pysyncobj 0.3.17's C{Serializer} renames the file the serializer wrote into
place without syncing the directory, writes a snapshot received from the
leader without any C{fsync}, and acknowledges it even when it cannot be
loaded. L{SnapshotStore} replaces it (see the private hooks in
L{freno.consensus.raft.machine}):

    - a snapshot, written or received, goes to disk with
      L{IDurableDirectory.replace}: temporary file, sync, rename, sync of the
      directory; only then may pysyncobj drop the log entries it covers
      (compaction) or clear the log (installation);
    - a received snapshot is parsed before it replaces the current one, and
      refused (not acknowledged, not installed) if it is not valid;
    - writing is synchronous (pysyncobj never forks a Twisted process here);
      its outcome is reported once by C{checkSerializing}, as pysyncobj
      expects.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

import attr
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.node import TCPNode
from twisted.logger import Logger

from freno.consensus.raft.disk import IDurableDirectory
from freno.consensus.audit import DEFAULT_AUDIT_LOG_SIZE, AuditLog
from freno.consensus.state import ThrottleState

DUMP_NAME = "freno-raft.dump"
SNAPSHOT_FORMAT = 1

Entry = Tuple[bytes, int, int]


def _entry_to_json(entry) -> list:
    command, idx, term = entry
    return [base64.b64encode(bytes(command)).decode("ascii"), int(idx), int(term)]


def _entry_from_json(data) -> Entry:
    command, idx, term = data
    return (base64.b64decode(command, validate=True), int(idx), int(term))


@attr.s(frozen=True, auto_attribs=True)
class ParsedSnapshot:
    """
    A snapshot read back: the state it holds and pysyncobj's part.
    """

    state: ThrottleState
    last: Entry
    previous: Entry
    members: Tuple[str, ...]


class SnapshotFile:
    """
    The snapshot document of a L{ThrottleState}.

    @param state: the state written by L{encode} and replaced by L{load}.
    """

    def __init__(self, state: ThrottleState) -> None:
        self.state = state
        #: The members as of a log index (set by the machine: the snapshot
        #: records them as of its last entry, not pysyncobj's current set).
        self.members_at: Optional[Callable[[int], Iterable[str]]] = None
        #: Told C{(index, members)} of every snapshot written or loaded.
        self.on_members: Optional[Callable[[int, Iterable[str]], None]] = None

    def encode(self, raft_data: Sequence[Any]) -> bytes:
        """
        The complete state and pysyncobj's C{raft_data} (last applied entry,
        the one before, the members) as one JSON document.
        """
        last, previous, cluster = raft_data
        if self.members_at is not None:
            members = sorted(self.members_at(int(last[1])))
        else:
            members = sorted(node.id for node in cluster if node is not None)
        document = {
            "format": SNAPSHOT_FORMAT,
            "state": self.state.snapshot(),
            "last": _entry_to_json(last),
            "previous": _entry_to_json(previous),
            "cluster": members,
        }
        if self.on_members is not None:
            self.on_members(int(last[1]), members)
        return json.dumps(document, sort_keys=True).encode("utf-8")

    @staticmethod
    def parse(data: bytes, audit_size: int = DEFAULT_AUDIT_LOG_SIZE) -> ParsedSnapshot:
        """
        Read a document written by L{encode} without touching any state.

        @param audit_size: how many audit records the parsed state keeps.
        @raise ValueError: it is not a snapshot of ours.
        """
        try:
            document = json.loads(data.decode("utf-8"))
            if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
                raise ValueError("unknown snapshot format")
            state = ThrottleState(audit=AuditLog(audit_size))
            state.restore(document["state"])
            return ParsedSnapshot(
                state,
                _entry_from_json(document["last"]),
                _entry_from_json(document["previous"]),
                tuple(str(member) for member in document["cluster"]),
            )
        except (KeyError, TypeError, AttributeError) as e:  # ValueError passes as is
            raise ValueError(f"not a raft snapshot: {e!r}") from e

    def load(self, data: bytes):
        """
        Replace the state with the one in C{data}; return pysyncobj's part
        (last entry, previous entry, members).

        @raise ValueError: as L{parse}; the state is then left alone.
        """
        parsed = self.parse(data, self.state.audit.size)
        self.state.replace_with(parsed.state)
        if self.on_members is not None:
            self.on_members(parsed.last[1], parsed.members)
        return (parsed.last, parsed.previous, {TCPNode(m) for m in parsed.members})


class SnapshotStore:
    """
    pysyncobj's C{Serializer}, durable (see the module docstring). Only the
    methods C{SyncObj} calls are implemented, with its names.

    @param directory: where C{freno-raft.dump} lives.
    @param snapshots: encodes and loads the state.
    @param chunk_size: bytes per message when streaming to a follower
        (C{logCompactionBatchSize}).
    """

    _log = Logger()

    def __init__(self, directory: IDurableDirectory, snapshots: SnapshotFile, chunk_size: int) -> None:
        self._directory = directory
        self._snapshots = snapshots
        self._chunk_size = chunk_size
        self._outcome: Optional[int] = None
        self._written_id = 0
        self._outgoing: Dict[Any, Dict[str, Any]] = {}
        self._incoming: Optional[bytearray] = None

    def boundary(self) -> Optional[Tuple[Entry, Entry]]:
        """
        The (previous, last) entries the stored snapshot ends with, or
        C{None} if there is no valid snapshot.
        """
        data = self._directory.read(DUMP_NAME)
        if data is None:
            return None
        try:
            parsed = SnapshotFile.parse(data)
        except ValueError:
            return None
        return parsed.previous, parsed.last

    # -- pysyncobj's Serializer ---------------------------------------------

    def checkSerializing(self):
        """
        C{(SUCCESS or FAILED, id)} once after each L{serialize}, else
        C{(NOT_SERIALIZING, None)}.
        """
        if self._outcome is None:
            return SERIALIZER_STATE.NOT_SERIALIZING, None
        outcome, self._outcome = self._outcome, None
        if outcome == SERIALIZER_STATE.SUCCESS:
            self._outgoing = {}  # followers get the new snapshot from its start
        return outcome, self._written_id

    def serialize(self, data, id) -> None:
        """
        Write the snapshot durably. C{data} is pysyncobj's C{(None, last,
        previous, members)} (C{None}: we have a custom serializer).
        """
        self._written_id = id
        try:
            payload = self._snapshots.encode(data[1:])
            self._directory.replace(DUMP_NAME, payload)
        except Exception:
            self._log.failure("raft snapshot not written")
            self._outcome = SERIALIZER_STATE.FAILED
            return
        self._outcome = SERIALIZER_STATE.SUCCESS
        self._log.info("raft snapshot written up to index {index}", index=data[1][1])

    def deserialize(self):
        """
        Load the stored snapshot into the state; return pysyncobj's
        C{(None, last, previous, members)}.

        @raise ValueError: no valid snapshot (pysyncobj logs it and keeps its
            log).
        """
        data = self._directory.read(DUMP_NAME)
        if data is None:
            raise ValueError(f"no {DUMP_NAME}")
        raft = self._snapshots.load(data)
        self._log.info("raft snapshot loaded up to index {index}", index=raft[0][1])
        return (None,) + raft

    def getTransmissionData(self, transmissionID):
        """
        The next chunk of the stored snapshot for follower
        C{transmissionID}: C{(bytes, is_first, is_last)}, the last being
        empty; C{None} if there is nothing to send.
        """
        transmission = self._outgoing.get(transmissionID)
        if transmission is None:
            data = self._directory.read(DUMP_NAME)
            if data is None:
                return None
            transmission = self._outgoing[transmissionID] = {"data": data, "sent": 0}
        sent = transmission["sent"]
        chunk = transmission["data"][sent : sent + self._chunk_size]
        transmission["sent"] = sent + len(chunk)
        if not chunk:
            del self._outgoing[transmissionID]
        return chunk, sent == 0, not chunk

    def setTransmissionData(self, data) -> bool:
        """
        Take one chunk from the leader. On the last one, check the snapshot
        and store it durably; return C{True} only then (pysyncobj then loads
        it, clears the log and acknowledges).
        """
        if data is None:
            return False
        chunk, is_first, is_last = data
        if is_first:
            self._incoming = bytearray()
        elif self._incoming is None:
            return False
        self._incoming += bytes(chunk)
        if not is_last:
            return False
        payload, self._incoming = bytes(self._incoming), None
        try:
            SnapshotFile.parse(payload)
        except ValueError as e:
            self._log.error("raft snapshot from the leader refused: {error}", error=str(e))
            return False
        try:
            self._directory.replace(DUMP_NAME, payload)
        except OSError:
            self._log.failure("raft snapshot from the leader not stored")
            return False
        return True

    def cancelTransmisstion(self, id) -> None:  # sic: pysyncobj's spelling
        """
        Forget the transmission to follower C{id}.
        """
        self._outgoing.pop(id, None)
