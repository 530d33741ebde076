# -*- test-case-name: test.unit.test_raft_machine -*-
"""
The pysyncobj side of the raft node: the L{ThrottleMachine} (a C{SyncObj}
whose one replicated method applies a L{freno.consensus.state} command), its
complete snapshots (L{SnapshotFile}), the settings (L{raft_settings}) and the
network-less transport of single-node mode (L{NoNetworkTransport}).

Replicated commands
===================

There is one C{@replicated} method, L{ThrottleMachine.apply_command}, taking
the plain dict of L{command_to_dict}. pysyncobj numbers replicated methods by
their sorted names and writes those numbers into the journal, so one stable
method (rather than one per operation) keeps old journals meaningful when an
operation is added. Applying is total: a malformed entry, or one that
L{freno.consensus.commands.validate} refuses (the bounds every command is
submitted with, e.g. a key over C{MAX_KEY_LENGTH}, from another version or
a forged frame), is logged and skipped on every node alike, because an
exception would stop pysyncobj from ever applying the entries after it.

Snapshots (docs/decisions.md, D29)
==================================

pysyncobj's log compaction calls our serializer synchronously (no fork: a
custom serializer disables it) with its own bookkeeping (the last two applied
log entries and the member list). L{SnapshotFile} writes that together with
L{ThrottleState.snapshot} as one JSON document, atomically, and on load
replaces the whole state. The same file is what a leader streams to a follower
that is too far behind, so a snapshot never carries a pickle of ours.

Private hooks (pysyncobj pinned to 0.3.17 in setup.py)
======================================================

    - C{SyncObj.__init__} stores its poller in C{self._poller} (made by
      C{pysyncobj.syncobj.createPoller}); L{ThrottleMachine} turns C{_poller}
      into a property that always answers with the L{ReactorPoller} it was
      given, so every socket pysyncobj makes is registered with the reactor.
    - C{_SyncObj__lastResponseTime} (leader's per-follower last answer, on
      pysyncobj's monotonic clock) gives L{ThrottleMachine.has_majority_lease}.
    - C{_SyncObj__pipeNotifier} owns a pipe that C{destroy()} never closes;
      L{ThrottleMachine.close_leftovers} closes it.
    - C{_SyncObj__raftElectionDeadline} (when a follower next stands for
      election): L{ThrottleMachine.elect_alone} sets it to 0 in a group of
      one, so the node elects itself at its first tick.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Dict, Optional, Sequence, Tuple

from pysyncobj import SyncObj, SyncObjConf, replicated
from pysyncobj.monotonic import monotonic
from pysyncobj.node import TCPNode
from pysyncobj.transport import Transport
from twisted.logger import Logger

from freno.consensus.commands import command_from_dict, validate
from freno.consensus.state import ThrottleState

#: A leader that has heard from no majority for this long steps down (and
#: stops claiming leadership at once, see L{ThrottleMachine.has_majority_lease}).
LEADER_LEASE = 1.5

#: pysyncobj settings; the comments say why a default was changed.
SETTINGS: Dict[str, Any] = dict(
    autoTick=False,  # ticks come from the reactor
    appendEntriesUseBatch=False,  # commit in ~1 ms, not at the next 100 ms batch
    connectionRetryTime=0.5,  # default 5 s: a node that dialled too early waited 5 s
    leaderFallbackTimeout=LEADER_LEASE,  # default 30 s
    commandsWaitLeader=False,  # default: queued forever without a leader
    raftMinTimeout=0.4,
    raftMaxTimeout=1.4,
    appendEntriesPeriod=0.1,
    connectionTimeout=3.5,
    useFork=False,  # never fork a reactor process
    maxBindRetries=1,  # a busy raft port fails start-up at once instead of spinning
    bindRetryTime=0.1,
    dynamicMembershipChange=False,
)

JOURNAL_NAME = "freno-raft.journal"
DUMP_NAME = "freno-raft.dump"
SNAPSHOT_FORMAT = 1


def _entry_to_json(entry) -> list:
    command, idx, term = entry
    return [base64.b64encode(bytes(command)).decode("ascii"), int(idx), int(term)]


def _entry_from_json(data) -> Tuple[bytes, int, int]:
    command, idx, term = data
    return (base64.b64decode(command), int(idx), int(term))


class SnapshotFile:
    """
    pysyncobj's C{serializer}/C{deserializer} pair for a L{ThrottleState}.

    @param state: the state written by L{serialize} and replaced by
        L{deserialize}.
    """

    _log = Logger()

    def __init__(self, state: ThrottleState) -> None:
        self.state = state

    def serialize(self, filename: str, raft_data: Sequence[Any]) -> None:
        """
        Write the complete state and pysyncobj's C{raft_data} (last applied
        entry, the one before, the members) to C{filename}.
        """
        last, previous, cluster = raft_data
        document = {
            "format": SNAPSHOT_FORMAT,
            "state": self.state.snapshot(),
            "last": _entry_to_json(last),
            "previous": _entry_to_json(previous),
            "cluster": sorted(node.id for node in cluster),
        }
        with open(filename, "w", encoding="utf-8") as f:
            json.dump(document, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        self._log.info(
            "raft snapshot written up to index {index}", index=document["last"][1]
        )

    def deserialize(self, filename: str):
        """
        Replace the state with the one in C{filename}; return pysyncobj's
        part (last entry, previous entry, members).

        @raise ValueError: the file is not a snapshot of ours (pysyncobj logs
            it and keeps the journal).
        """
        with open(filename, "r", encoding="utf-8") as f:
            document = json.load(f)
        if document.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown snapshot format in {filename}")
        fresh = ThrottleState()
        fresh.restore(document["state"])
        last = _entry_from_json(document["last"])
        previous = _entry_from_json(document["previous"])
        cluster = {TCPNode(address) for address in document["cluster"]}
        self.state.apps = fresh.apps
        self.state.skipped = fresh.skipped
        self._log.info("raft snapshot loaded up to index {index}", index=last[1])
        return (last, previous, cluster)


class NoNetworkTransport(Transport):
    """
    The transport of single-node mode: no listening socket, no peers. A lone
    node has nobody to talk to, and a port that unpickles whatever reaches it
    would only be an attack surface.
    """

    def send(self, node, message) -> bool:
        return False


def raft_settings(
    data_dir: str,
    snapshots: SnapshotFile,
    password: Optional[str],
    bind_address: Optional[str],
    **overrides: Any,
) -> SyncObjConf:
    """
    The C{SyncObjConf} for a freno node.

    @param data_dir: holds the journal (C{freno-raft.journal} and its
        C{.meta}) and the full dump (C{freno-raft.dump}).
    @param password: the group's secret (C{None} only in single-node mode).
    @param bind_address: C{host:port} to listen on (pysyncobj would otherwise
        listen on every interface).
    """
    settings = dict(SETTINGS)
    settings.update(overrides)
    return SyncObjConf(
        password=password or None,
        bindAddress=bind_address,
        journalFile=os.path.join(data_dir, JOURNAL_NAME),
        fullDumpFile=os.path.join(data_dir, DUMP_NAME),
        serializer=snapshots.serialize,
        deserializer=snapshots.deserialize,
        **settings,
    )


class ThrottleMachine(SyncObj):
    """
    The replicated L{ThrottleState}.

    @param poller: the L{ReactorPoller} every pysyncobj socket is given to.
    @param state: applied to by L{apply_command}, on the reactor thread.
    """

    _log = Logger()

    def __init__(
        self,
        self_address: str,
        partners: Sequence[str],
        conf: SyncObjConf,
        poller,
        state: ThrottleState,
        transport_class=None,
    ) -> None:
        self._reactor_poller = poller
        self._state = state
        self._lease_until = 0.0
        kwargs = {}
        if transport_class is not None:
            kwargs["transportClass"] = transport_class
        try:
            super().__init__(self_address, list(partners), conf, **kwargs)
        except BaseException:
            self.close_leftovers()
            raise

    # pysyncobj assigns self._poller = createPoller(...) in __init__; keep ours.
    @property
    def _poller(self):
        return self._reactor_poller

    @_poller.setter
    def _poller(self, value) -> None:
        pass

    @replicated
    def apply_command(self, data: Dict[str, Any]) -> Optional[str]:
        """
        Apply one command (L{command_to_dict} form) to the state. Returns
        C{None}, or an error message for an entry that could not be applied
        (the same on every node).
        """
        try:
            command = command_from_dict(data)
            validate(command)  # the same bounds as at submit, on every node
            self._state.apply(command)
        except Exception as e:
            self._log.error("raft entry not applied: {error}", error=str(e))
            return str(e) or type(e).__name__
        return None

    def elect_alone(self) -> None:
        """
        Stand for election at the next tick (a group of one only).

        pysyncobj starts every node as a follower that waits a randomised
        election timeout (C{raftMinTimeout}..C{raftMaxTimeout}, 0.4-1.4 s)
        before it stands, so that members of a real group do not all stand
        at once. A group of one has nobody to wait for or to split a vote
        with: its election is decided in the tick that starts it (its own
        vote is a majority), so the node is leader after that one tick, its
        journal applied in the same tick.

        @raise ValueError: the group has other members.
        """
        if self.otherNodes:
            raise ValueError("only a group of one may elect itself at once")
        self._SyncObj__raftElectionDeadline = 0.0

    def refresh_lease(self) -> None:
        """
        Recompute when this leader's lease ends: the time at which the
        answers it has from a majority become older than
        C{leaderFallbackTimeout} (pysyncobj's step-down rule). Called after
        every tick; between ticks the lease can only look older than it is.
        """
        if not self._isLeader():
            self._lease_until = 0.0
            return
        partners = self.otherNodes
        if not partners:
            self._lease_until = float("inf")
            return
        last = getattr(self, "_SyncObj__lastResponseTime", {})
        times = sorted((last.get(node, 0.0) for node in partners), reverse=True)
        needed = (len(partners) + 1) // 2  # partners that, with us, make a majority
        self._lease_until = times[needed - 1] + self.conf.leaderFallbackTimeout

    def has_majority_lease(self) -> bool:
        """
        Whether this node is leader and heard from a majority within
        L{LEADER_LEASE} seconds I{now}, not at the last tick. pysyncobj only
        checks this on a tick, and after a freeze (SIGSTOP) the reactor may
        serve queued HTTP requests before the first tick; this closes that
        gap. Cheap (it is on the check path): one clock read.
        """
        return self._isLeader() and monotonic() < self._lease_until

    def close_leftovers(self) -> None:
        """
        Close the pipe of pysyncobj's notifier, which C{destroy()} leaves
        open (the poller unregisters its duplicate).
        """
        notifier = getattr(self, "_SyncObj__pipeNotifier", None)
        if notifier is None:
            return
        for name in ("_PipeNotifier__pipeR", "_PipeNotifier__pipeW"):
            fd = getattr(notifier, name, None)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(notifier, name, None)
