"""The SQLite ledger: serials, records, history, contacts, card import/export, persistence."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.errors import (
    CardError,
    LedgerError,
    RecordError,
    SerialsExhaustedError,
)
from engine.identity import Identity, UnlockedIdentity
from engine.payload import Payload
from engine.store.cards import make_card, parse_card
from engine.store.ledger import SCHEMA_VERSION, Ledger
from engine.store.records import MAX_SERIAL, TagRecord, sign_record

THUMB = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
PW = "pass phrase"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def ledger(home: Path) -> Any:
    with Ledger() as led:
        yield led


@pytest.fixture
def alice(ledger: Ledger) -> UnlockedIdentity:
    ident = ledger.create_identity("Alice", PW)
    return ledger.unlock(ident.key_id, PW)


def record(u: UnlockedIdentity, serial: int, sha: str = "ab" * 32, **kw: Any) -> TagRecord:
    return sign_record(
        u,
        serial=serial,
        payload_hex=kw.pop("payload_hex", Payload.create(u.mac_key, u.key_id, serial).to_hex()),
        file_sha256=sha,
        face_box=kw.pop("face_box", [0, 0, 64, 64]),
        face_thumb_jpeg=THUMB,
        **kw,
    )


def row_counts(ledger: Ledger) -> tuple[int, int]:
    return len(ledger.list_contacts()), sum(c.record_count for c in ledger.list_contacts())


# --- schema ---------------------------------------------------------------------------------------


def test_schema_wal_and_foreign_keys(ledger: Ledger, home: Path) -> None:
    con = sqlite3.connect(home / "ledger.sqlite3")
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version FROM schema_migrations").fetchall() == [
        (v,) for v in range(1, 7)]
    con.close()
    assert ledger._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_newer_schema_and_garbage_file_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    con = sqlite3.connect(newer)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(LedgerError, match="newer FakeTagger"):
        Ledger(newer)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match="not a FakeTagger ledger|cannot be opened|damaged"):
        Ledger(junk)


def test_failed_commit_leaves_no_transaction_open() -> None:
    """A COMMIT that fails (here: a deferred foreign key) must roll back, not leave the
    connection inside a transaction that the next BEGIN IMMEDIATE would trip over."""
    from engine.store.schema import immediate

    con = sqlite3.connect(":memory:", isolation_level=None)
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    con.execute("CREATE TABLE child (parent_id INTEGER REFERENCES parent(id)"
                " DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), immediate(con) as c:
        c.execute("INSERT INTO child VALUES (42)")  # only checked at COMMIT
    assert not con.in_transaction
    assert con.execute("SELECT count(*) FROM child").fetchone()[0] == 0
    with immediate(con) as c:  # the connection is usable again
        c.execute("INSERT INTO parent VALUES (1)")
    assert con.execute("SELECT count(*) FROM parent").fetchone()[0] == 1


def test_ledger_works_where_wal_is_unavailable(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some file systems cannot do WAL; SQLite then keeps a rollback journal, which must work
    (with full syncing, as NORMAL is only corruption-safe under WAL)."""

    class NoWal(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
            if sql.strip().upper().startswith("PRAGMA JOURNAL_MODE"):
                sql = "PRAGMA journal_mode = DELETE"
            return super().execute(sql, *args)

    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **kw: real_connect(*a, factory=NoWal, **kw))
    with Ledger() as led:
        assert led._conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert led._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        kid = led.create_identity("Alice", PW).key_id
        assert led.allocate_serials(kid, 2) == [1, 2]
    monkeypatch.setattr(sqlite3, "connect", real_connect)
    with Ledger() as led:  # and the file is an ordinary ledger for the next opener
        assert led.allocate_serials(kid, 1) == [3]


# --- serials --------------------------------------------------------------------------------------


def test_serials_monotonic_unique_and_persistent(home: Path) -> None:
    with Ledger() as led:
        kid = led.create_identity("Alice", PW).key_id
        assert led.allocate_serials(kid, 3) == [1, 2, 3]
        assert led.allocate_serials(kid, 0) == []
        assert led.allocate_serials(kid.hex(), 2) == [4, 5]
        with pytest.raises(LedgerError, match="no identity"):
            led.allocate_serials(b"\0\0\0\0", 1)
    with Ledger() as led:  # reopen: the counter persisted
        assert led.allocate_serials(kid, 1) == [6]
        assert led.serials_left(kid) == MAX_SERIAL - 6


