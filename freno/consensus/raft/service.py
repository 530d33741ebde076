# -*- test-case-name: test.unit.test_raft,test.integration.test_raft,test.integration.test_node_edges,test.integration.test_raft_power_loss,test.integration.test_raft_handoff -*-
"""
L{RaftConsensusService}: freno's raft consensus, a pysyncobj group driven
from the Twisted reactor.

L{freno.tap} builds it unless C{BackendMySQLHost} is set. It reads
C{config.raft_bind} (this member, C{host:port}), C{config.raft_nodes} (the
bootstrap members, this one included unless it joins, C{raft_join};
empty for single-node mode; later members come from the raft log,
L{freno.consensus.raft.changes}), C{config.raft_data_dir} (required),
C{config.raft_password} (required for more than one member),
C{config.raft_listen_address} and C{config.raft_hosts_file}.

Integration model
=================

pysyncobj runs with C{autoTick=False} on the reactor thread, and nothing else.
Its sockets are registered with the reactor by
L{freno.consensus.raft.poller.ReactorPoller}; a C{LoopingCall} ticks every
L{TICK_INTERVAL} for raft's timers (elections, heartbeats, retries); and an
immediate extra tick (C{callLater(0)}, coalesced) follows every socket event
(which first syncs whatever the event wrote, so that acknowledgements leave
at once, see L{ThrottleMachine.flush_unsynced}) and every submitted command,
so a commit takes a few milliseconds on loopback instead of two timer
ticks. Every replicated state change (L{ThrottleMachine.apply_command})
therefore happens on the reactor thread, and readers need no locks. The price is a handful of private pysyncobj
hooks, listed in L{freno.consensus.raft.machine}; pysyncobj is pinned.

Durability
==========

A command is acknowledged only once its entry is synced on a majority
(single-node mode: on this node), and a member grants a vote only once the
term and vote are synced (docs/decisions.md, D50; how, in
L{freno.consensus.raft.machine}).
The storage is an L{IDurableDirectory} on C{RaftDataDir}
(L{FileDirectory}); tests inject others. If a sync fails, the member stops
acknowledging, is unhealthy and never leader until restarted.

Commands
========

Accepted on any member: a follower forwards to the leader (pysyncobj's
C{apply_command}). The Deferred fires once the entry is committed I{and
applied on this node}, so a client that reads this node after the answer sees
its change. It fails at once with L{NotLeaderError} when no reachable leader
is known, and with L{CommitTimeoutError} after L{COMMAND_TIMEOUT} seconds
(the outcome is then unknown: the entry may still commit later). Other raft
failures (the leader changed under the command) give L{ConsensusError}
(docs/decisions.md, D30).

Leadership
==========

L{is_leader} is raft's leadership I{and} a lease: the leader must have heard
from a majority within L{LEADER_LEASE} seconds, checked at the moment of the
call (see L{ThrottleMachine.has_majority_lease}); pysyncobj's own
C{leaderFallbackTimeout} (the same value) makes it step down on the next
tick (docs/decisions.md, D32). Observers are told after the tick that saw the
change.

A group of one (single-node mode) is leader when L{startService} returns:
it stands for election in the first tick, which C{startService} runs, instead
of after raft's randomised election timeout (L{ThrottleMachine.elect_alone}).
C{freno.tap} starts this service before the HTTP service, and twistd starts
every service before the reactor runs, so such a node never answers a check
with C{not leader} (it used to for 0.4-1.4 s after it began to serve; D49).

Decisions (docs/decisions.md)
=============================

    - C{force_leadership} changes L{is_leader} only (so the node probes, serves
      checks and answers C{/leader-check} 200). It does not let control
      commands run without a real raft leader: an uncommitted command would be
      lost, which is what raft is here to prevent. This is freno's observed
      behaviour (D33).
    - L{state_description} (C{/consensus/state}, C{/raft/state}) reports raft's
      real role even under C{force_leadership}, as freno does; C{IsLeader} in
      L{status} honours the flag, C{State} does not, so an operator can see
      that leadership is forced.
    - L{is_healthy}: leader with a lease, or follower connected to a known
      leader. A candidate, or a follower that lost its leader, is unhealthy.
    - C{RaftNodes} listing only this node counts as single-node mode (freno's
      node in that case never became leader, a trap rather than a feature;
      D34).
    - Expired throttles and skips are purged from the replicated state by
      the leader's L{PurgeExpired <freno.consensus.commands.PurgeExpired>}
      command (every L{PURGE_INTERVAL <freno.consensus.purge.PURGE_INTERVAL>}
      seconds, only when something expired; L{freno.consensus.purge}). A
      local purge would make nodes differ (a throttle with no ratio keeps an
      existing entry's ratio, expired or not); a replicated one carrying the
      leader's time does not (D55, superseding D35).
    - Commands answer with their L{Applied <freno.consensus.audit.Applied>}:
      the audit id assigned when the entry was applied on this node (D53).

Leadership hand-off (docs/handoff.md, D65-D67)
==============================================

L{transfer_leadership} hands leadership to an up-to-date follower
(L{freno.consensus.raft.handoff.Handoff}): commands are refused while it
runs, and it is bounded by L{HANDOFF_BOUND}. L{stop_after_handoff} does the
same before a leader stops (twistd's C{stopService},
L{freno.consensus.raft.stopping}). After a transfer the old leader keeps
serving checks for a short window (L{freno.consensus.raft.grace}):
L{is_leader} stays true while it follows the new leader, and
L{advertises_leadership} (C{/leader-check}) turns false for the last part
of it, so that HAProxy moves before the old leader stops answering.
"""

