"""Public cards: an owner's name + public key, self-signed, optionally with their signed tag records.

A card is what people exchange so that a verifier can turn a key ID found in an image into a name
and check the tag records offline. Parsing is strict and all-or-nothing: a card with one bad record
is refused as a whole, because a partial import would silently hide tampering.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.credentials.chain import Chain, parse_chain
from engine.errors import CardError, RecordError
from engine.identity import (
    Identity,
    KeyId,
    UnlockedIdentity,
    b64decode_strict,
    b64encode,
    fingerprint,
    is_utc_iso,
    name_problem,
)
from engine.store.records import TagRecord, canonical_json, strict_json_loads, verify_record
from engine.store.subkeys import SubkeyCert, parse_cert

CARD_FORMAT = "faketagger-card/1"
MAX_CARD_BYTES = 20 * 1024 * 1024
_HEADER_FIELDS = ("format", "name", "public_key", "key_id", "created")
_CARD_FIELDS = (*_HEADER_FIELDS, "self_signature", "records")
# Optional (since sub-keys): certificates of the owner's sub-keys. Written only when there are
# any, so cards of owners without sub-keys are byte-for-byte as before.
# Optional (since Content Credentials): per key ID (the owner's, a sub-key's) the C2PA signing
# chain, checked against that key (engine.credentials.chain); written only when there are any.
_OPTIONAL_FIELDS = ("subkeys", "c2pa_chains")


@dataclass(frozen=True)
class CardHeader:
    """The self-signed part of a card. Stored by the ledger at identity creation so cards can be
    exported later without asking for the passphrase (Ed25519 is deterministic, so re-signing the
    same header would give the same bytes anyway)."""

    format: str
    name: str
    public_key: str
    key_id: str
    created: str
    self_signature: str

    @property
    def public_raw(self) -> bytes:
        return b64decode_strict(self.public_key) or b""

    def signing_bytes(self) -> bytes:
        """Canonical JSON of format, name, public_key, key_id, created — what self_signature covers."""
        return canonical_json({k: getattr(self, k) for k in _HEADER_FIELDS})

    def to_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in (*_HEADER_FIELDS, "self_signature")}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> CardHeader:
        """Validate fields and the self-signature; CardError with the reason otherwise."""
        if doc.get("format") != CARD_FORMAT:
            raise CardError(f"not a FakeTagger public card (format is not {CARD_FORMAT!r})")
        problem = name_problem(doc.get("name"))
        if problem:
            raise CardError(f"card {problem}")
        public_raw = b64decode_strict(doc.get("public_key"))
        if public_raw is None or len(public_raw) != 32:
            raise CardError("card public_key must be a base64 32-byte Ed25519 key")
        if doc.get("key_id") != KeyId.of(public_raw).hex():
            raise CardError("card key_id does not match its public key")
        if not is_utc_iso(doc.get("created")):
            raise CardError("card created must be an ISO-8601 UTC time")
        signature = b64decode_strict(doc.get("self_signature"))
        if signature is None or len(signature) != 64:
            raise CardError("card self_signature must be a base64 64-byte signature")
        header = cls(**{k: doc[k] for k in (*_HEADER_FIELDS, "self_signature")})
        try:
            Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, header.signing_bytes())
        except (InvalidSignature, ValueError):
            raise CardError("card self-signature is invalid (card altered or damaged)") from None
        return header

    @classmethod
    def from_json(cls, text: str) -> CardHeader:
        return cls.from_dict(strict_json_loads(text))


def sign_card_header(identity: UnlockedIdentity) -> CardHeader:
    """Self-sign the identity's public facts (needs the private key, so done once at creation)."""
    unsigned = {
        "format": CARD_FORMAT,
        "name": identity.name,
        "public_key": b64encode(identity.public_raw),
        "key_id": identity.key_id.hex(),
        "created": identity.created,
    }
    signature = identity.sign(canonical_json(unsigned))
    return CardHeader.from_dict({**unsigned, "self_signature": b64encode(signature)})


@dataclass(frozen=True)
class Card:
    """A validated public card."""

    header: CardHeader
    records: tuple[TagRecord, ...]
    subkeys: tuple[SubkeyCert, ...] = ()
    chains: tuple[tuple[str, Chain], ...] = ()  # (key ID hex, its C2PA chain)

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def public_raw(self) -> bytes:
        return self.header.public_raw

    @property
    def key_id(self) -> KeyId:
        return KeyId.from_hex(self.header.key_id)

    @property
    def created(self) -> str:
        return self.header.created

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_raw)

    @property
    def identity(self) -> Identity:
        return Identity(self.name, self.public_raw, self.key_id, self.created)


def _check_record_for(header: CardHeader, index: int, rec: TagRecord,
                      subkeys: Iterable[SubkeyCert] = ()) -> None:
    """A card's record must be signed by the card's key or by one of its certified sub-keys."""
    signers = {header.public_key: header.key_id}
    signers.update((c.subkey_public, c.subkey_key_id) for c in subkeys)
    if signers.get(rec.owner_public) != rec.key_id:
        raise CardError(f"record #{index + 1} (serial {rec.serial}) belongs to a different key")
    if not verify_record(rec):
        raise CardError(f"record #{index + 1} (serial {rec.serial}) has an invalid signature")


