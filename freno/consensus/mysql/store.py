# -*- test-case-name: test.unit.test_consensus_mysql -*-
"""
The database seam of the MySQL consensus backend: L{IBackendStore}, its rows,
and L{MySQLBackendStore}, the real one (adbapi + PyMySQL, freno's tables).

The in-memory fake is L{freno.consensus.mysql.memory.MemoryBackendStore}.

Tables and compatibility
========================
The four tables are freno's (C{conf/mysql-backend-schema.sql}, L{SCHEMA}),
so a Go freno and this one can share a backend during a migration. The
election, health and shared-domain statements are freno's, unchanged. Only
the throttle/skip statements differ, to fix freno's bugs:

    - Expiry times are written as absolute POSIX seconds chosen by the node
      that took the command (C{from_unixtime(?)} in a session whose
      C{time_zone} is C{+00:00}), and read back with C{unix_timestamp()}: no
      round trip through the DB's C{now()}, no C{timestampdiff} rounding.
      C{NULL} means "never expires" (freno's C{ttl_seconds == 0} test made
      rows that expire within a second of a poll permanent; docs/decisions.md,
      D37). A Go-written zero
      date (C{expires_at TIMESTAMP NOT NULL} without a value) also reads as
      permanent, which is what Go freno meant by it.
    - Unthrottle and recover write a tombstone: C{expires_at} set to
      L{TOMBSTONE} (1970-01-01 00:00:01 UTC), upserting the row if it is
      missing, so every poller drops the entry even if the row never existed
      (D38). Rows are never deleted, as in freno.
    - C{TIMESTAMP} holds 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC. Expiries
      are rounded up to whole seconds and clamped into that range
      (L{db_expiry}); the node applies exactly what the row holds, read back
      in the same round trip, so local state equals the table.
    - A throttle without a ratio keeps the ratio of the row if that row is an
      active throttle, else 1.0, resolved in the statement itself (freno wrote
      C{-1} and let every node resolve it against its own local map). A C{-1}
      or C{NULL} ratio written by Go freno reads as "no ratio".

Connections
===========
Every call runs one function on a pooled PyMySQL connection in adbapi's
thread pool (3 threads and connections, freno's size), with autocommit,
connect timeout 0.5 s, read and write timeouts 1 s and session time zone
UTC. L{_BackendPool} changes one thing in adbapi: it runs the function on the
raw connection without adbapi's commit/rollback wrapping (autocommit makes
them empty round trips), and after any error it drops that thread's
connection so the next call reconnects. adbapi's own answer (C{cp_reconnect})
logs tracebacks and masks the error as C{ConnectionLost}; without it a
connection that died with a MySQL restart would stay bound to its thread.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import attr
from twisted.enterprise import adbapi
from twisted.internet.defer import fail
from twisted.logger import Logger
from zope.interface import Interface, implementer

#: The largest value a MySQL/MariaDB C{TIMESTAMP} holds (2038-01-19 03:14:07 UTC).
TIMESTAMP_MAX = 2**31 - 1

#: The expiry written by unthrottle and recover: the smallest C{TIMESTAMP}.
TOMBSTONE = 1

#: The longest app key or host name the tables hold (their C{varchar(128)}
#: name columns, freno's schema).
NAME_COLUMN_LENGTH = 128

#: The DDL of freno's four tables; C{conf/mysql-backend-schema.sql} holds the same.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS service_election (
  domain varchar(32) NOT NULL,
  share_domain varchar(32) NOT NULL,
  service_id varchar(128) NOT NULL,
  last_seen_active timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (domain),
  KEY share_domain_idx (share_domain,last_seen_active)
)""",
    """CREATE TABLE IF NOT EXISTS service_health (
  service_id varchar(128) NOT NULL,
  domain varchar(32) NOT NULL,
  share_domain varchar(32) NOT NULL,
  last_seen_active timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (service_id),
  KEY last_seen_active_idx (last_seen_active)
)""",
    """CREATE TABLE IF NOT EXISTS throttled_apps (
  app_name varchar(128) NOT NULL,
  throttled_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at TIMESTAMP NULL DEFAULT NULL,
  ratio DOUBLE,
  PRIMARY KEY (app_name)
)""",
    """CREATE TABLE IF NOT EXISTS skipped_hosts (
  host_name varchar(128) NOT NULL,
  skipped_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at TIMESTAMP NOT NULL,
  PRIMARY KEY (host_name)
)""",
)

