# -*- test-case-name: test.unit.test_raft_journal -*-
"""
L{DurableJournal}: the raft log, term and vote of one member, made durable
with group commit. It replaces pysyncobj's C{FileJournal} (an mmap that
nothing ever flushed, with the term and vote renamed into place without an
C{fsync}).

Files (in the member's L{IDurableDirectory})
=============================================

    - C{freno-raft.log}: a 16-byte header, then one record per entry:
      C{<length:u32><crc32:u32><index:u64><term:u64><command>}, little
      endian; the CRC covers index, term and command. Appends are written at
      once and synced by L{DurableJournal.flush}. On open, the log is read up
      to the first record that is incomplete, fails its CRC, or does not
      follow its predecessor (index + 1, term not lower): that is the torn
      tail of a write that was never synced (so never acknowledged), and it
      is cut off.
    - C{freno-raft.meta}: JSON C{{"currentTerm", "votedFor",
      "commitIndex"}}, always written with L{IDurableDirectory.replace}
      (temporary file, sync, rename, sync of the directory).

When things become durable
==========================

    - Entries and the term/vote are written as pysyncobj changes them, and
      synced together by L{DurableJournal.flush}: one C{fdatasync} however
      many entries were appended since the last one (group commit), plus a
      C{replace} of the meta file when the term or vote changed.
      L{freno.consensus.raft.machine.ThrottleMachine} flushes before and
      after every tick, and L{freno.consensus.raft.transport} holds every
      acknowledging message until a flush.
    - Dropping a prefix (log compaction) and clearing (installing a
      snapshot) rewrite the log with L{IDurableDirectory.replace}: durable
      at once, and never a half-rewritten file.
    - The commit index is not a raft promise; it is written with the term
      and vote, and otherwise at most once a second (pysyncobj's one-second
      timer).

A sync that fails leaves the journal L{failed <DurableJournal.failed>}: every
later flush raises, so nothing more is acknowledged (after a failed
C{fsync} the kernel may have dropped the dirty pages and will not say so
twice). The member has to be restarted.

Upgrade
=======

A data directory of an earlier build holds pysyncobj's
C{freno-raft.journal} and C{freno-raft.journal.meta}. L{DurableJournal.open}
imports their entries, term and vote into the new files (durably) and then
removes them.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any, Callable, List, Optional, Sequence, Tuple

from pysyncobj.journal import Journal
from pysyncobj.pickle import loads as pysyncobj_loads
from twisted.logger import Logger

from freno.consensus.raft.disk import IDurableDirectory

LOG_NAME = "freno-raft.log"
META_NAME = "freno-raft.meta"
OLD_JOURNAL_NAME = "freno-raft.journal"
OLD_META_NAME = OLD_JOURNAL_NAME + ".meta"

MAGIC = b"freno raft log\n\x01"
_RECORD = struct.Struct("<IIQQ")
META_FORMAT = 1

Entry = Tuple[bytes, int, int]


class JournalError(Exception):
    """
    The journal cannot be read or can no longer be written; the message
    says which file and why.
    """


def encode_record(command: bytes, index: int, term: int) -> bytes:
    """
    One log record (see the module docstring).
    """
    body = struct.pack("<QQ", index, term) + command
    return _RECORD.pack(len(command), zlib.crc32(body), index, term) + command


def parse_log(data: bytes) -> Tuple[List[Entry], List[int], int]:
    """
    The entries of a log file, each record's offset, and where the valid
    part ends (the rest is a torn tail).

    @raise JournalError: the file is not a freno raft log.
    """
    entries: List[Entry] = []
    offsets: List[int] = []
    if len(data) < len(MAGIC):
        if MAGIC.startswith(data):
            return entries, offsets, 0  # created, header never synced
        raise JournalError(f"{LOG_NAME} is not a freno raft log")
    if not data.startswith(MAGIC):
        raise JournalError(f"{LOG_NAME} is not a freno raft log (unknown header)")
    offset = len(MAGIC)
    while offset + _RECORD.size <= len(data):
        length, crc, index, term = _RECORD.unpack_from(data, offset)
        end = offset + _RECORD.size + length
        if end > len(data):
            break
        command = bytes(data[offset + _RECORD.size : end])
        if zlib.crc32(struct.pack("<QQ", index, term) + command) != crc:
            break
        if entries and (index != entries[-1][1] + 1 or term < entries[-1][2]):
            break
        entries.append((command, index, term))
        offsets.append(offset)
        offset = end
    return entries, offsets, offset


def parse_old_journal(data: bytes) -> List[Entry]:
    """
    The entries of pysyncobj 0.3.17's C{FileJournal} file: a 40-byte header
    whose last 4 bytes give the end of the records, then records
    C{<size:u32><index:u64><term:u64><command><size:u32>}.

    @raise JournalError: the file is not such a journal.
    """
    if len(data) < 40 or not data.startswith(b"PYSYNCOBJ"):
        raise JournalError(f"{OLD_JOURNAL_NAME} is not a pysyncobj journal")
    (end,) = struct.unpack_from("<I", data, 36)
    entries: List[Entry] = []
    offset = 40
    while offset < min(end, len(data)):
        if offset + 4 > len(data):
            raise JournalError(f"{OLD_JOURNAL_NAME} has a damaged record at {offset}")
        (size,) = struct.unpack_from("<I", data, offset)
        record = data[offset + 4 : offset + 4 + size]
        if len(record) != size or size < 16:
            raise JournalError(f"{OLD_JOURNAL_NAME} has a damaged record at {offset}")
        index, term = struct.unpack_from("<QQ", record)
        entries.append((bytes(record[16:]), index, term))
        offset += size + 8
    return entries


class DurableJournal(Journal):
    """
    pysyncobj's C{Journal} on an L{IDurableDirectory}; build it with
    L{open}.

    @ivar failed: C{None}, or why the journal stopped accepting writes.
    """

    _log = Logger()

    def __init__(
        self,
        directory: IDurableDirectory,
        entries: List[Entry],
        offsets: List[int],
        size: int,
        meta: dict,
    ) -> None:
        self._directory = directory
        self._entries = entries
        self._offsets = offsets
        self._size = size
        self._term = int(meta.get("currentTerm", 0))
        self._vote: Optional[str] = meta.get("votedFor")
        self._commit = int(meta.get("commitIndex", 1))
        self._commit_written = self._commit
        self._log_dirty = False
        self._meta_dirty = False
        self._commit_due = False
        self._observers: List[Callable[[], None]] = []
        self.failed: Optional[str] = None

    # -- opening -------------------------------------------------------------

    @classmethod
    def open(cls, directory: IDurableDirectory) -> "DurableJournal":
        """
        Read the log and meta files (importing an earlier build's pysyncobj
        journal if that is all there is), cut off a torn tail, and return
        the journal.

        @raise JournalError: a file is not ours or is damaged beyond a torn
            tail.
        """
        data = directory.read(LOG_NAME)
        if data is None and directory.read(OLD_JOURNAL_NAME) is not None:
            cls._import_old(directory)
            data = directory.read(LOG_NAME)
        for name in (OLD_JOURNAL_NAME, OLD_META_NAME):
            if data is not None and directory.read(name) is not None:
                directory.remove(name)
        meta = cls._read_meta(directory)
        entries, offsets, end = parse_log(data or b"")
        if data is None or end == 0:
            directory.replace(LOG_NAME, MAGIC + b"".join(encode_record(*e) for e in entries))
            end = len(MAGIC)
        elif end < len(data):
            cls._log.warn(
                "raft log: cut off a torn tail of {bytes} bytes after entry {index} "
                "(never synced, so never acknowledged)",
                bytes=len(data) - end,
                index=entries[-1][1] if entries else None,
            )
            directory.truncate(LOG_NAME, end)
            directory.sync(LOG_NAME)
        return cls(directory, entries, offsets, end, meta)

    @staticmethod
    def _read_meta(directory: IDurableDirectory) -> dict:
        data = directory.read(META_NAME)
        if data is None:
            return {}
        try:
            meta = json.loads(data.decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
                raise ValueError("not a meta document of a known format")
            int(meta.get("currentTerm", 0))
            int(meta.get("commitIndex", 1))
            vote = meta.get("votedFor")
            if vote is not None and not isinstance(vote, str):
                raise ValueError(f"votedFor {vote!r} is not a member")
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            # Only ever written atomically and durably: damage here means a
            # broken disk or a hand edit, and guessing could mean voting twice.
            raise JournalError(f"{META_NAME} is damaged ({e}); refusing to guess the raft term and vote") from e
        return meta

    @classmethod
    def _import_old(cls, directory: IDurableDirectory) -> None:
        entries = parse_old_journal(directory.read(OLD_JOURNAL_NAME) or b"")
        meta = {}
        old_meta = directory.read(OLD_META_NAME)
        if old_meta:
            try:
                meta = pysyncobj_loads(old_meta)  # our own data directory, written by pysyncobj
            except Exception:
                meta = None
            if not isinstance(meta, dict):
                # pysyncobj read an unreadable meta file as empty too.
                cls._log.warn("raft journal import: {old} unreadable, term taken from the log", old=OLD_META_NAME)
                meta = {}
        try:
            term = int(meta.get("currentTerm", 0))
            commit = int(meta.get("raftCommitIndex", 1))
        except (TypeError, ValueError) as e:
            raise JournalError(f"{OLD_META_NAME} is damaged ({e})") from e
        vote = meta.get("votedForNodeId")
        if vote is not None and not isinstance(vote, str):
            raise JournalError(f"{OLD_META_NAME} is damaged (votedForNodeId {vote!r})")
        if entries:
            term = max(term, entries[-1][2])
        directory.replace(META_NAME, _encode_meta(term, vote, commit))
        directory.replace(LOG_NAME, MAGIC + b"".join(encode_record(*e) for e in entries))
        cls._log.info(
            "raft journal imported from {old}: {count} entries, term {term}",
            old=OLD_JOURNAL_NAME,
            count=len(entries),
            term=term,
        )

    # -- durability ----------------------------------------------------------

    @property
    def unsynced(self) -> bool:
        """
        Whether entries or the term/vote changed since the last flush (an
        acknowledgement sent now could promise what a power cut would lose).
        """
        return self._log_dirty or self._meta_dirty

    def add_durable_observer(self, observer: Callable[[], None]) -> None:
        """
        Call C{observer} (no arguments) after every L{flush}.
        """
        self._observers.append(observer)

    def flush(self) -> bool:
        """
        Make every change so far durable: one sync of the log for all the
        entries appended since the last flush, and the meta file if the
        term or vote changed (or the commit index is due). Then tell the
        observers. Returns whether entries or the term/vote were synced.

        @raise JournalError: this or an earlier sync failed.
        """
        self._check()
        synced = False
        try:
            if self._log_dirty:
                self._directory.sync(LOG_NAME)
                self._log_dirty = False
                synced = True
            if self._meta_dirty or self._commit_due:
                synced = synced or self._meta_dirty
                self._write_meta()
        except OSError as e:
            self._fail(e)
        for observer in list(self._observers):
            observer()
        return synced

    def _write_meta(self) -> None:
        self._directory.replace(META_NAME, _encode_meta(self._term, self._vote, self._commit))
        self._meta_dirty = self._commit_due = False
        self._commit_written = self._commit

    def _check(self) -> None:
        if self.failed is not None:
            raise JournalError(self.failed)

    def _fail(self, error: OSError) -> None:
        self.failed = f"raft storage failed, nothing more will be acknowledged: {error}"
        self._log.critical("{message}", message=self.failed)
        raise JournalError(self.failed) from error

    def _write(self, operation: Callable[..., Any], *args: Any) -> None:
        self._check()
        try:
            operation(*args)
        except OSError as e:
            self._fail(e)

    def _rewrite(self, entries: Sequence[Entry]) -> None:
        records = [encode_record(*e) for e in entries]
        self._write(self._directory.replace, LOG_NAME, MAGIC + b"".join(records))
        self._entries = list(entries)
        self._offsets = []
        offset = len(MAGIC)
        for record in records:
            self._offsets.append(offset)
            offset += len(record)
        self._size = offset
        self._log_dirty = False

    def finish_compaction(self, previous: Entry, last: Entry) -> int:
        """
        Drop the entries before C{previous} if C{previous} and C{last} (the
        two entries a snapshot ends with) are in the log: a compaction that
        a crash interrupted between writing the snapshot and rewriting the
        log. (pysyncobj would otherwise throw away the whole log, newer
        acknowledged entries included, because the log does not start where
        the snapshot ends.) Returns how many entries were dropped.
        """
        if not self._entries:
            return 0
        position = previous[1] - self._entries[0][1]
        if position <= 0 or position + 1 >= len(self._entries):
            return 0
        if self._entries[position] != tuple(previous) or self._entries[position + 1] != tuple(last):
            return 0
        self._rewrite(self._entries[position:])
        self._log.info(
            "raft log: finished an interrupted compaction up to index {index}",
            index=previous[1],
        )
        return position

    # -- pysyncobj's Journal -------------------------------------------------

    def add(self, command, idx, term) -> None:
        command = bytes(command)
        record = encode_record(command, idx, term)
        self._write(self._directory.append, LOG_NAME, record)
        self._entries.append((command, idx, term))
        self._offsets.append(self._size)
        self._size += len(record)
        self._log_dirty = True

    def clear(self) -> None:
        self._rewrite([])

    def deleteEntriesFrom(self, entryFrom) -> None:
        if entryFrom >= len(self._entries):
            return
        size = self._offsets[entryFrom]
        self._write(self._directory.truncate, LOG_NAME, size)
        del self._entries[entryFrom:]
        del self._offsets[entryFrom:]
        self._size = size
        self._log_dirty = True

    def deleteEntriesTo(self, entryTo) -> None:
        self._rewrite(self._entries[entryTo:])

    def __getitem__(self, item):
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        """
        Flush (a clean stop keeps everything) and close the files. A failed
        storage is not retried, and a failure now does not stop the member
        from shutting down (it was logged).
        """
        try:
            if self.failed is None:
                # A clean stop keeps the commit index too, so that a restart
                # (or a learner's promotion) applies everything committed.
                self._commit_due = self._commit != self._commit_written
                self.flush()
        except JournalError:
            pass
        finally:
            self._directory.close()

    def setRaftCommitIndex(self, raftCommitIndex) -> None:
        self._commit = int(raftCommitIndex)

    def getRaftCommitIndex(self) -> int:
        return self._commit

    def setCurrentTerm(self, term, votedForNodeId) -> None:
        self._term = int(term)
        self._vote = votedForNodeId
        self._meta_dirty = True

    def getCurrentTerm(self) -> int:
        return self._term

    def getVotedForNodeId(self) -> Optional[str]:
        return self._vote

    def onOneSecondTimer(self) -> None:
        if self._commit != self._commit_written:
            self._commit_due = True


def _encode_meta(term: int, vote: Optional[str], commit: int) -> bytes:
    return json.dumps(
        {"format": META_FORMAT, "currentTerm": term, "votedFor": vote, "commitIndex": commit},
        sort_keys=True,
    ).encode("utf-8")
