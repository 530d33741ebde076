# -*- test-case-name: test.unit.test_probe_wire_source,test.unit.test_probe_wire_tls,test.integration.test_probe_wire_source -*-
"""
L{NativeMetricSource}: an L{IMetricSource} that speaks the MySQL protocol
itself, on the reactor thread (L{freno.probe.wire.protocol}), instead of
a DB-API driver on a thread pool. Selected by C{Stores.MySQL.ProbeDriver:
"native"}, the default; C{adbapi} + PyMySQL or MySQLdb
(L{freno.probe.mysql_source}) remain the alternatives.

L{freno.tap} builds it when C{ProbeDriver} is C{native}; L{ProbeService}
calls L{NativeMetricSource.discard} for hosts that leave and C{close()} (a
Deferred) on shutdown.

Same semantics as L{freno.probe.mysql_source.MySQLMetricSource}:
    - B{One connection per (cluster, host)} (and credentials), opened on
      the first probe, authenticated as the cluster's C{User}/C{Password},
      default database C{information_schema}, character set C{utf8mb4}
      (with the store's C{Collation}, a C{SET NAMES utf8mb4 COLLATE ...}
      follows the handshake, as PyMySQL does). Autocommit is the server
      default; no C{COMMIT} is ever sent. One probe per connection at a
      time: a second probe while one runs fails with C{previous probe of
      ... still running}.
    - B{Timeout.} C{ProbeSettings.timeout} bounds the whole probe by the
      reactor's clock: connect, handshake, authentication and query(ies)
      share one deadline. A query past it fails with C{probe of <host>
      timed out after <timeout>s} and the connection is dropped (its late
      answer must not be read as the next probe's). A frozen server
      (SIGSTOP) therefore costs a probe slot at most the timeout, and no
      thread at all.
    - B{Reconnect with backoff.} A probe that ends with no usable
      connection (connect failed, timed out, dropped) makes the next
      connect wait 0.1 s, doubling up to 2 s, reset by a success;
      meanwhile probes fail at once with the last error. A connection the
      server closed while idle is noticed before the next probe and simply
      reopened.
    - B{Errors} are L{ProbeError}s with the adbapi source's texts: a
      server's ERR is C{Error <code>: <message>} (the connection stays);
      failing to reach the host at all is a L{ProbeConnectError} starting
      with C{dial tcp <host:port>:} (refused, unreachable, unknown host,
      or C{i/o timeout} when TCP does not connect within the timeout, as
      Go's freno said), so C{IgnoreDialTcpErrors} treats both sources
      alike. A server that accepts TCP but never completes the handshake
      is a timeout, not a dial error.
    - B{TLS and authentication.} The cluster's C{SSLMode}, C{SSLCA},
      C{SSLCert}, C{SSLKey} (L{freno.probe.wire.tls}) and
      C{ServerPublicKeyPath} apply to its connections; the files are read
      once per source. A server that does not offer TLS when it is
      required, a failed TLS handshake, and an authentication plugin the
      client does not speak are L{ProbeError}s saying so (the last one
      naming the plugin and the C{"ProbeDriver": "pymysql"} fallback).
    - B{Results} are interpreted by L{freno.probe.query} (L{select_value},
      L{show_global_value}, L{replication_lag}), and the replication query
      falls back from C{SHOW REPLICA STATUS} to C{SHOW SLAVE STATUS} on a
      syntax error, per connection, exactly as the adbapi source does.
"""

