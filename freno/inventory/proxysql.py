# -*- test-case-name: test.unit.test_inventory_proxysql,test.integration.test_inventory_proxysql -*-
"""
L{ProxySQLSource}: the servers of one ProxySQL hostgroup, read from the admin
interface over the MySQL protocol (docs/decisions.md, D27).

The blocking part (connect, query) runs in a thread pool through
C{deferToThreadPool} with PyMySQL; the pool is injected, so tests can run it
synchronously. Everything stateful besides the connection (the ignore cache)
lives on the reactor thread and reads time from the injected clock.

  - Addresses are tried in sorted order (a sorted copy: the settings are
    never mutated, unlike freno's); the connection that worked is kept and
    reused; a query error closes and forgets it.
  - Connect timeout 500 ms for the TCP connect (freno's DSN
    C{timeout=500ms}); read and write timeouts (1 s) bound the handshake and
    the query, so an admin port that accepts but never answers costs about
    1.5 s before the next address is tried, and a frozen ProxySQL never holds
    a thread for long.
  - C{ONLINE}: kept, unless in the ignore cache. C{SHUNNED_REPLICATION_LAG}:
    kept and removed from the cache. Any other status puts C{host:port} in the
    cache for C{IgnoreServerTTLSecs} (default 10 s): a server that comes back
    C{ONLINE} stays out until then (anti-flap).
  - Host keys are C{(srv_host, srv_port)}; the cluster's port is not used.

L{freno.inventory.factory} builds it. L{ProxySQLSource.close} closes the kept
connection.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import attr
import pymysql
from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from zope.interface import implementer

from freno.config.model import ProxySQLSettings
from freno.hosts import HostKey, InvalidHostError
from freno.inventory.interfaces import IInventorySource, InventoryError

DEFAULT_IGNORE_SERVER_TTL_SECS = 10
DEFAULT_ADMIN_PORT = 6032
STATUS_ONLINE = "ONLINE"
STATUS_SHUNNED_REPLICATION_LAG = "SHUNNED_REPLICATION_LAG"


def servers_query(hostgroup_id: int) -> str:
    """
    The admin query (C{hostgroup_id} is an C{int}, so interpolation is safe).
    """
    return (
        "SELECT srv_host, srv_port, status FROM stats_mysql_connection_pool "
        f"WHERE hostgroup={int(hostgroup_id)}"
    )


def display_dsn(user: str, address: str) -> str:
    """
    The DSN for logs and errors, password masked:
    C{mysql://<user>:*****@<address>/stats}.
    """
    return f"mysql://{user}:*****@{address}/stats"


def is_configured(settings: ProxySQLSettings) -> bool:
    """
    freno's non-emptiness: addresses, user and password set and a hostgroup
    id of at least 1.
    """
    return bool(settings.addresses and settings.user and settings.password and settings.hostgroup_id >= 1)


def _port(value: Any) -> int:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())  # isdigit alone accepts "²", which int() refuses
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    raise InventoryError(f"malformed stats_mysql_connection_pool row: srv_port={value!r}")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise InventoryError(f"malformed stats_mysql_connection_pool row: {value!r}")
    return value


@attr.s(auto_attribs=True)
class IgnoreCache:
    """
    Servers recently seen in a state other than C{ONLINE} or
    C{SHUNNED_REPLICATION_LAG}, with the time each stops being ignored.
    """

    ttl: float
    expiries: Dict[str, float] = attr.ib(factory=dict)

    def select(self, rows: Sequence[Tuple[Any, Any, Any]], now: float) -> List[HostKey]:
        """
        Apply the status rules to C{rows} of C{(srv_host, srv_port, status)}.

        @raise InventoryError: a row that is not three cells, an empty host
            or a port outside 1..65535. The cache is left unchanged then.
        """
        parsed = []
        for row in rows:
            if not isinstance(row, (tuple, list)) or len(row) != 3:
                raise InventoryError(f"malformed stats_mysql_connection_pool row: {row!r}")
            host, port, status = _text(row[0]), _port(row[1]), _text(row[2])
            if not host:
                raise InventoryError("malformed stats_mysql_connection_pool row: empty srv_host")
            parsed.append((HostKey(host, port), status))
        kept = []
        for key, status in parsed:
            name = str(key)
            if status == STATUS_ONLINE:
                expiry = self.expiries.get(name)
                if expiry is not None and expiry > now:
                    continue
                self.expiries.pop(name, None)
                kept.append(key)
            elif status == STATUS_SHUNNED_REPLICATION_LAG:
                self.expiries.pop(name, None)
                kept.append(key)
            else:
                self.expiries[name] = now + self.ttl
        return kept


def _address(text: str) -> Tuple[str, int]:
    try:
        key = HostKey.parse(text, DEFAULT_ADMIN_PORT)
    except InvalidHostError as e:
        raise InventoryError(str(e)) from None
    return key.hostname, key.port


@implementer(IInventorySource)
@attr.s(auto_attribs=True)
class ProxySQLSource:
    """
    One hostgroup's servers.

    @ivar settings: the cluster's L{ProxySQLSettings} (store fallbacks applied).
    @ivar _reactor: provides C{callFromThread} (for C{deferToThreadPool}).
    @ivar _threadpool: where blocking MySQL calls run.
    @ivar _clock: time for the ignore cache; the reactor when not given.
    @ivar _connect: the DB-API C{connect} (PyMySQL's; injectable for tests).
    """

    settings: ProxySQLSettings
    _reactor: Any
    _threadpool: Any
    _clock: Any = None
    _connect: Callable[..., Any] = pymysql.connect
    connect_timeout: float = 0.5
    read_timeout: float = 1.0
    _cache: IgnoreCache = attr.ib(init=False)
    _connection: Optional[Any] = attr.ib(init=False, default=None)
    _connection_address: Optional[str] = attr.ib(init=False, default=None)
    _lock: threading.Lock = attr.ib(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        if self._clock is None:
            self._clock = self._reactor
        ttl = self.settings.ignore_server_ttl_secs or DEFAULT_IGNORE_SERVER_TTL_SECS
        self._cache = IgnoreCache(ttl)

    @property
    def connected_address(self) -> Optional[str]:
        """
        The admin address of the kept connection, if any.
        """
        return self._connection_address

    def hosts(self) -> "Deferred[List[HostKey]]":
        """
        @return: a Deferred firing with the kept servers, or failing with
            L{InventoryError} (not configured, no address reachable, query
            error, malformed row).
        """
        if not is_configured(self.settings):
            return fail(
                InventoryError("ProxySQLSettings: Addresses, User, Password and HostgroupID >= 1 are required")
            )
        d = deferToThreadPool(self._reactor, self._threadpool, self._fetch_rows)
        d.addCallback(lambda rows: self._cache.select(rows, self._clock.seconds()))
        return d.addErrback(self._wrap)

    def close(self) -> Deferred:
        """
        Close the kept connection (in the thread pool).
        """
        return deferToThreadPool(self._reactor, self._threadpool, self._close_locked)

    def _wrap(self, failure: Failure):
        if failure.check(InventoryError):
            return failure
        if failure.check(CancelledError):
            raise InventoryError("ProxySQL query cancelled")
        raise InventoryError(f"{type(failure.value).__name__}: {failure.value}")

    # -- in the thread pool --------------------------------------------------

    def _fetch_rows(self) -> List[Tuple[Any, Any, Any]]:
        with self._lock:
            connection = self._get_connection()
            try:
                with connection.cursor() as cursor:
                    cursor.execute(servers_query(self.settings.hostgroup_id))
                    return list(cursor.fetchall())
            except Exception as e:
                dsn = display_dsn(self.settings.user, self._connection_address or "?")
                self._close()
                raise InventoryError(f"{dsn}: query failed: {e}") from None

    def _get_connection(self) -> Any:
        if self._connection is not None:
            return self._connection
        errors = []
        for address in sorted(self.settings.addresses):
            host, port = _address(address)
            try:
                connection = self._connect(
                    host=host,
                    port=port,
                    user=self.settings.user,
                    password=self.settings.password,
                    database="stats",
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    write_timeout=self.read_timeout,
                    autocommit=True,
                )
            except Exception as e:
                errors.append(f"{display_dsn(self.settings.user, address)}: {e}")
                continue
            self._connection, self._connection_address = connection, address
            return connection
        raise InventoryError("no ProxySQL address reachable: " + "; ".join(errors))

    def _close_locked(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        connection, self._connection, self._connection_address = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass
