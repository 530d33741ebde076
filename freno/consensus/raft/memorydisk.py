# -*- test-case-name: test.unit.test_raft_disk -*-
"""
Fakes of L{IDurableDirectory} that model a power cut: what was synced
survives, everything else is lost.

    - L{MemoryDirectory}: all in memory, for unit tests. It keeps the bytes
      reads see (the page cache) apart from the bytes that are durable, and
      L{MemoryDirectory.crash} keeps only the durable ones.
    - L{PowerCutDirectory}: a real directory (so pysyncobj, which checks
      that its snapshot file exists with C{os.path.isfile}, sees real files)
      shadowed by a L{MemoryDirectory} that tracks what is durable.
      L{PowerCutDirectory.power_cut} rewrites the real directory to the
      durable image and ignores every later write: the machine is off. A
      new L{PowerCutDirectory} on the same path is the machine after the
      reboot.

The model is deliberately the harshest a disk is allowed to be: nothing that
was not synced survives. A real disk usually keeps more (the kernel writes
dirty pages back within about 30 s), which is exactly why killing processes
cannot show what a power cut loses.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from zope.interface import implementer

from freno.consensus.raft.disk import FileDirectory, IDurableDirectory


@implementer(IDurableDirectory)
class MemoryDirectory:
    """
    An in-memory L{IDurableDirectory}.

    @param sync: C{False} models writes that are never synced (the
        behaviour before D50): nothing written becomes durable.
    @ivar files: name to content as reads see it.
    @ivar durable: name to the content a crash keeps.
    @ivar operations: C{(operation, name)} for every C{sync}, C{replace} and
        C{remove}, in order (tests count syncs and check their order).
    """

    def __init__(self, sync: bool = True) -> None:
        self.synced = sync
        self.files: Dict[str, bytearray] = {}
        self.durable: Dict[str, bytes] = {}
        self.operations: List[Tuple[str, str]] = []

    def read(self, name: str) -> Optional[bytes]:
        content = self.files.get(name)
        return None if content is None else bytes(content)

    def append(self, name: str, data: bytes) -> None:
        self.files.setdefault(name, bytearray()).extend(data)

    def truncate(self, name: str, size: int) -> None:
        del self.files[name][size:]

    def sync(self, name: str) -> None:
        self.operations.append(("sync", name))
        if self.synced:
            self.durable[name] = bytes(self.files[name])

    def replace(self, name: str, data: bytes) -> None:
        self.operations.append(("replace", name))
        self.files[name] = bytearray(data)
        if self.synced:
            self.durable[name] = bytes(data)

    def remove(self, name: str) -> None:
        self.operations.append(("remove", name))
        self.files.pop(name, None)
        if self.synced:
            self.durable.pop(name, None)

    def close(self) -> None:
        pass

    def syncs(self, name: str) -> int:
        """
        How many times C{name} was synced.
        """
        return self.operations.count(("sync", name))

    def crash(self) -> None:
        """
        Lose power: every file goes back to its durable content, and files
        that never became durable disappear.
        """
        self.files = {name: bytearray(data) for name, data in self.durable.items()}


@implementer(IDurableDirectory)
class PowerCutDirectory:
    """
    A real directory whose power can be cut (see the module docstring).
    Whatever is in C{path} when it is created counts as durable.

    @param path: the directory (created if missing).
    @param sync: as L{MemoryDirectory}'s.
    """

    def __init__(self, path: str, sync: bool = True) -> None:
        self.path = path
        self.synced = sync
        self._real = FileDirectory(path, sync=sync)
        self._model = MemoryDirectory(sync=sync)
        self._off = False
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isfile(full):
                with open(full, "rb") as f:
                    data = f.read()
                self._model.files[name] = bytearray(data)
                self._model.durable[name] = data

    @property
    def operations(self) -> List[Tuple[str, str]]:
        """
        The model's record of syncs, replaces and removes.
        """
        return self._model.operations

    def read(self, name: str) -> Optional[bytes]:
        if self._off:
            return self._model.read(name)
        return self._real.read(name)

    def append(self, name: str, data: bytes) -> None:
        if not self._off:
            self._real.append(name, data)
            self._model.append(name, data)

    def truncate(self, name: str, size: int) -> None:
        if not self._off:
            self._real.truncate(name, size)
            self._model.truncate(name, size)

    def sync(self, name: str) -> None:
        if not self._off:
            self._real.sync(name)
            self._model.sync(name)

    def replace(self, name: str, data: bytes) -> None:
        if not self._off:
            self._real.replace(name, data)
            self._model.replace(name, data)

    def remove(self, name: str) -> None:
        if not self._off:
            self._real.remove(name)
            self._model.remove(name)

    def close(self) -> None:
        self._real.close()

    def power_cut(self) -> None:
        """
        Keep only what was synced, on the real disk too, and ignore every
        write from now on.
        """
        self._off = True
        self._real.close()
        self._model.crash()
        for name in os.listdir(self.path):
            full = os.path.join(self.path, name)
            if os.path.isfile(full) and name not in self._model.files:
                os.unlink(full)
        for name, data in self._model.files.items():
            with open(os.path.join(self.path, name), "wb") as f:
                f.write(data)
