"""
Tests for L{freno.consensus.raft.journal}: the durable raft log, term and
vote, on the in-memory directory whose C{crash()} keeps only synced bytes.
"""

from __future__ import annotations

import json
import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from pysyncobj.journal import FileJournal
from pysyncobj.pickle import dumps
from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.raft.disk import FileDirectory
from freno.consensus.raft.journal import (
    LOG_NAME,
    MAGIC,
    META_NAME,
    OLD_JOURNAL_NAME,
    OLD_META_NAME,
    DurableJournal,
    JournalError,
    encode_record,
    parse_log,
)
from freno.consensus.raft.memorydisk import MemoryDirectory


def entries(first: int, count: int, term: int = 1):
    return [(b"\x00cmd%d" % i, i, term) for i in range(first, first + count)]


class BrokenDisk(MemoryDirectory):
    """
    A directory whose syncs fail (as on a full or dying disk).
    """

    def sync(self, name):
        raise OSError(5, "Input/output error")


class LogTests(SynchronousTestCase):
    """
    Entries become durable at a flush, with one sync for all of them.
    """

    def setUp(self):
        self.disk = MemoryDirectory()
        self.journal = DurableJournal.open(self.disk)

    def reopen(self) -> DurableJournal:
        self.disk.crash()
        self.journal = DurableJournal.open(self.disk)
        return self.journal

    def test_new_journal(self):
        """
        A new journal is empty, at term 0 with no vote, and its file exists
        durably.
        """
        self.assertEqual(len(self.journal), 0)
        self.assertEqual(self.journal.getCurrentTerm(), 0)
        self.assertIsNone(self.journal.getVotedForNodeId())
        self.assertEqual(self.journal.getRaftCommitIndex(), 1)
        self.assertEqual(self.disk.durable[LOG_NAME], MAGIC)
        self.assertFalse(self.journal.unsynced)

    def test_group_commit(self):
        """
        However many entries were appended, a flush syncs the log once, and
        a flush with nothing new syncs nothing.
        """
        for entry in entries(1, 50):
            self.journal.add(*entry)
        self.assertTrue(self.journal.unsynced)
        self.assertTrue(self.journal.flush())
        self.assertFalse(self.journal.unsynced)
        self.assertEqual(self.disk.syncs(LOG_NAME), 1)
        self.assertFalse(self.journal.flush())
        self.assertEqual(self.disk.syncs(LOG_NAME), 1)

    def test_crash_loses_unflushed_only(self):
        """
        A crash keeps the flushed entries and loses the rest.
        """
        for entry in entries(1, 3):
            self.journal.add(*entry)
        self.journal.flush()
        for entry in entries(4, 2):
            self.journal.add(*entry)
        self.assertEqual(len(self.journal), 5)
        journal = self.reopen()
        self.assertEqual(list(journal[:]), entries(1, 3))
        self.assertEqual(journal[-1][1], 3)

    def test_commands_read_back_as_bytes(self):
        """
        Commands given as any bytes-like object come back as C{bytes}.
        """
        self.journal.add(bytearray(b"\x00x"), 1, 0)
        self.journal.add(memoryview(b"\x00y"), 2, 0)
        self.journal.flush()
        self.assertEqual([e[0] for e in self.reopen()[:]], [b"\x00x", b"\x00y"])

    def test_truncation_needs_a_flush(self):
        """
        Deleting a suffix (a follower's conflict) is durable after a flush,
        not before, and later entries follow the kept ones.
        """
        for entry in entries(1, 5):
            self.journal.add(*entry)
        self.journal.flush()
        self.journal.deleteEntriesFrom(2)
        self.assertTrue(self.journal.unsynced)
        self.assertEqual(len(self.reopen()), 5)
        self.journal.deleteEntriesFrom(2)
        replacement = [(b"\x00new", 3, 2)]
        self.journal.add(*replacement[0])
        self.journal.flush()
        self.assertEqual(list(self.reopen()[:]), entries(1, 2) + replacement)
        self.journal.deleteEntriesFrom(10)  # beyond the end: nothing
        self.assertEqual(len(self.journal), 3)

    def test_compaction_and_clear_are_durable_at_once(self):
        """
        Dropping a prefix and clearing rewrite the file durably, without a
        flush.
        """
        for entry in entries(1, 6):
            self.journal.add(*entry)
        self.journal.flush()
        self.journal.deleteEntriesTo(4)
        self.assertFalse(self.journal.unsynced)
        self.assertEqual(list(self.reopen()[:]), entries(5, 2))
        self.journal.add(*entries(7, 1)[0])
        self.journal.flush()
        self.assertEqual(list(self.reopen()[:]), entries(5, 3))
        self.journal.clear()
        self.assertEqual(len(self.reopen()), 0)

    def test_observers_after_each_flush(self):
        """
        Observers are told after every flush, synced or not.
        """
        calls = []
        self.journal.add_durable_observer(lambda: calls.append(self.journal.unsynced))
        self.journal.add(*entries(1, 1)[0])
        self.journal.flush()
        self.journal.flush()
        self.assertEqual(calls, [False, False])


