"""Whose Content Credentials a user trusts: their own identities, their contacts (from the chain
in each card) and CA certificates they added themselves (a newsroom's, a camera maker's).

C2PA's own trust lists are not used: a fact-checker decides whom to trust, and verify is offline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from engine.errors import CredentialsError

MAX_ANCHOR_CHARS = 64_000


@dataclass(frozen=True)
class Anchor:
    """One trusted CA certificate (PEM) and who it stands for, as shown to the user."""

    pem: str
    label: str  # "your identity Alice (3F2A-91C0)", "contact Bob (...)", "added: BBC Verify CA"
    signing_serial: str | None = None  # our chains: the signing certificate's serial (decimal)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate's DER, first 16 hex digits: how the user names an anchor."""
        cert = x509.load_pem_x509_certificate(self.pem.encode("ascii"))
        return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()[:16]


def parse_anchor(data: bytes) -> tuple[str, str]:
    """(PEM of one CA certificate, its subject) from a file the user added; CredentialsError with
    one line when it is not exactly one CA certificate."""
    if len(data) > MAX_ANCHOR_CHARS:
        raise CredentialsError("not a certificate file (too large)")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        try:
            certs = [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise CredentialsError("not a PEM or DER certificate file") from None
    if len(certs) != 1:
        raise CredentialsError(f"the file holds {len(certs)} certificates; give the one CA "
                               "certificate to trust")
    cert = certs[0]
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CredentialsError("this certificate is not a CA certificate (basic constraints "
                               "say it may not issue certificates)")
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return pem, cert.subject.rfc4514_string()[:200]
