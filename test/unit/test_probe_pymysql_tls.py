"""
Tests for L{freno.probe.pymysql_tls}: the TLS settings as PyMySQL
arguments (the real exchanges with a TLS MariaDB are in
L{test.integration.test_probe_wire_tls_sandbox}).
"""

from __future__ import annotations

import ssl

from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import ClusterSettings, ProbeSettings, TLSSettings
from freno.config.tls import TLSFileProblem
from freno.hosts import HostKey
from freno.probe.interfaces import ProbeError
from freno.probe.mysql_source import MySQLMetricSource
from freno.probe.pymysql_tls import pymysql_connector, pymysql_tls_kwargs, ssl_context
from freno.sandbox import certs


class PyMySQLTLSTests(SynchronousTestCase):
    """
    L{ssl_context} and L{pymysql_tls_kwargs} per mode.
    """

    def setUp(self):
        self.pki = certs.make_pki(self.mktemp())

    def test_contexts(self):
        """
        Verification and name checks follow the mode.
        """
        expected = {
            "preferred": (ssl.CERT_NONE, False),
            "required": (ssl.CERT_NONE, False),
            "verify-ca": (ssl.CERT_REQUIRED, False),
            "verify-identity": (ssl.CERT_REQUIRED, True),
        }
        for mode, (verify, names) in expected.items():
            ca = self.pki.ca if mode.startswith("verify") else ""
            context = ssl_context(TLSSettings(mode, ca, self.pki.client_cert, self.pki.client_key))
            self.assertEqual((mode, context.verify_mode, context.check_hostname), (mode, verify, names))
        self.assertEqual(ssl_context(TLSSettings("verify-ca")).verify_mode, ssl.CERT_REQUIRED)
        self.assertRaises(TLSFileProblem, ssl_context, TLSSettings("verify-ca", "/nonexistent"))

    def test_kwargs(self):
        """
        C{disabled} is C{ssl_disabled}; C{preferred} is PyMySQL's default
        (a client certificate is put in late); the other modes pass the
        context; a public key is C{server_public_key}.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.assertEqual(pymysql_tls_kwargs(TLSSettings("disabled"), None, None), ({"ssl_disabled": True}, None))
        self.assertEqual(pymysql_tls_kwargs(TLSSettings("preferred"), None, b"K"), ({"server_public_key": b"K"}, None))
        self.assertEqual(
            pymysql_tls_kwargs(TLSSettings("preferred", cert="c"), context, None),
            ({"defer_connect": True}, context),
        )
        self.assertEqual(pymysql_tls_kwargs(TLSSettings("required"), context, None), ({"ssl": context}, None))

    def test_late_context(self):
        """
        The preferred-mode connector gives the deferred connection the
        context before connecting it.
        """
        events = []

        class Connection:
            def connect(self):
                events.append(("connect", self.ctx))

        class DBAPI:
            @staticmethod
            def connect(**kwargs):
                events.append(("made", kwargs))
                return Connection()

        connect = pymysql_connector(DBAPI, "CTX")
        connect(defer_connect=True)
        self.assertEqual(events, [("made", {"defer_connect": True}), ("connect", "CTX")])
        self.assertIs(pymysql_connector(DBAPI, None), DBAPI.connect)

    def test_source_reports_bad_files(self):
        """
        A TLS file that became unusable fails the probe with a readable
        error instead of raising.
        """
        source = MySQLMetricSource(
            None, ProbeSettings(driver="pymysql"), threadpool=object(), dbapi=object()
        )
        cluster = ClusterSettings(name="c", metric_query="select 1", tls=TLSSettings("verify-ca", "/nonexistent"))
        f = self.failureResultOf(source.probe(cluster, HostKey("db1", 3306)), ProbeError)
        self.assertIn("TLS settings for db1:3306: cannot use the TLS files", str(f.value))
