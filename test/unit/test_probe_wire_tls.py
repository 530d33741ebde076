"""
Tests for TLS in the native client (L{freno.probe.wire.protocol},
L{freno.probe.wire.tls}, L{freno.probe.wire.source}) against L{FakeServer}
speaking real TLS in memory: each C{SSLMode} against servers with and
without TLS, certificate and name verification, client certificates, and
the errors a probe reports. The same modes against a real TLS-enabled
MariaDB are in L{test.integration.test_probe_wire_tls_sandbox}.
"""

from __future__ import annotations

import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import ClusterSettings, ProbeSettings, TLSSettings
from freno.config.tls import (
    DISABLED,
    PREFERRED,
    REQUIRED,
    VERIFY_CA,
    VERIFY_IDENTITY,
    TLSMaterial,
)
from freno.hosts import HostKey
from freno.probe.interfaces import ProbeError
from freno.probe.wire.packets import CLIENT_SSL, PacketDecoder
from freno.probe.wire.protocol import TLSError, TLSUnavailableError
from freno.probe.wire.source import NativeMetricSource
from freno.probe.wire.tls import ClientTLS, split_pem_certificates
from freno.sandbox import certs
from test.unit.test_probe_wire_helpers import (
    CACHING_SHA2,
    FakeServer,
    pki,
    resultset,
    rsa_key,
)

ANSWERS = {"select v": resultset(["v"], [["2.5"]]), "select 1": resultset(["1"], [["1"]])}


def options(mode, hostname="db1", ca=None, client=False):
    """
    The client's TLS options for C{mode}, trusting C{ca} (PEM; default:
    the test CA), with the test client certificate if C{client}.
    """
    p = pki()
    material = TLSMaterial(
        ca=p.ca_pem if ca is None else ca,
        cert=p.client_material.cert if client else b"",
        key=p.client_material.key if client else b"",
    )
    return ClientTLS(TLSSettings(mode=mode), material).options_for(hostname)


