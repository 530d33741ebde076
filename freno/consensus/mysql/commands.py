# -*- test-case-name: test.unit.test_consensus_mysql,test.unit.test_consensus_mysql_control -*-
"""
L{TableCommands}: how the MySQL backend's commands reach the tables, the
command half of L{freno.consensus.mysql.service.MySQLBackendConsensus}.

A command writes the database first (with its audit record and limit check
in the same transaction when it carries an audit context:
L{freno.consensus.mysql.control_tables}) and applies the row read back to
the local state only once the write succeeded (docs/decisions.md D39, D53,
D57). Rows read by the polls are applied by the same C{_apply_*} methods.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from freno.consensus.audit import Applied
from freno.consensus.commands import (
    Command,
    InvalidCommand,
    PurgeExpired,
    RecordTransfer,
    RecoverHost,
    RemovePolicy,
    SetPolicy,
    SkipHost,
    ThrottleApp,
    UnthrottleApp,
)
from freno.consensus.interface import ConsensusError
from freno.consensus.mysql.control_tables import AuditEntry, Limit
from freno.consensus.mysql.control_tables import POLICY_KEY_LENGTH
from freno.consensus.mysql.store import NAME_COLUMN_LENGTH, AppRow, HostRow, db_expiry
from freno.consensus.state import MAX_ENTRIES, AppThrottle, Policy

#: How long an expired row (a tombstone included) stays after it was last
#: written: longer than any poller's interval (Go freno's is 10 s).
ROW_PURGE_GRACE = 60


def error_text(error: BaseException) -> str:
    """
    A driver error as C{(code) message}, or the error's text.
    """
    args = getattr(error, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        return f"({args[0]}) {args[1]}"
    return str(error) or type(error).__name__


class TableCommands:
    """
    The C{_submit} of the MySQL backend, and the application of rows to the
    local state. The class mixing this in provides C{_store}, C{_clock},
    C{state}, C{_seq}, C{_touched}, C{_audit_keep} and C{_track}.
    """

    _log = Logger()

    def _apply_app(self, row: AppRow, now: float) -> None:
        if row.expire_at is not None and row.expire_at <= now:
            self.state.apply(UnthrottleApp(row.key))
        else:
            self.state.apply(ThrottleApp(row.key, row.expire_at, row.ratio))
            if row.meta is not None:
                entry = self.state.apps[row.key]
                self.state.apps[row.key] = AppThrottle(entry.expire_at, entry.ratio, row.meta)

    def _apply_host(self, row: HostRow, now: float) -> None:
        if row.expire_at is None or row.expire_at <= now:
            self.state.apply(RecoverHost(row.hostname))
        else:
            self.state.apply(SkipHost(row.hostname, row.expire_at))
            if row.meta is not None:
                self.state.skip_meta[row.hostname] = row.meta

    def _apply_policy(self, key: str, policy: Optional[Policy]) -> None:
        if policy is None:
            self.state.policies.pop(key, None)
        else:
            self.state.policies[key] = policy

    def _command(self, kind: str, key: str, d: Deferred, apply: Callable) -> Deferred:
        def applied(written):
            if written.refused is not None:
                return Applied(written.audit_id, written.refused, written.field)
            apply(written.row, self._clock.seconds())
            self._seq += 1
            self._touched[(kind, key)] = self._seq
            return Applied(written.audit_id)

        def failed(failure):
            error = error_text(failure.value)
            self._log.warn(
                "MySQL backend command failed: {kind} {key}: {error}", kind=kind, key=key, error=error
            )
            raise ConsensusError(f"MySQL backend write failed: {error}")

        d.addCallbacks(applied, failed)
        return self._track(d)

    def _audit(self, command, kind: str, target: str) -> Optional[AuditEntry]:
        if command.context is None:
            return None
        return AuditEntry(command.context, kind, target, self._audit_keep)

    @staticmethod
    def _adds(command, expire_at: Optional[float]) -> bool:
        # An expiry already past at the command's time adds nothing.
        return command.context is not None and (
            expire_at is None or expire_at > command.context.time
        )

    def _too_long(self, command: Command) -> Optional[Deferred]:
        """
        The answer to a command whose name the tables cannot hold (freno's
        C{varchar(128)} name columns; our policy keys take 255), before any
        SQL: a removal succeeds (there is nothing the tables could hold to
        remove), anything else fails with L{InvalidCommand} naming the column
        (docs/decisions.md, D48).
        """
        if isinstance(command, (ThrottleApp, UnthrottleApp)):
            name, limit, parameter, column = command.key, NAME_COLUMN_LENGTH, "app", "throttled_apps.app_name"
        elif isinstance(command, (SkipHost, RecoverHost)):
            name, limit, parameter, column = (
                command.hostname, NAME_COLUMN_LENGTH, "hostName", "skipped_hosts.host_name"
            )
        elif isinstance(command, (SetPolicy, RemovePolicy)):
            name, limit, parameter, column = command.key, POLICY_KEY_LENGTH, "app", "freno_policies.policy_key"
        else:
            return None
        if len(name) <= limit:
            return None
        if isinstance(command, (UnthrottleApp, RecoverHost, RemovePolicy)):
            return succeed(Applied())
        return fail(
            InvalidCommand(
                parameter, f"longer than {limit} characters (the MySQL backend's {column} column)"
            )
        )

    def _submit(self, command: Command) -> Deferred:
        store = self._store
        too_long = self._too_long(command)
        if too_long is not None:
            return too_long
        if isinstance(command, ThrottleApp):
            expires = None if command.expire_at is None else db_expiry(command.expire_at)
            limit = Limit("throttles", "app", MAX_ENTRIES) if self._adds(command, command.expire_at) else None
            written = store.throttle_app(
                command.key, expires, command.ratio, self._audit(command, "app", command.key), limit
            )
            return self._command("app", command.key, written, self._apply_app)
        if isinstance(command, UnthrottleApp):
            written = store.unthrottle_app(command.key, self._audit(command, "app", command.key))
            return self._command("app", command.key, written, self._apply_app)
        if isinstance(command, SkipHost):
            limit = Limit("skips", "host", MAX_ENTRIES) if self._adds(command, command.expire_at) else None
            written = store.skip_host(
                command.hostname, db_expiry(command.expire_at),
                self._audit(command, "host", command.hostname), limit,
            )
            return self._command("host", command.hostname, written, self._apply_host)
        if isinstance(command, RecoverHost):
            written = store.recover_host(command.hostname, self._audit(command, "host", command.hostname))
            return self._command("host", command.hostname, written, self._apply_host)
        if isinstance(command, SetPolicy):
            policy = Policy(command.app, command.store, command.threshold, command.exempt)
            limit = Limit("policies", "app", MAX_ENTRIES) if command.context is not None else None
            written = store.set_policy(policy, self._audit(command, "policy", command.key), limit)
            return self._command(
                "policy", command.key, written, lambda row, now: self._apply_policy(command.key, row)
            )
        if isinstance(command, RemovePolicy):
            written = store.remove_policy(command.key, self._audit(command, "policy", command.key))
            return self._command(
                "policy", command.key, written, lambda row, now: self._apply_policy(command.key, None)
            )
        if isinstance(command, PurgeExpired):
            self.state.purge_expired(command.now)
            d = store.purge(ROW_PURGE_GRACE)
            d.addCallback(lambda _: Applied())
            return self._track(d)
        if isinstance(command, RecordTransfer):
            return fail(InvalidCommand("command", "the MySQL backend has no leadership to transfer"))
        raise TypeError(f"not a command: {command!r}")

