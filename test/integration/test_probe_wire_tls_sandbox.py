"""
SLOW integration tests: TLS and authentication plugins against real
MariaDB servers started by the sandbox (L{freno.sandbox.mysql}), with
certificates this module makes (L{freno.sandbox.certs}).

    - L{TLSServerTests}: a server with TLS (its certificate names
      C{localhost} only) and users that C{REQUIRE SSL} or C{REQUIRE X509}:
      both drivers verify it against the CA (C{mysql_native_password} over
      TLS), refuse it with a wrong CA, tell C{verify-identity} (name
      checked) from C{verify-ca} (not), present a client certificate; a
      C{client_ed25519} user fails the native driver with an error naming
      the plugin, and logs in with PyMySQL when PyNaCl is installed.
    - L{PlainServerTests}: a server without TLS: C{"preferred"} probes in
      plain, C{"required"} fails clearly, with both drivers.

What runs where: MariaDB has no C{caching_sha2_password}, so its exchanges
(fast, full over TLS, full with RSA) are tested against the fake server in
L{test.unit.test_probe_wire_auth} and L{test.unit.test_probe_wire_tls}, where TLS is
real TLS in memory.

Each class starts one sandbox (a primary, no replicas) for all its tests;
every wait is a poll with a deadline; nothing uses the machine's own
MariaDB.
"""

from __future__ import annotations

import os
import shutil

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from freno.config.model import ClusterSettings, ProbeSettings, TLSSettings
from freno.config.tls import DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY
from freno.hosts import HostKey
from freno.probe.interfaces import ProbeError
from freno.probe.mysql_source import MySQLMetricSource
from freno.probe.wire.source import NativeMetricSource
from freno.sandbox import certs
from test.support import SharedSandboxMixin

#: 1 when the probe's own session is encrypted, else 0.
SESSION_TLS = (
    "select count(*) from information_schema.session_status "
    "where variable_name = 'Ssl_cipher' and variable_value <> ''"
)
PASSWORD = "tls-pw"

try:
    import nacl  # noqa: F401  (PyMySQL's client_ed25519 needs it)
except ImportError:
    HAVE_NACL = False
else:
    HAVE_NACL = True


def _pki(name: str, **kwargs) -> certs.PKI:
    """
    Certificates in a directory of trial's working directory (made once).
    """
    directory = os.path.abspath(name)
    if os.path.exists(directory):
        shutil.rmtree(directory)
    return certs.make_pki(directory, **kwargs)


class _Probing(SharedSandboxMixin):
    """
    Sources of both drivers and a cluster builder.
    """

    timeout = 120

    def setUp(self):
        super().setUp()
        self.native = NativeMetricSource(reactor, ProbeSettings(timeout=3.0))
        self.addCleanup(self.native.close)
        self.pymysql = MySQLMetricSource(
            reactor, ProbeSettings(timeout=3.0, driver="pymysql", thread_pool_size=2)
        )
        self.addCleanup(self.pymysql.close)

    def sources(self):
        return (("native", self.native), ("pymysql", self.pymysql))

    def cluster(self, user, mode, query=SESSION_TLS, **tls):
        return ClusterSettings(
            name=f"{user}-{mode}", user=user, password=PASSWORD, metric_query=query,
            tls=TLSSettings(mode=mode, **tls),
        )

    def host(self, name="127.0.0.1"):
        return HostKey(name, self.sandbox.primary.port)

    @inlineCallbacks
    def probe_fails(self, source, cluster, host):
        """
        The probe's error text.
        """
        try:
            value = yield source.probe(cluster, host)
        except ProbeError as e:
            return str(e)
        self.fail(f"probe succeeded with {value!r}")


