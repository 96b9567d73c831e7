"""Signed tag records and public cards: frozen vectors, tamper detection, strict parsing."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.errors import CardError, RecordError
from engine.identity import Identity, KeyId, UnlockedIdentity
from engine.payload import Payload
from engine.store.cards import CARD_FORMAT, MAX_CARD_BYTES, make_card, parse_card, sign_card_header
from engine.store.records import TagRecord, canonical_json, sign_record, verify_record

SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
# Smallest JPEG-looking blob (SOI, APP0 JFIF, EOI): records only check the JPEG signature and size.
THUMB = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def fixed_identity(name: str = "Alice Example") -> UnlockedIdentity:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    public = key.public_key().public_bytes_raw()
    return UnlockedIdentity(Identity(name, public, KeyId.of(public), "2025-01-01T00:00:00Z"), key)


def payload_hex(u: UnlockedIdentity, serial: int) -> str:
    """The real data word for this key and serial (records must carry their own key ID/serial)."""
    return Payload.create(u.mac_key, u.key_id, int(serial)).to_hex()


def make_record(u: UnlockedIdentity, serial: int = 7, **kw: Any) -> TagRecord:
    args: dict[str, Any] = {
        "serial": serial,
        # For the fixed identity and serial 7 this is the frozen vector's "121fe31df0007bd".
        "payload_hex": payload_hex(u, serial),
        "file_sha256": "ab" * 32,
        "face_box": [10, 20, 110, 140],
        "face_thumb_jpeg": THUMB,
        "created": "2025-01-02T03:04:05Z",
    }
    args.update(kw)
    return sign_record(u, **args)


# --- records ------------------------------------------------------------------------------------


def test_record_vector_is_frozen() -> None:
    """Byte-exact signing input and (deterministic Ed25519) signature, as in docs/FORMAT.md."""
    rec = make_record(fixed_identity())
    assert rec.signing_bytes() == (
        b'{"created":"2025-01-02T03:04:05Z","face_box":[10,20,110,140],'
        b'"face_thumb":"/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==","file_sha256":"' + b"ab" * 32 + b'",'
        b'"format":"faketagger-record/1","key_id":"21fe31df",'
        b'"owner_public":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",'
        b'"payload":"121fe31df0007bd","serial":7}'
    )
    assert rec.signature == (
        "XqVps3iULLwJwCQrc9aXuZGtOHmxoWprRp6g8zoZ9SDyeW+7t0s6g3nODYprdctLrwWwBgH+TvuRo2eEVcayAg=="
    )
    assert verify_record(rec)
    assert TagRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    assert rec.face_thumb_jpeg == THUMB and rec.key_id_bytes == bytes.fromhex("21fe31df")


def test_canonical_json_escapes_non_ascii() -> None:
    assert canonical_json({"b": "é", "a": [1, 2]}) == b'{"a":[1,2],"b":"\\u00e9"}'


# One structurally valid change per field: each must break the signature.
TAMPER = {
    "format": None,  # covered by from_dict (only one format exists)
    "owner_public": base64.b64encode(bytes(32)).decode(),
    "key_id": "00000000",
    "serial": 8,
    "payload": "121fe31df0007be",
    "file_sha256": "ac" * 32,
    "face_box": (10, 20, 110, 141),
    "face_thumb": base64.b64encode(THUMB + b"\0").decode(),
    "created": "2025-01-02T03:04:06Z",
    "signature": base64.b64encode(bytes(64)).decode(),
}


@pytest.mark.parametrize("field", [f for f, v in TAMPER.items() if v is not None])
def test_tampering_any_field_is_detected(field: str) -> None:
    rec = make_record(fixed_identity())
    tampered = dataclasses.replace(rec, **{field: TAMPER[field]})
    assert not verify_record(tampered)


def test_record_signed_by_other_key_does_not_verify() -> None:
    rec = make_record(fixed_identity())
    other = UnlockedIdentity.generate("Mallory")
    forged = dataclasses.replace(
        rec,
        owner_public=base64.b64encode(other.public_raw).decode(),
        key_id=other.key_id.hex(),
        payload=payload_hex(other, rec.serial),
    )
    assert not verify_record(forged)  # old signature, new key
    re_signed = dataclasses.replace(
        forged, signature=base64.b64encode(other.sign(forged.signing_bytes())).decode()
    )
    assert verify_record(re_signed)  # valid, but for Mallory's key — cards must catch that


BAD_FIELDS = [
    ("format", "faketagger-record/2", "format"),
    ("owner_public", "abc", "owner_public"),
    ("owner_public", base64.b64encode(bytes(32)).decode() + "\n", "owner_public"),
    ("key_id", "21FE31DF", "key_id"),
    ("key_id", "00000000", "does not match"),
    ("serial", True, "serial"),
    ("serial", "7", "serial"),
    ("serial", 0, "serial"),
    ("serial", 65536, "serial"),
    ("payload", "121FE31DF0007BD", "payload"),
    ("payload", "121fe31df0007b", "payload"),
    ("file_sha256", "ab" * 31, "file_sha256"),
    ("face_box", [1, 2, 3], "face_box"),
    ("face_box", [1.0, 2, 3, 4], "face_box"),
    ("face_box", [5, 5, 4, 9], "x2 > x1"),
    ("face_thumb", "!!!", "face_thumb"),
    ("face_thumb", base64.b64encode(b"GIF89a").decode(), "JPEG"),
    ("face_thumb", base64.b64encode(THUMB[:3] + bytes(8200)).decode(), "limit"),
    ("created", "2025-01-02T03:04:05", "created"),
    ("created", "2025-01-02T03:04:05+02:00", "created"),
    ("created", 1735787045, "created"),
    ("signature", base64.b64encode(bytes(63)).decode(), "signature"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_from_dict_rejects_bad_field(field: str, value: Any, message: str) -> None:
    doc = make_record(fixed_identity()).to_dict()
    doc[field] = value
    with pytest.raises(RecordError, match=message):
        TagRecord.from_dict(doc)


def test_from_dict_rejects_missing_and_extra_fields() -> None:
    doc = make_record(fixed_identity()).to_dict()
    with pytest.raises(RecordError, match="missing field.*payload"):
        TagRecord.from_dict({k: v for k, v in doc.items() if k != "payload"})
    with pytest.raises(RecordError, match="unknown field.*comment"):
        TagRecord.from_dict({**doc, "comment": "hi"})
    with pytest.raises(RecordError, match="JSON object"):
        TagRecord.from_dict([doc])


def test_sign_record_validates_inputs_and_accepts_numpy_ints() -> None:
    u = fixed_identity()
    with pytest.raises(RecordError, match="limit"):
        make_record(u, face_thumb_jpeg=THUMB[:3] + bytes(9000))
    with pytest.raises(RecordError, match="face_box"):
        make_record(u, face_box=[10.5, 20, 110, 140])
    with pytest.raises(RecordError, match="payload"):
        make_record(u, payload_hex="xyz")
    np = pytest.importorskip("numpy")
    rec = make_record(u, serial=np.int64(7), face_box=np.array([10, 20, 110, 140]))
    assert rec == make_record(u) and type(rec.serial) is int


# --- cards --------------------------------------------------------------------------------------


def card_doc(u: UnlockedIdentity, records: list[TagRecord]) -> dict[str, Any]:
    return json.loads(make_card(u, records))


def test_card_header_vector_is_frozen() -> None:
    header = sign_card_header(fixed_identity())
    assert header.signing_bytes() == (
        b'{"created":"2025-01-01T00:00:00Z","format":"faketagger-card/1","key_id":"21fe31df",'
        b'"name":"Alice Example","public_key":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}'
    )
    assert header.self_signature == (
        "s4WhbV/tkZe3UUKMTNRdnU/3Lp9GQ82Y03P7aGk+LG+XKkex/lTGTzPQa6EiALSSvxywO3s8Dl89ST+lnq++Cg=="
    )


def test_card_round_trip() -> None:
    u = fixed_identity()
    records = [make_record(u, serial=s) for s in (3, 1, 2)]
    card = parse_card(make_card(u, records))
    assert card.name == "Alice Example" and card.public_raw == u.public_raw
    assert str(card.key_id) == "21FE-31DF" and card.identity == u.identity
    assert [r.serial for r in card.records] == [1, 2, 3]
    assert parse_card(make_card(u, [])).records == ()


def tamper_cases() -> list[tuple[str, Any]]:
    u = fixed_identity()
    rec = make_record(u)
    good = card_doc(u, [rec])
    other = UnlockedIdentity.generate("Mallory")
    cases: list[tuple[str, Any]] = []

    def case(msg: str, change: Any) -> None:
        doc = json.loads(json.dumps(good))
        change(doc)
        cases.append((msg, json.dumps(doc).encode()))

    case("self-signature", lambda d: d.update(name="Alice Exampl3"))
    case("self-signature", lambda d: d.update(created="2025-01-01T00:00:01Z"))
    case("key_id does not match", lambda d: d.update(key_id="00000000"))
    case(
        "key_id does not match",
        lambda d: d.update(public_key=base64.b64encode(other.public_raw).decode()),
    )
    case("self_signature", lambda d: d.update(self_signature="AAAA"))
    case("format", lambda d: d.update(format="faketagger-card/0"))
    case("unknown field", lambda d: d.update(extra=1))
    case("missing field", lambda d: d.pop("records"))
    case("records must be a list", lambda d: d.update(records={}))
    case("record #1: .*serial", lambda d: d["records"][0].update(serial="7"))
    # Consistent tampering (payload still carries key ID and serial) is caught by the signature...
    case("record #1 .*invalid signature",
         lambda d: d["records"][0].update(serial=8, payload=payload_hex(u, 8)))
    case("record #1 .*invalid signature",
         lambda d: d["records"][0].update(payload="121fe31df0007be"))
    # ... and a payload that disagrees with the record's key ID or serial already by parsing.
    case("record #1: .*payload does not carry", lambda d: d["records"][0].update(serial=8))
    case("record #1: .*payload does not carry",
         lambda d: d["records"][0].update(payload="f" * 15))
    # A record validly signed by another key, smuggled into Alice's card.
    mallory_rec = make_record(other).to_dict()
    case("different key", lambda d: d["records"].append(mallory_rec))
    raw = make_card(u, [rec])
    cases += [
        ("truncated", raw[: len(raw) // 2]),
        ("truncated", raw[:-3]),
        ("not JSON|invalid JSON", b"hello, I am not a card"),
        ("empty", b""),
        ("not UTF-8", b"\xff\xfe{}"),
        ("not an object", b"[1, 2]"),
        ("duplicate key", b'{"format": "faketagger-card/1", "format": "x"}'),
        ("format", json.dumps({"format": "something-else"}).encode()),
        ("too large", b" " * (MAX_CARD_BYTES + 1)),
    ]
    return cases


@pytest.mark.parametrize(("message", "data"), tamper_cases(), ids=lambda v: str(v)[:30])
def test_parse_card_rejects(message: str, data: bytes) -> None:
    with pytest.raises(CardError, match=message) as info:
        parse_card(data)
    assert "\n" not in str(info.value)


def test_make_card_refuses_foreign_records() -> None:
    u = fixed_identity()
    other = UnlockedIdentity.generate("Mallory")
    with pytest.raises(CardError, match="different key"):
        make_card(u, [make_record(other)])
    assert CARD_FORMAT == "faketagger-card/1"


@pytest.mark.parametrize(
    ("payload", "why"),
    [("121fe31df0008bd", "serial 8, record says 7"), ("121fe31de0007bd", "key ID 21fe31de")],
)
def test_record_payload_must_carry_its_key_id_and_serial(payload: str, why: str) -> None:
    """A record must describe the tag it claims: the payload's key ID and serial are its own."""
    doc = make_record(fixed_identity()).to_dict()
    doc["payload"] = payload
    with pytest.raises(RecordError, match="payload does not carry"):
        TagRecord.from_dict(doc)
    with pytest.raises(RecordError, match="payload does not carry"):
        make_record(fixed_identity(), payload_hex=payload)


def test_record_vector_payload_matches_payload_codec() -> None:
    """The vector's payload is the real data word for its key/serial (HKDF MAC key included)."""
    payload = pytest.importorskip("engine.payload")
    from engine.identity import derive_mac_key

    word = payload.Payload.create(derive_mac_key(SEED), bytes.fromhex("21fe31df"), 7)
    assert word.to_hex() == make_record(fixed_identity()).payload == "121fe31df0007bd"