def test_serials_unique_across_threads(ledger: Ledger) -> None:
    kid = ledger.create_identity("Alice", PW).key_id
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            serials = ledger.allocate_serials(kid, 2)
            with lock:
                got.extend(serials)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 201))


def test_serials_unique_across_two_connections(home: Path) -> None:
    with Ledger() as one, Ledger() as two:  # like the GUI and the CLI at once
        kid = one.create_identity("Alice", PW).key_id
        assert one.allocate_serials(kid, 2) == [1, 2]
        assert two.allocate_serials(kid, 2) == [3, 4]
        assert one.allocate_serials(kid, 1) == [5]


def test_serials_exhaust(ledger: Ledger) -> None:
    kid = ledger.create_identity("Alice", PW).key_id
    assert len(ledger.allocate_serials(kid, MAX_SERIAL - 2)) == MAX_SERIAL - 2
    with pytest.raises(SerialsExhaustedError, match="2 tag serials left, 3 needed"):
        ledger.allocate_serials(kid, 3)
    assert ledger.allocate_serials(kid, 2) == [MAX_SERIAL - 1, MAX_SERIAL]
    with pytest.raises(SerialsExhaustedError, match="create a new identity"):
        ledger.allocate_serials(kid, 1)


# --- own records and history ----------------------------------------------------------------------


def test_add_and_find_own_records(ledger: Ledger, alice: UnlockedIdentity) -> None:
    s1, s2, s3 = ledger.allocate_serials(alice.key_id, 3)
    a1, a2 = record(alice, s1, "01" * 32), record(alice, s2, "01" * 32)
    b1 = record(alice, s3, "02" * 32)
    ledger.add_record(a1, original_path="/photos/beach.jpg", output_path="/out/beach_tagged.jpg")
    ledger.add_record(a2, original_path="/photos/beach.jpg", output_path="/out/beach_tagged.jpg")
    ledger.add_record(b1, original_path="/photos/100%_me.png", output_path="/out/me_tagged.png")
    ledger.add_record(a1, original_path="/photos/beach.jpg", output_path="/out/beach_tagged.jpg")

    assert ledger.records_for(alice.key_id, s1) == [a1]
    assert ledger.records_for(alice.key_id, 999) == []
    assert ledger.records_of(alice.key_id) == [a1, a2, b1]

    rows = ledger.history()
    assert [(r.output_path, r.serials) for r in rows] == [  # newest first
        ("/out/me_tagged.png", (3,)),
        ("/out/beach_tagged.jpg", (1, 2)),
    ]
    beach = next(r for r in rows if r.serials == (1, 2))
    assert beach.original_path == "/photos/beach.jpg" and beach.thumbnail == THUMB
    assert beach.key_id == alice.key_id and beach.identity_name == "Alice"
    assert [r.serials for r in ledger.history("BEACH")] == [(1, 2)]
    assert [r.serials for r in ledger.history("100%")] == [(3,)]  # % is literal, not a wildcard
    assert len(ledger.history(alice.identity.key_id.text)) == 2
    assert len(ledger.history("Alice")) == 2
    assert ledger.history("nothing-matches") == []
    assert len(ledger.history(limit=1)) == 1
    # The photo an own tag came from (Verify tab): key ID, serial and the tagged file's hash.
    assert ledger.original_path(alice.key_id, s2, "01" * 32) == "/photos/beach.jpg"
    assert ledger.original_path(alice.key_id, s2, "02" * 32) is None
    assert ledger.original_path(alice.key_id, 999, "01" * 32) is None


def test_add_record_refusals(ledger: Ledger, alice: UnlockedIdentity) -> None:
    (serial,) = ledger.allocate_serials(alice.key_id, 1)
    good = record(alice, serial)
    forged = TagRecord.from_dict({**good.to_dict(), "serial": serial + 1,
                                  "payload": record(alice, serial + 1).payload})
    with pytest.raises(RecordError, match="does not verify"):
        ledger.add_record(forged, original_path="a", output_path="b")
    with pytest.raises(LedgerError, match="never allocated"):
        ledger.add_record(record(alice, serial + 5), original_path="a", output_path="b")
    stranger = UnlockedIdentity.generate("Stranger")
    with pytest.raises(LedgerError, match="not from one of your identities"):
        ledger.add_record(record(stranger, 1), original_path="a", output_path="b")
    with pytest.raises(LedgerError, match="not a contact"):
        ledger.add_record(record(stranger, 1), original_path="a", output_path="b", own=False)
    assert ledger.records_of(alice.key_id) == []


