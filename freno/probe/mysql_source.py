# -*- test-case-name: test.unit.test_probe_mysql_source,test.integration.test_probe_mysql_source -*-
"""
L{MySQLMetricSource}: an L{IMetricSource} over
C{twisted.enterprise.adbapi} and a DB-API driver, selected by
C{"ProbeDriver": "pymysql"} or C{"MySQLdb"} (mysqlclient). The default
driver is the native one (L{freno.probe.wire.source}); this source, built
with settings that name it, uses PyMySQL.

L{freno.tap} builds it when C{ProbeDriver} is C{pymysql} or C{MySQLdb};
L{ProbeService} closes it on shutdown (C{close()} returns a Deferred).

Design:
    - B{One shared, bounded thread pool} (C{ProbeSettings.thread_pool_size}
      threads) runs every host's queries. It is injectable, so unit tests
      pass a synchronous pool (L{freno.probe.fake.SynchronousThreadPool}).
    - B{One connection per host} (per cluster and host, in fact: two
      clusters that list the same host probe it concurrently, each on its
      own connection, rather than one waiting for the other). Stock C{adbapi.ConnectionPool} keys its
      connections by thread, so with a shared pool it would open one
      connection per thread per host. L{HostConnectionPool} is therefore a
      C{ConnectionPool} subclass per host (and credentials) that holds a
      single connection and borrows the shared thread pool: its inherited
      C{runWithConnection} runs the probe in a pool thread with that
      connection. This is safe because at most one probe per host is in
      flight (L{MySQLMetricSource.probe} refuses a second one). The
      connection is in autocommit mode and no C{COMMIT} is sent after a
      probe (C{runQuery}/C{runInteraction} would send one per probe).
    - B{Timeouts} (docs/decisions.md, D23). Connect, read and write
      timeouts are all C{ProbeSettings.timeout} (default 1 s). A frozen
      server (SIGSTOP) accepts TCP in the kernel and then never answers: the
      handshake or query read times out, so no thread is held longer than
      about the timeout. Independently of the sockets, the Deferred that
      L{MySQLMetricSource.probe} returns fails with C{probe timed out after
      ...} at the timeout by the reactor's clock, so a probe slot is never
      held longer either (for instance while the pool is saturated).
    - B{Reconnect with backoff.} A failed connect or a broken connection
      (client-side error 2000-2999, C{InterfaceError}) discards the
      connection; the next connect is not tried before a backoff of 0.1 s,
      doubling up to 2 s, reset by a success. Meanwhile probes fail at once
      with the last error, so a dead host is not hammered at 20 Hz.
    - B{Errors} are L{ProbeError}s with readable text: C{Error 1146: Table
      'meta.heartbeat' doesn't exist}; failures to reach the host are
      L{ProbeConnectError}s whose text starts with C{dial tcp <host:port>:},
      as freno's did (C{IgnoreDialTcpErrors} matches them).
    - Credentials are the cluster's C{User}/C{Password}; the database is
      C{information_schema}; the character set C{utf8mb4} or, when the
      cluster (store) sets C{Collation}, that collation (freno's DSN).
    - B{TLS} (PyMySQL; the configuration loader refuses TLS keys with
      MySQLdb) means what it means with the native driver
      (L{freno.config.tls}), through L{freno.probe.pymysql_tls}.
"""

from __future__ import annotations

import importlib
import math
import ssl
from typing import Any, Dict, Optional, Tuple

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from freno.config.model import ClusterSettings, ProbeSettings, TLSSettings
from freno.config.tls import DISABLED, PREFERRED, TLSFileProblem, read_public_key
from freno.hosts import HostKey
from freno.probe.interfaces import IMetricSource, ProbeError
from freno.probe.pymysql_tls import pymysql_connector, pymysql_tls_kwargs, ssl_context
from freno.probe.query import (
    MetricQuery,
    ProbeConnectError,
    ReplicationStatement,
    classify,
    error_code,
    run_metric_query,
)

