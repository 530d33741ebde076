# -*- test-case-name: test.unit.test_consensus_mysql,test.unit.test_consensus_mysql_control -*-
"""
L{MySQLBackendConsensus}: freno's MySQL-table alternative to raft. Leadership
is one row per domain in C{service_election}; throttled apps and skipped hosts
live in the C{throttled_apps} and C{skipped_hosts} tables, which every node
polls into a local L{ThrottleState}.

L{freno.tap} builds it, instead of raft, when C{BackendMySQLHost} is set. It
is a twisted C{Service}. C{store} replaces the database (an L{IBackendStore},
e.g. the in-memory fake); otherwise the C{BackendMySQL*} settings are used
(L{MySQLBackendStore}, adbapi + PyMySQL). The extra public method
L{MySQLBackendConsensus.shared_domain_services} serves the shared-domain
health collection (L{freno.consensus.mysql.shared_domain}).

Identity (as freno): the domain is C{Domain}, or C{DataCenter:Environment};
the service id is C{hostname:ListenPort}.

Schedules (freno's, configurable for tests): an election round every 1 s
(freno's takeover statement with a 5 s lease, then the leadership read, in one
round trip); a health round every 2 s (register this node, then read this
domain's healthy services and the shared-domain leaders, cached for
L{status}: no query per request); a state poll every 10 s and whenever
the node is about to become leader; local purge of expired entries every 5 s.
Ours in addition: the change counter (L{freno.consensus.mysql.control_tables})
read every 0.25 s, with a state poll whenever it moved, so a command
acknowledged by any node takes effect on every node (the leader's C{/check}
included) within about a quarter of a second; and, on the leader, every
minute, the deletion of rows that expired more than a minute ago (the MySQL
form of the raft leader's C{PurgeExpired}: the tables stay bounded).

Audit and policies: every command carrying an audit context writes its
audit record in the same transaction as its row
(L{freno.consensus.mysql.control_tables.mutate}); L{audit_log} reads
C{freno_audit} (so every node answers the same log, complete after any
restart: the database keeps it). Policies live in C{freno_policies} and are
mirrored into the local state by the same polls as throttles.

Decisions (docs/decisions.md)
=============================
D36, split brain. freno kept C{leader=true} forever while the backend was
unreachable. Here a leader holds leadership only as a local lease: each
successful election round that confirms it extends the lease to
C{round start + lease_seconds - election_interval} (4 s with freno's
values). Another node can take the row over only once it is C{lease_seconds}
(5 s, in whole seconds of the DB clock) stale, and the row is refreshed no
earlier than the round started, so the old leader has stepped down (observers
told, gauge cleared) at least C{election_interval} before anyone else can be
elected. The step-down is a timer, so it also happens when the backend hangs
rather than erroring. Durations are measured on the local clock only; no
clock comparison between the node and the DB is involved.

D33, force-leadership: C{is_leader()}, C{state_description()} (so
C{/consensus/state}) and C{status().IsLeader} all say leader under
C{--force-leadership} (freno's C{/consensus/state} ignored it); C{leader()}
still names the row's holder. Observers are never called under it.

Becoming leader: the node reads both tables before it reports itself leader,
so a new leader never serves with state older than one round trip.

D39, commands go to any node (as freno; no leader check) and write the database
first: the local state changes only after the write succeeded, and it is
set from the row read back in the same round trip, so a command answered 200
is in the table and local state equals it. Any database error fails the
command with L{ConsensusError} carrying the driver's message, and nothing
changes locally. Invalid arguments fail with L{freno.consensus.commands.InvalidCommand} before any SQL.

    - D37: a throttle whose expiry is in the past is stored as that past
      expiry, so every node unthrottles; it never becomes permanent.
    - D37: "never expires" is C{expires_at NULL}; expiries are read as
      absolute times, not as C{timestampdiff(...) == 0}.
    - D38: skipped hosts are polled on the same schedule as throttled apps,
      so a skip sent to any node reaches the leader within one poll; unthrottle
      and recover write a tombstone row even for names this node (or the
      table) does not know, so they reach every node.

Names: the tables' name columns are C{varchar(128)} (freno's schema,
L{NAME_COLUMN_LENGTH}), so a throttle or skip of a longer name fails with
L{InvalidCommand} (the API's 400, naming the column) before any SQL; an
unthrottle or recover of such a name succeeds without SQL, as the tables
cannot hold it (docs/decisions.md, D48).

Times: the expiry written is the command's absolute C{expire_at} (chosen by
the node that took the command, like raft), rounded up to a second and clamped
into C{TIMESTAMP}'s range (L{db_expiry}: 2038-01-19 at most), in a UTC session.
The DB's C{now()} is used only for the election and health windows, where
all nodes compare against the same DB clock, exactly as freno does; so Go
freno nodes can share the tables.

Construction never touches the database: a node whose backend is down at
start runs, unhealthy and not leader, and joins once the backend answers
(D40). C{status()} and
L{MySQLBackendConsensus.shared_domain_services} answer from the last health
round (at most C{health_interval} old), without a query.

The service creates missing tables at start (C{CREATE TABLE IF NOT EXISTS};
pass C{create_tables=False} to skip) and warns if C{throttled_apps.expires_at}
is C{NOT NULL} (permanent throttles would then fail). Lacking the privilege to
create tables is only a warning. On C{stopService} a leader steps down at once
and deletes its election row, so another node takes over within one election
interval instead of after the lease (C{release_on_stop=False} to keep freno's
behaviour).
"""

