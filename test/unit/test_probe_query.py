"""
Tests for L{freno.probe.query}: C{MetricQuery} dispatch and result parsing,
with a scripted DB-API connection.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from freno.probe.interfaces import ProbeError
from freno.probe.query import (
    REPLICATION,
    SELECT,
    SHOW_GLOBAL,
    MetricQuery,
    ReplicationStatement,
    classify,
    replication_lag,
    run_metric_query,
)


class FakeDBError(Exception):
    """
    A driver error with C{(code, message)} args.
    """


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn
        self.description = None
        self._rows = []

    def execute(self, statement):
        self.conn.executed.append(statement)
        answer = self.conn.answers.get(statement)
        if answer is None:
            raise FakeDBError(1064, f"syntax error near {statement!r}")
        if isinstance(answer, Exception):
            raise answer
        names, rows = answer
        self.description = [(n,) for n in names]
        self._rows = rows

    def fetchall(self):
        return self._rows

    def close(self):
        pass


class FakeConnection:
    """
    Answers statements from C{answers}: statement to C{(names, rows)} or an
    exception; unknown statements are syntax errors.
    """

    def __init__(self, answers):
        self.answers = answers
        self.executed = []

    def cursor(self):
        return FakeCursor(self)


def run(answers, query):
    conn = FakeConnection(answers)
    return run_metric_query(conn, classify(query), ReplicationStatement())


SLAVE_NAMES = ["Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master"]


class ClassifyTests(SynchronousTestCase):
    """
    L{classify}: trimmed, case-insensitive dispatch.
    """

    def test_kinds(self):
        """
        C{select}, C{show global} and empty queries classify; whitespace and
        case do not matter for dispatch; the text keeps its case.
        """
        self.assertEqual(classify("select 1"), MetricQuery(SELECT, "select 1"))
        self.assertEqual(classify("  SELECT 'A'\n"), MetricQuery(SELECT, "SELECT 'A'"))
        self.assertEqual(
            classify("Show Global status like 'x'").kind, SHOW_GLOBAL
        )
        self.assertEqual(classify(""), MetricQuery(REPLICATION, ""))
        self.assertEqual(classify("   "), MetricQuery(REPLICATION, ""))

    def test_unsupported(self):
        """
        Anything else is freno's "Unsupported metrics query type".
        """
        e = self.assertRaises(ProbeError, classify, "show status")
        self.assertEqual(str(e), "Unsupported metrics query type: show status")


class SelectTests(SynchronousTestCase):
    """
    C{select} queries: exactly one numeric value.
    """

    def test_value(self):
        """
        The first row's single column is the value; strings and decimals
        convert.
        """
        self.assertEqual(run({"select 1": (["1"], [(1,)])}, "select 1"), 1.0)
        self.assertEqual(run({"select x": (["x"], [(b"0.25",), (9,)])}, "select x"), 0.25)

    def test_null(self):
        """
        NULL is an error.
        """
        e = self.assertRaises(ProbeError, run, {"select n": (["n"], [(None,)])}, "select n")
        self.assertIn("NULL", str(e))

    def test_no_rows(self):
        """
        No rows is an error.
        """
        e = self.assertRaises(ProbeError, run, {"select n": (["n"], [])}, "select n")
        self.assertIn("no rows", str(e))

    def test_two_columns(self):
        """
        Two columns is an error.
        """
        e = self.assertRaises(
            ProbeError, run, {"select a,b": (["a", "b"], [(1, 2)])}, "select a,b"
        )
        self.assertIn("exactly one column, got 2", str(e))

    def test_not_a_number(self):
        """
        A non-numeric value is an error.
        """
        e = self.assertRaises(ProbeError, run, {"select s": (["s"], [("abc",)])}, "select s")
        self.assertIn("not a number", str(e))


class ShowGlobalTests(SynchronousTestCase):
    """
    C{show global ...}: C{(name, value)} rows.
    """

    def test_value(self):
        """
        The first row's value is the metric.
        """
        q = "show global status like 'threads_running'"
        answers = {q: (["Variable_name", "Value"], [("Threads_running", "3")])}
        self.assertEqual(run(answers, q), 3.0)

    def test_no_rows(self):
        """
        No rows is an error.
        """
        q = "show global status like 'nope'"
        e = self.assertRaises(ProbeError, run, {q: (["Variable_name", "Value"], [])}, q)
        self.assertIn("no rows", str(e))


class ReplicationTests(SynchronousTestCase):
    """
    Replication lag from C{SHOW REPLICA STATUS}/C{SHOW SLAVE STATUS}.
    """

    def test_replica_status_first(self):
        """
        C{SHOW REPLICA STATUS} is used when the server knows it.
        """
        answers = {"SHOW REPLICA STATUS": (SLAVE_NAMES, [("Yes", "Yes", 3)])}
        self.assertEqual(run(answers, ""), 3.0)

    def test_fallback(self):
        """
        A server without C{SHOW REPLICA STATUS} gets C{SHOW SLAVE STATUS},
        and the statement is remembered.
        """
        conn = FakeConnection({"SHOW SLAVE STATUS": (SLAVE_NAMES, [("Yes", "Yes", 0)])})
        replication = ReplicationStatement()
        self.assertEqual(run_metric_query(conn, classify(""), replication), 0.0)
        self.assertEqual(run_metric_query(conn, classify(""), replication), 0.0)
        self.assertEqual(
            conn.executed,
            ["SHOW REPLICA STATUS", "SHOW SLAVE STATUS", "SHOW SLAVE STATUS"],
        )

    def test_mysql8_names(self):
        """
        MySQL 8's C{Seconds_Behind_Source}/C{Replica_*} columns work.
        """
        names = ["Replica_IO_Running", "Replica_SQL_Running", "Seconds_Behind_Source"]
        self.assertEqual(replication_lag(names, [("Yes", "Yes", 7)]), 7.0)
        e = self.assertRaises(ProbeError, replication_lag, names, [("No", "Yes", None)])
        self.assertEqual(
            str(e), "replication not running; Slave_IO_Running=No, Slave_SQL_Running=Yes"
        )

    def test_not_running(self):
        """
        C{Seconds_Behind_Master} NULL is freno's "replication not running".
        """
        e = self.assertRaises(
            ProbeError, replication_lag, SLAVE_NAMES, [("Connecting", "Yes", None)]
        )
        self.assertEqual(
            str(e),
            "replication not running; Slave_IO_Running=Connecting, Slave_SQL_Running=Yes",
        )

    def test_not_a_replica(self):
        """
        No rows is an error (B21 decided), not a lag of 0.
        """
        e = self.assertRaises(ProbeError, replication_lag, SLAVE_NAMES, [])
        self.assertEqual(str(e), "not a replica (SHOW SLAVE STATUS returned no rows)")

    def test_multi_source_worst(self):
        """
        With several channels the worst lag counts.
        """
        rows = [("Yes", "Yes", 2), ("Yes", "Yes", 9), ("Yes", "Yes", 1)]
        self.assertEqual(replication_lag(SLAVE_NAMES, rows), 9.0)

    def test_other_errors_propagate(self):
        """
        A driver error other than a syntax error is not retried.
        """
        conn = FakeConnection({"SHOW REPLICA STATUS": FakeDBError(1227, "denied")})
        self.assertRaises(
            FakeDBError, run_metric_query, conn, classify(""), ReplicationStatement()
        )
