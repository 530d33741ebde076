# -*- test-case-name: test.unit.test_config_tls -*-
"""
TLS settings of probe connections: the C{SSLMode} values and the PEM files
(C{SSLCA}, C{SSLCert}, C{SSLKey}, C{ServerPublicKeyPath}), read and checked
when the configuration loads so that a bad file stops freno at start with
one clear line instead of failing every probe.

Both metric sources read the same files again through L{read_tls_material}
and L{read_public_key} when they first connect with them (the native source
builds Twisted TLS options from them, the PyMySQL source an
C{ssl.SSLContext}).

B{Modes}, as the MySQL clients name them (C{--ssl-mode}):

    - C{disabled}: never TLS.
    - C{preferred}: TLS when the server offers it, without verifying its
      certificate; plain otherwise. The default (as for the C{mysql} client
      and PyMySQL).
    - C{required}: TLS or no connection (the server not offering it is an
      error before any credential is sent); the certificate is not verified.
    - C{verify-ca}: C{required}, and the server's certificate must chain to
      C{SSLCA} (the system's trusted CAs when C{SSLCA} is empty); its name
      is not checked.
    - C{verify-identity}: C{verify-ca}, and the certificate must name the
      host as the inventory gives it (DNS name or IP address).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import attr
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DISABLED = "disabled"
PREFERRED = "preferred"
REQUIRED = "required"
VERIFY_CA = "verify-ca"
VERIFY_IDENTITY = "verify-identity"

#: Every C{SSLMode}, weakest first.
SSL_MODES = (DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY)
#: The default C{SSLMode}.
DEFAULT_SSL_MODE = PREFERRED
#: Modes that refuse a server without TLS.
TLS_REQUIRED_MODES = (REQUIRED, VERIFY_CA, VERIFY_IDENTITY)
#: Modes that verify the server's certificate.
VERIFYING_MODES = (VERIFY_CA, VERIFY_IDENTITY)

#: Files larger than this are not PEM files anyone meant.
_MAX_PEM_BYTES = 1024 * 1024


class TLSFileProblem(Exception):
    """
    A TLS file cannot be used; C{str()} says why, naming the file.

    @ivar key: the configuration key to blame (C{"SSLCA"}, C{"SSLCert"},
        C{"SSLKey"}), or C{""}.
    """

    def __init__(self, problem: str, key: str = "") -> None:
        super().__init__(problem)
        self.key = key


def normalise_mode(text: str) -> str:
    """
    C{text} as one of L{SSL_MODES}: case is ignored and C{_} may stand for
    C{-} (C{"VERIFY_IDENTITY"} is C{"verify-identity"}).

    @raise ValueError: not a mode.
    """
    mode = text.strip().lower().replace("_", "-")
    if mode not in SSL_MODES:
        shown = ", ".join(f'"{m}"' for m in SSL_MODES)
        raise ValueError(f"expected one of {shown}, got {text!r}")
    return mode


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_PEM_BYTES + 1)
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise TLSFileProblem(f"cannot read {what} {path!r}: {reason}") from None
    if len(data) > _MAX_PEM_BYTES:
        raise TLSFileProblem(f"{what} {path!r} is larger than {_MAX_PEM_BYTES} bytes")
    return data


def read_certificates(path: str, what: str = "certificate file") -> List[x509.Certificate]:
    """
    Every PEM certificate in C{path}, in order (at least one).

    @raise TLSFileProblem: unreadable, or no valid PEM certificate in it.
    """
    data = _read(path, what)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise TLSFileProblem(f"{what} {path!r} holds no PEM certificate")
    return certificates


def _load_key(data: bytes, path: str, what: str):
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSFileProblem(f"{what} {path!r} is encrypted; give an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        return None


def read_private_key(path: str, what: str = "private key file"):
    """
    The PEM private key in C{path} (unencrypted).

    @raise TLSFileProblem: unreadable, encrypted, or no key in it.
    """
    key = _load_key(_read(path, what), path, what)
    if key is None:
        raise TLSFileProblem(f"{what} {path!r} holds no PEM private key")
    return key


def read_public_key(path: str) -> bytes:
    """
    The PEM RSA public key in C{path} (C{ServerPublicKeyPath}), as bytes.

    @raise TLSFileProblem: unreadable, or not an RSA public key.
    """
    data = _read(path, "server public key file")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise TLSFileProblem(f"server public key file {path!r} holds no PEM RSA public key")
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@attr.s(frozen=True, auto_attribs=True)
class TLSMaterial:
    """
    The PEM contents of a L{freno.config.model.TLSSettings}' files, checked.

    @ivar ca: the CA certificates, PEM, concatenated (C{b""}: none given).
    @ivar cert: the client certificate chain, PEM (C{b""}: none).
    @ivar key: the client certificate's private key, PEM PKCS#8 (C{b""}:
        none).
    """

    ca: bytes = b""
    cert: bytes = b""
    key: bytes = b""


def _pem(certificates) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def read_tls_material(ca: str, cert: str, key: str) -> TLSMaterial:
    """
    Read and check C{SSLCA}, C{SSLCert} and C{SSLKey} (each C{""} when not
    given). With C{SSLCert} and no C{SSLKey}, the key is read from the
    certificate file.

    @raise TLSFileProblem: a file is unreadable or holds the wrong thing, or
        the key does not belong to the certificate; its C{key} names the
        setting to blame.
    """
    if key and not cert:
        raise TLSFileProblem("is set without SSLCert", "SSLKey")
    ca_pem = cert_pem = key_pem = b""
    try:
        if ca:
            ca_pem = _pem(read_certificates(ca, "SSLCA file"))
    except TLSFileProblem as e:
        raise TLSFileProblem(str(e), "SSLCA") from None
    if not cert:
        return TLSMaterial(ca_pem)
    try:
        chain = read_certificates(cert, "SSLCert file")
    except TLSFileProblem as e:
        raise TLSFileProblem(str(e), "SSLCert") from None
    if key:
        try:
            private = read_private_key(key, "SSLKey file")
        except TLSFileProblem as e:
            raise TLSFileProblem(str(e), "SSLKey") from None
    else:
        try:
            private = _load_key(_read(cert, "SSLCert file"), cert, "SSLCert file")
        except TLSFileProblem as e:
            raise TLSFileProblem(str(e), "SSLCert") from None
        if private is None:
            raise TLSFileProblem(
                f"SSLCert file {cert!r} holds no private key: set SSLKey", "SSLCert"
            )
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if private.public_key().public_bytes(*spki) != chain[0].public_key().public_bytes(*spki):
        raise TLSFileProblem(
            f"the private key in {(key or cert)!r} does not belong to the "
            f"certificate in {cert!r}",
            "SSLKey" if key else "SSLCert",
        )
    cert_pem = _pem(chain)
    key_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return TLSMaterial(ca_pem, cert_pem, key_pem)


def check_tls_settings(
    mode: str, ca: str, cert: str, key: str
) -> Tuple[Optional[str], Optional[str]]:
    """
    Check one cluster's resolved TLS settings (files included).

    @return: C{(None, None)} when fine, else C{(key, problem)}: the
        configuration key to blame (C{"SSLMode"}, C{"SSLCA"}, ...) and what
        is wrong.
    """
    if mode == DISABLED:
        for name, value in (("SSLCA", ca), ("SSLCert", cert), ("SSLKey", key)):
            if value:
                return name, (
                    f'is set but SSLMode is "{DISABLED}"; set SSLMode, or clear {name} with ""'
                )
        return None, None
    if ca and mode not in VERIFYING_MODES:
        return "SSLCA", (
            f'is only used by SSLMode "{VERIFY_CA}" or "{VERIFY_IDENTITY}", '
            f'and SSLMode is "{mode}"'
        )
    try:
        read_tls_material(ca, cert, key)
    except TLSFileProblem as e:
        return e.key or "SSLCA", str(e)
    return None, None