from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from freno.config.model import ClusterSettings, ProbeSettings, TLSSettings
from freno.config.tls import TLSFileProblem, read_public_key
from freno.hosts import HostKey
from freno.probe.interfaces import IMetricSource, ProbeError
from freno.probe.query import (
    REPLICATION,
    SELECT,
    SHOW_GLOBAL,
    SHOW_REPLICA_STATUS,
    SHOW_SLAVE_STATUS,
    SYNTAX_ERROR,
    MetricQuery,
    ProbeConnectError,
    classify,
    replication_lag,
    select_value,
    show_global_value,
)
from freno.probe.wire.auth import UnsupportedAuthError
from freno.probe.wire.packets import ResultSet, ServerError, WireProtocolError
from freno.probe.wire.protocol import (
    ConnectionLostError,
    ConnectTimeoutError,
    DialError,
    MySQLClientProtocol,
    QueryTimeoutError,
    TLSError,
    TLSUnavailableError,
    connect,
)
from freno.probe.wire.tls import ClientTLS

BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 2.0
DATABASE = "information_schema"

_COLLATION = re.compile(r"[A-Za-z0-9_]+\Z")

#: C{connector(cluster, host, timeout) -> Deferred[MySQLClientProtocol]}.
Connector = Callable[[ClusterSettings, HostKey, float], Deferred]


def readable_error(error: BaseException, host: HostKey, timeout: float) -> ProbeError:
    """
    Turn a wire-level error into a L{ProbeError} with the adbapi source's
    texts (see the module docstring).
    """
    if isinstance(error, ProbeError):
        return error
    if isinstance(error, DialError):
        return ProbeConnectError(f"dial tcp {host}: {error.reason}")
    if isinstance(error, (QueryTimeoutError, ConnectTimeoutError)):
        return ProbeError(f"probe of {host} timed out after {timeout:g}s")
    if isinstance(error, ServerError):
        return ProbeError(str(error))
    if isinstance(error, ConnectionLostError):
        return ProbeError(f"Error 2013: Lost connection to MySQL server ({error})")
    if isinstance(error, TLSUnavailableError):
        return ProbeError(f"TLS to {host}: {error}")
    if isinstance(error, TLSError):
        return ProbeError(f"TLS to {host}: {error}")
    if isinstance(error, UnsupportedAuthError):
        return ProbeError(f"cannot log in to {host}: {error}")
    if isinstance(error, TLSFileProblem):
        return ProbeError(f"TLS settings for {host}: {error}")
    if isinstance(error, WireProtocolError):
        return ProbeError(f"MySQL protocol error from {host}: {error}")
    message = str(error)
    return ProbeError(f"{type(error).__name__}: {message}" if message else type(error).__name__)


def interpret(query: MetricQuery, outcome) -> float:
    """
    The metric from a query's outcome (a L{ResultSet}, or an OK: no
    columns).
    """
    if isinstance(outcome, ResultSet):
        names, rows = outcome.names, outcome.rows
    else:
        names, rows = (), []
    if query.kind == SELECT:
        return select_value(names, rows)
    if query.kind == SHOW_GLOBAL:
        return show_global_value(names, rows)
    return replication_lag(names, rows)


class _HostState:
    """
    One (cluster, host)'s connection, running probe and backoff.
    """

    __slots__ = (
        "protocol", "running", "failures", "retry_at", "last_error",
        "replication", "discarded", "closed_waiters",
    )

    def __init__(self) -> None:
        self.protocol: Optional[MySQLClientProtocol] = None
        self.running = False
        self.failures = 0
        self.retry_at = 0.0
        self.last_error: Optional[ProbeError] = None
        self.replication = SHOW_REPLICA_STATUS
        self.discarded = False
        self.closed_waiters: List[Deferred] = []