class MetaTests(SynchronousTestCase):
    """
    The term and vote are durable after a flush, never before.
    """

    def setUp(self):
        self.disk = MemoryDirectory()
        self.journal = DurableJournal.open(self.disk)

    def reopen(self) -> DurableJournal:
        self.disk.crash()
        return DurableJournal.open(self.disk)

    def test_term_and_vote(self):
        """
        A vote is unsynced until the flush, which makes it durable.
        """
        self.journal.setCurrentTerm(5, "127.0.0.1:2")
        self.assertTrue(self.journal.unsynced)
        self.assertEqual(self.reopen().getCurrentTerm(), 0)
        self.journal.setCurrentTerm(5, "127.0.0.1:2")
        self.assertTrue(self.journal.flush())
        journal = self.reopen()
        self.assertEqual(journal.getCurrentTerm(), 5)
        self.assertEqual(journal.getVotedForNodeId(), "127.0.0.1:2")

    def test_meta_is_json(self):
        """
        The meta file is plain JSON.
        """
        self.journal.setCurrentTerm(3, None)
        self.journal.flush()
        meta = json.loads(self.disk.durable[META_NAME])
        self.assertEqual(meta, {"format": 1, "currentTerm": 3, "votedFor": None, "commitIndex": 1})

    def test_commit_index_lazily(self):
        """
        The commit index promises nothing: it does not make the journal
        unsynced, and is written at the next flush after the one-second
        timer (or with the term).
        """
        self.journal.setRaftCommitIndex(7)
        self.assertFalse(self.journal.unsynced)
        self.journal.flush()
        self.assertEqual(self.reopen().getRaftCommitIndex(), 1)
        self.journal.onOneSecondTimer()
        self.assertFalse(self.journal.flush())
        self.assertEqual(self.reopen().getRaftCommitIndex(), 7)
        self.journal.onOneSecondTimer()
        writes = self.disk.operations.count(("replace", META_NAME))
        self.journal.flush()
        self.assertEqual(self.disk.operations.count(("replace", META_NAME)), writes)

    def test_damaged_meta_refused(self):
        """
        A meta file that cannot be read stops the member from starting
        instead of guessing its term and vote.
        """
        for bad in (b"\x80junk", b"[]", b'{"format": 2}', b'{"format": 1, "currentTerm": "x"}',
                    b'{"format": 1, "votedFor": 7}'):
            self.disk.replace(META_NAME, bad)
            e = self.assertRaises(JournalError, DurableJournal.open, self.disk)
            self.assertIn(META_NAME, str(e))


