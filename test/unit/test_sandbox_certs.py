"""
Tests for L{freno.sandbox.certs}: the certificates verify as they should.
"""

from __future__ import annotations

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.trial.unittest import SynchronousTestCase

from freno.sandbox import certs
from freno.sandbox.mysql import MySQLSandbox


class CertificateTests(SynchronousTestCase):
    """
    L{certs.make_pki}.
    """

    def test_pki(self):
        """
        The server and client certificates are signed by the CA, name what
        they were made for, are valid now, and their files are private.
        """
        pki = certs.make_pki(self.mktemp(), server_names=("db1", "localhost"), server_ips=("127.0.0.1",))
        with open(pki.ca, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        now = datetime.datetime.now(datetime.timezone.utc)
        for path, usage in (
            (pki.server_cert, ExtendedKeyUsageOID.SERVER_AUTH),
            (pki.client_cert, ExtendedKeyUsageOID.CLIENT_AUTH),
        ):
            with open(path, "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
            cert.verify_directly_issued_by(ca)
            self.assertTrue(cert.not_valid_before_utc < now < cert.not_valid_after_utc)
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            self.assertEqual(list(eku), [usage])
        with open(pki.server_cert, "rb") as f:
            san = x509.load_pem_x509_certificate(f.read()).extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["db1", "localhost"])
        self.assertEqual([str(a) for a in san.get_values_for_type(x509.IPAddress)], ["127.0.0.1"])
        self.assertEqual(os.stat(pki.server_key).st_mode & 0o777, 0o600)
        self.assertIsInstance(certs.make_ca()[1], ec.EllipticCurvePrivateKey)

    def test_sandbox_checks_files(self):
        """
        L{MySQLSandbox} refuses TLS files that do not exist, and passes
        existing ones to C{mariadbd}.
        """
        pki = certs.make_pki(self.mktemp())
        missing = certs.PKI("/nonexistent/ca.pem", pki.server_cert, pki.server_key, "", "")
        e = self.assertRaises(ValueError, MySQLSandbox, tls=missing)
        self.assertIn("/nonexistent/ca.pem", str(e))
        sandbox = MySQLSandbox(tls=pki)
        self.assertIn(f"--ssl-cert={os.path.abspath(pki.server_cert)}", sandbox._extra_args)