class _Probe:
    """
    One probe in flight: connect if needed, set up, query, interpret.
    """

    __slots__ = ("source", "state", "cluster", "host", "query", "deadline", "result")

    def __init__(self, source, state, cluster, host, query, deadline) -> None:
        self.source = source
        self.state = state
        self.cluster = cluster
        self.host = host
        self.query = query
        self.deadline = deadline
        self.result = Deferred()

    def remaining(self) -> float:
        return self.deadline - self.source._reactor.seconds()

    def start(self) -> None:
        protocol = self.state.protocol
        if protocol is not None and protocol.ready:
            self.run_query()
            return
        if protocol is not None:
            # Closed by the server while idle: reopen without backoff.
            self.state.protocol = None
        d = self.source._connector(self.cluster, self.host, self.remaining())
        d.addCallbacks(self.connected, self.failed)

    def connected(self, protocol: MySQLClientProtocol) -> None:
        state = self.state
        state.protocol = protocol
        state.replication = SHOW_REPLICA_STATUS
        collation = self.cluster.collation
        if collation:
            if not _COLLATION.match(collation):
                protocol.close()
                state.protocol = None
                self.failed(Failure(ProbeError(f"invalid collation {collation!r}")))
                return
            d = protocol.query(f"SET NAMES utf8mb4 COLLATE {collation}", self.remaining())
            d.addCallbacks(lambda _: self.run_query(), self.failed)
            return
        self.run_query()

    def statement(self) -> str:
        if self.query.kind == REPLICATION:
            return self.state.replication
        return self.query.text

    def run_query(self) -> None:
        d = self.state.protocol.query(self.statement(), self.remaining())
        d.addCallbacks(self.answered, self.query_failed)

    def answered(self, outcome) -> None:
        try:
            value = interpret(self.query, outcome)
        except ProbeError as e:
            self.source._finish(self, Failure(e))
        else:
            self.source._finish(self, value)

    def query_failed(self, failure: Failure) -> None:
        error = failure.value
        if (
            self.query.kind == REPLICATION
            and isinstance(error, ServerError)
            and error.code == SYNTAX_ERROR
            and self.state.replication == SHOW_REPLICA_STATUS
        ):
            self.state.replication = SHOW_SLAVE_STATUS
            self.run_query()
            return
        self.failed(failure)

    def failed(self, failure: Failure) -> None:
        self.source._finish(self, failure)