class RecoveryTests(SynchronousTestCase):
    """
    Opening a log whose tail was torn by a crash keeps every synced entry.
    """

    def synced_log(self, count: int) -> MemoryDirectory:
        disk = MemoryDirectory()
        journal = DurableJournal.open(disk)
        for entry in entries(1, count):
            journal.add(*entry)
        journal.flush()
        return disk

    @settings(max_examples=200, deadline=None)
    @given(
        synced=st.integers(0, 6),
        unsynced=st.integers(1, 4),
        cut=st.integers(0, 400),
    )
    def test_torn_write(self, synced, unsynced, cut):
        """
        A torn write (any prefix of the records that followed) is cut back
        to its last complete record; the synced entries are all there, and
        the journal appends correctly afterwards.
        """
        disk = self.synced_log(synced)
        tail = b"".join(encode_record(*e) for e in entries(synced + 1, unsynced))
        cut = min(cut, len(tail))
        disk.durable[LOG_NAME] += tail[:cut]
        disk.crash()
        journal = DurableJournal.open(disk)
        recovered = list(journal[:])
        self.assertEqual(recovered[:synced], entries(1, synced))
        self.assertEqual(recovered, entries(1, len(recovered)))
        self.assertLessEqual(len(recovered), synced + unsynced)
        following = len(recovered) + 1
        journal.add(b"\x00next", following, 1)
        journal.flush()
        disk.crash()
        self.assertEqual(DurableJournal.open(disk)[-1], (b"\x00next", following, 1))

    @settings(max_examples=200, deadline=None)
    @given(synced=st.integers(0, 5), garbage=st.binary(min_size=1, max_size=200))
    def test_garbage_tail(self, synced, garbage):
        """
        Arbitrary bytes after the synced records are ignored.
        """
        disk = self.synced_log(synced)
        disk.durable[LOG_NAME] += garbage
        disk.crash()
        self.assertEqual(list(DurableJournal.open(disk)[:])[:synced], entries(1, synced))

    def test_out_of_sequence_record_ends_the_log(self):
        """
        A valid record that does not follow its predecessor (a stale one
        behind a torn region) ends the log.
        """
        good = entries(1, 2, term=3)
        data = MAGIC + b"".join(encode_record(*e) for e in good)
        for stale in [(b"\x00gap", 4, 3), (b"\x00old term", 3, 2)]:
            log, _, end = parse_log(data + encode_record(*stale))
            self.assertEqual(log, good)
            self.assertEqual(end, len(data))

    def test_torn_header(self):
        """
        A log whose header never reached the disk is an empty log.
        """
        disk = MemoryDirectory()
        disk.replace(LOG_NAME, MAGIC[:5])
        self.assertEqual(len(DurableJournal.open(disk)), 0)
        self.assertEqual(disk.read(LOG_NAME), MAGIC)

    def test_foreign_file_refused(self):
        """
        A log file that is not ours stops the member from starting.
        """
        disk = MemoryDirectory()
        disk.replace(LOG_NAME, b"PYSYNCOBJ\x00 something else entirely")
        self.assertRaises(JournalError, DurableJournal.open, disk)

    def test_finish_interrupted_compaction(self):
        """
        A log that still holds the entries before a stored snapshot's end
        (the crash came between the snapshot and the log rewrite) drops
        them and keeps the newer ones.
        """
        disk = self.synced_log(10)
        journal = DurableJournal.open(disk)
        log = list(journal[:])
        self.assertEqual(journal.finish_compaction(log[5], log[6]), 5)
        self.assertEqual(list(journal[:]), log[5:])
        disk.crash()
        self.assertEqual(list(DurableJournal.open(disk)[:]), log[5:])

    def test_compaction_boundary_not_in_log(self):
        """
        If the snapshot's last entries are not in the log as they are,
        nothing is dropped (pysyncobj then replaces the log by the snapshot).
        """
        journal = DurableJournal.open(self.synced_log(10))
        log = list(journal[:])
        other = (b"\x00other", 7, 1)
        for previous, last in [(log[5], other), (log[0], log[1]), (log[8], (b"\x00x", 11, 1)), (other, log[7])]:
            self.assertEqual(journal.finish_compaction(previous, last), 0)
        self.assertEqual(list(journal[:]), log)


def old_journal_bytes(old_entries) -> bytes:
    """
    The bytes of a pysyncobj 0.3.17 journal file holding C{old_entries}.
    """
    records = b""
    for command, index, term in old_entries:
        data = struct.pack("<QQ", index, term) + command
        records += struct.pack("<I", len(data)) + data + struct.pack("<I", len(data))
    header = b"PYSYNCOBJ".ljust(24, b"\0") + b"0.3.17".ljust(8, b"\0")
    return header + struct.pack("<II", 1, 40 + len(records)) + records


