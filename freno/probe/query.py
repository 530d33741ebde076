# -*- test-case-name: test.unit.test_probe_query -*-
"""
C{MetricQuery} semantics (freno's C{ReadThrottleMetric}): which
statement a cluster's query is, and how a result set becomes one float.

Everything here but L{classify} runs in a thread-pool thread with a DB-API
connection; nothing touches the reactor. L{select_value},
L{show_global_value} and L{replication_lag} interpret a result set given as
column names and rows, so a source that reads result sets some other way
(L{freno.probe.wire}) shares the same semantics.

Dispatch (docs/decisions.md, D21):
    - The query is trimmed and the I{dispatch} is case-insensitive, so
      C{"  SELECT 1"} is a C{select} (freno tested an untrimmed lower-cased
      prefix, so leading whitespace gave "Unsupported"). The trimmed text is
      sent unchanged, so string literals keep their case.
    - C{select ...}: the first row must have exactly one column holding a
      number. No rows, C{NULL}, several columns or a non-number are errors.
    - C{show global ...}: rows of C{(name, value)}; the first row's value.
    - empty: replication lag. C{SHOW REPLICA STATUS} is tried first (MySQL
      8.4 has no C{SHOW SLAVE STATUS}); a server that does not know it
      (syntax error 1064) gets C{SHOW SLAVE STATUS} from then on. Column
      names of either generation are understood. C{Seconds_Behind_Master}
      NULL gives freno's C{replication not running; Slave_IO_Running=...,
      Slave_SQL_Running=...}. With several channels (multi-source), the
      worst lag counts (freno: the last row). No rows means
      the host is not a replica, which is an error (C{"not a replica (SHOW
      SLAVE STATUS returned no rows)"}), not freno's silent 0: a primary put
      into a replica pool by mistake must not vouch for the pool.
    - anything else: C{Unsupported metrics query type: <query>}.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import attr

from freno.probe.interfaces import ProbeError

SELECT = "select"
SHOW_GLOBAL = "show global"
REPLICATION = "replication"

_NOT_A_REPLICA = "not a replica (SHOW SLAVE STATUS returned no rows)"
_SYNTAX_ERROR = 1064

#: The replication-status statement tried first, and the fallback for a
#: server that answers it with a syntax error (L{SYNTAX_ERROR}).
SHOW_REPLICA_STATUS = "SHOW REPLICA STATUS"
SHOW_SLAVE_STATUS = "SHOW SLAVE STATUS"
SYNTAX_ERROR = _SYNTAX_ERROR


class ProbeConnectError(ProbeError):
    """
    The host could not be reached at all (connection refused, unknown host):
    freno's C{dial tcp ...} errors, which C{IgnoreDialTcpErrors} leaves out
    of aggregation. The message starts with C{"dial tcp "} as freno's did.
    """


@attr.s(frozen=True, auto_attribs=True, slots=True)
class MetricQuery:
    """
    A classified C{MetricQuery}.

    @ivar kind: L{SELECT}, L{SHOW_GLOBAL} or L{REPLICATION}.
    @ivar text: the trimmed statement to send (empty for L{REPLICATION}).
    """

    kind: str
    text: str


def classify(query: str) -> MetricQuery:
    """
    Classify a cluster's C{MetricQuery}.

    @raise ProbeError: C{Unsupported metrics query type: <query>}.
    """
    text = query.strip()
    folded = text.casefold()
    if not text:
        return MetricQuery(REPLICATION, "")
    if folded.startswith(SELECT):
        return MetricQuery(SELECT, text)
    if folded.startswith(SHOW_GLOBAL):
        return MetricQuery(SHOW_GLOBAL, text)
    raise ProbeError(f"Unsupported metrics query type: {query}")


def _number(value: Any, what: str) -> float:
    if value is None:
        raise ProbeError(f"{what} is NULL")
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ProbeError(f"{what} is not a number: {value!r}") from None
    if result != result:
        raise ProbeError(f"{what} is not a number: NaN")
    return result


def _execute(connection, statement: str) -> Tuple[Sequence[str], list]:
    cursor = connection.cursor()
    try:
        cursor.execute(statement)
        names = [d[0] for d in (cursor.description or ())]
        rows = list(cursor.fetchall() or ())
    finally:
        cursor.close()
    return names, rows


def _select(connection, text: str) -> float:
    return select_value(*_execute(connection, text))


def select_value(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> float:
    """
    The metric of a C{select} query's result set (column names, rows).

    @raise ProbeError: not exactly one column, no rows, or not a number.
    """
    if len(names) != 1:
        raise ProbeError(
            f"metric query must return exactly one column, got {len(names)}"
        )
    if not rows:
        raise ProbeError("metric query returned no rows")
    return _number(rows[0][0], "metric value")


def _show_global(connection, text: str) -> float:
    return show_global_value(*_execute(connection, text))


def show_global_value(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> float:
    """
    The metric of a C{show global ...} result set: the first row's value.

    @raise ProbeError: not two columns, no rows, or not a number.
    """
    if len(names) != 2:
        raise ProbeError(
            f"show global query must return (name, value), got {len(names)} columns"
        )
    if not rows:
        raise ProbeError("show global query returned no rows")
    name, value = rows[0]
    return _number(value, f"{name}")


def _column(row: dict, *names: str) -> Any:
    for name in names:
        if name in row:
            return row[name]
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def replication_lag(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> float:
    """
    The lag from a C{SHOW SLAVE STATUS}/C{SHOW REPLICA STATUS} result set.

    @raise ProbeError: not a replica, or replication not running.
    """
    if not rows:
        raise ProbeError(_NOT_A_REPLICA)
    worst: Optional[float] = None
    for raw in rows:
        row = dict(zip(names, raw))
        seconds = _column(row, "Seconds_Behind_Master", "Seconds_Behind_Source")
        try:
            lag = float(_text(seconds)) if seconds is not None else None
        except ValueError:
            lag = None
        if lag is None:
            io = _text(_column(row, "Slave_IO_Running", "Replica_IO_Running"))
            sql = _text(_column(row, "Slave_SQL_Running", "Replica_SQL_Running"))
            raise ProbeError(
                f"replication not running; Slave_IO_Running={io}, "
                f"Slave_SQL_Running={sql}"
            )
        worst = lag if worst is None else max(worst, lag)
    assert worst is not None
    return worst


class ReplicationStatement:
    """
    Which replication-status statement a server understands; one per
    connection, starting with C{SHOW REPLICA STATUS}.
    """

    def __init__(self) -> None:
        self.statement = SHOW_REPLICA_STATUS

    def run(self, connection) -> float:
        """
        Read the lag, falling back to C{SHOW SLAVE STATUS} once if the server
        does not know C{SHOW REPLICA STATUS}.
        """
        try:
            names, rows = _execute(connection, self.statement)
        except Exception as e:
            if self.statement != SHOW_REPLICA_STATUS or error_code(e) != _SYNTAX_ERROR:
                raise
            self.statement = SHOW_SLAVE_STATUS
            names, rows = _execute(connection, self.statement)
        return replication_lag(names, rows)


def error_code(error: BaseException) -> Optional[int]:
    """
    The MySQL error number of a DB-API exception (PyMySQL and MySQLdb both
    put it in C{args[0]}), or C{None}.
    """
    args = getattr(error, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def run_metric_query(
    connection, query: MetricQuery, replication: ReplicationStatement
) -> float:
    """
    Run C{query} on a DB-API C{connection} (in a worker thread).

    @return: the metric.
    @raise ProbeError: a result that is not one number (see module doc).
    @raise Exception: whatever the driver raises (the caller classifies it).
    """
    if query.kind == SELECT:
        return _select(connection, query.text)
    if query.kind == SHOW_GLOBAL:
        return _show_global(connection, query.text)
    return replication.run(connection)
