# -*- test-case-name: test.unit.test_raft_machine,test.unit.test_raft_durability -*-
"""
The pysyncobj side of the raft node: the L{ThrottleMachine} (a C{SyncObj}
whose one replicated method applies a L{freno.consensus.state} command, with
durable storage) and its settings (L{raft_settings}).

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

Durability (docs/decisions.md, D50)
===================================

The member's storage is an L{IDurableDirectory}: the log, term and vote in a
L{DurableJournal}, snapshots in a L{SnapshotStore}
(L{freno.consensus.raft.snapshot}). Raft's promises are kept this way:

    - a follower answers C{append_entries}, and any member grants or asks
      for a vote, only once the entries and the term/vote are synced: the
      answers wait in the transport (L{HoldUntilSynced
      <freno.consensus.raft.transport.HoldUntilSynced>}) for the journal's flush, which
      comes right after the socket event that wrote them
      (L{ThrottleMachine.flush_unsynced}) or at the next tick;
    - a leader counts its own log toward the commit majority (and so
      answers a client) only after a flush: L{ThrottleMachine.doTick}
      flushes I{before} pysyncobj's tick, which is where pysyncobj counts,
      and again after it, for what the tick appended. Single-node mode
      commits the same way: a command is applied, and answered, only after
      its entry was synced;
    - group commit: every entry appended between two flushes costs one
      C{fdatasync}; a tick that synced something asks for another tick at
      once (L{ThrottleMachine.doTick} returns C{True}), so a commit waits
      for a sync, not for the next timer tick;
    - at start, a log compaction that a crash interrupted (snapshot
      written, log not yet rewritten) is finished
      (L{DurableJournal.finish_compaction}) before pysyncobj looks at the
      log, which it would otherwise throw away whole.

Private hooks (pysyncobj pinned to 0.3.17 in setup.py)
======================================================

(The membership hooks are listed in L{freno.consensus.raft.members_machine}
and L{freno.consensus.raft.peers}.)

    - C{SyncObj.__init__} stores its poller in C{self._poller} (made by
      C{pysyncobj.syncobj.createPoller}); L{ThrottleMachine} turns C{_poller}
      into a property that always answers with the L{ReactorPoller} it was
      given, so every socket pysyncobj makes is registered with the reactor.
    - C{SyncObj.__init__} stores its journal in C{self.__raftLog}
      (C{_SyncObj__raftLog}, made by C{pysyncobj.journal.createJournal}) and
      its snapshot serializer in C{self.__serializer} (C{_SyncObj__serializer},
      a C{pysyncobj.serializer.Serializer}); both are turned into properties
      answering with our L{DurableJournal} and L{SnapshotStore}
      (C{journalFile} is C{None}, so what pysyncobj builds and we ignore is
      an empty C{MemoryJournal}). Their methods are the ones C{SyncObj}
      calls on those objects. C{conf.fullDumpFile} stays the real snapshot
      path: pysyncobj loads the snapshot at start-up only if
      C{os.path.isfile} finds it there.
    - C{doTick} (public) is wrapped: pysyncobj counts the leader's log
      toward commits in C{_onTick}, which C{doTick} calls, and nowhere else.
      C{autoTick} must stay off.
    - C{_SyncObj__lastResponseTime} (leader's per-follower last answer, on
      pysyncobj's monotonic clock) gives L{ThrottleMachine.has_majority_lease}.
    - C{_SyncObj__pipeNotifier} owns a pipe that C{destroy()} never closes;
      L{ThrottleMachine.close_leftovers} closes it.
    - C{_SyncObj__raftElectionDeadline} (when a follower next stands for
      election): L{ThrottleMachine.elect_alone} sets it to 0 in a group of
      one, so the node elects itself at its first tick.
    - The messages L{HoldUntilSynced <freno.consensus.raft.transport.HoldUntilSynced>} holds are named by their C{type}
      field (C{next_node_idx}, C{response_vote}, C{request_vote}).
    - C{_applyCommand(command, callback, commandType)} is where every
      command enters pysyncobj (a local one, or one a follower forwarded);
      L{ThrottleMachine} refuses them there with C{NOT_LEADER} through
      C{__callErrCallback} while L{ThrottleMachine.refusing_commands} is set
      (a leadership hand-off, L{freno.consensus.raft.handoff}).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.monotonic import monotonic
from twisted.logger import Logger

from freno.consensus.audit import Applied
from freno.consensus.commands import command_from_dict, validate
from freno.consensus.raft.disk import FileDirectory, IDurableDirectory
from freno.consensus.raft.journal import DurableJournal
from freno.consensus.raft.members_machine import DynamicMembers
from freno.consensus.raft.peers import MemberTransport
from freno.consensus.raft.snapshot import DUMP_NAME, SnapshotFile, SnapshotStore
from freno.consensus.raft.transport import NoNetworkTransport
from freno.consensus.state import ThrottleState

__all__ = [
    "DUMP_NAME",
    "LEADER_LEASE",
    "NoNetworkTransport",
    "SETTINGS",
    "SnapshotFile",
    "ThrottleMachine",
    "raft_settings",
]

#: A leader that has heard from no majority for this long steps down (and
#: stops claiming leadership at once, see L{ThrottleMachine.has_majority_lease}).
LEADER_LEASE = 1.5

#: Seconds a member restarted into a group waits, beyond its election
#: timeout, before it first stands (D87): long enough for a live leader to
#: dial it (C{connectionRetryTime}), finish the handshake and send it a
#: heartbeat (C{appendEntriesPeriod}), with room for a loaded machine.
RESTART_HOLD = 1.0

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
    dynamicMembershipChange=True,  # members change through the log (D71)
)


def _not_called(*args: Any) -> None:
    raise AssertionError("snapshots are written and read by SnapshotStore")


def raft_settings(
    data_dir: str,
    password: Optional[str],
    bind_address: Optional[str],
    **overrides: Any,
) -> SyncObjConf:
    """
    The C{SyncObjConf} for a freno node.

    @param data_dir: holds the snapshot (C{freno-raft.dump}); pysyncobj
        checks it exists there at start-up. The journal is ours
        (L{DurableJournal}), so C{journalFile} is C{None}.
    @param password: the group's secret (C{None} only in single-node mode).
    @param bind_address: C{host:port} to listen on (pysyncobj would otherwise
        listen on every interface).
    """
    settings = dict(SETTINGS)
    settings.update(overrides)
    return SyncObjConf(
        password=password or None,
        bindAddress=bind_address,
        journalFile=None,
        fullDumpFile=os.path.join(data_dir, DUMP_NAME),
        # Set so that pysyncobj hands snapshots no pickled __dict__ of its
        # own and never forks; SnapshotStore replaces the code calling them.
        serializer=_not_called,
        deserializer=_not_called,
        **settings,
    )


class ThrottleMachine(DynamicMembers, SyncObj):
    """
    The replicated L{ThrottleState}, stored durably (see the module
    docstring), with its members taken from the log
    (L{freno.consensus.raft.members_machine}).

    @param partners: the other bootstrap members (C{RaftNodes} without this
        node), used only when C{bootstrap} is not given.
    @param poller: the L{ReactorPoller} every pysyncobj socket is given to.
    @param state: applied to by L{apply_command}, on the reactor thread.
    @param transport_class: pysyncobj's transport; default
        L{MemberTransport} (single-node mode: L{NoNetworkTransport}).
    @param directory: the member's storage; default a L{FileDirectory} on
        the directory of C{conf.fullDumpFile}.
    @param bootstrap: the bootstrap member list (C{RaftNodes}, which does
        not list a joiner); default this node and C{partners}.
    @param resolver: finds members' addresses
        (L{freno.consensus.raft.resolver.IRaftResolver}); C{None}:
        pysyncobj's own cache.
    @raise JournalError: the stored journal cannot be read.
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
        directory: Optional[IDurableDirectory] = None,
        bootstrap: Optional[Sequence[str]] = None,
        resolver=None,
    ) -> None:
        self._reactor_poller = poller
        self._state = state
        self._lease_until = 0.0
        self.resolver = resolver
        #: Set during a leadership hand-off: every new command is refused.
        self.refusing_commands = False
        if directory is None:
            directory = FileDirectory(os.path.dirname(conf.fullDumpFile))
        if bootstrap is None:
            bootstrap = [self_address] + [p for p in partners if p != self_address]
        try:
            self._journal = DurableJournal.open(directory)
            snapshot_file = SnapshotFile(state)
            self._snapshots = SnapshotStore(directory, snapshot_file, conf.logCompactionBatchSize)
            boundary = self._snapshots.boundary()
            if boundary is not None:
                self._journal.finish_compaction(*boundary)
            self_node, others = self._start_members(
                self_address, bootstrap, directory, snapshot_file
            )
            super().__init__(
                self_node,
                others,
                conf,
                transportClass=transport_class or MemberTransport,
            )
            self._deny_utility_changes()
        except BaseException:
            self.close_leftovers()
            directory.close()
            raise

    # pysyncobj assigns self._poller = createPoller(...) in __init__; keep ours.
    @property
    def _poller(self):
        return self._reactor_poller

    @_poller.setter
    def _poller(self, value) -> None:
        pass

    # pysyncobj assigns self.__raftLog = createJournal(None) (a MemoryJournal)
    # in __init__; keep ours.
    @property
    def _SyncObj__raftLog(self) -> DurableJournal:
        return self._journal

    @_SyncObj__raftLog.setter
    def _SyncObj__raftLog(self, value) -> None:
        pass

    # pysyncobj assigns self.__serializer = Serializer(...) in __init__; keep ours.
    @property
    def _SyncObj__serializer(self) -> SnapshotStore:
        return self._snapshots

    @_SyncObj__serializer.setter
    def _SyncObj__serializer(self, value) -> None:
        pass

    @property
    def journal(self) -> DurableJournal:
        """
        The member's log, term and vote.
        """
        return self._journal

    def flush_unsynced(self) -> bool:
        """
        Sync what pysyncobj wrote since the last flush, if anything, so
        that the acknowledgements it holds leave now. The service calls
        this after every socket event: the messages read in one go (a burst
        of entries from the leader) still cost one sync, and a follower's
        answer does not wait for the next tick. Returns whether it synced.

        @raise JournalError: the storage failed.
        """
        if not self._journal.unsynced:
            return False
        return self._journal.flush()

    def doTick(self, timeToWait: float = 0.0) -> bool:
        """
        Flush the journal (so pysyncobj counts only synced entries of ours
        toward a commit, and held acknowledgements go out), run pysyncobj's
        tick, and flush what it appended.

        @return: whether the second flush synced something: the caller
            should tick again at once, so that a leader counts those entries
            (a follower's acknowledgement would also trigger a tick; a
            single node has no followers).
        @raise JournalError: the storage failed; nothing more is
            acknowledged.
        """
        self._journal.flush()
        super().doTick(timeToWait)
        return self._journal.flush()

    def _applyCommand(self, command, callback, commandType=None) -> None:
        # Every command, local or forwarded by a follower, enters here.
        if self.refusing_commands:
            self._SyncObj__callErrCallback(FAIL_REASON.NOT_LEADER, callback)
            return
        super()._applyCommand(command, callback, commandType)

    @replicated
    def apply_command(self, data: Dict[str, Any]) -> Union[Applied, str]:
        """
        Apply one command (L{command_to_dict} form) to the state. Returns
        its L{Applied} (handed to the local caller only, never sent), or an
        error message for an entry that could not be applied (the same on
        every node).
        """
        try:
            command = command_from_dict(data)
            validate(command)  # the same bounds as at submit, on every node
            return self._state.apply(command)
        except Exception as e:
            self._log.error("raft entry not applied: {error}", error=str(e))
            return str(e) or type(e).__name__

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

    def hold_first_election_after_restart(self) -> bool:
        """
        Delay this member's first election by L{RESTART_HOLD} if it was
        already in a group (its journal holds a term) and has other members
        (D87).

        pysyncobj has no pre-vote: a member that restarts while the group
        has a leader stands as soon as its election timeout (0.4-1.4 s)
        passes without a heartbeat. The member with the greater address
        dials (pysyncobj's rule), so a restarted member may wait up to
        C{connectionRetryTime} for the leader to reach it; if it stands
        first, its higher term deposes a healthy leader, and clients see
        C{not leader} for a moment during a rolling restart. Delaying an
        election is always safe; it only costs a group whose every member
        restarts at once this much more before its first leader.

        @return: whether the election was delayed.
        """
        if not self.otherNodes or self.raftCurrentTerm <= 0:
            return False
        remaining = max(0.0, self._SyncObj__raftElectionDeadline - monotonic())
        self._SyncObj__raftElectionDeadline = monotonic() + remaining + RESTART_HOLD
        return True

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
        gap. A member whose storage failed is never leader (it can no
        longer commit). Cheap (it is on the check path): one clock read.
        """
        return (
            self._isLeader()
            and monotonic() < self._lease_until
            and self._journal.failed is None
        )

    def applied_own_term(self) -> bool:
        """
        Whether this node, as leader, has applied the no-op entry pysyncobj
        appends when it is elected (raft's rule for a new leader, section 8
        of the raft paper; D89).

        Until that entry commits, a new leader does not know which entries
        of earlier terms are committed: the old leader may have committed
        and acknowledged a command (a throttle, a skip) that this node holds
        in its log but has not applied, since followers learn the commit
        index only with the next message. Its state can then lack an
        acknowledged command, and a check answered from it could say "go"
        to an app an operator has just throttled. The no-op commits within
        one round trip to a majority.
        """
        noop = self._SyncObj__noopIDx
        return noop is not None and self._SyncObj__raftLastApplied >= noop

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
