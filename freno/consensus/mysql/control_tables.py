# -*- test-case-name: test.unit.test_consensus_mysql_control,test.integration.test_control_mysql -*-
"""
The MySQL backend's own tables for the control plane, beside freno's four
(which stay exactly freno's, so Go freno nodes can keep sharing them):

    - C{freno_audit}: the audit log, one row per audited command;
    - C{freno_policies}: the per-app policies;
    - C{freno_sequence}: one row, C{audit}, whose value is the last audit id.

C{conf/mysql-backend-schema.sql} holds the same DDL (L{CONTROL_SCHEMA}).

One command, one transaction
============================

A mutation with an audit context runs as one transaction on one pooled
connection (L{mutate}):

    1. C{UPDATE freno_sequence SET value = LAST_INSERT_ID(value + 1)}: the
       next audit id. The row lock it takes is held until commit, so
       mutations from every node are serialised: ids increase in commit
       order, and a reader paging with C{since=<id>} never misses a record
       that commits later with a smaller id (an C{AUTO_INCREMENT} column
       would allow exactly that under concurrent inserts).
    2. The limit check (entries active now, in this transaction).
    3. The write to freno's table (or to C{freno_policies}), unless refused.
    4. The audit record, and the trimming of records beyond
       C{AuditLogSize}.
    5. The row read back, and C{COMMIT}. Any error rolls everything back.

The value of C{freno_sequence} is also the backend's change counter: every
node reads it every quarter second (L{CHANGE_COUNTER}, a primary-key lookup)
and re-reads the tables only when it moved, so a command acknowledged by any
node takes effect on the leader within about 0.25 s plus one read.
Writes by Go freno nodes do not move it; those are still seen by the 10 s
poll, as in freno.

Meta of throttles and skips (who set them, why) is not in freno's tables: it
is the latest applied audit record of the same target (L{READ_META}).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import attr

from freno.consensus.audit import APPLIED, AuditPage, AuditRecord, EntryMeta
from freno.consensus.commands import AuditContext
from freno.consensus.state import Policy

#: The DDL of the control-plane tables.
CONTROL_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS freno_sequence (
  name varchar(32) NOT NULL,
  value bigint unsigned NOT NULL,
  PRIMARY KEY (name)
)""",
    """CREATE TABLE IF NOT EXISTS freno_audit (
  id bigint unsigned NOT NULL,
  committed_at double NOT NULL,
  actor varchar(255) NOT NULL,
  route varchar(1024) NOT NULL,
  params text NOT NULL,
  reason text NULL,
  outcome varchar(1024) NOT NULL,
  kind varchar(16) NOT NULL,
  target varchar(255) NOT NULL,
  PRIMARY KEY (id),
  KEY target_idx (kind, target, id)
)""",
    """CREATE TABLE IF NOT EXISTS freno_policies (
  policy_key varchar(255) NOT NULL,
  app varchar(255) NOT NULL,
  store varchar(255) NULL,
  threshold double NULL,
  exempt tinyint(1) NOT NULL DEFAULT 0,
  actor varchar(255) NULL,
  reason text NULL,
  audit_id bigint unsigned NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (policy_key)
)""",
)

SEED_SEQUENCE = """
insert ignore into freno_sequence (name, value)
  select 'audit', coalesce(max(id), 0) from freno_audit
"""
NEXT_AUDIT_ID = "update freno_sequence set value = last_insert_id(value + 1) where name = 'audit'"
LAST_ID = "select last_insert_id()"
CHANGE_COUNTER = "select value from freno_sequence where name = 'audit'"
INSERT_AUDIT = """
insert into freno_audit (id, committed_at, actor, route, params, reason, outcome, kind, target)
  values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
TRIM_AUDIT = "delete from freno_audit where id <= %s"
AUDIT_PAGE = """
select id, committed_at, actor, route, params, reason, outcome from freno_audit
  where id > %s order by id limit %s
"""
OLDEST_AUDIT = "select min(id) from freno_audit"
READ_META = """
select a.kind, a.target, a.id, a.actor, a.reason from freno_audit a
  join (select kind, target, max(id) as id from freno_audit
          where outcome = 'applied' and kind in ('app', 'host') group by kind, target) m
    on a.id = m.id
"""
READ_POLICIES = (
    "select policy_key, app, store, threshold, exempt, audit_id, actor, reason from freno_policies"
)
READ_POLICY = READ_POLICIES + " where policy_key = %s"
SET_POLICY = """
replace into freno_policies (policy_key, app, store, threshold, exempt, actor, reason, audit_id, updated_at)
  values (%s, %s, %s, %s, %s, %s, %s, %s, now())