# freno's statements, with PyMySQL's %s placeholders.
ATTEMPT_LEADERSHIP = """
insert ignore into service_election (domain, share_domain, service_id, last_seen_active)
  values (%s, %s, %s, now())
on duplicate key update
  service_id = if(last_seen_active < now() - interval %s second, values(service_id), service_id),
  share_domain = if(service_id = values(service_id), values(share_domain), share_domain),
  last_seen_active = if(service_id = values(service_id), values(last_seen_active), last_seen_active)
"""
READ_LEADERSHIP = """
select ifnull(max(service_id) = %s, 0) as is_leader, ifnull(max(service_id), '') as service_id
  from service_election where domain = %s
"""
RELEASE_LEADERSHIP = "delete from service_election where domain = %s and service_id = %s"
REGISTER_HEALTH = """
insert ignore into service_health (service_id, domain, share_domain, last_seen_active)
  values (%s, %s, %s, now())
on duplicate key update
  domain = values(domain), share_domain = values(share_domain),
  last_seen_active = values(last_seen_active)
"""
HEALTHY_DOMAIN_SERVICES = """
select service_id from service_health
  where domain = %s and last_seen_active >= now() - interval %s second
"""
SHARED_DOMAIN_SERVICES = """
select domain, service_id from service_election
  where share_domain = %s and last_seen_active >= now() - interval %s second and service_id != %s
"""
READ_APPS = "select app_name, unix_timestamp(expires_at), ratio from throttled_apps"
READ_APP = READ_APPS + " where app_name = %s"
READ_HOSTS = "select host_name, unix_timestamp(expires_at) from skipped_hosts"
READ_HOST = READ_HOSTS + " where host_name = %s"
# The ratio is assigned first: MySQL evaluates the SET list left to right, so
# it still sees the old expires_at.
THROTTLE_APP = """
insert into throttled_apps (app_name, throttled_at, expires_at, ratio)
  values (%s, now(), from_unixtime(%s), %s)
on duplicate key update
  ratio = if(%s is null,
             if(ratio is null or ratio < 0 or (expires_at is not null and expires_at <= now()), 1, ratio),
             %s),
  throttled_at = values(throttled_at),
  expires_at = values(expires_at)
"""
UNTHROTTLE_APP = """
insert into throttled_apps (app_name, throttled_at, expires_at, ratio)
  values (%s, now(), from_unixtime(%s), 1)
on duplicate key update expires_at = values(expires_at)
"""
SKIP_HOST = """
replace into skipped_hosts (host_name, skipped_at, expires_at) values (%s, now(), from_unixtime(%s))
"""
RECOVER_HOST = """
insert into skipped_hosts (host_name, skipped_at, expires_at) values (%s, now(), from_unixtime(%s))
on duplicate key update expires_at = values(expires_at)
"""
EXPIRES_AT_NULLABLE = """
select is_nullable from information_schema.columns
  where table_schema = database() and table_name = 'throttled_apps' and column_name = 'expires_at'
"""


def db_expiry(expire_at: float) -> int:
    """
    The C{TIMESTAMP} value (POSIX seconds) stored for C{expire_at}: rounded
    up to a whole second and clamped into C{TIMESTAMP}'s range, so a throttle
    never ends early by rounding, a past expiry stays in the past, and a very
    long TTL becomes "until 2038" instead of an SQL error.

    @raise ValueError: C{expire_at} is not a finite number.
    """
    if (
        isinstance(expire_at, bool)
        or not isinstance(expire_at, (int, float))
        or not math.isfinite(expire_at)
    ):
        raise ValueError(f"invalid expiry: {expire_at!r}")
    return int(min(max(math.ceil(expire_at), TOMBSTONE), TIMESTAMP_MAX))


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Leadership:
    """
    The election row after one attempt.

    @ivar is_leader: whether this service holds the row.
    @ivar leader: the service id holding it (C{""} if none).
    """

    is_leader: bool
    leader: str


@attr.s(frozen=True, auto_attribs=True, slots=True)
class HealthView:
    """
    What one health round saw.

    @ivar healthy_services: service ids of this domain seen within the window.
    @ivar shared_services: domain to leader service id of the other domains
        sharing this node's C{ShareDomain} (empty when it has none).
    """

    healthy_services: Tuple[str, ...]
    shared_services: Dict[str, str]


@attr.s(frozen=True, auto_attribs=True, slots=True)
class AppRow:
    """
    One C{throttled_apps} row.

    @ivar expire_at: POSIX seconds, or C{None}: never expires.
    @ivar ratio: C{None}: the row has no usable ratio (keep the local one, or 1.0).
    """

    key: str
    expire_at: Optional[float]
    ratio: Optional[float]


@attr.s(frozen=True, auto_attribs=True, slots=True)
class HostRow:
    """
    One C{skipped_hosts} row; C{expire_at} C{None} (a zero date) counts as expired.
    """

    hostname: str
    expire_at: Optional[float]


