# -*- test-case-name: test.unit.test_probe_wire_tls,test.integration.test_probe_wire_tls_sandbox -*-
"""
L{ClientTLS}: the Twisted TLS options a probe connection starts TLS with,
from a cluster's L{freno.config.model.TLSSettings}.

Per C{SSLMode} (L{freno.config.tls}):

    - C{verify-identity}: C{optionsForClientTLS(hostname, trustRoot=...)}:
      the certificate must chain to C{SSLCA} (or, without it, to the
      system's trusted CAs) and name the host as the inventory gives it (a
      DNS name, or an IP address in the certificate's IP subject
      alternative names); one options object per host name.
    - C{verify-ca}: C{CertificateOptions(trustRoot=...)}: the chain is
      verified, the name is not (for certificates that do not name the
      hosts, as MySQL's auto-generated ones).
    - C{required}, C{preferred}: C{CertificateOptions()}: encrypted, no
      verification.

A client certificate (C{SSLCert}, C{SSLKey}) is presented in every mode;
further certificates in the C{SSLCert} file are sent as its chain. The
files are read once, on the first connection that needs them
(L{freno.config.tls.read_tls_material}); the configuration loader checked
them already, so a failure here means they changed since.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)

from freno.config.model import TLSSettings
from freno.config.tls import (
    DISABLED,
    VERIFY_CA,
    VERIFY_IDENTITY,
    TLSMaterial,
    read_tls_material,
)

_PEM_END = b"-----END CERTIFICATE-----"


def split_pem_certificates(pem: bytes) -> List[bytes]:
    """
    The PEM certificates in C{pem}, one each.
    """
    out = []
    for chunk in pem.split(_PEM_END):
        start = chunk.find(b"-----BEGIN CERTIFICATE-----")
        if start >= 0:
            out.append(chunk[start:] + _PEM_END + b"\n")
    return out


class ClientTLS:
    """
    TLS options for one L{TLSSettings}, made on demand and kept.

    @param settings: the cluster's TLS settings.
    @param material: the files' contents, already read (tests); default:
        read them on first use.
    """

    def __init__(self, settings: TLSSettings, material: Optional[TLSMaterial] = None) -> None:
        self.settings = settings
        self._material = material
        self._shared = None
        self._by_host: Dict[str, object] = {}

    def _load(self) -> TLSMaterial:
        if self._material is None:
            s = self.settings
            self._material = read_tls_material(s.ca, s.cert, s.key)
        return self._material

    def _client_certificate(self, material: TLSMaterial):
        """
        C{(PrivateCertificate or None, [extra chain X509s])}.
        """
        if not material.cert:
            return None, []
        chain = split_pem_certificates(material.cert)
        private = PrivateCertificate.loadPEM(chain[0] + material.key)
        return private, [Certificate.loadPEM(c).original for c in chain[1:]]

    def _trust_root(self, material: TLSMaterial):
        if material.ca:
            return trustRootFromCertificates(
                [Certificate.loadPEM(c) for c in split_pem_certificates(material.ca)]
            )
        return platformTrust()

    def options_for(self, hostname: str):
        """
        What C{startTLS} is given for a connection to C{hostname}.

        @raise freno.config.tls.TLSFileProblem: a file cannot be read any
            more.
        @raise ValueError: C{SSLMode} is C{"disabled"}.
        """
        mode = self.settings.mode
        if mode == DISABLED:
            raise ValueError("TLS is disabled")
        if mode == VERIFY_IDENTITY:
            options = self._by_host.get(hostname)
            if options is None:
                material = self._load()
                private, chain = self._client_certificate(material)
                extra = {"extraCertChain": chain} if chain else {}
                options = optionsForClientTLS(
                    hostname,
                    trustRoot=self._trust_root(material),
                    clientCertificate=private,
                    extraCertificateOptions=extra,
                )
                if len(self._by_host) > 10000:
                    self._by_host.clear()
                self._by_host[hostname] = options
            return options
        if self._shared is None:
            material = self._load()
            private, chain = self._client_certificate(material)
            kwargs = {}
            if private is not None:
                kwargs = dict(
                    privateKey=private.privateKey.original,
                    certificate=private.original,
                    extraCertChain=chain or None,
                )
            if mode == VERIFY_CA:
                kwargs["trustRoot"] = self._trust_root(material)
            self._shared = CertificateOptions(**kwargs)
        return self._shared