#: Client error codes meaning "could not reach the server at all"
#: (CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR, CR_UNKNOWN_HOST).
_DIAL_ERRORS = frozenset({2002, 2003, 2005})

BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 2.0

#: The C{ProbeDriver} values this source serves; with any other (the
#: native driver's C{"native"}) it uses the first.
ADBAPI_DRIVERS = ("pymysql", "MySQLdb")


def load_driver(name: str):
    """
    Import the DB-API module for C{ProbeSettings.driver}.

    @raise ValueError: an unknown driver name.
    """
    modules = {"pymysql": "pymysql", "mysqldb": "MySQLdb"}
    module = modules.get(name.lower())
    if module is None:
        raise ValueError(f"unknown MySQL driver {name!r}: use 'pymysql' or 'MySQLdb'")
    return importlib.import_module(module)


def connect_kwargs(
    driver_name: str, cluster: ClusterSettings, host: HostKey, timeout: float
) -> Dict[str, Any]:
    """
    The DB-API C{connect()} keyword arguments for C{host} of C{cluster},
    without TLS (L{pymysql_tls_kwargs} adds it).
    MySQLdb takes whole seconds, so its timeouts are rounded up.
    """
    seconds: Any = timeout
    if driver_name.lower() == "mysqldb":
        seconds = max(1, math.ceil(timeout))
    kwargs: Dict[str, Any] = {
        "host": host.hostname,
        "port": host.port,
        "user": cluster.user,
        "password": cluster.password,
        "database": "information_schema",
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": seconds,
        "read_timeout": seconds,
        "write_timeout": seconds,
    }
    if cluster.collation:
        kwargs["collation"] = cluster.collation
    return kwargs


def readable_error(error: BaseException, host: HostKey) -> ProbeError:
    """
    Turn a driver exception into a L{ProbeError} with readable text.
    """
    if isinstance(error, ProbeError):
        return error
    code = error_code(error)
    args = getattr(error, "args", ())
    message = str(args[1]) if code is not None and len(args) > 1 else str(error)
    if code in _DIAL_ERRORS:
        return ProbeConnectError(f"dial tcp {host}: {message}")
    if code is not None:
        return ProbeError(f"Error {code}: {message}")
    return ProbeError(f"{type(error).__name__}: {message}" if message else type(error).__name__)


def connection_is_broken(error: BaseException, dbapi) -> bool:
    """
    Whether C{error} means the connection cannot be used again: client-side
    errors (2000-2999), C{InterfaceError}, and anything that is not a
    database error (a socket error, say). Server errors (a bad query) leave
    the connection usable.
    """
    if isinstance(error, ProbeError):
        return False
    interface_error = getattr(dbapi, "InterfaceError", ())
    if interface_error and isinstance(error, interface_error):
        return True
    database_error = getattr(dbapi, "DatabaseError", ())
    if not (database_error and isinstance(error, database_error)):
        return True
    code = error_code(error)
    return code is None or 2000 <= code < 3000


class HostConnectionPool(adbapi.ConnectionPool):
    """
    An C{adbapi.ConnectionPool} for one host that holds one connection and
    runs on a shared thread pool (see the module docstring for why).

    It does not start or stop the thread pool and registers no reactor
    triggers: its owner, L{MySQLMetricSource}, does that once for all hosts.

    @param reactor: provides C{callFromThread} (for C{deferToThreadPool}).
    @param threadpool: the shared pool.
    @param dbapi: the DB-API module.
    @param connkw: C{dbapi.connect()} keyword arguments.
    @param connector: called with C{connkw} instead of C{dbapi.connect}
        (L{pymysql_connector}).
    """

    def __init__(self, reactor, threadpool, dbapi, connkw: Dict[str, Any], connector=None) -> None:
        # Deliberately not calling ConnectionPool.__init__: it would build a
        # private thread pool and hook reactor startup and shutdown.
        self._reactor = reactor
        self.threadpool = threadpool
        self.dbapi = dbapi
        self.dbapiName = getattr(dbapi, "__name__", "dbapi")
        self.connargs = ()
        self.connkw = connkw
        self._connector = connector if connector is not None else dbapi.connect
        self.connections = {}
        self.running = True
        self._connection = None
        self.replication = ReplicationStatement()

    def connect(self):
        """
        The host's connection, opened if needed (in a pool thread).
        """
        if self._connection is None:
            self._connection = self._connector(**self.connkw)
            self.replication = ReplicationStatement()
        return self._connection

    def disconnect(self, conn=None) -> None:
        """
        Close and forget the connection (in a pool thread).
        """
        conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _runWithConnection(self, func, *args, **kw):
        # Autocommit: no Connection wrapper, no COMMIT/ROLLBACK round trips.
        conn = self.connect()
        try:
            return func(conn, *args, **kw)
        except Exception as e:
            if connection_is_broken(e, self.dbapi):
                self.disconnect()
            raise

    def close(self) -> None:
        """
        Close the connection; the shared pool is not ours to stop.
        """
        self.disconnect()
        self.running = False

    finalClose = close


class _HostState:
    """
    Reactor-side state of one host: its pool, whether a probe is running,
    and the reconnect backoff.
    """

    def __init__(self, pool: HostConnectionPool) -> None:
        self.pool = pool
        self.running: Optional[Deferred] = None
        self.failures = 0
        self.retry_at = 0.0
        self.last_error: Optional[ProbeError] = None


@implementer(IMetricSource)
class MySQLMetricSource:
    """
    Probes MySQL hosts over DB-API connections on one bounded thread pool.

    @param reactor: the reactor (C{callLater}, C{seconds}, C{callFromThread}).
    @param settings: C{timeout}, C{thread_pool_size} and C{driver} are used
        (a C{driver} not in L{ADBAPI_DRIVERS} means PyMySQL).
    @param threadpool: a started thread pool to use instead of creating
        one; the source does not stop a pool it did not create.
    @param dbapi: a DB-API module to use instead of importing
        C{settings.driver} (tests).
    """

    _log = Logger()

    def __init__(
        self,
        reactor,
        settings: ProbeSettings,
        threadpool: Optional[ThreadPool] = None,
        dbapi=None,
    ) -> None:
        self._reactor = reactor
        self._settings = settings
        self._driver = settings.driver if settings.driver in ADBAPI_DRIVERS else ADBAPI_DRIVERS[0]
        self._dbapi = dbapi if dbapi is not None else load_driver(self._driver)
        self._contexts: Dict[TLSSettings, ssl.SSLContext] = {}
        self._public_keys: Dict[str, bytes] = {}
        self._own_pool = threadpool is None
        if threadpool is None:
            threadpool = ThreadPool(
                minthreads=0, maxthreads=settings.thread_pool_size, name="freno-probe"
            )
            threadpool.start()
        self._threadpool = threadpool
        self._hosts: Dict[Tuple, _HostState] = {}
        self._queries: Dict[str, MetricQuery] = {}
        self._closed = False

    def _state(self, cluster: ClusterSettings, host: HostKey) -> _HostState:
        """
        The host's state, made on first use.

        @raise TLSFileProblem: the cluster's TLS files cannot be used.
        """
        key = (
            cluster.name, host, cluster.user, cluster.password, cluster.collation,
            cluster.tls, cluster.server_public_key_path,
        )
        state = self._hosts.get(key)
        if state is None:
            kwargs = connect_kwargs(self._driver, cluster, host, self._settings.timeout)
            connector = None
            if self._driver == "pymysql":
                tls_kwargs, late = pymysql_tls_kwargs(
                    cluster.tls, self._context(cluster.tls), self._public_key(cluster)
                )
                kwargs.update(tls_kwargs)
                connector = pymysql_connector(self._dbapi, late)
            pool = HostConnectionPool(
                self._reactor, self._threadpool, self._dbapi, kwargs, connector
            )
            state = self._hosts[key] = _HostState(pool)
        return state

    def _context(self, tls: TLSSettings) -> Optional[ssl.SSLContext]:
        if tls.mode == DISABLED or (tls.mode == PREFERRED and not tls.cert):
            return None
        context = self._contexts.get(tls)
        if context is None:
            context = self._contexts[tls] = ssl_context(tls)
        return context

    def _public_key(self, cluster: ClusterSettings) -> Optional[bytes]:
        path = cluster.server_public_key_path
        if not path:
            return None
        key = self._public_keys.get(path)
        if key is None:
            key = self._public_keys[path] = read_public_key(path)
        return key

    def probe(self, cluster: ClusterSettings, host: HostKey) -> Deferred:
        """
        Run C{cluster.metric_query} on C{host}; see L{IMetricSource.probe}.
        """
        if self._closed:
            return fail(ProbeError("metric source is closed"))
        try:
            query = self._queries.get(cluster.metric_query)
            if query is None:
                query = self._queries[cluster.metric_query] = classify(cluster.metric_query)
        except ProbeError as e:
            return fail(e)
        try:
            state = self._state(cluster, host)
        except TLSFileProblem as e:
            return fail(ProbeError(f"TLS settings for {host}: {e}"))
        if state.running is not None:
            return fail(ProbeError(f"previous probe of {host} still running"))
        now = self._reactor.seconds()
        if state.pool._connection is None and now < state.retry_at and state.last_error:
            return fail(state.last_error)

        done = state.pool.runWithConnection(run_metric_query, query, state.pool.replication)
        state.running = done
        result = Deferred()

        def finished(outcome):
            state.running = None
            if isinstance(outcome, Failure):
                error = readable_error(outcome.value, host)
                if state.pool._connection is None:
                    state.failures += 1
                    backoff = min(
                        BACKOFF_MAX, BACKOFF_INITIAL * 2 ** (state.failures - 1)
                    )
                    state.retry_at = self._reactor.seconds() + backoff
                    state.last_error = error
                if not result.called:
                    timer.cancel()
                    result.errback(error)
            else:
                state.failures = 0
                state.last_error = None
                if not result.called:
                    timer.cancel()
                    result.callback(float(outcome))

        def timed_out():
            result.errback(
                ProbeError(f"probe of {host} timed out after {self._settings.timeout:g}s")
            )

        timer = self._reactor.callLater(self._settings.timeout, timed_out)
        done.addBoth(finished)
        return result

    def discard(self, cluster_name: str, host: HostKey) -> None:
        """
        Forget C{host} of cluster C{cluster_name} (it left the inventory, or
        this node stopped leading): its connection is closed in the pool,
        after its running probe if there is one. Not part of
        L{IMetricSource}; L{freno.probe.service.ProbeService} calls it when
        the source has it.
        """
        for key in [k for k in self._hosts if k[0] == cluster_name and k[1] == host]:
            state = self._hosts.pop(key)
            pool = state.pool

            def disconnect(_=None, pool=pool):
                d = deferToThreadPool(self._reactor, self._threadpool, pool.close)
                d.addErrback(
                    lambda f: self._log.failure("closing {host} failed", f, host=str(host))
                )
                return None

            if state.running is not None:
                state.running.addBoth(disconnect)
            else:
                disconnect()

    def close(self) -> Deferred:
        """
        Wait for running probes (each bounded by the timeout), close every
        connection in the pool, and stop the pool if this source made it.
        """
        self._closed = True
        running = [s.running for s in self._hosts.values() if s.running is not None]
        waits = []
        for d in running:
            wait = Deferred()
            d.addBoth(lambda _, w=wait: w.callback(None))
            waits.append(wait)

        def close_all(_):
            pools = [s.pool for s in self._hosts.values()]
            self._hosts.clear()

            def close_pools():
                for pool in pools:
                    pool.close()

            return deferToThreadPool(self._reactor, self._threadpool, close_pools)

        def stop_pool(outcome):
            if self._own_pool:
                self._threadpool.stop()
            return None

        d = gatherResults(waits) if waits else succeed(None)
        d.addCallback(close_all)
        d.addBoth(stop_pool)
        return d