@implementer(IMetricSource)
class NativeMetricSource:
    """
    Probes MySQL hosts over native protocol connections on the reactor.

    @param reactor: C{callLater}, C{seconds} and TCP client endpoints.
    @param settings: C{timeout} is used (C{thread_pool_size} is not: there
        are no threads).
    @param connector: C{connector(cluster, host, timeout)} returning a
        Deferred ready L{MySQLClientProtocol}, instead of L{connect} over
        TCP (tests).
    @param endpoints: C{endpoints(host)} returning the
        C{IStreamClientEndpoint} L{connect} uses instead of a
        C{HostnameEndpoint} (tests: everything else, TLS included, as in
        production).
    """

    _log = Logger()

    def __init__(
        self,
        reactor,
        settings: ProbeSettings,
        connector: Optional[Connector] = None,
        endpoints: Optional[Callable[[HostKey], object]] = None,
    ) -> None:
        self._reactor = reactor
        self._endpoints = endpoints
        self._settings = settings
        self._timeout = settings.timeout
        self._connector = connector if connector is not None else self._connect
        self._hosts: Dict[Tuple, _HostState] = {}
        self._queries: Dict[str, MetricQuery] = {}
        self._closed = False
        #: discarded hosts whose connection is not closed yet (a probe ran)
        self._closing: List[Deferred] = []
        self._tls: Dict[TLSSettings, ClientTLS] = {}
        self._public_keys: Dict[str, bytes] = {}

    def _connect(self, cluster: ClusterSettings, host: HostKey, timeout: float) -> Deferred:
        tls = cluster.tls
        try:
            options = None
            if tls.enabled:
                client = self._tls.get(tls)
                if client is None:
                    client = self._tls[tls] = ClientTLS(tls)
                options = client.options_for(host.hostname)
            public_key = None
            path = cluster.server_public_key_path
            if path:
                public_key = self._public_keys.get(path)
                if public_key is None:
                    public_key = self._public_keys[path] = read_public_key(path)
        except TLSFileProblem as e:
            return fail(e)
        return connect(
            self._reactor, host.hostname, host.port, cluster.user, cluster.password,
            database=DATABASE, timeout=timeout,
            tls_mode=tls.mode, tls_options=options, server_public_key=public_key,
            endpoint=self._endpoints(host) if self._endpoints is not None else None,
        )

    def probe(self, cluster: ClusterSettings, host: HostKey) -> Deferred:
        """
        Run C{cluster.metric_query} on C{host}; see L{IMetricSource.probe}.
        """
        if self._closed:
            return fail(ProbeError("metric source is closed"))
        query = self._queries.get(cluster.metric_query)
        if query is None:
            try:
                query = self._queries[cluster.metric_query] = classify(cluster.metric_query)
            except ProbeError as e:
                return fail(e)
        key = (
            cluster.name, host, cluster.user, cluster.password, cluster.collation,
            cluster.tls, cluster.server_public_key_path,
        )
        state = self._hosts.get(key)
        if state is None:
            state = self._hosts[key] = _HostState()
        if state.running:
            return fail(ProbeError(f"previous probe of {host} still running"))
        now = self._reactor.seconds()
        if state.protocol is None and now < state.retry_at and state.last_error is not None:
            return fail(state.last_error)
        state.running = True
        probe = _Probe(self, state, cluster, host, query, now + self._timeout)
        probe.start()
        return probe.result

    def _finish(self, probe: _Probe, outcome) -> None:
        state = probe.state
        state.running = False
        protocol = state.protocol
        if protocol is not None and not protocol.usable:
            protocol = state.protocol = None
        if isinstance(outcome, Failure):
            error = readable_error(outcome.value, probe.host, self._timeout)
            if protocol is None:
                state.failures += 1
                backoff = min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** (state.failures - 1))
                state.retry_at = self._reactor.seconds() + backoff
                state.last_error = error
            result: object = Failure(error)
        else:
            state.failures = 0
            state.last_error = None
            result = float(outcome)
        if state.discarded:
            self._close_state(state)
        if isinstance(result, Failure):
            probe.result.errback(result)
        else:
            probe.result.callback(result)

    def _close_state(self, state: _HostState) -> None:
        """
        Close C{state}'s connection and fire its close waiters.
        """
        protocol, state.protocol = state.protocol, None
        waiters, state.closed_waiters = state.closed_waiters, []
        d = protocol.close() if protocol is not None else succeed(None)
        for waiter in waiters:
            d.addBoth(lambda _, w=waiter: w.callback(None))

    def _discard_state(self, state: _HostState) -> Deferred:
        done = Deferred()
        state.closed_waiters.append(done)
        state.discarded = True
        if not state.running:
            self._close_state(state)
        return done

    def discard(self, cluster_name: str, host: HostKey) -> None:
        """
        Forget C{host} of cluster C{cluster_name} (it left the inventory, or
        this node stopped leading): its connection is closed, after its
        running probe if there is one. Not part of L{IMetricSource};
        L{freno.probe.service.ProbeService} calls it when the source has it.
        """
        for key in [k for k in self._hosts if k[0] == cluster_name and k[1] == host]:
            done = self._discard_state(self._hosts.pop(key))
            if not done.called:
                self._closing.append(done)
                done.addBoth(self._closed_one, done)

    def _closed_one(self, result, done: Deferred):
        self._closing.remove(done)
        return result

    def close(self) -> Deferred:
        """
        Close every connection, each after its running probe (bounded by
        the timeout); later probes fail.

        @return: a Deferred firing when every connection is closed,
            including those of hosts discarded earlier whose probe was
            still running (L{ProbeService} discards every host before it
            closes the source).
        """
        self._closed = True
        states = list(self._hosts.values())
        self._hosts.clear()
        waits = [self._discard_state(state) for state in states]
        for done in self._closing:
            wait = Deferred()
            done.addBoth(lambda result, w=wait: (w.callback(None), result)[1])
            waits.append(wait)
        d = gatherResults(waits) if waits else succeed(None)
        d.addCallback(lambda _: None)
        return d