class ProtocolTLSTests(SynchronousTestCase):
    """
    L{MySQLClientProtocol} with each mode, against a fake server with or
    without TLS.
    """

    def setUp(self):
        self.clock = Clock()

    def server(self, tls=True, **kwargs):
        return FakeServer(
            ANSWERS, password="pw", tls=pki().server_options(**kwargs) if tls else None
        )

    def login(self, server, mode, opts, password="pw", user="u"):
        protocol = server.connect(self.clock, user, password, tls_mode=mode, tls_options=opts)
        return protocol, protocol.when_ready()

    def test_verified(self):
        """
        C{verify-identity} with the right CA and name: the SSLRequest goes
        in clear (sequence 1, C{CLIENT_SSL}), everything after it is TLS,
        the login and queries work.
        """
        server = self.server()
        # A user name long enough never to occur by chance in TLS records.
        user = "freno-probe-user-sent-only-over-tls"
        protocol, ready = self.login(
            server, VERIFY_IDENTITY, options(VERIFY_IDENTITY), user=user
        )
        self.successResultOf(ready)
        fake = server.fakes[0]
        self.assertTrue(protocol.tls and fake.tls)
        ((seq, request),) = PacketDecoder().feed(bytes(fake.wire[:36]))
        self.assertEqual((seq, len(request)), (1, 32))
        self.assertTrue(int.from_bytes(request[:4], "little") & CLIENT_SSL)
        self.assertNotIn(user.encode("ascii"), bytes(fake.wire))
        d = protocol.query("select 1")
        self.assertEqual(self.successResultOf(d).rows, [(b"1",)])
        self.assertEqual(server.queries, ["select 1"])

    def test_ip_address_identity(self):
        """
        A host given as an IP address is verified against the
        certificate's IP names.
        """
        server = self.server()
        _, ready = self.login(server, VERIFY_IDENTITY, options(VERIFY_IDENTITY, "127.0.0.1"))
        self.successResultOf(ready)
        _, ready = self.login(server, VERIFY_IDENTITY, options(VERIFY_IDENTITY, "127.0.0.2"))
        self.assertIn("does not name 127.0.0.2", str(self.failureResultOf(ready, TLSError).value))

    def test_wrong_ca(self):
        """
        A certificate that does not chain to the CA fails the TLS handshake
        in both verifying modes, before any credential is sent.
        """
        for mode in (VERIFY_CA, VERIFY_IDENTITY):
            server = self.server()
            protocol, ready = self.login(server, mode, options(mode, ca=pki().other_ca_pem))
            error = self.failureResultOf(ready, TLSError).value
            self.assertEqual(str(error), "TLS handshake failed: certificate verify failed")
            self.assertEqual(server.fakes[0].handshake_response, b"")
            self.assertFalse(protocol.usable)

    def test_wrong_name(self):
        """
        C{verify-identity} refuses a certificate that does not name the
        host; C{verify-ca} accepts it.
        """
        server = self.server()
        _, ready = self.login(server, VERIFY_IDENTITY, options(VERIFY_IDENTITY, "db2"))
        error = self.failureResultOf(ready, TLSError).value
        self.assertEqual(str(error), "TLS handshake failed: the certificate does not name db2")
        self.assertEqual(server.fakes[0].handshake_response, b"")
        _, ready = self.login(server, VERIFY_CA, options(VERIFY_CA, "db2"))
        self.successResultOf(ready)

    def test_unverified_modes(self):
        """
        C{required} and C{preferred} use TLS with a server offering it,
        whatever its certificate.
        """
        for mode in (REQUIRED, PREFERRED):
            server = self.server()
            protocol, ready = self.login(server, mode, options(mode, "anything", ca=b""))
            self.successResultOf(ready)
            self.assertTrue(protocol.tls)

    def test_disabled(self):
        """
        C{disabled} never starts TLS, even when offered.
        """
        server = self.server()
        protocol, ready = self.login(server, DISABLED, None)
        self.successResultOf(ready)
        self.assertFalse(protocol.tls or server.fakes[0].tls)

    def test_plain_server(self):
        """
        Against a server without TLS, C{preferred} logs in in plain and the
        other enabled modes fail with L{TLSUnavailableError} before sending
        anything.
        """
        server = self.server(tls=False)
        protocol, ready = self.login(server, PREFERRED, options(PREFERRED))
        self.successResultOf(ready)
        self.assertFalse(protocol.tls)
        for mode in (REQUIRED, VERIFY_CA, VERIFY_IDENTITY):
            protocol, ready = self.login(server, mode, options(mode))
            error = self.failureResultOf(ready, TLSUnavailableError).value
            self.assertEqual(str(error), f"the server does not offer TLS, which SSLMode {mode!r} requires")
            self.assertEqual(server.fakes[-1].wire, bytearray())
            self.assertFalse(protocol.usable)

    def test_client_certificate(self):
        """
        A server that requires a client certificate refuses a client
        without one, and accepts the CA's.
        """
        server = self.server(require_client_certificate=True)
        _, ready = self.login(server, VERIFY_IDENTITY, options(VERIFY_IDENTITY))
        self.failureResultOf(ready, TLSError)
        _, ready = self.login(server, VERIFY_IDENTITY, options(VERIFY_IDENTITY, client=True))
        self.successResultOf(ready)

    def test_sha2_full_auth_over_tls(self):
        """
        C{caching_sha2_password} full authentication over verified TLS
        sends the password in the TLS stream only.
        """
        server = FakeServer(
            ANSWERS, password="s3cret", plugin=CACHING_SHA2, cached=False,
            tls=pki().server_options(), key=rsa_key(),
        )
        _, ready = self.login(server, VERIFY_IDENTITY, options(VERIFY_IDENTITY), "s3cret")
        self.successResultOf(ready)
        self.assertEqual(server.fakes[0].methods, ["full-tls"])
        self.assertNotIn(b"s3cret", bytes(server.fakes[0].wire))


