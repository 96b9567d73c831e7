"""Sub-key certificates: an owner key vouching for a sub-key that tags on its behalf.

The payload has 16 serial bits, so one key tags at most 65,535 faces. An owner identity gets more
by creating sub-keys: each is its own Ed25519 key (own key ID, own serials, own tag-MAC key) and
is certified by the owner's key with a signed certificate (docs/FORMAT.md, "Sub-key
certificate"). Records of a sub-key's tags are ordinary records signed by the sub-key; the
owner's card carries the certificates, so a verifier who imported it resolves a sub-key tag to the
owner, and only after the certificate's signature checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.errors import CardError
from engine.identity import (
    KeyId,
    UnlockedIdentity,
    b64decode_strict,
    b64encode,
    is_utc_iso,
    utc_now_iso,
)
from engine.store.records import canonical_json, strict_json_loads

CERT_FORMAT = "faketagger-subkey-cert/1"
PURPOSE_TAG = "tag"
_SIGNED_FIELDS = ("format", "owner_public", "subkey_public", "subkey_key_id", "created", "purpose")
_FIELDS = (*_SIGNED_FIELDS, "signature", "subkey_signature")


@dataclass(frozen=True)
class SubkeyCert:
    """A validated certificate: *owner_public* vouches for *subkey_public* (base64 fields)."""

    format: str
    owner_public: str
    subkey_public: str
    subkey_key_id: str
    created: str
    purpose: str
    signature: str
    subkey_signature: str

    @property
    def owner_raw(self) -> bytes:
        return b64decode_strict(self.owner_public) or b""

    @property
    def subkey_raw(self) -> bytes:
        return b64decode_strict(self.subkey_public) or b""

    def signing_bytes(self) -> bytes:
        """Canonical JSON of every field but the two signatures: what the owner signs, and
        what the sub-key signs too (its consent: no one else can claim it as their sub-key)."""
        return canonical_json({k: getattr(self, k) for k in _SIGNED_FIELDS})

    def to_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in _FIELDS}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def parse_cert(doc: Any, owner_public_raw: bytes) -> SubkeyCert:
    """Validate a certificate for the owner key *owner_public_raw*: exact fields, a sub-key that
    is not the owner key, key ID matching, and the owner's signature. CardError otherwise."""
    if not isinstance(doc, dict) or doc.get("format") != CERT_FORMAT:
        raise CardError(f"not a sub-key certificate (format is not {CERT_FORMAT!r})")
    if sorted(doc) != sorted(_FIELDS):
        raise CardError("sub-key certificate has missing or unknown fields")
    owner_raw = b64decode_strict(doc["owner_public"])
    if owner_raw != owner_public_raw:
        raise CardError("sub-key certificate is for another owner key")
    sub_raw = b64decode_strict(doc["subkey_public"])
    if sub_raw is None or len(sub_raw) != 32 or sub_raw == owner_raw:
        raise CardError("sub-key certificate subkey_public must be another 32-byte Ed25519 key")
    if doc["subkey_key_id"] != KeyId.of(sub_raw).hex():
        raise CardError("sub-key certificate key ID does not match its sub-key")
    if not is_utc_iso(doc["created"]):
        raise CardError("sub-key certificate created must be an ISO-8601 UTC time")
    if doc["purpose"] != PURPOSE_TAG:
        raise CardError(f"sub-key certificate purpose must be {PURPOSE_TAG!r}")
    signature = b64decode_strict(doc["signature"])
    back = b64decode_strict(doc["subkey_signature"])
    if signature is None or len(signature) != 64 or back is None or len(back) != 64:
        raise CardError("sub-key certificate signatures must be base64 64-byte signatures")
    cert = SubkeyCert(**{k: doc[k] for k in _FIELDS})
    try:
        Ed25519PublicKey.from_public_bytes(owner_raw).verify(signature, cert.signing_bytes())
        Ed25519PublicKey.from_public_bytes(sub_raw).verify(back, cert.signing_bytes())
    except (InvalidSignature, ValueError):
        raise CardError(f"sub-key {doc['subkey_key_id']} has an invalid certificate "
                        "signature (not certified by the card's key)") from None
    return cert


def parse_cert_json(text: str, owner_public_raw: bytes) -> SubkeyCert:
    try:
        return parse_cert(strict_json_loads(text), owner_public_raw)
    except ValueError as exc:
        raise CardError(f"sub-key certificate is not valid JSON ({exc})") from None


def certify(owner: UnlockedIdentity, subkey: UnlockedIdentity,
            created: str | None = None) -> SubkeyCert:
    """The certificate for a sub-key, signed by the owner and by the sub-key (both unlocked)."""
    unsigned = {
        "format": CERT_FORMAT,
        "owner_public": b64encode(owner.public_raw),
        "subkey_public": b64encode(subkey.public_raw),
        "subkey_key_id": subkey.key_id.hex(),
        "created": created or utc_now_iso(),
        "purpose": PURPOSE_TAG,
    }
    data = canonical_json(unsigned)
    return parse_cert({**unsigned, "signature": b64encode(owner.sign(data)),
                       "subkey_signature": b64encode(subkey.sign(data))}, owner.public_raw)
