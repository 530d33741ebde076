# -*- test-case-name: test.unit.test_sandbox_certs,test.integration.test_probe_wire_tls_sandbox -*-
"""
Throw-away X.509 certificates for TLS tests and sandboxes: a CA, server
certificates naming hosts and addresses, client certificates, written as
PEM files (with the C{cryptography} package; no C{openssl} binary needed).

Usage::

    pki = make_pki("/tmp/x", server_names=("localhost",), server_ips=("127.0.0.1",))
    pki.ca, pki.server_cert, pki.server_key, pki.client_cert, pki.client_key

Keys are ECDSA P-256 (fast to make: a few milliseconds each); certificates
are valid from an hour ago for ten days. Nothing here is meant for
production use.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Sequence, Tuple

import attr
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Issued = Tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "freno tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(subject: str, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=10))
    )


def make_ca(common_name: str = "freno test CA") -> Issued:
    """
    A self-signed CA certificate and its key.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        _builder(common_name, _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def issue(
    ca: Issued,
    common_name: str,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    client: bool = False,
) -> Issued:
    """
    A certificate signed by C{ca}: for a server naming C{dns_names} and
    C{ip_addresses} in its subject alternative names, or (C{client}) for a
    client.
    """
    ca_certificate, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(common_name, ca_certificate.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    names = [x509.DNSName(n) for n in dns_names] + [
        x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses
    ]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """
    C{certificate} as PEM.
    """
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    """
    C{key} as unencrypted PKCS#8 PEM.
    """
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_file(path: str, data: bytes) -> str:
    """
    Write C{data} to C{path} (mode 0600); return C{path}.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


@attr.s(frozen=True, auto_attribs=True)
class PKI:
    """
    The PEM files L{make_pki} wrote.

    @ivar ca: the CA certificate.
    @ivar server_cert: the server certificate.
    @ivar server_key: its key.
    @ivar client_cert: a client certificate (common name C{freno}).
    @ivar client_key: its key.
    """

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def make_pki(
    directory: str,
    server_names: Sequence[str] = ("localhost",),
    server_ips: Sequence[str] = ("127.0.0.1",),
    prefix: str = "",
    ca_name: str = "freno test CA",
) -> PKI:
    """
    Make a CA, a server certificate for C{server_names} and C{server_ips},
    and a client certificate, and write them to C{directory} (created if
    needed) as C{<prefix>ca.pem}, C{<prefix>server-cert.pem}, ...
    """
    os.makedirs(directory, exist_ok=True)
    ca = make_ca(ca_name)
    server = issue(ca, server_names[0] if server_names else "server", server_names, server_ips)
    client = issue(ca, "freno", client=True)

    def path(name: str) -> str:
        return os.path.join(directory, prefix + name)

    return PKI(
        ca=write_file(path("ca.pem"), certificate_pem(ca[0])),
        server_cert=write_file(path("server-cert.pem"), certificate_pem(server[0])),
        server_key=write_file(path("server-key.pem"), key_pem(server[1])),
        client_cert=write_file(path("client-cert.pem"), certificate_pem(client[0])),
        client_key=write_file(path("client-key.pem"), key_pem(client[1])),
    )