"""
REMOVE_POLICY = "delete from freno_policies where policy_key = %s"
COUNT_THROTTLES = """
select count(*), coalesce(sum(app_name = %s), 0) from throttled_apps
  where expires_at is null or expires_at > now()
"""
COUNT_SKIPS = """
select count(*), coalesce(sum(host_name = %s), 0) from skipped_hosts where expires_at > now()
"""
COUNT_POLICIES = "select count(*), coalesce(sum(policy_key = %s), 0) from freno_policies"
# Rows whose expiry passed and that nobody wrote for a while: a tombstone
# (unthrottle, recover) stays long enough for every poller, Go freno's 10 s
# one included, to see it. A Go-written zero date (permanent) is kept.
PURGE_APPS = """
delete from throttled_apps
  where expires_at is not null and unix_timestamp(expires_at) > 0 and expires_at <= now()
    and throttled_at <= now() - interval %s second
"""
PURGE_HOSTS = """
delete from skipped_hosts where expires_at <= now() and skipped_at <= now() - interval %s second
"""

#: MySQL's "table does not exist".
NO_SUCH_TABLE = 1146

#: The longest policy key C{freno_policies} holds.
POLICY_KEY_LENGTH = 255

#: What each limited table's entries are called and what frees room (the
#: messages of L{freno.consensus.state.room_problem}).
_NOUNS = {
    "throttles": ("throttled apps", "unthrottle"),
    "skips": ("skipped hosts", "recover"),
    "policies": ("policies", "remove"),
}


class MissingControlTables(Exception):
    """
    The control-plane tables are missing (the backend user could not create
    them); create them from C{conf/mysql-backend-schema.sql}.
    """


@attr.s(frozen=True, auto_attribs=True, slots=True)
class AuditEntry:
    """
    The audit record a mutation writes.

    @ivar kind: C{"app"}, C{"host"} or C{"policy"}.
    @ivar target: the key, host name or policy key.
    @ivar keep: how many records to keep (C{AuditLogSize}).
    """

    context: AuditContext
    kind: str
    target: str
    keep: int


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Limit:
    """
    The limit check of a mutation that adds an entry.

    @ivar table: C{"throttles"}, C{"skips"} or C{"policies"}.
    @ivar field: the field a refusal names.
    """

    table: str
    field: str
    maximum: int


@attr.s(frozen=True, auto_attribs=True, slots=True)
class Written:
    """
    What a write answers.

    @ivar row: the row read back (C{None} for a removed policy).
    @ivar audit_id: its audit record's id, if audited.
    @ivar refused: why nothing changed (a full table), or C{None}.
    """

    row: Any
    audit_id: Optional[int] = None
    refused: Optional[str] = None
    field: Optional[str] = None


_COUNTS = {"throttles": COUNT_THROTTLES, "skips": COUNT_SKIPS, "policies": COUNT_POLICIES}


def _is_missing_table(error: BaseException) -> bool:
    args = getattr(error, "args", ())
    return bool(args) and args[0] == NO_SUCH_TABLE


def create_control_schema(cursor) -> None:
    """
    Create the control-plane tables (if missing) and seed the sequence.
    """
    for statement in CONTROL_SCHEMA:
        cursor.execute(statement)
    cursor.execute(SEED_SEQUENCE)


def _next_audit_id(cursor) -> int:
    cursor.execute(NEXT_AUDIT_ID)
    if cursor.rowcount == 0:
        cursor.execute(SEED_SEQUENCE)
        cursor.execute(NEXT_AUDIT_ID)
    cursor.execute(LAST_ID)
    return int(cursor.fetchone()[0])


def _params_text(params) -> str:
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


def mutate(
    conn,
    audit: Optional[AuditEntry],
    limit: Optional[Limit],
    key: str,
    write: Callable[[Any, Optional[EntryMeta]], None],
    read_back: Callable[[Any, Optional[EntryMeta]], Any],
) -> Written:
    """
    Run one mutation (see the module docstring) on a DB-API connection.

    @param key: the entry's key (for the limit check).
    @param write: writes the entry with a cursor, given its meta.
    @param read_back: reads the entry back with a cursor, given its meta.
    @raise MissingControlTables: the control tables do not exist.
    """
    with conn.cursor() as cursor:
        if audit is None:
            write(cursor, None)
            return Written(read_back(cursor, None))
        conn.begin()
        try:
            audit_id = _next_audit_id(cursor)
            refused = field = None
            if limit is not None:
                cursor.execute(_COUNTS[limit.table], (key,))
                count, present = cursor.fetchone()
                if not int(present) and int(count) >= limit.maximum:
                    field = limit.field
                    noun, remedy = _NOUNS[limit.table]
                    refused = f"at most {limit.maximum} {noun} at a time; {remedy} some first"
            context = audit.context
            meta = EntryMeta(audit_id, context.actor, context.reason)
            if refused is None:
                write(cursor, meta)
            outcome = APPLIED if refused is None else f"refused: {refused}"
            cursor.execute(
                INSERT_AUDIT,
                (
                    audit_id, context.time, context.actor, context.route,
                    _params_text(context.params), context.reason, outcome,
                    audit.kind, audit.target,
                ),
            )
            if audit_id > audit.keep:
                cursor.execute(TRIM_AUDIT, (audit_id - audit.keep,))
            row = read_back(cursor, meta if refused is None else None)
            conn.commit()
        except BaseException as e:
            try:
                conn.rollback()
            except Exception:
                pass  # the connection is being dropped anyway
            if _is_missing_table(e):
                raise MissingControlTables(
                    "the MySQL backend's control tables (freno_audit, freno_policies, "
                    "freno_sequence) are missing: create them from conf/mysql-backend-schema.sql"
                ) from None
            raise
    return Written(row, audit_id, refused, field)


def change_counter(conn) -> Optional[int]:
    """
    The last audit id (C{None} if the control tables are missing).
    """
    with conn.cursor() as cursor:
        try:
            cursor.execute(CHANGE_COUNTER)
        except Exception as e:
            if _is_missing_table(e):
                return None
            raise
        row = cursor.fetchone()
    return int(row[0]) if row is not None else 0


def read_meta(cursor) -> Dict[Tuple[str, str], EntryMeta]:
    """
    The latest applied audit record of every app key and host, as
    L{EntryMeta} by C{(kind, target)} (empty without control tables).
    """
    try:
        cursor.execute(READ_META)
    except Exception as e:
        if _is_missing_table(e):
            return {}
        raise
    return {(kind, target): EntryMeta(int(i), actor, reason) for kind, target, i, actor, reason in cursor.fetchall()}


def policy_from_row(row) -> Policy:
    """
    A L{Policy} from a C{freno_policies} row.
    """
    key, app, store, threshold, exempt, audit_id, actor, reason = row
    meta = EntryMeta(None if audit_id is None else int(audit_id), actor, reason)
    return Policy(app, store or None, None if threshold is None else float(threshold), bool(exempt), meta)


def read_policies(cursor) -> List[Policy]:
    """
    Every policy (none without control tables).
    """
    try:
        cursor.execute(READ_POLICIES)
    except Exception as e:
        if _is_missing_table(e):
            return []
        raise
    return [policy_from_row(r) for r in cursor.fetchall()]


def read_policy(cursor, key: str) -> Optional[Policy]:
    """
    The policy C{key}, or C{None}.
    """
    cursor.execute(READ_POLICY, (key,))
    row = cursor.fetchone()
    return None if row is None else policy_from_row(row)


def audit_page(conn, since: int, limit: int) -> AuditPage:
    """
    One page of C{freno_audit} (empty without control tables).
    """
    with conn.cursor() as cursor:
        try:
            cursor.execute(AUDIT_PAGE, (since, limit))
        except Exception as e:
            if _is_missing_table(e):
                return AuditPage((), since, None)
            raise
        rows = cursor.fetchall()
        cursor.execute(OLDEST_AUDIT)
        oldest = cursor.fetchone()[0]
    records = tuple(
        AuditRecord(int(i), float(t), actor, route, json.loads(params or "{}"), reason, outcome)
        for i, t, actor, route, params, reason, outcome in rows
    )
    return AuditPage(records, records[-1].id if records else since, None if oldest is None else int(oldest))


def purge(conn, grace_seconds: int) -> int:
    """
    Delete the throttles and skips that expired and were last written more
    than C{grace_seconds} ago; return how many rows went.
    """
    with conn.cursor() as cursor:
        cursor.execute(PURGE_APPS, (grace_seconds,))
        deleted = cursor.rowcount
        cursor.execute(PURGE_HOSTS, (grace_seconds,))
        deleted += cursor.rowcount
    return deleted
