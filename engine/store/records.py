"""Signed tag records: the anchor that binds an in-image payload to its owner's key.

The image only carries ~60 bits (key ID, serial, short MAC); a record carries the full public key,
the payload, the SHA-256 of the tagged file and a face thumbnail, signed with Ed25519. Anyone holding
the record can check offline that the owner of that key really made that tag (docs/FORMAT.md).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.errors import RecordError
from engine.identity import (
    KeyId,
    UnlockedIdentity,
    b64decode_strict,
    b64encode,
    is_utc_iso,
    utc_now_iso,
)
from engine.payload import SERIAL_BITS, Payload

RECORD_FORMAT = "faketagger-record/1"
MAX_SERIAL = (1 << SERIAL_BITS) - 1  # largest serial the payload can carry; 0 is never allocated
MAX_THUMB_BYTES = 8 * 1024
_PAYLOAD_RE = re.compile(r"^[0-9a-f]{15}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID_RE = re.compile(r"^[0-9a-f]{8}$")


def canonical_json(obj: Any) -> bytes:
    """The one byte string that is signed: sorted keys, no spaces, ASCII only (non-ASCII becomes
    \\uXXXX). Every implementation that follows this rule gets identical bytes for the same data."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def strict_json_loads(text: str | bytes) -> Any:
    """json.loads that refuses duplicate object keys and NaN/Infinity, so a signed document has a
    single meaning (with duplicates, two parsers could disagree on which value was signed)."""
    return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)


def _is_int(value: object) -> bool:
    return type(value) is int  # bool is a subclass of int; a JSON true is not a number here


@dataclass(frozen=True)
class TagRecord:
    """One signed tag record. All fields are JSON-ready strings/ints; see docs/FORMAT.md."""

    format: str
    owner_public: str
    key_id: str
    serial: int
    payload: str
    file_sha256: str
    face_box: tuple[int, int, int, int]
    face_thumb: str
    created: str
    signature: str

    @property
    def owner_public_raw(self) -> bytes:
        return b64decode_strict(self.owner_public) or b""

    @property
    def key_id_bytes(self) -> KeyId:
        """The signer's key ID as a :class:`KeyId` (``key_id`` is its stored hex form)."""
        return KeyId.from_hex(self.key_id)

    @property
    def face_thumb_jpeg(self) -> bytes:
        return b64decode_strict(self.face_thumb) or b""

    def unsigned_dict(self) -> dict[str, Any]:
        """All fields except the signature, as plain JSON types."""
        doc = asdict(self)
        doc.pop("signature")
        doc["face_box"] = list(self.face_box)
        return doc

    def signing_bytes(self) -> bytes:
        """The exact bytes the Ed25519 signature covers."""
        return canonical_json(self.unsigned_dict())

    def to_dict(self) -> dict[str, Any]:
        doc = self.unsigned_dict()
        doc["signature"] = self.signature
        return doc

    @classmethod
    def from_dict(cls, doc: object) -> TagRecord:
        """Strictly validated record (RecordError names the first problem). Does not check the
        signature — call :func:`verify_record` for that."""
        _check_fields(doc)
        assert isinstance(doc, dict)
        return cls(**{**doc, "face_box": tuple(doc["face_box"])})


_FIELD_NAMES = tuple(f.name for f in fields(TagRecord))


