"""
Tests for L{freno.logs}: observers writing to in-memory streams.
"""

from __future__ import annotations

import io
import json
from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.application.service import Application, IService, MultiService
from twisted.logger import ILogObserver, Logger, LogLevel
from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import ClusterSettings, Config, MySQLStoreSettings, ProxySQLSettings
from freno.logs import (
    REDACTED,
    make_log_observer,
    offer_log_observer,
)


def lines(stream: io.StringIO) -> List[str]:
    return [line for line in stream.getvalue().splitlines() if line]


class JSONTests(SynchronousTestCase):
    """
    The JSON observer writes one object per line with the event's fields.
    """

    def setUp(self) -> None:
        self.out = io.StringIO()
        self.observer = make_log_observer("json", LogLevel.info, self.out)
        self.log = Logger(namespace="freno.test", observer=self.observer)

    def records(self) -> List[dict]:
        return [json.loads(line) for line in lines(self.out)]

    def test_fields(self) -> None:
        """
        time, level, namespace and the formatted message, plus every
        structured field with its type kept.
        """
        self.log.warn("{app} throttled on {cluster}: {lag}", app="gh-ost", cluster="main", lag=1.5)
        [record] = self.records()
        self.assertEqual(record["level"], "warn")
        self.assertEqual(record["namespace"], "freno.test")
        self.assertEqual(record["message"], "gh-ost throttled on main: 1.5")
        self.assertEqual((record["app"], record["cluster"], record["lag"]), ("gh-ost", "main", 1.5))
        self.assertRegex(record["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_level_filter(self) -> None:
        """
        Events below the level are not written.
        """
        self.log.debug("hidden")
        self.log.info("shown")
        self.assertEqual([r["message"] for r in self.records()], ["shown"])

    def test_audit_always_written(self) -> None:
        """
        The audit namespace is written at info whatever the level, even
        C{error} (C{--quiet}); other info events are not.
        """
        for level in (LogLevel.warn, LogLevel.error):
            out = io.StringIO()
            observer = make_log_observer("json", level, out)
            Logger(namespace="freno.audit", observer=observer).info("audit {audit_id}", audit_id=7)
            Logger(namespace="freno.other", observer=observer).info("quiet")
            self.assertEqual([json.loads(line)["audit_id"] for line in lines(out)], [7])

    def test_reserved_names(self) -> None:
        """
        A field named like a reserved key is renamed, not lost.
        """
        self.log.info("x", message="mine", time=3)
        [record] = self.records()
        self.assertEqual((record["message"], record["message_field"], record["time_field"]), ("x", "mine", 3))

    def test_secret_fields(self) -> None:
        """
        Fields named like secrets are redacted, also inside dicts.
        """
        self.log.info(
            "connecting as {user} with {password}",
            user="freno", password="anything", settings={"RaftPassword": "x", "port": 1},
        )
        [record] = self.records()
        self.assertEqual(record["password"], REDACTED)
        self.assertEqual(record["message"], "connecting as freno with ***")
        self.assertEqual(record["settings"], {"RaftPassword": REDACTED, "port": 1})

    def test_common_word_password(self) -> None:
        """
        Redaction is by field, never by searching text: with the password
        C{freno}, the word C{freno} elsewhere in the line is kept, and the
        password field and a configuration dict's password key are not.
        """
        config = {"Hosts": ["db1"], "User": "freno", "Password": "freno"}
        self.log.info(
            "service {service} on {host} as {user}",
            service="freno", host="freno-0", user="freno", password="freno", config=config,
        )
        [record] = self.records()
        self.assertEqual(record["message"], "service freno on freno-0 as freno")
        self.assertEqual((record["service"], record["user"]), ("freno", "freno"))
        self.assertEqual(record["password"], REDACTED)
        self.assertEqual(record["config"], {"Hosts": ["db1"], "User": "freno", "Password": REDACTED})

    def test_config_objects_hide_secrets(self) -> None:
        """
        A configuration object logged as a field shows no password: the
        model's secret fields are left out of its C{repr}.
        """
        config = Config(
            raft_password="raft-S3cret",
            backend_mysql_password="backend-S3cret",
            mysql=MySQLStoreSettings(
                clusters={
                    "a": ClusterSettings("a", password="cluster-S3cret"),
                    "b": ClusterSettings("b", proxysql=ProxySQLSettings(password="proxy-S3cret")),
                }
            ),
        )
        self.log.info("configuration {config}", config=config)
        self.assertNotIn("S3cret", self.out.getvalue())

    def test_failure(self) -> None:
        """
        A logged failure gives C{error} and C{traceback}.
        """
        try:
            raise ValueError("bad value")
        except ValueError:
            self.log.failure("probe of {host} failed", host="db1")
        [record] = self.records()
        self.assertEqual(record["level"], "critical")
        self.assertEqual(record["error"], "bad value")
        self.assertIn("ValueError", record["traceback"])

    def test_unknown_format(self) -> None:
        """
        An unknown format or level is refused.
        """
        self.assertRaises(ValueError, make_log_observer, "xml")
        self.assertRaises(ValueError, make_log_observer, "json", "info")

    @settings(max_examples=100, deadline=None)
    @given(
        key=st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True),
        value=st.one_of(st.text(), st.integers(), st.floats(), st.lists(st.text(), max_size=3), st.binary(max_size=8)),
    )
    def test_any_field_one_line(self, key, value) -> None:
        """
        Whatever the field, the output is exactly one valid JSON line, and
        a secret-named field never shows its value.
        """
        out = io.StringIO()
        observer = make_log_observer("json", LogLevel.info, out)
        Logger(observer=observer).info(
            "v {x}", x=value, password="hunter22", **{"f_" + key: str(value)}
        )
        [line] = out.getvalue().split("\n")[:-1]
        self.assertIsInstance(json.loads(line), dict)
        self.assertNotIn("hunter22", line)


class TextTests(SynchronousTestCase):
    """
    The text observer writes Twisted's classic lines, redacted.
    """

    def test_text(self) -> None:
        """
        One line per event, with the formatted message and no secret.
        """
        out = io.StringIO()
        log = Logger(namespace="freno.test", observer=make_log_observer("text", LogLevel.warn, out))
        log.info("not shown")
        log.warn("cannot connect to {host} with {secret_key}", host="db1", secret_key="k")
        log.error("login {user} {password}", user="freno", password="hunter22")
        [first, second] = lines(out)
        self.assertIn("cannot connect to db1 with ***", first)
        self.assertIn("[freno.test#warn]", first)
        self.assertIn("login freno ***", second)
        self.assertNotIn("hunter22", out.getvalue())


class OfferTests(SynchronousTestCase):
    """
    L{offer_log_observer} hands the observer to twistd's application.
    """

    def test_offer(self) -> None:
        """
        Attached to an C{Application} the way twistd attaches a plugin's
        service, the wrapper sets the application's L{ILogObserver}, and
        the real service is its child.
        """
        observer = make_log_observer("json")
        top = MultiService()
        wrapped = offer_log_observer(top, observer)
        application = Application("freno")
        wrapped.setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), observer)
        self.assertEqual(list(wrapped), [top])
        self.assertIn(wrapped, list(IService(application)))

    def test_existing_observer_kept(self) -> None:
        """
        An observer the application already has is not replaced.
        """
        application = Application("freno")
        mine = make_log_observer("text")
        application.setComponent(ILogObserver, mine)
        offer_log_observer(MultiService(), make_log_observer("json")).setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), mine)
