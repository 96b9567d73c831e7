"""Certified sub-keys (engine.store.subkeys): more tag serials for one owner identity. Real
Ed25519, real SQLite ledgers; the end-to-end test tags, exports, imports and verifies photos."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine.cli.main import main
from engine.errors import CardError
from engine.identity import KeyId, UnlockedIdentity, b64encode
from engine.payload import DecodeResult, Payload
from engine.store.cards import build_card, make_card, parse_card
from engine.store.ledger import Ledger
from engine.store.records import MAX_SERIAL, canonical_json, sign_record
from engine.store.subkeys import CERT_FORMAT, certify, parse_cert
from engine.verify import Verdict, judge

from .conftest import PASSPHRASE, SAMPLE

THUMB = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


def tag(ledger: Ledger, key: UnlockedIdentity) -> tuple[Payload, str]:
    """One own tag of *key*: a serial, its payload and a stored signed record."""
    [serial] = ledger.allocate_serials(key.key_id, 1)
    payload = Payload.create(key.mac_key, key.key_id, serial)
    rec = sign_record(key, serial=serial, payload_hex=payload.to_hex(), file_sha256="cd" * 32,
                      face_box=[0, 0, 64, 64], face_thumb_jpeg=THUMB)
    ledger.add_record(rec, original_path="/a.jpg", output_path="/out/a.jpg")
    return payload, rec.file_sha256


def read(payload: Payload) -> DecodeResult:
    return DecodeResult(payload, 0, 0, 0, 1.0)


@pytest.fixture
def alice(home: Path):
    with Ledger(home / "alice" / "ledger.sqlite3") as led:
        ident = led.create_identity("Alice", PASSPHRASE)
        yield led, led.unlock(ident.key_id, PASSPHRASE)


@pytest.fixture
def bob(home: Path):
    with Ledger(home / "bob" / "ledger.sqlite3") as led:
        yield led


def test_subkey_is_created_encrypted_and_certified(alice) -> None:
    ledger, owner = alice
    sub = ledger.create_subkey(owner.key_id, PASSPHRASE)
    assert sub.key_id != owner.key_id and ledger.subkeys(owner.key_id) == [sub]
    assert ledger.list_identities() == [owner.identity]  # not an identity of its own
    assert ledger.default_identity() == owner.identity
    key_file = (ledger.keys_dir / f"{sub.key_id.hex()}.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key_file  # under the owner's passphrase
    unlocked = ledger.unlock(sub.key_id, PASSPHRASE)
    assert ledger.serials_left(sub.key_id) == MAX_SERIAL
    # Own-tag recognition: the sub-key's own MAC key, derived from the sub-key's seed.
    assert ledger.own_mac_key(sub.key_id) == unlocked.mac_key != owner.mac_key
    [cert] = ledger.subkey_certs(owner.key_id)
    assert cert.format == CERT_FORMAT and cert.purpose == "tag" and cert.subkey_raw == sub.public_raw
    Ed25519PublicKey.from_public_bytes(owner.public_raw).verify(
        base64.b64decode(cert.signature), cert.signing_bytes())
    found = ledger.lookup_owner(sub.key_id)
    assert found.name == "Alice" and found.is_own and found.parent == owner.key_id
    assert found.owner_key_id == owner.identity.key_id
    # A passphrase change re-encrypts the sub-keys too.
    new = "purple elephant dances quietly at noon"
    ledger.change_passphrase(owner.key_id, PASSPHRASE, new)
    assert ledger.unlock(sub.key_id, new).public_raw == sub.public_raw


def test_subkey_tag_verifies_as_the_owners(alice, bob) -> None:
    ledger, owner = alice
    own_payload, _ = tag(ledger, owner)
    sub = ledger.unlock(ledger.create_subkey(owner.key_id, PASSPHRASE).key_id, PASSPHRASE)
    payload, sha = tag(ledger, sub)
    # The owner's own ledger: MAC with the sub-key's MAC key, record signed by the sub-key.
    mine = judge([0, 0, 64, 64], read(payload), ledger, sha)
    assert mine.verdict is Verdict.VERIFIED and mine.own and mine.file_match
    assert mine.owner_name == "Alice" and mine.owner_key_id == owner.identity.key_id
    forged_mac = Payload(payload.version, payload.key_id, payload.serial, payload.mac ^ 1)
    assert judge([0, 0, 1, 1], read(forged_mac), ledger, None).verdict is Verdict.INVALID
    # A contact who imported the owner's updated card: the owner's verdict and name.
    card = ledger.export_card(owner.key_id)
    doc = json.loads(card)
    assert [c["subkey_key_id"] for c in doc["subkeys"]] == [sub.key_id.hex()]
    contact = bob.import_card(card)
    assert contact.record_count == 2 and [c.name for c in bob.list_contacts()] == ["Alice"]
    theirs = judge([0, 0, 64, 64], read(payload), bob, sha)
    assert theirs.verdict is Verdict.VERIFIED and not theirs.own
    assert theirs.owner_name == "Alice" and theirs.owner_key_id == owner.identity.key_id
    assert "sub-key" in theirs.reason
    assert judge([0, 0, 1, 1], read(own_payload), bob, None).verdict is Verdict.VERIFIED
    # Removing the contact removes its sub-keys: the tag is unknown again.
    assert bob.remove_contact(owner.key_id)
    assert judge([0, 0, 1, 1], read(payload), bob, None).verdict is Verdict.UNKNOWN_OWNER


def test_uncertified_or_badly_certified_subkey_never_verifies(alice, bob) -> None:
    ledger, owner = alice
    sub = ledger.unlock(ledger.create_subkey(owner.key_id, PASSPHRASE).key_id, PASSPHRASE)
    payload, sha = tag(ledger, sub)
    recs = ledger.records_of(sub.key_id)
    header_card = json.loads(ledger.export_card(owner.key_id))
    # Records of a sub-key the card does not certify: refused as a whole.
    with pytest.raises(CardError, match="different key"):
        parse_card(make_card(owner, recs))
    # A certificate with a broken signature, or one made by another key (Mallory's).
    bad = dict(header_card)
    bad["subkeys"] = [dict(header_card["subkeys"][0], created="2030-01-01T00:00:00Z")]
    with pytest.raises(CardError, match="invalid certificate signature"):
        bob.import_card(json.dumps(bad).encode())
    mallory = UnlockedIdentity.generate("Mallory")
    forged = certify(mallory, sub).to_dict()
    bad["subkeys"] = [dict(forged, owner_public=b64encode(owner.public_raw))]
    with pytest.raises(CardError, match="invalid certificate signature"):
        bob.import_card(json.dumps(bad).encode())
    with pytest.raises(CardError, match="another owner key"):
        parse_cert(forged, owner.public_raw)
    # Mallory certifying Alice's sub-key as hers (to have Alice's sub-key tags shown as
    # Mallory's): without the sub-key's own signature over it, her card is refused.
    claim = {"format": CERT_FORMAT, "owner_public": b64encode(mallory.public_raw),
             "subkey_public": b64encode(sub.public_raw), "subkey_key_id": sub.key_id.hex(),
             "created": "2025-01-01T00:00:00Z", "purpose": "tag"}
    unsigned = canonical_json(claim)
    claim["signature"] = b64encode(mallory.sign(unsigned))
    claim["subkey_signature"] = b64encode(mallory.sign(unsigned))
    mallory_card = json.loads(make_card(mallory, []))
    mallory_card["subkeys"] = [claim]
    with pytest.raises(CardError, match="invalid certificate signature"):
        bob.import_card(json.dumps(mallory_card).encode())
    assert bob.list_contacts() == []
    # A sub-key row planted in the ledger with a bad certificate resolves to nobody.
    bob.import_card(build_card(json_header(header_card), []))
    with sqlite3.connect(bob.path) as con:
        con.execute("INSERT INTO contacts (key_id, name, public_key, created, card_header,"
                    " imported, updated, parent_key_id, certificate) VALUES (?, 'Alice', ?,"
                    " '2025-01-01T00:00:00Z', '', '', '', ?, ?)",
                    (sub.key_id.hex(), sub.public_raw, owner.key_id.hex(),
                     json.dumps(bad["subkeys"][0])))
        con.execute("INSERT INTO records (key_id, serial, contact_key_id, created, file_sha256,"
                    " signature, record_json, added) VALUES (?, ?, ?, '', ?, ?, ?, '')",
                    (sub.key_id.hex(), payload.serial, sub.key_id.hex(), sha, recs[0].signature,
                     json.dumps(recs[0].to_dict())))
    assert bob.lookup_owner(sub.key_id) is None
    verdict = judge([0, 0, 64, 64], read(payload), bob, sha)
    assert verdict.verdict is Verdict.UNKNOWN_OWNER


def json_header(doc: dict):
    from engine.store.cards import CardHeader

    return CardHeader.from_dict(doc)


def test_old_cards_and_cards_without_subkeys_are_unchanged(alice, bob) -> None:
    ledger, owner = alice
    tag(ledger, owner)
    card = ledger.export_card(owner.key_id)
    assert "subkeys" not in json.loads(card)  # same bytes as before sub-keys existed
    assert bob.import_card(card).record_count == 1


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_batch_rolls_over_to_a_certified_subkey(home, capsys, tmp_path, monkeypatch) -> None:
    """The owner's serials are nearly spent (counter set in the ledger): the batch creates a
    certified sub-key, says so, and a contact with the updated card verifies the photos as
    the owner's."""
    assert run(capsys, "identity", "create", "--name", "Alice")[0] == 0
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(SAMPLE, src / name)
    with sqlite3.connect(home / "ledger.sqlite3") as con:
        con.execute("UPDATE identities SET next_serial = ?", (MAX_SERIAL,))  # 1 serial left
    code, _, err = run(capsys, "batch", str(src), "--out", str(tmp_path / "no"),
                       "--no-subkeys", "--device", "cpu")
    assert code == 1 and "1 tag serials left" in err and "--no-subkeys" in err
    out = tmp_path / "out"
    code, _, err = run(capsys, "batch", str(src), "--out", str(out), "--device", "cpu")
    assert code == 0 and "created the certified sub-key" in err
    code, listing, _ = run(capsys, "identity", "subkeys")
    assert code == 0 and "sub-key of" in listing and "65533 tag serials left" in listing
    tagged = sorted(str(p) for p in out.iterdir())
    assert len(tagged) == 2
    code, text, _ = run(capsys, "verify", *tagged, "--json")
    mine = [f for r in json.loads(text)["results"] for f in r["faces"]]
    assert mine and all(f["verdict"] == "verified" and f["owner_name"] == "Alice" for f in mine)
    card = tmp_path / "alice.card.json"
    assert run(capsys, "card", "export", str(card))[0] == 0
    owner_id = json.loads(card.read_text())["key_id"]
    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "bob"))
    assert run(capsys, "card", "import", str(card))[0] == 0
    code, text, _ = run(capsys, "verify", *tagged, "--json")
    faces = [f for r in json.loads(text)["results"] for f in r["faces"]]
    assert faces and all(f["verdict"] == "verified" and f["owner_name"] == "Alice"
                         and f["owner_key_id"] == str(KeyId.from_hex(owner_id))
                         for f in faces)