def _chains(doc: object, header: CardHeader, certs: Iterable[SubkeyCert]) -> dict[str, Chain]:
    """The card's C2PA chains, each checked against the key it is listed under."""
    if not isinstance(doc, dict):
        raise CardError("card c2pa_chains must be an object")
    keys = {header.key_id: header.public_raw, **{c.subkey_key_id: c.subkey_raw for c in certs}}
    out = {}
    for hex_id, pem in doc.items():
        if hex_id not in keys:
            raise CardError("card has a Content Credentials chain for a key it does not hold")
        out[hex_id] = parse_chain(pem, keys[hex_id])
    return out


def build_card(header: CardHeader, records: Iterable[TagRecord],
               subkeys: Iterable[SubkeyCert] = (), chains: dict[str, str] | None = None) -> bytes:
    """Serialize a card from a stored header. Records are checked first so we never publish a card
    that :func:`parse_card` would refuse; records are sorted by serial for stable output (sub-key
    records after the owner's, by key ID). *subkeys*: certificates of the owner's sub-keys;
    *chains*: C2PA chains (PEM) by key ID hex."""
    certs = sorted({c.subkey_key_id: parse_cert(c.to_dict(), header.public_raw)
                    for c in subkeys}.values(), key=lambda c: c.subkey_key_id)
    checked = _chains(chains or {}, header, certs)
    recs = sorted(records, key=lambda r: (r.key_id != header.key_id, r.key_id, r.serial,
                                          r.created, r.signature))
    for i, rec in enumerate(recs):
        _check_record_for(header, i, rec, certs)
    doc: dict[str, Any] = {**header.to_dict(), "records": [r.to_dict() for r in recs]}
    if certs:
        doc["subkeys"] = [c.to_dict() for c in certs]
    if checked:
        doc["c2pa_chains"] = {k: checked[k].pem for k in sorted(checked)}
    data = (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")
    if len(data) > MAX_CARD_BYTES:
        raise CardError(
            f"card would be {len(data) / 1e6:.1f} MB, over the {MAX_CARD_BYTES // 2**20} MB limit;"
            " export it without records"
        )
    return data


def make_card(identity: UnlockedIdentity, records: list[TagRecord],
              subkeys: Iterable[SubkeyCert] = (), chains: dict[str, str] | None = None) -> bytes:
    """Card JSON for an unlocked identity, (some of) its records and its sub-key certificates."""
    return build_card(sign_card_header(identity), records, subkeys, chains)


def parse_card(data: bytes) -> Card:
    """Validate a card completely; any problem raises CardError with a one-line reason."""
    if not isinstance(data, bytes | bytearray):
        raise CardError("card data must be bytes")
    if len(data) > MAX_CARD_BYTES:
        raise CardError(f"file is too large to be a card (limit {MAX_CARD_BYTES // 2**20} MB)")
    if not data.strip():
        raise CardError("card file is empty")
    try:  # utf-8-sig: a byte-order mark (Windows editors add one) is not part of the card
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CardError("not a FakeTagger public card (not UTF-8 text)") from None
    try:
        doc = strict_json_loads(text)
    except RecursionError:
        raise CardError("not a FakeTagger public card (JSON nested too deeply)") from None
    except json.JSONDecodeError as exc:
        ends_early = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        if ends_early and text.lstrip()[:1] in "{[":
            raise CardError("card file is truncated (JSON ends early)") from None
        raise CardError(f"not a FakeTagger public card (invalid JSON: {exc.msg})") from None
    except ValueError as exc:  # duplicate keys, NaN
        raise CardError(f"not a FakeTagger public card (invalid JSON: {exc})") from None
    if not isinstance(doc, dict):
        raise CardError("not a FakeTagger public card (JSON is not an object)")
    if doc.get("format") != CARD_FORMAT:
        raise CardError(f"not a FakeTagger public card (format is not {CARD_FORMAT!r})")
    missing = [k for k in _CARD_FIELDS if k not in doc]
    extra = sorted(str(k) for k in doc if k not in (*_CARD_FIELDS, *_OPTIONAL_FIELDS))
    if missing:
        raise CardError(f"card is missing field(s): {', '.join(missing)}")
    if extra:
        raise CardError(f"card has unknown field(s): {', '.join(extra)}")
    header = CardHeader.from_dict(doc)
    if not isinstance(doc["records"], list):
        raise CardError("card records must be a list")
    cert_docs = doc.get("subkeys", [])
    if not isinstance(cert_docs, list):
        raise CardError("card subkeys must be a list")
    certs = tuple(parse_cert(item, header.public_raw) for item in cert_docs)
    if len({c.subkey_key_id for c in certs} | {header.key_id}) != len(certs) + 1:
        raise CardError("card lists a sub-key twice, or its own key as a sub-key")
    records = []
    for i, item in enumerate(doc["records"]):
        try:
            rec = TagRecord.from_dict(item)
        except RecordError as exc:
            raise CardError(f"record #{i + 1}: {exc}") from None
        _check_record_for(header, i, rec, certs)
        records.append(rec)
    chains = _chains(doc.get("c2pa_chains", {}), header, certs)
    return Card(header, tuple(records), certs, tuple(sorted(chains.items())))