# --- contacts and cards ---------------------------------------------------------------------------


def test_import_card_and_lookup(ledger: Ledger, alice: UnlockedIdentity) -> None:
    bob = UnlockedIdentity.generate("Bob")
    bob_recs = [record(bob, s) for s in (1, 2)]
    contact = ledger.import_card(make_card(bob, bob_recs))
    assert (contact.name, contact.key_id, contact.record_count) == ("Bob", bob.key_id, 2)
    assert contact.fingerprint == bob.identity.fingerprint
    assert ledger.list_contacts() == [contact]
    assert ledger.records_for(bob.key_id, 2) == [bob_recs[1]]

    owner = ledger.lookup_owner(bob.key_id)
    assert owner is not None and (owner.name, owner.is_own) == ("Bob", False)
    mine = ledger.lookup_owner(alice.identity.key_id.text)
    assert mine is not None and mine.is_own and mine.public_raw == alice.public_raw
    assert ledger.lookup_owner(b"\0\0\0\0") is None
    assert ledger.own_mac_key(bob.key_id) is None  # contacts have no MAC key

    # Both own and contact records for one serial come back, own first.
    (s1,) = ledger.allocate_serials(alice.key_id, 1)
    ledger.add_record(record(alice, s1), original_path="a", output_path="b")
    assert ledger.records_for(alice.key_id, 1)[0].owner_public_raw == alice.public_raw

    # A contact record can also be added one by one.
    extra = record(bob, 9)
    ledger.add_record(extra, original_path="", output_path="", own=False)
    assert ledger.records_for(bob.key_id, 9) == [extra]


def test_reimport_updates_name_and_adds_records(ledger: Ledger) -> None:
    bob = UnlockedIdentity.generate("Bob")
    ledger.import_card(make_card(bob, [record(bob, 1)]))
    renamed = UnlockedIdentity(
        Identity("Robert", bob.public_raw, bob.key_id, bob.created), bob._key
    )
    contact = ledger.import_card(make_card(renamed, [record(bob, 1), record(bob, 2)]))
    assert contact.name == "Robert" and contact.record_count == 2
    contact = ledger.import_card(make_card(renamed, []))  # a card without records drops nothing
    assert contact.record_count == 2 and len(ledger.list_contacts()) == 1


def test_bad_cards_store_nothing(ledger: Ledger) -> None:
    bob = UnlockedIdentity.generate("Bob")
    good = make_card(bob, [record(bob, 1), record(bob, 2)])
    doc = json.loads(good)
    doc["records"][1]["payload"] = "f" * 15  # second record tampered: the first must not be stored
    tampered_record = json.dumps(doc).encode()
    doc = json.loads(good)
    doc["name"] = "Bobby"
    tampered_name = json.dumps(doc).encode()
    for bad in (tampered_record, tampered_name, good[:-40], b"not json at all", b"{}"):
        with pytest.raises(CardError):
            ledger.import_card(bad)
        assert row_counts(ledger) == (0, 0)
        assert ledger.lookup_owner(bob.key_id) is None


def test_card_with_unencodable_name_is_refused(ledger: Ledger) -> None:
    """A lone surrogate in a card's name used to reach SQLite and fail there with a bare
    UnicodeEncodeError; it must be an ordinary CardError, with nothing stored."""
    bob = UnlockedIdentity.generate("Bob")
    evil = UnlockedIdentity(Identity("\ud800bob", bob.public_raw, bob.key_id, bob.created), bob._key)
    with pytest.raises(CardError, match="name"):
        ledger.import_card(make_card(evil, [record(bob, 1)]))
    assert row_counts(ledger) == (0, 0) and ledger.lookup_owner(bob.key_id) is None


def test_own_card_refused(ledger: Ledger, alice: UnlockedIdentity) -> None:
    card = ledger.export_card(alice.key_id)
    with pytest.raises(CardError, match="this is your own card"):
        ledger.import_card(card)
    assert ledger.list_contacts() == []


