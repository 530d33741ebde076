"""
Tests for L{freno.consensus.raft.disk} and L{freno.consensus.raft.memorydisk}:
one contract for the real directory and both fakes, and the power-cut model
of the fakes.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from freno.consensus.raft.disk import FileDirectory, IDurableDirectory
from freno.consensus.raft.memorydisk import MemoryDirectory, PowerCutDirectory


class DirectoryContract:
    """
    What every L{IDurableDirectory} does, whatever it is made of.
    """

    def directory(self, sync: bool = True) -> IDurableDirectory:
        raise NotImplementedError

    def test_interface(self):
        """
        It provides L{IDurableDirectory}.
        """
        d = self.directory()
        self.assertTrue(verifyObject(IDurableDirectory, d))
        self.assertTrue(d.synced)
        self.assertFalse(self.directory(sync=False).synced)

    def test_missing(self):
        """
        A file never written reads as C{None}; removing it does nothing.
        """
        d = self.directory()
        self.assertIsNone(d.read("nothing"))
        d.remove("nothing")
        self.assertIsNone(d.read("nothing"))

    def test_append_read_truncate(self):
        """
        Appends are visible at once, synced or not; truncation cuts.
        """
        d = self.directory()
        d.append("log", b"abc")
        d.append("log", b"def")
        self.assertEqual(d.read("log"), b"abcdef")
        d.sync("log")
        d.truncate("log", 2)
        self.assertEqual(d.read("log"), b"ab")
        d.append("log", b"Z")
        self.assertEqual(d.read("log"), b"abZ")

    def test_replace(self):
        """
        Replace gives the whole new content; appends after it extend it.
        """
        d = self.directory()
        d.append("f", b"old old old")
        d.replace("f", b"new")
        self.assertEqual(d.read("f"), b"new")
        d.append("f", b"+")
        self.assertEqual(d.read("f"), b"new+")

    def test_remove(self):
        """
        A removed file is gone; it can be written again.
        """
        d = self.directory()
        d.replace("f", b"x")
        d.remove("f")
        self.assertIsNone(d.read("f"))
        d.append("f", b"y")
        self.assertEqual(d.read("f"), b"y")

    def test_close_then_use(self):
        """
        After C{close}, files are reopened when needed.
        """
        d = self.directory()
        d.append("log", b"a")
        d.close()
        d.append("log", b"b")
        d.sync("log")
        self.assertEqual(d.read("log"), b"ab")
        d.close()


class FileDirectoryTests(DirectoryContract, SynchronousTestCase):
    """
    The real directory.
    """

    def directory(self, sync: bool = True) -> FileDirectory:
        d = FileDirectory(os.path.abspath(self.mktemp()), sync=sync)
        self.addCleanup(d.close)
        return d

    def test_creates_the_directory(self):
        """
        The directory is created if missing.
        """
        path = os.path.join(os.path.abspath(self.mktemp()), "a", "b")
        FileDirectory(path)
        self.assertTrue(os.path.isdir(path))

    def test_files_are_real(self):
        """
        What is written is in the real files, and the temporary file of
        C{replace} is gone.
        """
        d = self.directory()
        d.append("log", b"12")
        d.replace("meta", b"{}")
        self.assertEqual(sorted(os.listdir(d.path)), ["log", "meta"])
        with open(os.path.join(d.path, "log"), "rb") as f:
            self.assertEqual(f.read(), b"12")

    def test_plain_names_only(self):
        """
        A name with a separator, or a special one, is refused.
        """
        d = self.directory()
        for name in ("../escape", "a/b", "", ".", ".."):
            self.assertRaises(ValueError, d.read, name)
            self.assertRaises(ValueError, d.append, name, b"x")


class CrashContract(DirectoryContract):
    """
    The power-cut model both fakes share.
    """

    def crash(self, d):
        raise NotImplementedError

    def test_crash_keeps_synced_only(self):
        """
        A crash keeps what was synced and loses later appends; a file never
        synced disappears.
        """
        d = self.directory()
        d.append("log", b"kept")
        d.sync("log")
        d.append("log", b"+lost")
        d.append("new", b"never synced")
        d = self.crash(d)
        self.assertEqual(d.read("log"), b"kept")
        self.assertIsNone(d.read("new"))

    def test_truncate_needs_a_sync(self):
        """
        An unsynced truncation is undone by a crash.
        """
        d = self.directory()
        d.append("log", b"abcdef")
        d.sync("log")
        d.truncate("log", 3)
        d = self.crash(d)
        self.assertEqual(d.read("log"), b"abcdef")

    def test_replace_and_remove_are_durable(self):
        """
        C{replace} and C{remove} survive a crash at once.
        """
        d = self.directory()
        d.replace("meta", b"v1")
        d.replace("gone", b"x")
        d.remove("gone")
        d = self.crash(d)
        self.assertEqual(d.read("meta"), b"v1")
        self.assertIsNone(d.read("gone"))

    def test_without_sync_nothing_survives(self):
        """
        A directory that does not sync loses everything written through
        it, replaced files included (the behaviour before durable storage, in the
        harshest model).
        """
        d = self.directory(sync=False)
        d.append("log", b"a")
        d.sync("log")
        d.replace("meta", b"v1")
        d = self.crash(d)
        self.assertIsNone(d.read("log"))
        self.assertIsNone(d.read("meta"))


class MemoryDirectoryTests(CrashContract, SynchronousTestCase):
    """
    The in-memory fake.
    """

    def directory(self, sync: bool = True) -> MemoryDirectory:
        return MemoryDirectory(sync=sync)

    def crash(self, d: MemoryDirectory) -> MemoryDirectory:
        d.crash()
        return d

    def test_operations_recorded(self):
        """
        Syncs, replaces and removes are recorded in order.
        """
        d = self.directory()
        d.append("log", b"a")
        d.sync("log")
        d.sync("log")
        d.replace("meta", b"m")
        d.remove("meta")
        self.assertEqual(
            d.operations,
            [("sync", "log"), ("sync", "log"), ("replace", "meta"), ("remove", "meta")],
        )
        self.assertEqual(d.syncs("log"), 2)


class PowerCutDirectoryTests(CrashContract, SynchronousTestCase):
    """
    The file-backed fake.
    """

    def directory(self, sync: bool = True) -> PowerCutDirectory:
        d = PowerCutDirectory(os.path.abspath(self.mktemp()), sync=sync)
        self.addCleanup(d.close)
        return d

    def crash(self, d: PowerCutDirectory) -> PowerCutDirectory:
        d.power_cut()
        after = PowerCutDirectory(d.path, sync=d.synced)
        self.addCleanup(after.close)
        return after

    def test_real_files_after_power_cut(self):
        """
        The real directory holds exactly the durable files after a power
        cut, and later writes through the dead directory are ignored.
        """
        d = self.directory()
        d.append("log", b"kept")
        d.sync("log")
        d.append("log", b"lost")
        d.append("tmp", b"lost")
        d.power_cut()
        d.append("log", b"after the cut")
        d.sync("log")
        d.replace("meta", b"after the cut")
        self.assertEqual(os.listdir(d.path), ["log"])
        with open(os.path.join(d.path, "log"), "rb") as f:
            self.assertEqual(f.read(), b"kept")

    def test_existing_files_are_durable(self):
        """
        Files present when it is created count as durable.
        """
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        with open(os.path.join(path, "old"), "wb") as f:
            f.write(b"from before")
        d = PowerCutDirectory(path)
        d = self.crash(d)
        self.assertEqual(d.read("old"), b"from before")