from __future__ import annotations

import socket
from typing import Dict, List, Mapping, Optional, Set

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredLock, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from freno.config.model import Config
from freno.consensus.audit import AuditLog, EntryMeta
from freno.consensus.interface import (
    ConsensusError,
    ConsensusStatus,
    ControlStatus,
    IConsensusService,
    ISharedDomainServices,
    Member,
)
from freno.consensus.gauges import ConsensusGauges
from freno.consensus.commands import (
    CommandMethods,
)
from freno.consensus.mysql.commands import ROW_PURGE_GRACE, TableCommands, error_text
from freno.consensus.mysql.store import (
    HealthView,
    IBackendStore,
    MySQLBackendStore,
    Tables,
)
from freno.consensus.observers import LeadershipObservers
from freno.consensus.state import (
    AppThrottle,
    Policy,
    ThrottleState,
)
from freno.metrics import catalogue
from freno.metrics.registry import Registry

#: Seconds between reads of the change counter (every node).
CHANGE_INTERVAL = 0.25

#: Seconds between the leader's deletions of expired rows.
ROW_PURGE_INTERVAL = 60.0



def backend_domain(config: Config) -> str:
    """
    freno's election domain: C{Domain}, or C{DataCenter:Environment}.
    """
    return config.domain or f"{config.data_center}:{config.environment}"