from __future__ import annotations

import itertools
from functools import partial
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from pysyncobj import FAIL_REASON
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from freno.config.model import Config
from freno.consensus.audit import AuditLog, EntryMeta
from freno.consensus.interface import (
    CommitTimeoutError,
    ConsensusError,
    ConsensusStatus,
    ControlStatus,
    IConsensusService,
    Member,
    NotLeaderError,
)
from freno.consensus.observers import LeadershipObservers
from freno.consensus.raft.disk import FileDirectory, IDurableDirectory
from freno.consensus.membership import IMembership
from freno.consensus.raft.changes import MembershipMethods
from freno.consensus.raft.grace import ServingGrace
from freno.consensus.raft.handoff import HANDOFF_BOUND, Handoff
from freno.consensus.raft.handoff_methods import HandoffMethods
from freno.consensus.raft.journal import JournalError
from freno.consensus.raft.membership import bootstrap_members
from freno.consensus.raft.resolver import default_resolver
from freno.consensus.raft.machine import (
    RESTART_HOLD,
    NoNetworkTransport,
    ThrottleMachine,
    raft_settings,
)
from freno.consensus.raft.poller import ReactorPoller
from freno.consensus.commands import Command, CommandMethods, command_to_dict
from freno.consensus.purge import PURGE_INTERVAL, ExpiryPurger
from freno.consensus.state import AppThrottle, Policy, ThrottleState
from freno.consensus.gauges import RaftGauges
from freno.consensus.transfer import ILeadershipTransfer
from freno.metrics.registry import Registry

#: Seconds between timer ticks (raft's timers are coarser than this).
TICK_INTERVAL = 0.05

#: Seconds a command may take to commit before it fails.
COMMAND_TIMEOUT = 5.0

_UNKNOWN_OUTCOME = (
    FAIL_REASON.LEADER_CHANGED,
    FAIL_REASON.DISCARDED,
    FAIL_REASON.UNKNOWN_OUTCOME,
)


class RaftStartError(Exception):
    """
    The raft node could not start (its port is taken, its address cannot be
    used, its data directory cannot be written). The message says which.
    """