class IBackendStore(Interface):
    """
    The backend database, as the operations L{MySQLBackendConsensus} needs.
    Every method returns a L{Deferred}; each is one round trip to one pooled
    connection, and fails with the driver's error.
    """

    def ensure_schema(create: bool):
        """
        Create missing tables if C{create}, and check them.

        @rtype: L{Deferred} firing with a list of warning strings.
        """

    def elect(domain: str, share_domain: str, service_id: str, lease_seconds: int):
        """
        Attempt leadership of C{domain} (take the row over if it is older
        than C{lease_seconds}, refresh it if held), then read it.

        @rtype: L{Deferred} firing with a L{Leadership}.
        """

    def release(domain: str, service_id: str):
        """
        Give up C{domain}'s row if C{service_id} holds it.
        """

    def register_health(service_id: str, domain: str, share_domain: str, window: int):
        """
        Record C{service_id} as alive now, then read the services of
        C{domain} alive within C{window} seconds and (if C{share_domain})
        the leaders of other domains sharing it.

        @rtype: L{Deferred} firing with a L{HealthView}.
        """

    def read_state():
        """
        Read both tables.

        @rtype: L{Deferred} firing with C{(list of AppRow, list of HostRow)}.
        """

    def throttle_app(key: str, expires: Optional[int], ratio: Optional[float]):
        """
        Write a throttle (C{expires} from L{db_expiry} or C{None}) and read
        the row back.

        @rtype: L{Deferred} firing with the L{AppRow}.
        """

    def unthrottle_app(key: str):
        """
        Write a tombstone for C{key} and read the row back.

        @rtype: L{Deferred} firing with the L{AppRow}.
        """

    def skip_host(hostname: str, expires: int):
        """
        Write a skip and read the row back.

        @rtype: L{Deferred} firing with the L{HostRow}.
        """

    def recover_host(hostname: str):
        """
        Write a tombstone for C{hostname} and read the row back.

        @rtype: L{Deferred} firing with the L{HostRow}.
        """

    def close():
        """
        Release connections and threads. Call once nothing is in flight.
        """


