# -*- test-case-name: test.unit.test_raft_disk -*-
"""
Where a raft member's files live, and when they become durable.

L{IDurableDirectory} is the seam between the raft storage (the journal, the
term and vote, the snapshot) and the disk. Its contract is the one a power
cut enforces: what was written is visible to later reads at once, but only
survives a crash once it was I{synced}:

    - L{IDurableDirectory.append} and L{IDurableDirectory.truncate} change a
      file in the page cache only; L{IDurableDirectory.sync} makes the file's
      content and size durable (and, for a file created since the last sync,
      its directory entry);
    - L{IDurableDirectory.replace} and L{IDurableDirectory.remove} are
      durable when they return: C{replace} writes a temporary file, syncs
      it, renames it over the old one and syncs the directory, so a crash
      leaves either the old content or the new, never a mix or an empty
      file.

L{FileDirectory} is the real implementation (C{fdatasync}, C{fsync} of the
directory). Its C{sync=False} mode skips every sync: the behaviour before
durable storage (docs/decisions.md, D50), kept for the benchmark baseline
and for the tests that show what a power cut then loses. The in-memory fake, and a file-backed one that can
simulate a power cut, are in L{freno.consensus.raft.memorydisk}.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Set

from zope.interface import Attribute, Interface, implementer


class IDurableDirectory(Interface):
    """
    A flat directory of files that survive a crash only as far as they were
    synced. Names are plain file names (no separators).
    """

    synced = Attribute(
        "Whether this directory really syncs (C{False}: nothing written "
        "through it is promised to survive a power cut)."
    )

    def read(name: str) -> Optional[bytes]:
        """
        The whole content of C{name} as reads see it now (synced or not), or
        C{None} if there is no such file.
        """

    def append(name: str, data: bytes) -> None:
        """
        Append C{data} to C{name}, creating it if needed. Not durable until
        L{sync}.
        """

    def truncate(name: str, size: int) -> None:
        """
        Cut C{name} (which exists) to C{size} bytes. Not durable until
        L{sync}.
        """

    def sync(name: str) -> None:
        """
        Make everything appended to or truncated from C{name} so far
        durable, with its directory entry if it is new.
        """

    def replace(name: str, data: bytes) -> None:
        """
        Atomically and durably give C{name} the content C{data} (temporary
        file, sync, rename, sync of the directory).
        """

    def remove(name: str) -> None:
        """
        Durably remove C{name} (nothing happens if it does not exist).
        """

    def close() -> None:
        """
        Release open files. The directory stays usable: files are reopened
        when next needed.
        """


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@implementer(IDurableDirectory)
class FileDirectory:
    """
    L{IDurableDirectory} on a real directory.

    Appends go through one cached C{O_APPEND} descriptor per file, so a
    group of appends costs one C{fdatasync} in L{sync}. The directory is
    created if missing.

    @param path: the directory.
    @param sync: C{False} skips every C{fdatasync}/C{fsync} (unsafe: see the
        module docstring).
    """

    def __init__(self, path: str, sync: bool = True) -> None:
        self.path = path
        self.synced = sync
        self._fds: Dict[str, int] = {}
        self._new: Set[str] = set()
        os.makedirs(path, exist_ok=True)

    def _path(self, name: str) -> str:
        if not name or os.sep in name or name in (".", ".."):
            raise ValueError(f"not a plain file name: {name!r}")
        return os.path.join(self.path, name)

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is None:
            path = self._path(name)
            if not os.path.exists(path):
                self._new.add(name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._fds[name] = fd
        return fd

    def _sync_directory(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _forget(self, name: str) -> None:
        fd = self._fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def read(self, name: str) -> Optional[bytes]:
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def append(self, name: str, data: bytes) -> None:
        _write_all(self._fd(name), data)

    def truncate(self, name: str, size: int) -> None:
        os.ftruncate(self._fd(name), size)

    def sync(self, name: str) -> None:
        if not self.synced:
            return
        fd = self._fd(name)
        os.fdatasync(fd)
        if name in self._new:
            self._sync_directory()
            self._new.discard(name)

    def replace(self, name: str, data: bytes) -> None:
        path = self._path(name)
        temporary = path + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            if self.synced:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._forget(name)
        os.replace(temporary, path)
        self._new.discard(name)
        if self.synced:
            self._sync_directory()

    def remove(self, name: str) -> None:
        self._forget(name)
        self._new.discard(name)
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            return
        if self.synced:
            self._sync_directory()

    def close(self) -> None:
        for name in list(self._fds):
            self._forget(name)