class TLSServerTests(_Probing, TestCase):
    """
    SLOW (a few seconds): a TLS-enabled MariaDB.
    """

    sandbox_kwargs = {"replicas": 0}

    def setUp(self):
        cls = type(self)
        if cls._shared is None:
            # The server's certificate names localhost only, not 127.0.0.1.
            cls.pki = _pki("sandbox-tls", server_names=("localhost",), server_ips=())
            cls.other = _pki("sandbox-other-ca", ca_name="some other CA")
            cls.sandbox_kwargs = {"replicas": 0, "tls": cls.pki}
            super().setUp()
            primary = self.sandbox.primary
            self.sandbox.query(primary, "INSTALL SONAME 'auth_ed25519'")
            for user, require in (("tls", "SSL"), ("x509", "X509")):
                self.sandbox.query(
                    primary,
                    f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE {require}",
                )
            self.sandbox.query(
                primary,
                f"CREATE USER 'ed'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{PASSWORD}')",
            )
        else:
            super().setUp()

    @inlineCallbacks
    def test_verified(self):
        """
        Both drivers verify the server against the CA and its name
        (C{localhost}) and log in a C{REQUIRE SSL} user with
        C{mysql_native_password} over TLS; the session is encrypted.
        """
        for name, source in self.sources():
            for mode in (VERIFY_IDENTITY, VERIFY_CA, REQUIRED, PREFERRED):
                ca = self.pki.ca if mode in (VERIFY_CA, VERIFY_IDENTITY) else ""
                value = yield source.probe(self.cluster("tls", mode, ca=ca), self.host("localhost"))
                self.assertEqual((name, mode, value), (name, mode, 1.0))

    @inlineCallbacks
    def test_wrong_ca(self):
        """
        A server certificate that does not chain to the configured CA fails
        the probe clearly, with both drivers.
        """
        native = yield self.probe_fails(
            self.native, self.cluster("tls", VERIFY_CA, ca=self.other.ca), self.host("localhost")
        )
        self.assertEqual(
            native,
            f"TLS to localhost:{self.sandbox.primary.port}: TLS handshake failed: "
            "certificate verify failed",
        )
        text = yield self.probe_fails(
            self.pymysql, self.cluster("tls", VERIFY_CA, ca=self.other.ca), self.host("localhost")
        )
        self.assertIn("CERTIFICATE_VERIFY_FAILED", text)

    @inlineCallbacks
    def test_identity(self):
        """
        Reached as C{127.0.0.1}, which the certificate does not name:
        C{verify-identity} refuses, C{verify-ca} accepts, with both drivers.
        """
        host = self.host("127.0.0.1")
        native = yield self.probe_fails(
            self.native, self.cluster("tls", VERIFY_IDENTITY, ca=self.pki.ca), host
        )
        self.assertEqual(native, f"TLS to {host}: TLS handshake failed: the certificate does not name 127.0.0.1")
        text = yield self.probe_fails(
            self.pymysql, self.cluster("tls", VERIFY_IDENTITY, ca=self.pki.ca), host
        )
        self.assertIn("127.0.0.1", text)
        for _, source in self.sources():
            value = yield source.probe(self.cluster("tls", VERIFY_CA, ca=self.pki.ca), host)
            self.assertEqual(value, 1.0)

    @inlineCallbacks
    def test_client_certificate(self):
        """
        A C{REQUIRE X509} user needs the client certificate: refused
        without it, logged in with it, with both drivers.
        """
        host = self.host("localhost")
        for name, source in self.sources():
            text = yield self.probe_fails(
                source, self.cluster("x509", VERIFY_IDENTITY, ca=self.pki.ca), host
            )
            self.assertIn("1045", text)
            cluster = self.cluster(
                "x509", VERIFY_IDENTITY, ca=self.pki.ca,
                cert=self.pki.client_cert, key=self.pki.client_key,
            )
            value = yield source.probe(cluster, host)
            self.assertEqual((name, value), (name, 1.0))

    @inlineCallbacks
    def test_ed25519(self):
        """
        A C{client_ed25519} user: the native driver fails with an error
        naming the plugin and the PyMySQL fallback; PyMySQL (with PyNaCl)
        logs in.
        """
        cluster = self.cluster("ed", DISABLED, query="select 1")
        text = yield self.probe_fails(self.native, cluster, self.host())
        self.assertIn("authentication plugin 'client_ed25519' is not supported by the native probe driver", text)
        self.assertIn('"ProbeDriver": "pymysql"', text)
        if not HAVE_NACL:
            raise self.skipTest(
                "PyNaCl is not installed (PyMySQL needs it for client_ed25519): "
                "run make deps (setup.py's test extra)"
            )
        value = yield self.pymysql.probe(cluster, self.host())
        self.assertEqual(value, 1.0)


class PlainServerTests(_Probing, TestCase):
    """
    SLOW (a few seconds): a MariaDB without TLS.
    """

    sandbox_kwargs = {"replicas": 0}

    def plain_cluster(self, mode):
        return ClusterSettings(
            name=f"plain-{mode}", user=self.sandbox.user, password=self.sandbox.password,
            metric_query=SESSION_TLS, tls=TLSSettings(mode=mode),
        )

    @inlineCallbacks
    def test_preferred_is_plain(self):
        """
        C{"preferred"} (the default) and C{"disabled"} probe in plain.
        """
        for name, source in self.sources():
            for mode in (PREFERRED, DISABLED):
                value = yield source.probe(self.plain_cluster(mode), self.host())
                self.assertEqual((name, mode, value), (name, mode, 0.0))

    @inlineCallbacks
    def test_required_fails(self):
        """
        C{"required"} fails clearly against a server without TLS, before
        logging in.
        """
        host = self.host()
        native = yield self.probe_fails(self.native, self.plain_cluster(REQUIRED), host)
        self.assertEqual(
            native, f"TLS to {host}: the server does not offer TLS, which SSLMode 'required' requires"
        )
        text = yield self.probe_fails(self.pymysql, self.plain_cluster(REQUIRED), host)
        self.assertIn("SSL is required but the server doesn't support it", text)