@implementer(IConsensusService, ISharedDomainServices)
class MySQLBackendConsensus(TableCommands, CommandMethods, Service):
    """
    Leadership and replicated throttle state through freno's backend tables.

    The gauges C{backend.mysql.is_leader} (this node holds the election row)
    and C{backend.mysql.is_healthy} (the last election round succeeded) go
    to C{registry}, with the backend-neutral C{consensus.is_leader} and
    C{consensus.is_healthy} that raft sets too (docs/decisions.md, D64).

    @ivar state: the local L{ThrottleState}, fed by polls and commands.
    @ivar service_id: C{hostname:ListenPort}.
    @ivar domain: the election domain.
    """

    _log = Logger()

    def __init__(
        self,
        reactor,
        config: Config,
        force_leadership: bool = False,
        registry: Optional[Registry] = None,
        threadpool=None,
        *,
        store: Optional[IBackendStore] = None,
        hostname: Optional[str] = None,
        election_interval: float = 1.0,
        lease_seconds: int = 5,
        health_interval: float = 2.0,
        state_interval: float = 10.0,
        purge_interval: float = 5.0,
        create_tables: bool = True,
        release_on_stop: bool = True,
        change_interval: float = CHANGE_INTERVAL,
        row_purge_interval: float = ROW_PURGE_INTERVAL,
    ) -> None:
        if not isinstance(lease_seconds, int) or lease_seconds < 1:
            raise ValueError("lease_seconds must be a positive whole number of seconds")
        if lease_seconds < 2 * election_interval:
            raise ValueError("lease_seconds must be at least twice election_interval")
        self._clock = reactor
        self._config = config
        self._force = force_leadership
        if registry is None:
            registry = Registry()
        self._consensus_gauges = ConsensusGauges(registry)
        self._row_gauge = registry.gauge(catalogue.MYSQL_IS_LEADER)
        self._health_gauge = registry.gauge(catalogue.MYSQL_IS_HEALTHY)
        if store is None:
            store = MySQLBackendStore.from_config(reactor, config, threadpool=threadpool)
        self._store = store
        if hostname is None:
            hostname = socket.gethostname()
        self.service_id = f"{hostname}:{config.listen_port}"
        self.domain = backend_domain(config)
        self.share_domain = config.share_domain
        self._lease_seconds = lease_seconds
        self._step_down_after = lease_seconds - election_interval
        self._create_tables = create_tables
        self._release_on_stop = release_on_stop

        self.state = ThrottleState(audit=AuditLog(config.audit_log_size))
        self._audit_keep = config.audit_log_size
        self._counter: Optional[int] = None
        self._observers = LeadershipObservers()
        self._leader = False
        self._leader_id = ""
        self._healthy = False
        self._lease_deadline = 0.0
        self._lease_timer = None
        self._health_view = HealthView((), {})
        self._last_error: Optional[str] = None

        self._poll_lock = DeferredLock()
        self._seq = 0
        self._touched: Dict[tuple, int] = {}
        self._in_flight: Set[Deferred] = set()
        self._idle_waiters: List[Deferred] = []

        self._loops = []
        for interval, tick in (
            (election_interval, self._election_round),
            (health_interval, self._health_round),
            (state_interval, self._poll_state),
            (purge_interval, self._purge),
            (change_interval, self._watch_changes),
            (row_purge_interval, self._purge_rows),
        ):
            loop = LoopingCall(tick)
            loop.clock = reactor
            self._loops.append((loop, interval))
        self._gauges()

    # -- lifecycle ---------------------------------------------------------

    def startService(self) -> None:
        """
        Check (and create) the tables, then start the loops.
        """
        Service.startService(self)
        d = self._track(self._store.ensure_schema(self._create_tables))
        d.addCallbacks(self._schema_checked, self._schema_failed)
        d.addCallback(lambda _: self._start_loops())

    def _schema_checked(self, warnings) -> None:
        for warning in warnings:
            self._log.warn("MySQL backend schema: {warning}", warning=warning)

    def _schema_failed(self, failure) -> None:
        self._log.warn(
            "MySQL backend schema check failed: {error}", error=error_text(failure.value)
        )

    def _start_loops(self) -> None:
        if not self.running:
            return
        for loop, interval in self._loops:
            if not loop.running:
                loop.start(interval, now=True)

    def stopService(self):
        """
        Stop the loops, step down (telling observers), wait for calls in
        flight, release the election row, and close the store.

        @rtype: L{Deferred}
        """
        Service.stopService(self)
        for loop, _ in self._loops:
            if loop.running:
                loop.stop()
        self._cancel_lease()
        holds_row = self._leader or self._leader_id == self.service_id
        self._set_leader(False)
        d = self._idle()
        if self._release_on_stop and holds_row:
            d.addCallback(lambda _: self._store.release(self.domain, self.service_id))
            d.addErrback(
                lambda f: self._log.warn(
                    "could not release leadership: {error}", error=error_text(f.value)
                )
            )
        d.addCallback(lambda _: self._store.close())
        return d

    def _track(self, d: Deferred) -> Deferred:
        self._in_flight.add(d)

        def untrack(result):
            self._in_flight.discard(d)
            if not self._in_flight:
                waiters, self._idle_waiters = self._idle_waiters, []
                for waiter in waiters:
                    waiter.callback(None)
            return result

        d.addBoth(untrack)
        return d

    def _idle(self) -> Deferred:
        if not self._in_flight:
            return succeed(None)
        d: Deferred = Deferred()
        self._idle_waiters.append(d)
        return d

    # -- election ----------------------------------------------------------

    def _election_round(self) -> Deferred:
        started = self._clock.seconds()
        d = self._store.elect(self.domain, self.share_domain, self.service_id, self._lease_seconds)
        d.addCallbacks(self._elected, self._election_failed, callbackArgs=(started,))
        return self._track(d)

    def _elected(self, leadership, started: float):
        if not self.running:
            return None
        self._healthy = True
        self._leader_id = leadership.leader
        self._note_recovered()
        result = None
        if leadership.is_leader:
            self._lease_deadline = started + self._step_down_after
            self._schedule_lease()
            if not self._leader:
                result = self._poll_state()
                result.addCallback(lambda _: self._become_leader())
        else:
            self._cancel_lease()
            self._set_leader(False)
        self._gauges()
        return result

    def _become_leader(self) -> None:
        if self.running and self._leader_id == self.service_id:
            if self._clock.seconds() < self._lease_deadline:
                self._set_leader(True)

    def _election_failed(self, failure) -> None:
        self._healthy = False
        error = error_text(failure.value)
        if error != self._last_error:
            self._last_error = error
            self._log.warn(
                "MySQL backend election round failed: {error}; leader={leader}",
                error=error,
                leader=self._leader,
            )
        self._gauges()

    def _note_recovered(self) -> None:
        if self._last_error is not None:
            self._log.info("MySQL backend reachable again")
            self._last_error = None

    def _schedule_lease(self) -> None:
        delay = self._lease_deadline - self._clock.seconds()
        if self._lease_timer is not None and self._lease_timer.active():
            self._lease_timer.reset(max(delay, 0))
        else:
            self._lease_timer = self._clock.callLater(max(delay, 0), self._lease_lapsed)

    def _cancel_lease(self) -> None:
        if self._lease_timer is not None and self._lease_timer.active():
            self._lease_timer.cancel()
        self._lease_timer = None

    def _lease_lapsed(self) -> None:
        self._lease_timer = None
        if self._leader:
            self._log.warn(
                "MySQL backend: leadership not confirmed for {seconds} s; stepping down",
                seconds=self._step_down_after,
            )
        self._healthy = False
        self._set_leader(False)
        self._gauges()

    def _set_leader(self, leader: bool) -> None:
        if leader == self._leader:
            return
        self._leader = leader
        self._log.info(
            "MySQL backend: {service_id} {transition} leader of {domain}",
            service_id=self.service_id,
            transition="became" if leader else "is no longer",
            domain=self.domain,
        )
        self._gauges()
        if not self._force:
            self._observers.notify(leader)

    def _gauges(self) -> None:
        self._row_gauge.set(1 if self._leader else 0)
        self._health_gauge.set(1 if self._healthy else 0)
        self._consensus_gauges.update(self.is_leader(), self._healthy)

    # -- health and state polling -------------------------------------------

    def _health_round(self) -> Deferred:
        d = self._store.register_health(
            self.service_id, self.domain, self.share_domain, self._lease_seconds
        )
        d.addCallbacks(self._health_seen, self._health_failed)
        return self._track(d)

    def _health_seen(self, view: HealthView) -> None:
        self._health_view = view

    def _health_failed(self, failure) -> None:
        self._log.debug("MySQL backend health round failed: {error}", error=error_text(failure.value))

    def _poll_state(self) -> Deferred:
        """
        Read both tables into the local state (serialised: one read at a time).
        """
        return self._track(self._poll_lock.run(self._read_state))

    def _read_state(self) -> Deferred:
        started = self._seq
        d = self._store.read_state()
        d.addCallbacks(self._state_read, self._state_failed, callbackArgs=(started,))
        return d

    def _state_read(self, tables: Tables, started: int) -> None:
        now = self._clock.seconds()
        touched = self._touched
        for row in tables.apps:
            if touched.get(("app", row.key), 0) <= started:
                self._apply_app(row, now)
        for row in tables.hosts:
            if touched.get(("host", row.hostname), 0) <= started:
                self._apply_host(row, now)
        seen = set()
        for policy in tables.policies:
            seen.add(policy.key)
            if touched.get(("policy", policy.key), 0) <= started:
                self.state.policies[policy.key] = policy
        for key in [k for k in self.state.policies if k not in seen]:
            if touched.get(("policy", key), 0) <= started:
                del self.state.policies[key]
        # Commands that completed before this read started are in what it read.
        self._touched = {k: s for k, s in touched.items() if s > started}

    def _watch_changes(self) -> Optional[Deferred]:
        """
        Read the change counter; poll the tables when it moved.
        """
        d = self._store.change_counter()

        def seen(counter):
            if counter is None or counter == self._counter:
                return None
            self._counter = counter
            return self._poll_state()

        d.addCallbacks(seen, self._watch_failed)
        return self._track(d)

    def _watch_failed(self, failure) -> None:
        self._log.debug("MySQL backend change counter read failed: {error}", error=error_text(failure.value))

    def _purge_rows(self) -> Optional[Deferred]:
        """
        On the leader: delete rows that expired a while ago.
        """
        if not self._leader:
            return None
        d = self._store.purge(ROW_PURGE_GRACE)

        def purged(count):
            if count:
                self._log.info("MySQL backend: purged {count} expired rows", count=count)

        d.addCallbacks(
            purged,
            lambda f: self._log.warn("MySQL backend purge failed: {error}", error=error_text(f.value)),
        )
        return self._track(d)

    def _state_failed(self, failure) -> None:
        self._log.warn("MySQL backend state poll failed: {error}", error=error_text(failure.value))

    def _purge(self) -> None:
        self.state.purge_expired(self._clock.seconds())

    # -- reading ----------------------------------------------------------------

    def throttled_apps(self) -> Mapping[str, AppThrottle]:
        return self.state.apps

    def skipped_hosts(self) -> Mapping[str, float]:
        return self.state.skipped

    def policies(self) -> Mapping[str, Policy]:
        return self.state.policies

    def skip_meta(self) -> Mapping[str, EntryMeta]:
        return self.state.skip_meta

    def audit_log(self, since: int, limit: int) -> Deferred:
        """
        Read C{freno_audit} (every node answers from the database).
        """
        d = self._store.audit_page(since, limit)

        def failed(failure):
            raise ConsensusError(f"MySQL backend read failed: {error_text(failure.value)}")

        d.addErrback(failed)
        return self._track(d)

    def control_status(self) -> ControlStatus:
        leader = self.leader()
        ids = [self.service_id] + [
            sid for sid in self._health_view.healthy_services if sid != self.service_id
        ]
        if leader and leader not in ids:
            ids.append(leader)
        members = tuple(
            Member(
                sid,
                sid == self.service_id,
                sid == leader,
                self._healthy if sid == self.service_id else sid in self._health_view.healthy_services,
            )
            for sid in ids
        )
        return ControlStatus(backend="mysql", term=None, members=members)

    def is_leader(self) -> bool:
        return self._force or self._leader

    def leader(self) -> str:
        if self._leader:
            return self.service_id
        return self._leader_id if self._healthy else ""

    def state_description(self) -> str:
        if self.is_leader():
            return "Leader"
        return "Healthy" if self._healthy else "Unhealthy"

    def is_healthy(self) -> bool:
        return self._healthy

    def shared_domain_services(self) -> Dict[str, str]:
        """
        freno's C{GetSharedDomainServices}: domain to leader service id of the
        other domains sharing this node's C{ShareDomain}, active within the
        lease window, as of the last health round (empty without a
        C{ShareDomain}).
        """
        return dict(self._health_view.shared_services) if self.share_domain else {}

    def status(self) -> ConsensusStatus:
        shared = self.shared_domain_services() if self.share_domain else None
        healthy = list(self._health_view.healthy_services)
        return ConsensusStatus(
            ServiceID=self.service_id,
            Healthy=self._healthy,
            IsLeader=self.is_leader(),
            Leader=self.leader(),
            State=self.state_description(),
            Domain=self.domain,
            ShareDomain=self.share_domain,
            ShareDomainServices=shared,
            ShareDomainServicesList=[self.service_id] + list((shared or {}).values()),
            HealthyDomainServicesList=healthy or None,
        )

    def add_leadership_observer(self, observer) -> None:
        self._observers.add(observer)

    def remove_leadership_observer(self, observer) -> None:
        self._observers.remove(observer)


__all__ = ["MySQLBackendConsensus", "backend_domain"]