def test_certificate_vector() -> None:
    """docs/FORMAT.md, "Sub-key certificate": RFC 8032 test 1 key certifies the test 2 key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from engine.identity import Identity

    def unlocked(seed: str) -> UnlockedIdentity:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
        pub = key.public_key().public_bytes_raw()
        return UnlockedIdentity(Identity("Alice Example", pub, KeyId.of(pub),
                                         "2025-01-01T00:00:00Z"), key)

    owner = unlocked("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    sub = unlocked("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
    cert = certify(owner, sub, "2025-03-04T05:06:07Z")
    assert cert.signing_bytes() == (
        b'{"created":"2025-03-04T05:06:07Z","format":"faketagger-subkey-cert/1",'
        b'"owner_public":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=","purpose":"tag",'
        b'"subkey_key_id":"39f713d0",'
        b'"subkey_public":"PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="}')
    assert cert.signature == ("m++XY/WfAg9GKjhiRR5Vvcr1HOH3fSGmzxe1dw6t8hu8lJDJ5byFkMyelM6f0wNmi"
                              "yo28kECPBubOTZtMoHjDw==")
    assert cert.subkey_signature == ("5J5ax7cxm3hAxdq9FPqJ2lSvvTu6m5DRDOtcHByY15gqtY7Mhpd2S2C1E3J"
                                     "UfA8kQC6whkzYBqa/zUshiOFfDA==")
    assert sub.mac_key.hex() == ("955001bc02e9e55d640d56c155a2b547"
                                 "e4d86302d478d3b305037b7152886d9c")


def test_batch_rolls_over_mid_job(ledger, identity, pipeline, tmp_path) -> None:
    """A job the owner key starts runs on with a certified sub-key once the owner's last serial
    is spent: before a photo (no serial left) and within one (a two-face photo, one serial)."""
    import numpy as np
    from PIL import Image

    from engine.protect import ProtectOutcome
    from engine.protect.spec import JobSpec
    from engine.run.jobs import create_job, mirror_plan
    from engine.run.local import run_batch

    src = tmp_path / "src"
    src.mkdir()
    face = np.asarray(Image.open(SAMPLE).convert("RGB"))
    Image.fromarray(np.hstack([face, face])).save(src / "a-two.jpg", quality=95)
    shutil.copy(SAMPLE, src / "b.jpg")
    shutil.copy(SAMPLE, src / "c.jpg")
    with sqlite3.connect(ledger.path) as con:
        con.execute("UPDATE identities SET next_serial = ?", (MAX_SERIAL - 1,))  # 2 left
    notes: list[int] = []

    def roll(serials: int) -> UnlockedIdentity:
        notes.append(serials)
        return ledger.tagging_key(identity.key_id, serials, PASSPHRASE)[0]

    out = tmp_path / "out"
    job = create_job(ledger, identity.key_id, mirror_plan([src], out), out, JobSpec())
    done = [e for e in run_batch(pipeline, identity, job, roll=roll)
            if isinstance(e, ProtectOutcome)]
    assert [o.state.value for o in done] == ["tagged"] * 3, [o.error for o in done]
    assert ledger.batch_job(job).done
    [sub] = ledger.subkeys(identity.key_id)
    owner_serials = [r.serial for r in ledger.records_of(identity.key_id)]
    sub_serials = [r.serial for r in ledger.records_of(sub.key_id)]
    # a-two.jpg (2 faces) fits the owner's 2 serials; b.jpg finds none left and rolls over.
    assert owner_serials == [MAX_SERIAL - 1, MAX_SERIAL] and sub_serials == [1, 2]
    assert ledger.serials_left(identity.key_id) == 0 and len(notes) == 1


def test_batch_rolls_over_within_a_photo(ledger, identity, pipeline, tmp_path) -> None:
    import numpy as np
    from PIL import Image

    from engine.protect import ProtectOutcome
    from engine.protect.spec import JobSpec
    from engine.run.jobs import create_job, mirror_plan
    from engine.run.local import run_batch

    src = tmp_path / "src"
    src.mkdir()
    face = np.asarray(Image.open(SAMPLE).convert("RGB"))
    Image.fromarray(np.hstack([face, face])).save(src / "two.jpg", quality=95)
    with sqlite3.connect(ledger.path) as con:
        con.execute("UPDATE identities SET next_serial = ?", (MAX_SERIAL,))  # 1 left
    out = tmp_path / "out"
    job = create_job(ledger, identity.key_id, mirror_plan([src], out), out, JobSpec())

    def roll(serials: int) -> UnlockedIdentity:
        return ledger.tagging_key(identity.key_id, serials, PASSPHRASE)[0]

    [done] = [e for e in run_batch(pipeline, identity, job, roll=roll)
              if isinstance(e, ProtectOutcome)]
    assert done.state.value == "tagged" and len(done.faces) == 2, done.error
    [sub] = ledger.subkeys(identity.key_id)
    assert [r.serial for r in ledger.records_of(sub.key_id)] == [1, 2]
    assert ledger.records_of(identity.key_id) == [] and ledger.serials_left(identity.key_id) == 1