class UpgradeTests(SynchronousTestCase):
    """
    The pysyncobj journal of an earlier build is imported.
    """

    def test_import(self):
        """
        Entries, term, vote and commit index come over, durably, and the old
        files are removed.
        """
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        old = FileJournal(os.path.join(path, OLD_JOURNAL_NAME))
        for entry in entries(1, 4, term=2):
            old.add(*entry)
        old.setCurrentTerm(3, "127.0.0.1:9")
        old.setRaftCommitIndex(3)
        old.onOneSecondTimer()
        old._destroy()
        disk = FileDirectory(path)
        self.addCleanup(disk.close)
        journal = DurableJournal.open(disk)
        self.assertEqual(list(journal[:]), entries(1, 4, term=2))
        self.assertEqual(journal.getCurrentTerm(), 3)
        self.assertEqual(journal.getVotedForNodeId(), "127.0.0.1:9")
        self.assertEqual(journal.getRaftCommitIndex(), 3)
        self.assertEqual(sorted(os.listdir(path)), [LOG_NAME, META_NAME])
        self.assertEqual(list(DurableJournal.open(disk)[:]), entries(1, 4, term=2))

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=120))
    def test_damaged_old_journal(self, tail):
        """
        An old journal that cannot be read stops the member from starting
        with L{JournalError}, never another exception.
        """
        disk = MemoryDirectory()
        disk.replace(OLD_JOURNAL_NAME, b"PYSYNCOBJ" + tail)
        try:
            DurableJournal.open(disk)
        except JournalError:
            pass

    def test_unreadable_old_meta(self):
        """
        An old meta file pysyncobj could not read either gives no vote and
        the last entry's term; one with nonsense values stops the start.
        """
        old_log = old_journal_bytes(entries(1, 2, term=4))
        disk = MemoryDirectory()
        disk.replace(OLD_JOURNAL_NAME, old_log)
        disk.replace(OLD_META_NAME, b"\x00garbage")
        journal = DurableJournal.open(disk)
        self.assertEqual((journal.getCurrentTerm(), journal.getVotedForNodeId()), (4, None))
        for bad in ({"currentTerm": "x"}, {"votedForNodeId": 3}):
            disk = MemoryDirectory()
            disk.replace(OLD_JOURNAL_NAME, old_log)
            disk.replace(OLD_META_NAME, dumps(bad))
            self.assertRaises(JournalError, DurableJournal.open, disk)

    def test_leftovers_removed(self):
        """
        Old files left by an import that a crash interrupted are removed
        once the new log exists (which is then the truth).
        """
        disk = MemoryDirectory()
        journal = DurableJournal.open(disk)
        journal.add(*entries(1, 1)[0])
        journal.flush()
        disk.replace(OLD_JOURNAL_NAME, b"PYSYNCOBJ" + b"\x00" * 40)
        disk.replace(OLD_META_NAME, b"")
        self.assertEqual(len(DurableJournal.open(disk)), 1)
        self.assertIsNone(disk.read(OLD_JOURNAL_NAME))
        self.assertIsNone(disk.read(OLD_META_NAME))


class FailureTests(SynchronousTestCase):
    """
    A failed sync stops the journal for good.
    """

    def test_failed_sync(self):
        """
        The flush raises, observers are not told (held acknowledgements stay
        held), and every later write or flush raises too.
        """
        disk = BrokenDisk()
        journal = DurableJournal.open(disk)
        told = []
        journal.add_durable_observer(lambda: told.append(True))
        journal.add(*entries(1, 1)[0])
        self.assertRaises(JournalError, journal.flush)
        self.assertIsNotNone(journal.failed)
        self.assertEqual(told, [])
        self.assertRaises(JournalError, journal.flush)
        self.assertRaises(JournalError, journal.add, *entries(2, 1)[0])
        self.assertRaises(JournalError, journal.deleteEntriesTo, 0)
        journal._destroy()  # closes without trying again

    def test_failure_at_shutdown(self):
        """
        A sync that fails when the member stops is logged, and the stop goes
        on (the files are closed).
        """
        disk = BrokenDisk()
        closed = []
        disk.close = lambda: closed.append(True)
        journal = DurableJournal.open(disk)
        journal.add(*entries(1, 1)[0])
        journal._destroy()
        self.assertIsNotNone(journal.failed)
        self.assertEqual(closed, [True])