def _members(config: Config) -> Tuple[str, List[str]]:
    """
    This member's address and its bootstrap partners' (de-duplicated, order
    kept). A joiner (C{RaftJoin}) need not be in C{RaftNodes}.

    @raise ValueError: the configuration cannot form a group.
    """
    self_address = config.raft_bind
    members: List[str] = []
    for member in config.raft_nodes:
        member = member.strip()
        if member and member not in members:
            members.append(member)
    if not members:
        return self_address, []
    if self_address not in members and not config.raft_join:
        raise ValueError(
            f"RaftBind {self_address!r} must be one of RaftNodes {members!r} "
            "(members are identified by these exact host:port strings), "
            "unless RaftJoin is set"
        )
    return self_address, [m for m in members if m != self_address]


@implementer(IConsensusService, IMembership, ILeadershipTransfer)
class RaftConsensusService(MembershipMethods, HandoffMethods, CommandMethods, Service):
    """
    A raft member holding the replicated L{ThrottleState}.

    @param reactor: provides C{IReactorTime} and C{IReactorFDSet}.
    @param config: see the module docstring for the fields read.
    @param force_leadership: C{--force-leadership}: L{is_leader} is always
        true (commands still need raft).
    @param registry: where the raft gauges and timers go.
    @param command_timeout: the commit bound, in seconds.
    @param tick_interval: seconds between timer ticks.
    @param raft_overrides: pysyncobj settings replacing
        L{freno.consensus.raft.machine.SETTINGS} entries (tests).
    @param directory: the storage (tests, benchmarks); default a
        L{FileDirectory} on C{RaftDataDir}, made at start.
    @param transport_class: pysyncobj's transport for a group (tests record
        messages with it); default
        L{freno.consensus.raft.peers.MemberTransport}. It must hold
        acknowledgements as that one does
        (L{freno.consensus.raft.transport.HoldUntilSynced}).
    @param purge_interval: seconds between the leader's purges of expired
        entries.
    @param resolver: finds members named by host name
        (L{freno.consensus.raft.resolver.IRaftResolver}); default a
        L{CachingResolver <freno.consensus.raft.resolver.CachingResolver>}
        on the reactor's name resolver (and C{RaftHostsFile} first, when
        set).
    @param handoff_bound: seconds a leadership hand-off may take.
    @param grace: the old leader's serving window after a hand-off
        (default: L{ServingGrace} with its default durations).
    @raise ValueError: no data directory, RaftBind missing from RaftNodes, or
        more than one member and no C{RaftPassword}.
    """

    _log = Logger()

    def __init__(
        self,
        reactor,
        config: Config,
        force_leadership: bool = False,
        registry: Optional[Registry] = None,
        command_timeout: float = COMMAND_TIMEOUT,
        tick_interval: float = TICK_INTERVAL,
        raft_overrides: Optional[Mapping[str, object]] = None,
        directory: Optional[IDurableDirectory] = None,
        transport_class: Optional[type] = None,
        purge_interval: float = PURGE_INTERVAL,
        resolver=None,
        handoff_bound: float = HANDOFF_BOUND,
        grace: Optional[ServingGrace] = None,
    ) -> None:
        if not config.raft_data_dir:
            raise ValueError("RaftDataDir is required: raft keeps its journal there")
        self._self_address, self._partners = _members(config)
        self._bootstrap = bootstrap_members(config.raft_nodes, self._self_address)
        self._resolver = resolver
        if self._partners and not config.raft_password:
            raise ValueError(
                "RaftPassword is required for a multi-node raft group: without it "
                "anyone who can reach the raft port can run code on every node"
            )
        self._reactor = reactor
        self._config = config
        self._force = force_leadership
        self._registry = registry if registry is not None else Registry()
        self._gauges = RaftGauges(self._registry)
        self._timeout = command_timeout
        self._tick_interval = tick_interval
        self._overrides = dict(raft_overrides or {})
        self._directory = directory
        self._transport_class = transport_class
        self._state = ThrottleState(audit=AuditLog(config.audit_log_size))
        self._observers = LeadershipObservers()
        self._purger = ExpiryPurger(
            reactor, lambda: self._state, self.submit, self._raft_leader, purge_interval
        )
        self._machine: Optional[ThrottleMachine] = None
        self._directory_in_use: Optional[IDurableDirectory] = None
        self._poller: Optional[ReactorPoller] = None
        self._loop: Optional[LoopingCall] = None
        self._loop_done: Optional[Deferred] = None
        self._soon = None
        self._pending: Dict[int, Tuple[Deferred, object, float]] = {}
        self._ids = itertools.count(1)
        self._was_leader = force_leadership
        self._last_leader = ""
        self._handoff_bound = handoff_bound
        self._handoff: Optional[Handoff] = None
        self._grace = grace if grace is not None else ServingGrace(reactor)
        self._grace_timer = None
        self._update_stats()

    # -- service -----------------------------------------------------------

    @property
    def single_node(self) -> bool:
        """
        Whether this is a group of one (no network at all).
        """
        return not self._partners

    @property
    def machine(self) -> Optional[ThrottleMachine]:
        """
        The running pysyncobj object (C{None} when stopped); for tests and
        diagnostics.
        """
        return self._machine

    def startService(self) -> None:
        """
        Open the journal, replay it, start listening and ticking. The first
        tick runs now; a group of one is leader when this returns.

        @raise RaftStartError: see the class.
        """
        data_dir = self._config.raft_data_dir
        try:
            directory = self._directory or FileDirectory(data_dir)
        except OSError as e:
            raise RaftStartError(f"cannot create RaftDataDir {data_dir!r}: {e}") from e
        if self._resolver is None and not self.single_node:
            self._resolver = default_resolver(self._reactor, self._config.raft_hosts_file)
        self._start_machine(directory)
        if self.single_node:
            self._machine.elect_alone()
        elif self._machine.hold_first_election_after_restart():
            self._log.info(
                "raft member restarted in term {term}: first election held {hold} s for the leader to reach it",
                term=self._machine.raftCurrentTerm,
                hold=RESTART_HOLD,
            )
        Service.startService(self)
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._reactor
        self._loop_done = self._loop.start(self._tick_interval, now=True)
        self._purger.start()

    def _start_machine(self, directory: IDurableDirectory) -> None:
        """
        Build the pysyncobj node on C{directory}: a member or a learner, as
        its log says (L{freno.consensus.raft.members_machine}).

        @raise RaftStartError: see the class.
        """
        data_dir = self._config.raft_data_dir
        self._state.restore({})  # the journal and snapshot rebuild it
        poller = ReactorPoller(self._reactor, self._after_socket_event)
        conf = raft_settings(
            data_dir,
            password=None if self.single_node else self._config.raft_password,
            bind_address=None if self.single_node else (
                self._config.raft_listen_address or self._self_address
            ),
            **self._overrides,
        )
        try:
            machine = ThrottleMachine(
                self._self_address,
                self._partners,
                conf,
                poller,
                self._state,
                transport_class=NoNetworkTransport if self.single_node else self._transport_class,
                directory=directory,
                bootstrap=self._bootstrap if not self.single_node else None,
                resolver=self._resolver,
            )
        except Exception as e:
            poller.close()
            raise RaftStartError(
                f"raft cannot start on {self._self_address!r} "
                f"(data in {data_dir!r}): {e!r}"
            ) from e
        self._poller = poller
        self._machine = machine
        self._directory_in_use = directory
        self._log.info(
            "raft {role} {address} started; members {members}",
            role="learner" if machine.is_learner else "member",
            address=self._self_address,
            members=list(machine.membership.current()),
        )

    def _stop_machine(self) -> None:
        """
        Destroy the pysyncobj node (journal flushed and closed) and its
        poller.
        """
        machine, self._machine = self._machine, None
        if machine is not None:
            try:
                machine.destroy()
            finally:
                machine.close_leftovers()
        if self._poller is not None:
            self._poller.close()
            self._poller = None

    def stopService(self) -> Deferred:
        """
        Fail pending commands, close sockets and the journal, and leave
        nothing registered with the reactor.
        """
        Service.stopService(self)
        self._purger.stop()
        if self._handoff is not None:
            self._handoff.stop()
        self._end_grace()
        done = self._loop_done if self._loop_done is not None else succeed(None)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = self._loop_done = None
        if self._soon is not None and self._soon.active():
            self._soon.cancel()
        self._soon = None
        self._stop_waits()
        for cid in list(self._pending):
            self._finish(cid, ConsensusError("raft is shutting down"))
        self._stop_machine()
        self._observe()
        self._log.info("raft member {address} stopped", address=self._self_address)
        return done.addCallback(lambda _: None)

    # -- ticking -----------------------------------------------------------

    def _after_socket_event(self) -> None:
        machine = self._machine
        if machine is not None:
            try:
                machine.flush_unsynced()
            except JournalError:
                pass  # logged once, critically, when the storage failed
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        if self._soon is None and self._machine is not None:
            self._soon = self._reactor.callLater(0, self._tick_soon)

    def _tick_soon(self) -> None:
        self._soon = None
        self._tick()

    def _tick(self) -> None:
        machine = self._machine
        if machine is None:
            return
        again = False
        try:
            again = machine.doTick(0.0)
        except JournalError:
            pass  # logged once, critically, when the storage failed
        except Exception:
            self._log.failure("raft tick failed")
        machine.refresh_lease()
        if again:
            self._schedule_tick()
        if machine.is_learner and self._self_address in machine.committed_members():
            self._promote()
            return
        if self._handoff is not None:
            try:
                self._handoff.step()
            except Exception:
                self._log.failure("leadership hand-off step failed")
        try:
            self._observe()
        except Exception:
            self._log.failure("raft leadership observation failed")

    def _observe(self) -> None:
        leader_now = self.is_leader()
        if leader_now != self._was_leader:
            self._was_leader = leader_now
            self._log.info(
                "raft member {address} is_leader={is_leader}",
                address=self._self_address,
                is_leader=leader_now,
            )
            self._observers.notify(leader_now)
        leader = self.leader()
        if leader != self._last_leader:
            self._last_leader = leader
            if leader:
                self._gauges.leader_changes.inc()
                self._log.info(
                    "raft member {address} sees leader {leader}",
                    address=self._self_address,
                    leader=leader,
                )
        self._update_stats()

    def _update_stats(self) -> None:
        machine = self._machine
        self._gauges.update(
            raft_leader=self._raft_leader(),
            healthy=self.is_healthy(),
            leader=self._last_leader,
            is_leader=self.is_leader(),
            term=None if machine is None else machine.raftCurrentTerm,
        )

    # -- commands ----------------------------------------------------------

    def _submit(self, command: Command) -> Deferred:
        machine = self._machine
        if machine is None:
            return fail(NotLeaderError("raft is not running"))
        if self._handoff is not None:
            return fail(NotLeaderError("leadership hand-off in progress"))
        leader = machine._getLeader()
        if leader is None:
            return fail(NotLeaderError("no raft leader"))
        if leader == machine.selfNode:
            if not machine.has_majority_lease():
                return fail(NotLeaderError("raft leader without a majority"))
        elif not machine.isNodeConnected(leader):
            return fail(NotLeaderError(f"raft leader {leader.id} unreachable"))
        cid = next(self._ids)
        d = Deferred(canceller=lambda _: self._forget(cid))
        timer = self._reactor.callLater(self._timeout, self._expire, cid)
        self._pending[cid] = (d, timer, self._reactor.seconds())
        machine.apply_command(command_to_dict(command), callback=partial(self._on_result, cid))
        self._schedule_tick()
        return d

    def _forget(self, cid: int) -> None:
        entry = self._pending.pop(cid, None)
        if entry is not None and entry[1].active():
            entry[1].cancel()

    def _expire(self, cid: int) -> None:
        self._finish(
            cid,
            CommitTimeoutError(
                f"not committed within {self._timeout:g}s (it may still be applied)"
            ),
        )

    def _finish(self, cid: int, error: Optional[Exception], result=None) -> None:
        entry = self._pending.pop(cid, None)
        if entry is None:
            return  # already answered (timed out, cancelled, or shut down)
        d, timer, started = entry
        if timer.active():
            timer.cancel()
        if error is None:
            self._gauges.commit_latency.observe(self._reactor.seconds() - started)
            d.callback(result)
        else:
            d.errback(error)

    def _on_result(self, cid: int, result, reason) -> None:
        if reason == FAIL_REASON.SUCCESS:
            if isinstance(result, str):
                self._finish(cid, ConsensusError(result))
            else:
                self._finish(cid, None, result)
        elif reason in (FAIL_REASON.MISSING_LEADER, FAIL_REASON.NOT_LEADER):
            self._finish(cid, NotLeaderError("no raft leader"))
        elif reason in _UNKNOWN_OUTCOME:
            self._finish(
                cid,
                ConsensusError("raft leader changed; the command may or may not be applied"),
            )
        elif reason == FAIL_REASON.QUEUE_FULL:
            self._finish(cid, ConsensusError("raft command queue full"))
        else:
            self._finish(cid, ConsensusError(f"raft refused the command ({reason})"))

    # -- state and leadership ----------------------------------------------

    def throttled_apps(self) -> Mapping[str, AppThrottle]:
        return self._state.apps

    def skipped_hosts(self) -> Mapping[str, float]:
        return self._state.skipped

    def policies(self) -> Mapping[str, Policy]:
        return self._state.policies

    def skip_meta(self) -> Mapping[str, EntryMeta]:
        return self._state.skip_meta

    def audit_log(self, since: int, limit: int) -> Deferred:
        return succeed(self._state.audit.page(since, limit))

    def control_status(self) -> ControlStatus:
        leader = self.leader()
        members = [Member(self._self_address, True, leader == self._self_address, True)]
        machine = self._machine
        nodes = {n.id: n for n in machine.otherNodes} if machine is not None else {}
        partners = (
            [m for m in machine.membership.current() if m != self._self_address]
            if machine is not None
            else self._partners
        )
        for partner in partners:
            node = nodes.get(partner)
            reachable = machine.isNodeConnected(node) if node is not None else None
            members.append(Member(partner, False, leader == partner, reachable))
        return ControlStatus(
            backend="single" if self.single_node else "raft",
            term=self.term() if machine is not None else None,
            members=tuple(members),
        )

    def _raft_leader(self) -> bool:
        """
        Whether this node leads and may answer from its state: raft leader
        with a majority lease, its storage sound, and its own term's first
        entry applied (so every command a previous leader acknowledged is in
        its state; D89).
        """
        machine = self._machine
        return machine is not None and machine.has_majority_lease() and machine.applied_own_term()

    def is_leader(self) -> bool:
        if self._force or self._raft_leader():
            return True
        grace = self._grace
        return grace.open and grace.serving(self._following())

    def leader(self) -> str:
        machine = self._machine
        if machine is None:
            return ""
        node = machine._getLeader()
        if node is None:
            return ""
        if node == machine.selfNode and not machine.has_majority_lease():
            return ""
        return node.id

    def state_description(self) -> str:
        machine = self._machine
        if machine is None:
            return "Shutdown"
        if machine.has_majority_lease():
            return "Leader"
        if machine.is_learner:
            return "Learner"
        if getattr(machine, "_SyncObj__raftState", 0) == 1:
            return "Candidate"
        return "Follower"

    def is_healthy(self) -> bool:
        machine = self._machine
        if machine is None or machine.journal.failed is not None or machine.is_learner:
            return False
        if machine.has_majority_lease():
            return True
        node = machine._getLeader()
        return (
            node is not None
            and node != machine.selfNode
            and machine.isNodeConnected(node)
        )

    def term(self) -> int:
        """
        The current raft term (0 when stopped).
        """
        machine = self._machine
        return machine.raftCurrentTerm if machine is not None else 0

    def status(self) -> ConsensusStatus:
        return ConsensusStatus(
            ServiceID=self._self_address,
            Healthy=self.is_healthy(),
            IsLeader=self.is_leader(),
            Leader=self.leader(),
            State=self.state_description(),
        )

    def add_leadership_observer(self, observer: Callable[[bool], None]) -> None:
        self._observers.add(observer)

    def remove_leadership_observer(self, observer: Callable[[bool], None]) -> None:
        self._observers.remove(observer)