def _check_fields(doc: object) -> None:
    if not isinstance(doc, dict):
        raise RecordError("tag record must be a JSON object")
    missing = [k for k in _FIELD_NAMES if k not in doc]
    extra = sorted(str(k) for k in doc if k not in _FIELD_NAMES)
    if missing:
        raise RecordError(f"tag record is missing field(s): {', '.join(missing)}")
    if extra:
        raise RecordError(f"tag record has unknown field(s): {', '.join(extra)}")
    if doc["format"] != RECORD_FORMAT:
        raise RecordError(f"tag record format must be {RECORD_FORMAT!r}, got {doc['format']!r}")
    public_raw = b64decode_strict(doc["owner_public"])
    if public_raw is None or len(public_raw) != 32:
        raise RecordError("tag record owner_public must be a base64 32-byte Ed25519 key")
    if not isinstance(doc["key_id"], str) or not _KEY_ID_RE.match(doc["key_id"]):
        raise RecordError("tag record key_id must be 8 lowercase hex digits")
    if doc["key_id"] != KeyId.of(public_raw).hex():
        raise RecordError("tag record key_id does not match owner_public")
    serial = doc["serial"]
    if not _is_int(serial) or not 1 <= serial <= MAX_SERIAL:
        raise RecordError(f"tag record serial must be an integer 1..{MAX_SERIAL}")
    if not isinstance(doc["payload"], str) or not _PAYLOAD_RE.match(doc["payload"]):
        raise RecordError("tag record payload must be 15 lowercase hex digits")
    # The payload is what sits in the image; a record whose key_id/serial say something else
    # would let a verifier match it to a tag it never described.
    carried = Payload.from_hex(doc["payload"])
    if carried.key_id.hex() != doc["key_id"] or carried.serial != serial:
        raise RecordError("tag record payload does not carry the record's key_id and serial")
    if not isinstance(doc["file_sha256"], str) or not _SHA256_RE.match(doc["file_sha256"]):
        raise RecordError("tag record file_sha256 must be 64 lowercase hex digits")
    _check_box(doc["face_box"])
    thumb = b64decode_strict(doc["face_thumb"])
    if thumb is None:
        raise RecordError("tag record face_thumb must be base64")
    _check_thumb(thumb)
    if not is_utc_iso(doc["created"]):
        raise RecordError("tag record created must be an ISO-8601 UTC time")
    signature = b64decode_strict(doc["signature"])
    if signature is None or len(signature) != 64:
        raise RecordError("tag record signature must be a base64 64-byte Ed25519 signature")


def _check_box(box: object) -> None:
    if not isinstance(box, list | tuple) or len(box) != 4 or not all(_is_int(v) for v in box):
        raise RecordError("tag record face_box must be four integers [x1, y1, x2, y2]")
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise RecordError("tag record face_box must have x2 > x1 and y2 > y1")


def _check_thumb(thumb: bytes) -> None:
    if len(thumb) > MAX_THUMB_BYTES:
        raise RecordError(
            f"face thumbnail is {len(thumb)} bytes; the limit is {MAX_THUMB_BYTES} bytes"
        )
    if not thumb.startswith(b"\xff\xd8\xff"):
        raise RecordError("face thumbnail must be a JPEG image")


def _as_int(value: object) -> object:
    """numpy integers (from face detection or the ledger) become plain ints; floats and bools are
    left as they are so validation rejects them instead of silently rounding."""
    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return value


def sign_record(
    identity: UnlockedIdentity,
    *,
    serial: int,
    payload_hex: str,
    file_sha256: str,
    face_box: Sequence[int],
    face_thumb_jpeg: bytes,
    created: str | None = None,
) -> TagRecord:
    """Make and sign a record for one tagged face. Inputs are validated by
    :meth:`TagRecord.from_dict` before signing, so we never sign something a verifier would
    reject."""
    doc: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "owner_public": b64encode(identity.public_raw),
        "key_id": identity.key_id.hex(),
        "serial": _as_int(serial),
        "payload": payload_hex,
        "file_sha256": file_sha256,
        "face_box": [_as_int(v) for v in face_box],
        "face_thumb": b64encode(face_thumb_jpeg),
        "created": created or utc_now_iso(),
        "signature": b64encode(b"\0" * 64),  # placeholder so validation sees a complete record
    }
    unsigned = TagRecord.from_dict(doc)
    signature = identity.sign(unsigned.signing_bytes())
    return TagRecord.from_dict({**unsigned.to_dict(), "signature": b64encode(signature)})


def verify_record(rec: TagRecord) -> bool:
    """True only if the record is well formed, its key_id is the ID of owner_public, and the
    signature by owner_public covers every other field. Never raises."""
    try:
        _check_fields(rec.to_dict())
        public = Ed25519PublicKey.from_public_bytes(rec.owner_public_raw)
        public.verify(b64decode_strict(rec.signature) or b"", rec.signing_bytes())
    except (RecordError, InvalidSignature, ValueError, TypeError):
        return False
    return True
