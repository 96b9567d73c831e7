"""KeyId: the one key-ID type (engine.identity.KeyId) and its spellings at the edges.

Inside the engine a key ID is a KeyId (4 bytes); the ledger and the JSON documents store it as 8
lowercase hex digits, people see and type ``3F2A-91C0``, the payload packs it as a 32-bit number.
"""

from __future__ import annotations

import copy
import json
import pickle
import sqlite3

import pytest

from engine.errors import KeyIdError
from engine.identity import Identity, KeyId, UnlockedIdentity
from engine.payload import Payload
from engine.verify.verdict import FaceVerdict, Verdict
from tests.conftest import PASSPHRASE

# RFC 8032 section 7.1, test 1 (as in test_identity): its key ID is 21FE-31DF.
PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RAW = bytes.fromhex("21fe31df")


def test_of_is_the_first_four_bytes_of_sha256() -> None:
    kid = KeyId.of(PUBLIC)
    assert type(kid) is KeyId and kid == RAW
    assert (kid.hex(), kid.text, str(kid), kid.as_int) == ("21fe31df", "21FE-31DF", "21FE-31DF",
                                                           0x21FE31DF)
    with pytest.raises(ValueError, match="32 bytes"):
        KeyId.of(PUBLIC[:31])


@pytest.mark.parametrize("text", ["21FE-31DF", "21fe31df", "21FE31DF", "21fe-31DF",
                                  " 21fe-31DF ", "21FE 31DF", "\t21fe31df\n", "2 1 f e 3 1 d f"])
def test_parse_accepts_every_spelling_people_use(text: str) -> None:
    kid = KeyId.parse(text)
    assert type(kid) is KeyId and kid == RAW and str(kid) == "21FE-31DF"


@pytest.mark.parametrize("text", ["", "   ", "-", "21FE-31D", "21FE-31DF0", "21FG-31DF",
                                  "0x21fe31df", "21fe_31df", "２１fe31df", "21fe31df\x00"])
def test_parse_refuses_anything_else_in_one_line(text: str) -> None:
    with pytest.raises(KeyIdError) as caught:
        KeyId.parse(text)
    # (FakeTaggerError collapses runs of whitespace: messages are one line)
    assert str(caught.value) == " ".join(f"not a key ID: {text!r} "
                                         "(expected 8 hex digits like 3F2A-91C0)".split())
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [None, 0x21FE31DF, RAW, ["21fe31df"]])
def test_parse_refuses_what_is_not_text(value: object) -> None:
    with pytest.raises(KeyIdError, match="not a key ID"):
        KeyId.parse(value)  # type: ignore[arg-type]


def test_from_hex_takes_exactly_the_stored_form() -> None:
    assert KeyId.from_hex("21fe31df") == RAW and type(KeyId.from_hex("21fe31df")) is KeyId
    assert KeyId.from_hex("21FE31DF") == RAW  # hex is hex
    for bad in ("21fe-31df", " 21fe31df", "21fe31d", "21fe31df00", "", "zzzzzzzz"):
        with pytest.raises(KeyIdError, match="not a stored key ID"):
            KeyId.from_hex(bad)
    with pytest.raises(KeyIdError):
        KeyId.from_hex(RAW)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", RAW, b"\x00\x01\x02\x03",
                                 b"-3F2"])
def test_round_trips_through_every_spelling(raw: bytes) -> None:
    kid = KeyId(raw)
    assert KeyId(bytes(kid)) == kid == raw
    assert KeyId.from_hex(kid.hex()) == kid and kid.hex() == raw.hex()
    assert KeyId.parse(kid.text) == kid and KeyId.parse(kid.text.lower()) == kid
    assert KeyId.parse(kid.hex()) == kid
    assert KeyId.from_int(kid.as_int) == kid and kid.as_int == int.from_bytes(raw, "big")
    assert KeyId.coerce(kid) is kid
    assert KeyId.coerce(raw) == KeyId.coerce(bytearray(raw)) == KeyId.coerce(kid.text) == kid
    assert len(kid.text) == 9 and kid.text[4] == "-" and kid.text == kid.text.upper()


def test_length_and_type_are_checked_on_construction() -> None:
    for bad in (b"", b"\x01\x02\x03", b"\x01\x02\x03\x04\x05", bytes(32)):
        with pytest.raises(ValueError, match="4 bytes"):
            KeyId(bad)
    for bad in ("21fe31df", 4, None, [1, 2, 3, 4]):
        with pytest.raises(TypeError):
            KeyId(bad)  # type: ignore[arg-type]
    assert KeyId(bytearray(RAW)) == RAW and KeyId(memoryview(RAW)) == RAW
    for bad in (-1, 1 << 32, True):
        with pytest.raises(ValueError):
            KeyId.from_int(bad)
    for bad in (b"\x01\x02\x03", 0x21FE31DF, None):
        with pytest.raises(KeyIdError, match="not a key ID"):
            KeyId.coerce(bad)  # type: ignore[arg-type]