def test_export_card_needs_no_passphrase(ledger: Ledger, alice: UnlockedIdentity) -> None:
    serials = ledger.allocate_serials(alice.key_id, 2)
    recs = [record(alice, s) for s in serials]
    for r in recs:
        ledger.add_record(r, original_path="o", output_path="t")
    card = parse_card(ledger.export_card(alice.identity.key_id.text))
    assert card.identity == alice.identity and list(card.records) == recs
    assert ledger.export_card(alice.key_id) == make_card(alice, recs)  # deterministic Ed25519
    assert parse_card(ledger.export_card(alice.key_id, include_records=False)).records == ()
    assert list(parse_card(ledger.export_card(alice.key_id, serials={serials[1]})).records) \
        == recs[1:]  # History tab: export only the selected photos' records
    with pytest.raises(LedgerError, match="no identity or contact"):
        ledger.export_card(b"\0\0\0\0")


def test_contact_card_can_be_reshared(ledger: Ledger) -> None:
    bob = UnlockedIdentity.generate("Bob")
    original = make_card(bob, [record(bob, 1)])
    ledger.import_card(original)
    assert parse_card(ledger.export_card(bob.key_id)) == parse_card(original)


def test_remove_contact_removes_records(ledger: Ledger) -> None:
    bob = UnlockedIdentity.generate("Bob")
    ledger.import_card(make_card(bob, [record(bob, 1), record(bob, 2)]))
    assert ledger.remove_contact(bob.key_id) is True
    assert ledger.list_contacts() == [] and ledger.records_of(bob.key_id) == []
    assert ledger.lookup_owner(bob.key_id) is None
    assert ledger.remove_contact(bob.key_id) is False


def test_restore_refuses_contact_key(tmp_path: Path, ledger: Ledger) -> None:
    other_home = tmp_path / "other"
    with Ledger(other_home / "ledger.sqlite3") as other:
        carol = other.create_identity("Carol", PW)
        backup = other.export_backup(carol.key_id)
        card = other.export_card(carol.key_id)
    assert (other_home / "keys" / f"{carol.key_id.hex()}.pem").is_file()  # keys beside the db
    ledger.import_card(card)
    with pytest.raises(LedgerError, match="belongs to a contact"):
        ledger.restore_backup(backup, PW)
    assert ledger.list_identities() == []


def test_ledger_reopen_persists_everything(home: Path) -> None:
    bob = UnlockedIdentity.generate("Bob")
    with Ledger() as led:
        alice = led.create_identity("Alice", PW)
        u = led.unlock(alice.key_id, PW)
        (serial,) = led.allocate_serials(alice.key_id, 1)
        rec = record(u, serial)
        led.add_record(rec, original_path="in.jpg", output_path="out.jpg")
        led.import_card(make_card(bob, [record(bob, 4)]))
        mac = led.own_mac_key(alice.key_id)
    with Ledger() as led:
        assert led.list_identities() == [alice] and led.default_identity() == alice
        assert led.records_for(alice.key_id, serial) == [rec]
        assert [c.name for c in led.list_contacts()] == ["Bob"]
        assert len(led.records_for(bob.key_id, 4)) == 1
        assert led.own_mac_key(alice.key_id) == mac
        assert led.history()[0].output_path == "out.jpg"


def test_add_records_is_all_or_nothing(tmp_path, monkeypatch):
    from engine.store.ledger import Ledger
    from engine.store.records import sign_record

    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path))
    with Ledger() as led:
        ident = led.create_identity("Rita", "pass phrase one")
        unlocked = led.unlock(ident.key_id, "pass phrase one")
        [serial] = led.allocate_serials(ident.key_id, 1)

        def rec(s: int):
            payload_hex = Payload.create(unlocked.mac_key, unlocked.key_id, s).to_hex()
            return sign_record(unlocked, serial=s, payload_hex=payload_hex, file_sha256="a" * 64,
                               face_box=[1, 2, 3, 4], face_thumb_jpeg=b"\xff\xd8\xff\xd9")

        with pytest.raises(LedgerError):
            led.add_records([rec(serial), rec(serial + 5)], original_path="o", output_path="x")
        assert led.records_of(ident.key_id) == []
        led.add_records([rec(serial)], original_path="o", output_path="x")
        assert len(led.records_of(ident.key_id)) == 1