def _number(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _app_row(row) -> AppRow:
    key, expires, ratio = row
    expire_at = _number(expires)
    if expire_at == 0:
        expire_at = None  # a Go-written zero date: permanent
    ratio = _number(ratio)
    if ratio is not None and ratio < 0:
        ratio = None  # Go freno's -1: "keep the existing ratio"
    return AppRow(key, expire_at, ratio)


def _host_row(row) -> HostRow:
    hostname, expires = row
    expire_at = _number(expires)
    return HostRow(hostname, expire_at or None)


def create_schema(cursor) -> None:
    """
    Create freno's four backend tables (if missing) with a DB-API C{cursor}
    connected to the backend schema.
    """
    for statement in SCHEMA:
        cursor.execute(statement)


def _ensure_schema(conn, create: bool) -> List[str]:
    warnings = []
    with conn.cursor() as cursor:
        if create:
            try:
                create_schema(cursor)
            except Exception as e:
                warnings.append(f"could not create the backend tables: {e}")
        cursor.execute(EXPIRES_AT_NULLABLE)
        row = cursor.fetchone()
        if row is None:
            warnings.append("table throttled_apps is missing")
        elif row[0] != "YES":
            warnings.append(
                "throttled_apps.expires_at is NOT NULL, so permanent throttles fail; run: "
                "ALTER TABLE throttled_apps MODIFY expires_at TIMESTAMP NULL DEFAULT NULL"
            )
    return warnings


def _elect(conn, domain, share_domain, service_id, lease_seconds) -> Leadership:
    with conn.cursor() as cursor:
        cursor.execute(ATTEMPT_LEADERSHIP, (domain, share_domain, service_id, lease_seconds))
        cursor.execute(READ_LEADERSHIP, (service_id, domain))
        is_leader, leader = cursor.fetchone()
    return Leadership(bool(is_leader), leader or "")


def _release(conn, domain, service_id) -> None:
    with conn.cursor() as cursor:
        cursor.execute(RELEASE_LEADERSHIP, (domain, service_id))


def _register_health(conn, service_id, domain, share_domain, window) -> HealthView:
    with conn.cursor() as cursor:
        cursor.execute(REGISTER_HEALTH, (service_id, domain, share_domain))
        cursor.execute(HEALTHY_DOMAIN_SERVICES, (domain, window))
        healthy = tuple(row[0] for row in cursor.fetchall())
        shared: Dict[str, str] = {}
        if share_domain:
            cursor.execute(SHARED_DOMAIN_SERVICES, (share_domain, window, service_id))
            shared = {d: s for d, s in cursor.fetchall()}
    return HealthView(healthy, shared)


def _read_state(conn):
    with conn.cursor() as cursor:
        cursor.execute(READ_APPS)
        apps = [_app_row(r) for r in cursor.fetchall()]
        cursor.execute(READ_HOSTS)
        hosts = [_host_row(r) for r in cursor.fetchall()]
    return apps, hosts


def _write_app(conn, statement, args, key) -> AppRow:
    with conn.cursor() as cursor:
        cursor.execute(statement, args)
        cursor.execute(READ_APP, (key,))
        row = cursor.fetchone()
    return _app_row(row) if row is not None else AppRow(key, TOMBSTONE, None)


def _write_host(conn, statement, args, hostname) -> HostRow:
    with conn.cursor() as cursor:
        cursor.execute(statement, args)
        cursor.execute(READ_HOST, (hostname,))
        row = cursor.fetchone()
    return _host_row(row) if row is not None else HostRow(hostname, None)


class _BackendPool(adbapi.ConnectionPool):
    """
    adbapi's pool, running functions on the raw autocommit connection and
    dropping a thread's connection after any error (see the module docs).
    """

    def _runWithConnection(self, func, *args, **kw):
        conn = self.connect()
        try:
            return func(conn, *args, **kw)
        except BaseException:
            self.connections.pop(self.threadID(), None)
            try:
                conn.close()
            except Exception:
                pass  # already broken: nothing more to release
            raise


def _set_utc(conn) -> None:
    with conn.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")


@implementer(IBackendStore)
class MySQLBackendStore:
    """
    L{IBackendStore} on a MySQL/MariaDB schema through adbapi and PyMySQL.

    @param reactor: a reactor (adbapi needs C{callWhenRunning},
        C{callFromThread} and system event triggers).
    @param threadpool: replaces adbapi's own thread pool (tests pass a
        synchronous one); it is started and stopped with the store.
    @param connect_timeout, read_timeout, write_timeout: seconds.
    """

    _log = Logger()

    def __init__(
        self,
        reactor,
        host: str,
        port: int,
        schema: str,
        user: str,
        password: str,
        collation: str = "",
        threadpool=None,
        connect_timeout: float = 0.5,
        read_timeout: float = 1.0,
        write_timeout: float = 1.0,
        pool_size: int = 3,
    ) -> None:
        kwargs: Dict[str, Any] = dict(
            host=host,
            port=port,
            user=user,
            password=password,
            database=schema,
            charset="utf8mb4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            autocommit=True,
        )
        if collation:
            kwargs["collation"] = collation
        self._pool = _BackendPool(
            "pymysql",
            cp_reactor=reactor,
            cp_min=1,
            cp_max=pool_size,
            cp_name="freno-mysql-backend",
            cp_openfun=_set_utc,
            **kwargs,
        )
        if threadpool is not None:
            self._pool.threadpool = threadpool
        self._closed = False

    @classmethod
    def from_config(cls, reactor, config, threadpool=None) -> "MySQLBackendStore":
        """
        A store for C{config}'s C{BackendMySQL*} settings.
        """
        return cls(
            reactor,
            config.backend_mysql_host,
            config.backend_mysql_port,
            config.backend_mysql_schema,
            config.backend_mysql_user,
            config.backend_mysql_password,
            config.backend_mysql_collation,
            threadpool=threadpool,
        )

    def _run(self, func, *args):
        if self._closed:
            return fail(RuntimeError("the MySQL backend store is closed"))
        if not self._pool.running:
            self._pool.start()
        return self._pool.runWithConnection(func, *args)

    def ensure_schema(self, create):
        return self._run(_ensure_schema, create)

    def elect(self, domain, share_domain, service_id, lease_seconds):
        return self._run(_elect, domain, share_domain, service_id, lease_seconds)

    def release(self, domain, service_id):
        return self._run(_release, domain, service_id)

    def register_health(self, service_id, domain, share_domain, window):
        return self._run(_register_health, service_id, domain, share_domain, window)

    def read_state(self):
        return self._run(_read_state)

    def throttle_app(self, key, expires, ratio):
        insert_ratio = 1.0 if ratio is None else ratio
        return self._run(
            _write_app, THROTTLE_APP, (key, expires, insert_ratio, ratio, ratio), key
        )

    def unthrottle_app(self, key):
        return self._run(_write_app, UNTHROTTLE_APP, (key, TOMBSTONE), key)

    def skip_host(self, hostname, expires):
        return self._run(_write_host, SKIP_HOST, (hostname, expires), hostname)

    def recover_host(self, hostname):
        return self._run(_write_host, RECOVER_HOST, (hostname, TOMBSTONE), hostname)

    def close(self):
        self._closed = True
        self._pool.close()