def test_it_is_its_bytes_for_equality_hashing_and_packing() -> None:
    kid = KeyId(RAW)
    assert kid == RAW and kid != b"\x21\xfe\x31\xde"
    assert RAW == kid  # noqa: SIM300 (plain bytes on the left compare equal too)
    assert hash(kid) == hash(RAW)
    by_bytes = {RAW: "alice"}
    by_kid = {kid: "alice"}
    assert by_bytes[kid] == "alice" and by_kid[RAW] == "alice" and by_kid[KeyId.parse("21FE-31DF")]
    assert {kid, RAW, KeyId.from_hex("21fe31df")} == {RAW}
    assert isinstance(kid, bytes) and bytes(kid) == RAW and type(bytes(kid)) is bytes
    assert b"FTMAC1" + kid == b"FTMAC1" + RAW
    assert kid[0] == 0x21 and list(kid) == list(RAW)


def test_readable_forms() -> None:
    kid = KeyId(RAW)
    assert repr(kid) == "KeyId('21FE-31DF')"
    assert f"{kid}" == "21FE-31DF" and f"[{kid:>11}]" == "[  21FE-31DF]"
    assert "%s" % (kid,) == "21FE-31DF"  # noqa: UP031 (log messages format this way)
    assert repr([kid]) == "[KeyId('21FE-31DF')]"


def test_copies_and_pickles_keep_the_type() -> None:
    kid = KeyId(RAW)
    for again in (pickle.loads(pickle.dumps(kid)), copy.copy(kid), copy.deepcopy(kid)):
        assert type(again) is KeyId and again == kid


def test_payload_carries_a_key_id() -> None:
    p = Payload(1, RAW, 7, 9)
    assert type(p.key_id) is KeyId and p.key_id == RAW
    assert type(Payload(1, bytearray(RAW), 7, 9).key_id) is KeyId
    decoded = Payload.from_hex(p.to_hex())
    assert type(decoded.key_id) is KeyId and decoded == p
    assert (p.to_int() >> 24) & 0xFFFFFFFF == p.key_id.as_int
    made = Payload.create(b"k" * 32, RAW, 7)
    assert type(made.key_id) is KeyId and made.key_id == RAW


def test_identity_key_id_is_a_key_id_even_from_plain_bytes() -> None:
    ident = Identity("Alice", PUBLIC, RAW, "2025-01-01T00:00:00Z")
    assert type(ident.key_id) is KeyId and ident.key_id == RAW
    with pytest.raises(ValueError):
        Identity("Alice", PUBLIC, b"\x00" * 4, "2025-01-01T00:00:00Z")
    u = UnlockedIdentity.generate("Bob")
    assert type(u.key_id) is KeyId and u.key_id == KeyId.of(u.public_raw)


def test_face_verdict_json_keeps_the_readable_string() -> None:
    v = FaceVerdict([0, 0, 10, 10], Verdict.UNKNOWN_OWNER, "why", owner_key_id=KeyId(RAW))
    doc = json.loads(json.dumps(v.to_json()))
    assert doc["owner_key_id"] == "21FE-31DF" and type(doc["owner_key_id"]) is str
    assert FaceVerdict([0, 0, 10, 10], Verdict.NO_TAG, "why").to_json()["owner_key_id"] is None


def test_ledger_hands_out_key_ids_and_stores_hex(home, ledger) -> None:
    from engine.store.ledger import Ledger

    created = ledger.create_identity("Alice", PASSPHRASE)
    kid = created.key_id
    assert type(kid) is KeyId
    ledger.close()
    with Ledger() as again:  # read back from the file, not from memory
        for ident in (again.get_identity(kid), again.get_identity(kid.text),
                      again.get_identity(kid.hex()), again.get_identity(bytes(kid)),
                      again.default_identity(), *again.list_identities()):
            assert ident is not None and type(ident.key_id) is KeyId and ident.key_id == kid
        unlocked = again.unlock(kid, PASSPHRASE)
        assert type(unlocked.key_id) is KeyId
        owner = again.lookup_owner(kid)
        assert owner is not None and type(owner.key_id) is KeyId and owner.owner_key_id == kid
        sub = again.create_subkey(kid, PASSPHRASE)
        assert type(sub.key_id) is KeyId
        found = again.lookup_owner(sub.key_id)
        assert found is not None and type(found.parent) is KeyId and found.owner_key_id == kid
        assert found.key_id == sub.key_id
        [listed] = again.subkeys(kid)
        assert type(listed.key_id) is KeyId and listed.key_id == sub.key_id
        with pytest.raises(KeyIdError, match="not a key ID"):
            again.get_identity("not-a-key")
    # The stored form is unchanged: 8 lowercase hex digits as TEXT, and key files named by them.
    with sqlite3.connect(home / "ledger.sqlite3") as db:
        rows = db.execute("SELECT key_id, typeof(key_id), parent_key_id FROM identities"
                          " ORDER BY parent_key_id IS NOT NULL").fetchall()
    assert rows == [(kid.hex(), "text", None), (sub.key_id.hex(), "text", kid.hex())]
    assert (home / "keys" / f"{kid.hex()}.pem").is_file()
    assert (home / "keys" / f"{sub.key_id.hex()}.pem").is_file()
