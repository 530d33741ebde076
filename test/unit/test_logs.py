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
    Redactor,
    level_from_flags,
    make_log_observer,
    offer_log_observer,
    secrets_of,
)


class Thing:
    """
    An object whose repr shows a secret.
    """

    def __repr__(self) -> str:
        return "<Thing dsn=user:hunter22@db1>"


def lines(stream: io.StringIO) -> List[str]:
    return [line for line in stream.getvalue().splitlines() if line]


class LevelTests(SynchronousTestCase):
    """
    Flags map to levels as freno's do, with warn as our default.
    """

    def test_levels(self) -> None:
        """
        Default warn; verbose info; debug debug; quiet error, winning.
        """
        self.assertEqual(level_from_flags(), LogLevel.warn)
        self.assertEqual(level_from_flags(verbose=True), LogLevel.info)
        self.assertEqual(level_from_flags(debug=True), LogLevel.debug)
        self.assertEqual(level_from_flags(verbose=True, debug=True), LogLevel.debug)
        self.assertEqual(level_from_flags(verbose=True, debug=True, quiet=True), LogLevel.error)


class JSONTests(SynchronousTestCase):
    """
    The JSON observer writes one object per line with the event's fields.
    """

    def setUp(self) -> None:
        self.out = io.StringIO()
        self.observer = make_log_observer("json", LogLevel.info, self.out, secrets=["hunter22", "s3cr3t-raft"])
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

    def test_secret_values(self) -> None:
        """
        Configured secrets are redacted wherever they appear: values,
        lists, reprs, and the message.
        """
        self.log.error(
            "dsn {dsn}", dsn="root:hunter22@127.0.0.1", peers=["a", "s3cr3t-raft"], thing=Thing()
        )
        text = self.out.getvalue()
        self.assertNotIn("hunter22", text)
        self.assertNotIn("s3cr3t-raft", text)
        [record] = self.records()
        self.assertEqual(record["dsn"], "root:***@127.0.0.1")
        self.assertEqual(record["peers"], ["a", REDACTED])
        self.assertEqual(record["thing"], "<Thing dsn=user:***@db1>")

    def test_failure(self) -> None:
        """
        A logged failure gives C{error} and C{traceback}, redacted.
        """
        try:
            raise ValueError("bad password hunter22")
        except ValueError:
            self.log.failure("probe of {host} failed", host="db1")
        [record] = self.records()
        self.assertEqual(record["level"], "critical")
        self.assertEqual(record["error"], "bad password ***")
        self.assertIn("ValueError", record["traceback"])
        self.assertNotIn("hunter22", self.out.getvalue())

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
        Whatever the field, the output is exactly one valid JSON line and
        never contains a configured secret.
        """
        out = io.StringIO()
        observer = make_log_observer("json", LogLevel.info, out, secrets=["hunter22"])
        Logger(observer=observer).info("v {x}", x=value, **{"f_" + key: str(value) + "hunter22"})
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
        log = Logger(namespace="freno.test", observer=make_log_observer("text", LogLevel.warn, out, ["hunter22"]))
        log.info("not shown")
        log.warn("cannot connect to {host} with {secret_key}", host="db1", secret_key="k")
        log.error("dsn {dsn}", dsn="u:hunter22@h")
        [first, second] = lines(out)
        self.assertIn("cannot connect to db1 with ***", first)
        self.assertIn("[freno.test#warn]", first)
        self.assertIn("dsn u:***@h", second)
        self.assertNotIn("hunter22", out.getvalue())


class SecretsTests(SynchronousTestCase):
    """
    L{secrets_of} finds every password in a configuration.
    """

    def test_secrets_of(self) -> None:
        """
        Raft, backend, cluster and ProxySQL passwords; empty ones skipped.
        """
        config = Config(
            raft_password="raftpass",
            backend_mysql_password="",
            mysql=MySQLStoreSettings(
                clusters={
                    "a": ClusterSettings("a", password="clusterpass"),
                    "b": ClusterSettings("b", proxysql=ProxySQLSettings(password="proxypass")),
                }
            ),
        )
        self.assertEqual(set(secrets_of(config)), {"raftpass", "clusterpass", "proxypass"})

    def test_short_secrets(self) -> None:
        """
        Secrets under 4 characters are redacted only as whole values.
        """
        redactor = Redactor(["ab"])
        self.assertEqual(redactor.text("ab"), REDACTED)
        self.assertEqual(redactor.text("table"), "table")


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
