"""
Tests for the TLS keys of the configuration (L{freno.config.tls} and their
resolution in L{freno.config.resolve}): modes, inheritance from store to
cluster, file checks with errors naming the key where it was set, and
their refusal with C{ProbeDriver: "MySQLdb"}.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import DEFAULT_PROBE_DRIVER, PROBE_DRIVERS, ProbeSettings, TLSSettings
from freno.config.tls import (
    SSL_MODES,
    TLSFileProblem,
    normalise_mode,
    read_public_key,
    read_tls_material,
)
from freno.sandbox import certs
from test.unit.test_config_helpers import CLUSTER_PATH, ConfigFileMixin, base, with_cluster, with_store
from test.unit.test_probe_wire_helpers import public_pem, rsa_key

STORE = "Stores.MySQL"


class ModeTests(SynchronousTestCase):
    """
    L{normalise_mode}.
    """

    def test_spellings(self):
        """
        Case is ignored and C{_} stands for C{-}, as the MySQL clients
        spell them.
        """
        self.assertEqual(normalise_mode("VERIFY_IDENTITY"), "verify-identity")
        self.assertEqual(normalise_mode("Preferred"), "preferred")
        for mode in SSL_MODES:
            self.assertEqual(normalise_mode(mode), mode)

    def test_unknown(self):
        """
        Anything else is a clear error listing the modes.
        """
        e = self.assertRaises(ValueError, normalise_mode, "on")
        self.assertEqual(
            str(e),
            'expected one of "disabled", "preferred", "required", "verify-ca", '
            "\"verify-identity\", got 'on'",
        )


class FileTests(SynchronousTestCase):
    """
    L{read_tls_material} and L{read_public_key}.
    """

    def setUp(self):
        self.dir = self.mktemp()
        self.pki = certs.make_pki(self.dir)
        self.other = certs.make_pki(os.path.join(self.dir, "other"))

    def write(self, name, data):
        return certs.write_file(os.path.join(self.dir, name), data)

    def test_read(self):
        """
        The CA, the client certificate and its key are read; a key inside
        the certificate file is found.
        """
        material = read_tls_material(self.pki.ca, self.pki.client_cert, self.pki.client_key)
        self.assertIn(b"BEGIN CERTIFICATE", material.ca)
        self.assertIn(b"BEGIN PRIVATE KEY", material.key)
        with open(self.pki.client_cert, "rb") as c, open(self.pki.client_key, "rb") as k:
            both = self.write("both.pem", c.read() + k.read())
        self.assertEqual(read_tls_material("", both, "").key, material.key)

    def test_problems(self):
        """
        Every unusable file is a L{TLSFileProblem} naming the key to blame.
        """
        junk = self.write("junk.pem", b"hello")
        encrypted = self.write("enc.pem", _encrypted_key())
        cases = [
            (("/nonexistent", "", ""), "SSLCA", "cannot read SSLCA file '/nonexistent': No such file or directory"),
            ((self.dir, "", ""), "SSLCA", f"cannot read SSLCA file {self.dir!r}: Is a directory"),
            ((junk, "", ""), "SSLCA", f"SSLCA file {junk!r} holds no PEM certificate"),
            (("bad\0path", "", ""), "SSLCA", None),
            (("", "", self.pki.client_key), "SSLKey", "is set without SSLCert"),
            (("", junk, ""), "SSLCert", f"SSLCert file {junk!r} holds no PEM certificate"),
            (("", self.pki.client_cert, ""), "SSLCert", None),
            (("", self.pki.client_cert, junk), "SSLKey", f"SSLKey file {junk!r} holds no PEM private key"),
            (("", self.pki.client_cert, encrypted), "SSLKey", None),
            (("", self.pki.client_cert, self.other.client_key), "SSLKey", None),
        ]
        for args, key, text in cases:
            e = self.assertRaises(TLSFileProblem, read_tls_material, *args)
            self.assertEqual(e.key, key, args)
            if text is not None:
                self.assertEqual(str(e), text)
        e = self.assertRaises(TLSFileProblem, read_tls_material, "", self.pki.client_cert, encrypted)
        self.assertIn("is encrypted", str(e))
        e = self.assertRaises(
            TLSFileProblem, read_tls_material, "", self.pki.client_cert, self.other.client_key
        )
        self.assertIn("does not belong to the certificate", str(e))

    def test_public_key(self):
        """
        C{ServerPublicKeyPath} must hold an RSA public key.
        """
        path = self.write("pub.pem", public_pem(rsa_key()))
        self.assertEqual(read_public_key(path), public_pem(rsa_key()))
        e = self.assertRaises(TLSFileProblem, read_public_key, self.pki.ca)
        self.assertIn("holds no PEM RSA public key", str(e))


def _encrypted_key() -> bytes:
    from cryptography.hazmat.primitives import serialization

    return rsa_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )


class ResolveTests(ConfigFileMixin, SynchronousTestCase):
    """
    The TLS keys in a configuration.
    """

    def setUp(self):
        self.dir = self.mktemp()
        self.pki = certs.make_pki(self.dir)

    def test_defaults(self):
        """
        Without TLS keys a cluster prefers TLS (as the MySQL clients and
        PyMySQL do) and verifies nothing; the native driver is the
        default.
        """
        config = self.load(base())
        cluster = config.mysql.clusters["main"]
        self.assertEqual(cluster.tls, TLSSettings(mode="preferred"))
        self.assertEqual(cluster.server_public_key_path, "")
        self.assertEqual(config.mysql.probe.driver, "native")
        self.assertEqual((DEFAULT_PROBE_DRIVER, PROBE_DRIVERS[0], ProbeSettings().driver), ("native",) * 3)

    def test_inherited(self):
        """
        The store's TLS keys apply to its clusters; a cluster overrides
        each one, and clears a file with C{""}.
        """
        doc = with_store(
            base(), SSLMode="VERIFY_IDENTITY", SSLCA=self.pki.ca,
            SSLCert=self.pki.client_cert, SSLKey=self.pki.client_key,
        )
        doc = with_cluster(doc, "other", StaticHostsSettings={"Hosts": ["h3"]}, SSLMode="required", SSLCA="")
        config = self.load(doc)
        self.assertEqual(
            config.mysql.clusters["main"].tls,
            TLSSettings("verify-identity", self.pki.ca, self.pki.client_cert, self.pki.client_key),
        )
        self.assertEqual(
            config.mysql.clusters["other"].tls,
            TLSSettings("required", "", self.pki.client_cert, self.pki.client_key),
        )

    def test_errors_name_where_set(self):
        """
        A bad TLS setting is an error on the key where it was set: the
        cluster's, or the store's when the cluster inherited it.
        """
        missing = os.path.join(self.dir, "missing.pem")
        self.assertEqual(
            self.fails(with_store(base(), SSLMode="verify-ca", SSLCA=missing)),
            f"{STORE}.SSLCA: cannot read SSLCA file {missing!r}: No such file or directory",
        )
        self.assertEqual(
            self.fails(with_cluster(base(), SSLMode="verify-ca", SSLCA=missing)),
            f"{CLUSTER_PATH}.SSLCA: cannot read SSLCA file {missing!r}: No such file or directory",
        )
        self.assertEqual(
            self.fails(with_store(base(), SSLMode="sometimes")),
            f'{STORE}.SSLMode: expected one of "disabled", "preferred", "required", '
            f"\"verify-ca\", \"verify-identity\", got 'sometimes'",
        )
        self.assertEqual(
            self.fails(with_cluster(with_store(base(), SSLCA=self.pki.ca), SSLMode="required")),
            f'{STORE}.SSLCA: is only used by SSLMode "verify-ca" or "verify-identity", '
            'and SSLMode is "required"',
        )
        self.assertEqual(
            self.fails(with_store(base(), SSLMode="disabled", SSLCert=self.pki.client_cert)),
            f'{STORE}.SSLCert: is set but SSLMode is "disabled"; set SSLMode, or clear SSLCert with ""',
        )
        self.assertEqual(
            self.fails(with_cluster(base(), ServerPublicKeyPath=self.pki.ca)),
            f"{CLUSTER_PATH}.ServerPublicKeyPath: server public key file {self.pki.ca!r} "
            "holds no PEM RSA public key",
        )

    def test_public_key(self):
        """
        C{ServerPublicKeyPath} is inherited and checked.
        """
        path = certs.write_file(os.path.join(self.dir, "pub.pem"), public_pem(rsa_key()))
        config = self.load(with_store(base(), ServerPublicKeyPath=path))
        self.assertEqual(config.mysql.clusters["main"].server_public_key_path, path)

    def test_mysqldb_refuses_tls_keys(self):
        """
        With C{ProbeDriver: "MySQLdb"} every TLS key is refused (store or
        cluster) rather than ignored.
        """
        doc = with_store(base(), ProbeDriver="MySQLdb")
        self.assertEqual(self.load(doc).mysql.probe.driver, "MySQLdb")
        for key, value in (("SSLMode", "disabled"), ("SSLCA", self.pki.ca), ("ServerPublicKeyPath", "x")):
            for where, changed in (
                (STORE, with_store(doc, **{key: value})),
                (CLUSTER_PATH, with_cluster(doc, **{key: value})),
            ):
                self.assertEqual(
                    self.fails(changed),
                    f'{where}.{key}: is not supported with ProbeDriver "MySQLdb"; use ProbeDriver '
                    '"native" or "pymysql", or remove the TLS keys',
                )

    @settings(max_examples=60, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from(["SSLMode", "SSLCA", "SSLCert", "SSLKey", "ServerPublicKeyPath"]),
            st.one_of(
                st.sampled_from(list(SSL_MODES) + ["", "VERIFY_CA", "x", "/", "/nonexistent", "a\0b"]),
                st.text(max_size=10),
            ),
            max_size=5,
        ),
        st.booleans(),
    )
    def test_any_values(self, keys, at_cluster):
        """
        Whatever strings the TLS keys hold, loading gives a configuration or
        a one-line L{ConfigError}, never another exception.
        """
        from freno.config.loader import ConfigError

        doc = with_cluster(base(), **keys) if at_cluster else with_store(base(), **keys)
        try:
            self.load(doc)
        except ConfigError as e:
            self.assertNotIn("\n", str(e))
