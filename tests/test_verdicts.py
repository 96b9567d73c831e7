"""The verdict rules of engine.verify.judge, table-driven, against an in-memory store (no SQLite,
no model): decode -> owner lookup -> MAC for own keys -> signed record."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import pytest

from engine.identity import UnlockedIdentity
from engine.payload import DecodeResult, Payload
from engine.store.contacts import Owner
from engine.store.records import TagRecord, sign_record
from engine.verify import Verdict, VerifyStore, judge

BOX = [10, 20, 64, 64]
SHA = "ab" * 32
THUMB = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
ME = UnlockedIdentity.generate("Me")
BOB = UnlockedIdentity.generate("Bob")
MALLORY = UnlockedIdentity.generate("Mallory")


@dataclass
class MemoryStore:
    """What the Ledger answers for judge, from dicts."""

    owners: dict[bytes, Owner] = field(default_factory=dict)
    mac_keys: dict[bytes, bytes] = field(default_factory=dict)
    records: list[TagRecord] = field(default_factory=list)

    def lookup_owner(self, key_id: bytes) -> Owner | None:
        return self.owners.get(bytes(key_id))

    def own_mac_key(self, key_id: bytes) -> bytes | None:
        return self.mac_keys.get(bytes(key_id))

    def records_for(self, key_id: bytes, serial: int) -> list[TagRecord]:
        return [r for r in self.records if r.key_id == bytes(key_id).hex() and r.serial == serial]


def _owner(u: UnlockedIdentity, own: bool) -> Owner:
    return Owner(u.identity.name, u.identity.public_raw, u.key_id, own)


def _payload(u: UnlockedIdentity, serial: int = 7, mac_key: bytes | None = None) -> Payload:
    return Payload.create(mac_key or u.mac_key, u.key_id, serial)


def _record(signer: UnlockedIdentity, payload: Payload, sha: str = SHA) -> TagRecord:
    return sign_record(signer, serial=payload.serial, payload_hex=payload.to_hex(),
                       file_sha256=sha, face_box=BOX, face_thumb_jpeg=THUMB)


def _store(*, me: bool = True, bob: bool = True, records: tuple[TagRecord, ...] = ()
           ) -> MemoryStore:
    store = MemoryStore(records=list(records))
    if me:
        store.owners[ME.key_id] = _owner(ME, True)
        store.mac_keys[ME.key_id] = ME.mac_key
    if bob:
        store.owners[BOB.key_id] = _owner(BOB, False)
    return store


MINE, BOBS = _payload(ME), _payload(BOB)
# Same serial, another tag word. The MAC is 8 bits, so another key's MAC would match 1 time in 256:
# a flipped MAC is a wrong one every run.
OTHER_BOBS = dataclasses.replace(BOBS, mac=BOBS.mac ^ 0x5A)
TAMPERED = dataclasses.replace(_record(BOB, BOBS), file_sha256="cd" * 32)  # signature now fails

# (case, payload read from the face or None, store, method, verdict, words in the reason, own)
CASES = [
    ("nothing decodes", None, _store(), "blind", Verdict.NO_TAG, "no FakeTagger tag", False),
    ("key nobody here knows", _payload(MALLORY), _store(), "blind", Verdict.UNKNOWN_OWNER,
     "import the owner's card", False),
    ("own key, MAC of another key", dataclasses.replace(MINE, mac=MINE.mac ^ 0xA5), _store(),
     "blind",
     Verdict.INVALID, "MAC does not match", True),
    ("own tag with its record", MINE, _store(records=(_record(ME, MINE),)), "blind",
     Verdict.VERIFIED, "your own tag, serial 7", True),
    ("own tag, record missing", MINE, _store(), "blind", Verdict.OWNER_KNOWN,
     "no signed record for serial 7", True),
    ("contact's tag with record", BOBS, _store(records=(_record(BOB, BOBS),)), "blind",
     Verdict.VERIFIED, "tag of Bob", False),
    ("contact's tag, damaged, matched", BOBS, _store(records=(_record(BOB, BOBS),)), "records",
     Verdict.VERIFIED, "matched to a stored record", False),
    ("contact's record holds another tag", BOBS, _store(records=(_record(BOB, OTHER_BOBS),)),
     "blind", Verdict.INVALID, "holds a different tag", False),
    ("record with a broken signature is ignored", BOBS, _store(records=(TAMPERED,)), "blind",
     Verdict.OWNER_KNOWN, "no signed record", False),
    ("record signed by another key is ignored", BOBS,
     _store(records=(dataclasses.replace(_record(MALLORY, _payload(MALLORY)),
                                         key_id=BOB.key_id.hex()),)),
     "blind", Verdict.OWNER_KNOWN, "tag of Bob, but no signed record", False),
]


def _read(p: Payload | None, method: str) -> DecodeResult | None:
    return None if p is None else DecodeResult(p, 0, 0, 3, 0.9, method)


@pytest.mark.parametrize(("payload", "store", "method", "verdict", "words", "own"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verdict_rules(payload, store, method, verdict, words, own) -> None:
    v = judge(BOX, _read(payload, method), store, SHA)
    assert (v.verdict, v.own) == (verdict, own)
    assert words in v.reason and v.box == BOX
    assert v.read_by == (None if payload is None else method)


def test_memory_store_is_a_verify_store() -> None:
    store: VerifyStore = _store()  # type-checks: the Protocol is all judge needs
    assert store.lookup_owner(ME.key_id) == _owner(ME, True)


def test_file_match_only_for_the_exact_tagged_file() -> None:
    store = _store(records=(_record(ME, MINE, sha="01" * 32), _record(ME, MINE, sha="02" * 32)))
    read = _read(MINE, "blind")
    assert judge(BOX, read, store, "02" * 32).file_match
    assert not judge(BOX, read, store, "03" * 32).file_match
    assert not judge(BOX, read, store, None).file_match
    verdict = judge(BOX, read, store, None)
    assert verdict.record is not None and verdict.owner_name == "Me"


def test_unknown_owner_shows_the_readable_key_id() -> None:
    v = judge(BOX, _read(_payload(MALLORY), "blind"), _store(), None)
    assert v.owner_key_id == MALLORY.identity.key_id and v.owner_name is None
    assert v.to_json()["owner_key_id"] == MALLORY.identity.key_id.text  # e.g. "3F2A-91C0"


def test_verdict_values_are_the_stored_strings() -> None:
    # JSON output, reports and old report files carry these exact strings.
    assert [v.value for v in Verdict] == ["verified", "owner_known", "invalid", "unknown_owner",
                                          "no_tag"]
    assert json.dumps(judge(BOX, None, _store(), None).to_json()["verdict"]) == '"no_tag"'
