# -*- test-case-name: test.unit.test_consensus_mysql -*-
"""
The database seam of the MySQL consensus backend: L{IBackendStore}, its rows,
and L{MySQLBackendStore}, the real one (adbapi + PyMySQL, freno's tables).

The interface and its rows are in L{freno.consensus.mysql.rows} (and
importable from here); the in-memory fake is
L{freno.consensus.mysql.memory.MemoryBackendStore}.

Tables and compatibility
========================
The four tables are freno's (C{conf/mysql-backend-schema.sql}, L{SCHEMA}),
so a Go freno and this one can share a backend during a migration. The audit
log, the policies and the change counter live in tables of our own
(L{freno.consensus.mysql.control_tables}), created beside them. The
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
from typing import Any, Dict, List, Optional

from twisted.enterprise import adbapi
from twisted.internet.defer import fail
from twisted.logger import Logger
from zope.interface import implementer

from freno.consensus.audit import EntryMeta
from freno.consensus.mysql import control_tables
from freno.consensus.mysql.control_tables import Written
from freno.consensus.mysql.rows import (  # re-exported: the seam's names live beside it
    AppRow,
    HealthView,
    HostRow,
    IBackendStore,
    Leadership,
    Tables,
)
from freno.consensus.state import Policy

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


def _number(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _app_row(row, meta: Optional[EntryMeta] = None) -> AppRow:
    key, expires, ratio = row
    expire_at = _number(expires)
    if expire_at == 0:
        expire_at = None  # a Go-written zero date: permanent
    ratio = _number(ratio)
    if ratio is not None and ratio < 0:
        ratio = None  # Go freno's -1: "keep the existing ratio"
    return AppRow(key, expire_at, ratio, meta)


def _host_row(row, meta: Optional[EntryMeta] = None) -> HostRow:
    hostname, expires = row
    expire_at = _number(expires)
    return HostRow(hostname, expire_at or None, meta)


def create_schema(cursor) -> None:
    """
    Create freno's four backend tables and the control-plane tables (if
    missing) with a DB-API C{cursor} connected to the backend schema.
    """
    for statement in SCHEMA:
        cursor.execute(statement)
    control_tables.create_control_schema(cursor)


def _ensure_schema(conn, create: bool) -> List[str]:
    warnings = []
    with conn.cursor() as cursor:
        if create:
            try:
                for statement in SCHEMA:
                    cursor.execute(statement)
            except Exception as e:
                warnings.append(f"could not create the backend tables: {e}")
            try:
                control_tables.create_control_schema(cursor)
            except Exception as e:
                warnings.append(
                    f"could not create the control tables (audit log, policies): {e}; "
                    "every mutation (they are all audited) fails until they exist"
                )
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


def _read_state(conn) -> Tables:
    with conn.cursor() as cursor:
        meta = control_tables.read_meta(cursor)
        cursor.execute(READ_APPS)
        apps = [_app_row(r, meta.get(("app", r[0]))) for r in cursor.fetchall()]
        cursor.execute(READ_HOSTS)
        hosts = [_host_row(r, meta.get(("host", r[0]))) for r in cursor.fetchall()]
        policies = control_tables.read_policies(cursor)
    return Tables(apps, hosts, policies)


def _read_app(cursor, key, meta) -> AppRow:
    cursor.execute(READ_APP, (key,))
    row = cursor.fetchone()
    return _app_row(row, meta) if row is not None else AppRow(key, TOMBSTONE, None)


def _read_host(cursor, hostname, meta) -> HostRow:
    cursor.execute(READ_HOST, (hostname,))
    row = cursor.fetchone()
    return _host_row(row, meta) if row is not None else HostRow(hostname, None)


def _write_app(conn, statement, args, key, audit=None, limit=None) -> Written:
    return control_tables.mutate(
        conn, audit, limit, key,
        lambda cursor, meta: cursor.execute(statement, args),
        lambda cursor, meta: _read_app(cursor, key, meta),
    )


def _write_host(conn, statement, args, hostname, audit=None, limit=None) -> Written:
    return control_tables.mutate(
        conn, audit, limit, hostname,
        lambda cursor, meta: cursor.execute(statement, args),
        lambda cursor, meta: _read_host(cursor, hostname, meta),
    )


def _set_policy(conn, policy: Policy, audit=None, limit=None) -> Written:
    def write(cursor, meta):
        meta = meta or EntryMeta(None, None, None)
        cursor.execute(
            control_tables.SET_POLICY,
            (
                policy.key, policy.app, policy.store, policy.threshold, int(policy.exempt),
                meta.actor, meta.reason, meta.audit_id,
            ),
        )

    return control_tables.mutate(
        conn, audit, limit, policy.key, write,
        lambda cursor, meta: control_tables.read_policy(cursor, policy.key),
    )


def _remove_policy(conn, key: str, audit=None) -> Written:
    return control_tables.mutate(
        conn, audit, None, key,
        lambda cursor, meta: cursor.execute(control_tables.REMOVE_POLICY, (key,)),
        lambda cursor, meta: None,
    )


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

    def change_counter(self):
        return self._run(control_tables.change_counter)

    def throttle_app(self, key, expires, ratio, audit=None, limit=None):
        insert_ratio = 1.0 if ratio is None else ratio
        return self._run(
            _write_app, THROTTLE_APP, (key, expires, insert_ratio, ratio, ratio), key, audit, limit
        )

    def unthrottle_app(self, key, audit=None):
        return self._run(_write_app, UNTHROTTLE_APP, (key, TOMBSTONE), key, audit)

    def skip_host(self, hostname, expires, audit=None, limit=None):
        return self._run(_write_host, SKIP_HOST, (hostname, expires), hostname, audit, limit)

    def recover_host(self, hostname, audit=None):
        return self._run(_write_host, RECOVER_HOST, (hostname, TOMBSTONE), hostname, audit)

    def set_policy(self, policy, audit=None, limit=None):
        return self._run(_set_policy, policy, audit, limit)

    def remove_policy(self, key, audit=None):
        return self._run(_remove_policy, key, audit)

    def audit_page(self, since, limit):
        return self._run(control_tables.audit_page, since, limit)

    def purge(self, grace_seconds):
        return self._run(control_tables.purge, grace_seconds)

    def close(self):
        self._closed = True
        self._pool.close()
