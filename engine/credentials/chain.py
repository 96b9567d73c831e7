"""The X.509 chain a C2PA manifest is signed with, made from (and bound to) an identity's key.

C2PA signs with an end-entity certificate issued by a CA (a self-signed end-entity certificate is
refused). FakeTagger's chain has two certificates and needs nothing stored that the key file does
not already protect:

- the **CA certificate** is self-signed by the identity's own Ed25519 key, so anyone holding the
  owner's card can check that the CA *is* that owner (its public key is the card's key);
- the **signing certificate** is issued by that CA for a second Ed25519 key derived from the
  identity's secret with HKDF (as the tag-MAC key is), so it is protected by the passphrase and
  restored by a key backup, and is never written anywhere.

Every field is derived from the identity (serials from hashes, validity from its creation time,
Ed25519 signatures are deterministic), so the chain of an identity is the same bytes each time it
is made. docs/FORMAT.md, "Content Credentials chain", has the exact rules.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine.errors import CardError
from engine.identity import KeyId, UnlockedIdentity

SIGNING_KEY_INFO = b"faketagger/v1/c2pa-signing"
#: RFC 5280 4.1.2.5: the value for "no well-defined expiration date". Identities do not expire;
#: a lost key is handled by the owner's card, not by certificate dates.
NOT_AFTER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_CN_LIMIT = 64  # RFC 5280 ub-common-name (cryptography counts UTF-8 bytes)
MAX_CHAIN_CHARS = 8000  # two Ed25519 certificates in PEM are ~1.5 kB; a card field is bounded


@dataclass(frozen=True)
class Chain:
    """A checked chain: the signing (end-entity) certificate first, then the CA, as PEM."""

    signing: x509.Certificate
    ca: x509.Certificate

    @property
    def pem(self) -> str:
        """The form C2PA signers, cards and the ledger take (end-entity first)."""
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii")
                       for c in (self.signing, self.ca))

    @property
    def ca_pem(self) -> str:
        """The trust anchor a verifier adds to trust this identity's manifests."""
        return self.ca.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def serial_text(self) -> str:
        """The signing certificate's serial as C2PA readers print it (decimal)."""
        return str(self.signing.serial_number)


def signing_key(identity: UnlockedIdentity) -> Ed25519PrivateKey:
    """The manifest-signing key: HKDF-SHA256(the identity's 32-byte seed, info
    b"faketagger/v1/c2pa-signing") as an Ed25519 seed. One-way, so it reveals nothing of the
    identity key, and a backup of the key file restores it."""
    return Ed25519PrivateKey.from_private_bytes(identity.derive_secret(SIGNING_KEY_INFO))


def _serial(label: bytes, public: Ed25519PublicKey) -> int:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # 16 bytes, top bit cleared (positive) and never zero: RFC 5280 allows up to 20 octets.
    return (int.from_bytes(hashlib.sha256(label + raw).digest()[:16], "big") >> 1) | 1


def _names(identity_name: str, key_id: KeyId) -> tuple[x509.Name, x509.Name]:
    """(CA subject, signing subject): the same person, told apart by the unit, so the signing
    certificate is never read as self-issued."""
    cn = identity_name
    if len(cn.encode("utf-8")) > _CN_LIMIT:  # the limit counts UTF-8 bytes
        while len((cn + "…").encode("utf-8")) > _CN_LIMIT:
            cn = cn[:-1]
        cn += "…"
    org = f"FakeTagger identity {key_id}"

    def name(unit: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                          x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit)])

    return name("owner key (certificate authority)"), name("Content Credentials signing")


def _usage(*, sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=not sign, crl_sign=not sign, encipher_only=False,
                         decipher_only=False)


def make_chain(identity: UnlockedIdentity) -> Chain:
    """The identity's chain (the same bytes every time for the same identity)."""
    owner_public = Ed25519PublicKey.from_public_bytes(identity.public_raw)
    signer_public = signing_key(identity).public_key()
    ca_name, signer_name = _names(identity.name, identity.key_id)
    start = datetime.fromisoformat(identity.created.replace("Z", "+00:00"))
    owner_ski = x509.SubjectKeyIdentifier.from_public_key(owner_public)
    ca = identity.sign_certificate(
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(owner_public).serial_number(_serial(b"ca", owner_public))
        .not_valid_before(start).not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign=False), critical=True)
        .add_extension(owner_ski, critical=False))
    signing = identity.sign_certificate(
        x509.CertificateBuilder().subject_name(signer_name).issuer_name(ca_name)
        .public_key(signer_public).serial_number(_serial(b"signing", signer_public))
        .not_valid_before(start).not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(owner_ski),
                       critical=False))
    return Chain(signing, ca)


def parse_chain(pem: object, public_raw: bytes) -> Chain:
    """A chain read from a card or the ledger, checked completely against the key it claims to
    belong to; CardError with a one-line reason otherwise. Checked: two certificates; the CA's
    key is *public_raw* and it signed itself; the signing certificate was issued by it, is not a
    CA and may sign."""
    if not isinstance(pem, str) or not pem.isascii() or len(pem) > MAX_CHAIN_CHARS:
        raise CardError("Content Credentials chain is not PEM text of a sane size")
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except ValueError:
        raise CardError("Content Credentials chain is not valid PEM certificates") from None
    if len(certs) != 2:
        raise CardError(f"Content Credentials chain has {len(certs)} certificate(s), not 2")
    signing, ca = certs
    try:
        ca_raw = ca.public_key().public_bytes(serialization.Encoding.Raw,
                                              serialization.PublicFormat.Raw)
    except (ValueError, TypeError):
        ca_raw = b""
    if not isinstance(ca.public_key(), Ed25519PublicKey) or ca_raw != public_raw:
        raise CardError("Content Credentials chain is not issued by this card's key")
    try:
        ca.verify_directly_issued_by(ca)
        signing.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        raise CardError("Content Credentials chain has a bad signature") from None
    try:
        is_ca = signing.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        can_sign = signing.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    except x509.ExtensionNotFound:
        raise CardError("Content Credentials signing certificate lacks its usage") from None
    if is_ca or not can_sign:
        raise CardError("Content Credentials signing certificate may not sign manifests")
    return Chain(signing, ca)