class ClientTLSTests(SynchronousTestCase):
    """
    L{ClientTLS}: options per mode, made once.
    """

    def test_cached(self):
        """
        C{verify-identity} makes one options object per host name; the
        other modes share one.
        """
        tls = ClientTLS(TLSSettings(mode=VERIFY_IDENTITY), TLSMaterial(ca=pki().ca_pem))
        self.assertIs(tls.options_for("db1"), tls.options_for("db1"))
        self.assertIsNot(tls.options_for("db1"), tls.options_for("db2"))
        tls = ClientTLS(TLSSettings(mode=VERIFY_CA), TLSMaterial(ca=pki().ca_pem))
        self.assertIs(tls.options_for("db1"), tls.options_for("db2"))
        self.assertRaises(ValueError, ClientTLS(TLSSettings(mode=DISABLED)).options_for, "db1")

    def test_split(self):
        """
        A PEM bundle splits into its certificates.
        """
        bundle = pki().ca_pem + b"junk\n" + pki().other_ca_pem
        self.assertEqual(split_pem_certificates(bundle), [pki().ca_pem, pki().other_ca_pem])


class SourceTLSTests(SynchronousTestCase):
    """
    L{NativeMetricSource} with clusters' TLS settings read from files,
    connecting to L{FakeServer} through injected endpoints.
    """

    def setUp(self):
        self.clock = Clock()
        directory = self.mktemp()
        self.pki = certs.make_pki(directory, server_names=("db1",), server_ips=("127.0.0.1",))
        self.other = certs.make_pki(os.path.join(directory, "other"), ca_name="other CA")

    def source(self, server):
        return NativeMetricSource(
            self.clock, ProbeSettings(timeout=1.0), endpoints=lambda host: server.endpoint(host)
        )

    def server(self, tls=True):
        from twisted.internet.ssl import Certificate, CertificateOptions, KeyPair

        options = None
        if tls:
            with open(self.pki.server_cert, "rb") as f:
                cert = Certificate.loadPEM(f.read())
            with open(self.pki.server_key, "rb") as f:
                key = KeyPair.load(f.read(), 1)
            options = CertificateOptions(privateKey=key.original, certificate=cert.original)
        return FakeServer(ANSWERS, password="pw", tls=options)

    def cluster(self, mode, ca=None, **kwargs):
        return ClusterSettings(
            name="c", user="u", password="pw", metric_query="select v",
            tls=TLSSettings(mode=mode, ca=self.pki.ca if ca is None else ca, **kwargs),
        )

    def test_verified_probe(self):
        """
        A probe over verified TLS returns the value, on one connection.
        """
        server = self.server()
        source = self.source(server)
        cluster = self.cluster(VERIFY_IDENTITY)
        self.assertEqual(self.successResultOf(source.probe(cluster, HostKey("db1", 3306))), 2.5)
        self.assertEqual(self.successResultOf(source.probe(cluster, HostKey("db1", 3306))), 2.5)
        self.assertEqual(len(server.fakes), 1)
        self.assertTrue(server.fakes[0].tls)
        self.successResultOf(source.close())

    def test_errors(self):
        """
        The probe errors name the host and what went wrong with TLS.
        """
        host = HostKey("db1", 3306)
        cases = [
            (self.server(), self.cluster(VERIFY_CA, ca=self.other.ca),
             "TLS to db1:3306: TLS handshake failed: certificate verify failed"),
            (self.server(), self.cluster(VERIFY_IDENTITY),
             None),
            (self.server(tls=False), self.cluster(REQUIRED, ca=""),
             "TLS to db1:3306: the server does not offer TLS, which SSLMode 'required' requires"),
            (self.server(), self.cluster(VERIFY_CA, ca="/nonexistent/ca.pem"),
             "TLS settings for db1:3306: cannot read SSLCA file '/nonexistent/ca.pem': "
             "No such file or directory"),
        ]
        for server, cluster, expected in cases:
            source = self.source(server)
            d = source.probe(cluster, host)
            if expected is None:
                self.successResultOf(d)
            else:
                self.assertEqual(str(self.failureResultOf(d, ProbeError).value), expected)
            self.successResultOf(source.close())

    def test_wrong_host_name(self):
        """
        C{verify-identity} to a host the certificate does not name fails;
        C{verify-ca} to it succeeds.
        """
        host = HostKey("db9.example", 3306)
        source = self.source(self.server())
        f = self.failureResultOf(source.probe(self.cluster(VERIFY_IDENTITY), host), ProbeError)
        self.assertEqual(
            str(f.value),
            "TLS to db9.example:3306: TLS handshake failed: the certificate does not name db9.example",
        )
        source = self.source(self.server())
        self.assertEqual(self.successResultOf(source.probe(self.cluster(VERIFY_CA), host)), 2.5)

    def test_client_certificate_files(self):
        """
        C{SSLCert} and C{SSLKey} are presented to a server that requires a
        client certificate.
        """
        from twisted.internet.ssl import Certificate, CertificateOptions, KeyPair

        with open(self.pki.server_cert, "rb") as f:
            cert = Certificate.loadPEM(f.read())
        with open(self.pki.server_key, "rb") as f:
            key = KeyPair.load(f.read(), 1)
        with open(self.pki.ca, "rb") as f:
            ca = Certificate.loadPEM(f.read())
        options = CertificateOptions(
            privateKey=key.original, certificate=cert.original, verify=True, caCerts=[ca.original]
        )
        server = FakeServer(ANSWERS, password="pw", tls=options)
        source = self.source(server)
        host = HostKey("db1", 3306)
        f = self.failureResultOf(source.probe(self.cluster(VERIFY_IDENTITY), host), ProbeError)
        self.assertIn("TLS to db1:3306:", str(f.value))
        source = self.source(server)
        cluster = self.cluster(VERIFY_IDENTITY, cert=self.pki.client_cert, key=self.pki.client_key)
        self.assertEqual(self.successResultOf(source.probe(cluster, host)), 2.5)

    def test_unsupported_plugin_probe(self):
        """
        A user of an unsupported plugin: the probe error names the plugin
        and the fallback driver.
        """
        server = FakeServer(ANSWERS, password="pw", user_plugin="client_ed25519")
        source = self.source(server)
        f = self.failureResultOf(
            source.probe(self.cluster(DISABLED, ca=""), HostKey("db1", 3306)), ProbeError
        )
        self.assertEqual(
            str(f.value),
            "cannot log in to db1:3306: authentication plugin 'client_ed25519' is not "
            'supported by the native probe driver; use "ProbeDriver": "pymysql" (PyMySQL '
            "speaks it; client_ed25519 also needs PyNaCl), or give the probe user "
            "mysql_native_password or caching_sha2_password",
        )

    def test_public_key_file(self):
        """
        C{ServerPublicKeyPath} is read and used for RSA full authentication
        (the server is never asked for its key).
        """
        from test.unit.test_probe_wire_helpers import public_pem

        path = certs.write_file(os.path.join(self.mktemp() + "-key.pem"), public_pem(rsa_key()))
        server = FakeServer(ANSWERS, password="pw", plugin=CACHING_SHA2, cached=False, key=rsa_key())
        source = self.source(server)
        cluster = ClusterSettings(
            name="c", user="u", password="pw", metric_query="select v",
            tls=TLSSettings(mode=DISABLED), server_public_key_path=path,
        )
        self.assertEqual(self.successResultOf(source.probe(cluster, HostKey("db1", 3306))), 2.5)
        self.assertEqual(server.fakes[0].methods, ["full-rsa"])
