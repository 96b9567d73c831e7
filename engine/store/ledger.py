"""The local ledger (SQLite): own identities, serial allocation, signed tag records and contacts.

One connection per Ledger, shared across threads under a lock (the GUI runs protect/verify jobs on
a worker thread). Writes use BEGIN IMMEDIATE so serial allocation and card import are atomic even
when two processes (GUI + CLI) share the file; WAL lets readers proceed meanwhile.

Each identity row stores the HKDF-derived tag-MAC key so verification can recognise the user's own
tags without asking for the passphrase. That is acceptable because HKDF is one-way (the MAC key
reveals nothing about the Ed25519 private key) and the 8-bit in-image MAC is only a filter against
random matches: ownership is proven by Ed25519-signed records, which the MAC key cannot forge.

The schema, migrations and file opening live in :mod:`engine.store.schema`; contacts and card
import/export in :mod:`engine.store.contacts` (mixed into :class:`Ledger`). This module keeps identities,
serials, records and history, and re-exports the row types so ``engine.store.ledger`` stays the one
import callers need.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from engine import paths
from engine.atomic import remove_if_same
from engine.errors import (
    KeyStoreError,
    LedgerError,
    PassphraseError,
    RecordError,
    SerialsExhaustedError,
)
from engine.identity import (
    Identity,
    UnlockedIdentity,
    b64decode_strict,
    check_passphrase,
    format_key_id,
    load_unlocked,
    utc_now_iso,
    write_private_file,
)
from engine.store.backup import export_backup, restore_backup
from engine.store.cards import sign_card_header
from engine.store.contacts import Contact, ContactsMixin, Owner
from engine.store.records import MAX_SERIAL, TagRecord, verify_record
from engine.store.schema import (
    SCHEMA_VERSION,
    KeyIdLike,
    immediate,
    key_hex,
    key_text,
    open_ledger_db,
)

__all__ = ["SCHEMA_VERSION", "Contact", "HistoryRow", "KeyIdLike", "Ledger", "Owner"]


@dataclass(frozen=True)
class HistoryRow:
    """One tagged output file (all faces tagged in it) for the GUI history table."""

    created: str
    original_path: str
    output_path: str
    file_sha256: str
    serials: tuple[int, ...]
    key_id: bytes
    identity_name: str
    thumbnail: bytes  # JPEG of the first tagged face

    @property
    def key_id_text(self) -> str:
        return format_key_id(self.key_id)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Ledger(ContactsMixin):
    """Open (and create or migrate) the ledger at *path*; keys live in *keys_dir*, by default the
    ``keys`` folder beside the database (data_dir()/keys for the default ledger)."""

    def __init__(self, path: Path | None = None, *, keys_dir: Path | None = None) -> None:
        self.path = Path(path) if path is not None else paths.ledger_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keys_dir = Path(keys_dir) if keys_dir is not None else paths.keys_dir(self.path.parent)
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = open_ledger_db(self.path)

    # --- plumbing -----------------------------------------------------------------------------

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the lock: all of it is stored, or none of it."""
        with self._lock, immediate(self._conn) as c:
            yield c

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _key_path(self, hex_id: str) -> Path:
        return self.keys_dir / f"{hex_id}.pem"

    def _read_key_file(self, ident: Identity) -> bytes:
        """The identity's encrypted key file; KeyStoreError (not a bare OSError) when it is missing
        or unreadable, so unlock and backup export report it the same way."""
        key_path = self._key_path(ident.key_id_hex)
        try:
            return key_path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"key file of {ident.key_id_text} is missing: {key_path}") from None
        except OSError as exc:
            raise KeyStoreError(
                f"key file of {ident.key_id_text} cannot be read: {key_path} ({exc.strerror})"
            ) from None

    # --- identities ---------------------------------------------------------------------------

    _ID_COLS = "name, public_key, key_id, created"

    @staticmethod
    def _identity(row: tuple) -> Identity:
        return Identity(row[0], bytes(row[1]), bytes.fromhex(row[2]), row[3])

    def create_identity(self, name: str, passphrase: str) -> Identity:
        """New Ed25519 identity: encrypted key file (0600) + ledger row + self-signed card header.
        The first identity becomes the default."""
        check_passphrase(passphrase)
        for _ in range(32):  # a 32-bit key ID may collide with a contact's; draw again
            unlocked = UnlockedIdentity.generate(name)
            if self.lookup_owner(unlocked.key_id) is None:
                return self._install(unlocked, unlocked.encrypt(passphrase), next_serial=1)
        raise LedgerError("could not draw a key ID that is not already in use")

    def _install(self, unlocked: UnlockedIdentity, key_file: bytes, next_serial: int) -> Identity:
        ident = unlocked.identity
        header = sign_card_header(unlocked)
        key_path = self._key_path(ident.key_id_hex)
        write_private_file(key_path, key_file)  # refuses, race-free, if the name is taken
        ours = os.stat(key_path)
        try:
            with self._write() as c:
                if c.execute(
                    "SELECT 1 FROM contacts WHERE key_id = ?", (ident.key_id_hex,)
                ).fetchone():
                    raise LedgerError(f"key ID {ident.key_id_text} already belongs to a contact")
                has_default = c.execute("SELECT 1 FROM identities WHERE is_default").fetchone()
                c.execute(
                    "INSERT INTO identities (key_id, name, public_key, created, mac_key,"
                    " card_header, is_default, next_serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (ident.key_id_hex, ident.name, ident.public_raw, ident.created,
                     unlocked.mac_key, header.to_json(), 0 if has_default else 1, next_serial),
                )  # fmt: skip
        except BaseException:
            remove_if_same(key_path, ours)  # only the file this call created
            raise
        return ident

    def list_identities(self) -> list[Identity]:
        rows = self._read(f"SELECT {self._ID_COLS} FROM identities ORDER BY created, key_id")
        return [self._identity(r) for r in rows]

    def get_identity(self, key_id: KeyIdLike) -> Identity | None:
        rows = self._read(
            f"SELECT {self._ID_COLS} FROM identities WHERE key_id = ?", (key_hex(key_id),)
        )
        return self._identity(rows[0]) if rows else None

    def _require_identity(self, key_id: KeyIdLike | None) -> Identity:
        if key_id is None:
            ident = self.default_identity()
            if ident is None:
                several = bool(self.list_identities())
                raise LedgerError(
                    "several identities and none is the default; choose one"
                    if several
                    else "no identity yet; create one first"
                )
            return ident
        ident = self.get_identity(key_id)
        if ident is None:
            raise LedgerError(f"no identity of yours has key ID {key_text(key_hex(key_id))}")
        return ident

    def default_identity(self) -> Identity | None:
        """The identity marked default, else the only one, else None."""
        rows = self._read(f"SELECT {self._ID_COLS} FROM identities WHERE is_default")
        if rows:
            return self._identity(rows[0])
        rows = self._read(f"SELECT {self._ID_COLS} FROM identities LIMIT 2")
        return self._identity(rows[0]) if len(rows) == 1 else None

    def set_default(self, key_id: KeyIdLike) -> None:
        ident = self._require_identity(key_id)
        with self._write() as c:
            c.execute("UPDATE identities SET is_default = (key_id = ?)", (ident.key_id_hex,))

    def unlock(self, key_id: KeyIdLike | None, passphrase: str) -> UnlockedIdentity:
        """Decrypt the identity's key (default identity if key_id is None)."""
        ident = self._require_identity(key_id)
        return load_unlocked(ident, self._read_key_file(ident), passphrase)

    def change_passphrase(self, key_id: KeyIdLike, old: str, new: str) -> None:
        """Re-encrypt the key file under *new*; the old file is replaced atomically."""
        check_passphrase(new)
        unlocked = self.unlock(key_id, old)
        write_private_file(self._key_path(unlocked.identity.key_id_hex), unlocked.encrypt(new),
                           overwrite=True)  # fmt: skip

    def own_mac_key(self, key_id: KeyIdLike) -> bytes | None:
        rows = self._read("SELECT mac_key FROM identities WHERE key_id = ?", (key_hex(key_id),))
        return bytes(rows[0][0]) if rows else None

    def export_backup(self, key_id: KeyIdLike) -> bytes:
        """Backup JSON of an identity (key stays encrypted with its passphrase; none needed here)."""
        ident = self._require_identity(key_id)
        key_file = self._read_key_file(ident)
        return export_backup(ident, key_file, next_serial=self._next_serial(ident.key_id_hex))

    def restore_backup(self, data: bytes, passphrase: str) -> Identity:
        """Restore an identity from a backup (passphrase proves it decrypts). If the identity is
        already here, its key file is put back when missing or unreadable, and the serial counter
        moves forward, never back."""
        unlocked, backup = restore_backup(data, passphrase)
        hex_id = backup.identity.key_id_hex
        with self._lock:
            existing = self.get_identity(hex_id)
            if existing is not None:
                if existing.public_raw != backup.identity.public_raw:
                    raise KeyStoreError(f"key ID {existing.key_id_text} is used by a different key")
                self._repair_key_file(existing, backup.key_file, passphrase)
                with self._write() as c:
                    c.execute(
                        "UPDATE identities SET next_serial = max(next_serial, ?) WHERE key_id = ?",
                        (backup.next_serial, hex_id),
                    )
                return existing
            if self._key_path(hex_id).exists():
                raise KeyStoreError(f"a key file already exists at {self._key_path(hex_id)}")
            return self._install(unlocked, backup.key_file, backup.next_serial)

    def _repair_key_file(self, ident: Identity, key_file: bytes, passphrase: str) -> None:
        """Write the backup's key file back if the stored one is missing, unreadable or damaged.
        One that is fine but under another passphrase (changed after the backup) is kept."""
        key_path = self._key_path(ident.key_id_hex)
        try:
            load_unlocked(ident, self._read_key_file(ident), passphrase)
        except PassphraseError:
            return  # readable and ours, just a newer passphrase: leave it alone
        except KeyStoreError:  # missing, unreadable, damaged or another key's
            write_private_file(key_path, key_file, overwrite=os.path.lexists(key_path))

    # --- serials ------------------------------------------------------------------------------

    def _next_serial(self, hex_id: str) -> int:
        rows = self._read("SELECT next_serial FROM identities WHERE key_id = ?", (hex_id,))
        if not rows:
            raise LedgerError(f"no identity of yours has key ID {key_text(hex_id)}")
        return int(rows[0][0])

    def serials_left(self, key_id: KeyIdLike) -> int:
        return MAX_SERIAL + 1 - self._next_serial(key_hex(key_id))

    def allocate_serials(self, key_id: KeyIdLike, count: int) -> list[int]:
        """Reserve *count* fresh serials (1, 2, ... per identity). Atomic across threads and
        processes; a serial is never handed out twice, even if the caller later fails."""
        if count < 0:
            raise ValueError("count must be >= 0")
        hex_id = key_hex(key_id)
        with self._write() as c:
            row = c.execute("SELECT next_serial FROM identities WHERE key_id = ?", (hex_id,))
            first = row.fetchone()
            if first is None:
                raise LedgerError(f"no identity of yours has key ID {key_text(hex_id)}")
            start = int(first[0])
            if start + count - 1 > MAX_SERIAL:
                raise SerialsExhaustedError(
                    f"identity {key_text(hex_id)} has {MAX_SERIAL + 1 - start} tag serials left,"
                    f" {count} needed; create a new identity to keep tagging"
                )
            c.execute(
                "UPDATE identities SET next_serial = ? WHERE key_id = ?", (start + count, hex_id)
            )
        return list(range(start, start + count))

    # --- records ------------------------------------------------------------------------------

    def add_record(
        self, rec: TagRecord, *, original_path: str, output_path: str, own: bool = True
    ) -> None:
        """Store a signed record (idempotent). Own records must use an allocated serial of one of
        your identities; others must come from an imported contact."""
        self.add_records([rec], original_path=original_path, output_path=output_path, own=own)

    def add_records(
        self, recs: list[TagRecord], *, original_path: str, output_path: str, own: bool = True
    ) -> None:
        """Store the records of one tagged file in ONE transaction: all of them or none, so a
        failure never leaves a photo half-registered."""
        for rec in recs:
            if not verify_record(rec):
                raise RecordError("tag record signature does not verify; not stored")
        table = "identities" if own else "contacts"
        with self._write() as c:
            for rec in recs:
                row = c.execute(f"SELECT public_key FROM {table} WHERE key_id = ?", (rec.key_id,))
                found = row.fetchone()
                if found is None or bytes(found[0]) != rec.owner_public_raw:
                    raise LedgerError(
                        "record is not from one of your identities"
                        if own
                        else "record's owner is not a contact; import their card first"
                    )
                if own and rec.serial >= self._next_serial(rec.key_id):
                    raise LedgerError(
                        f"serial {rec.serial} was never allocated for {key_text(rec.key_id)}"
                    )
                self._insert_record(c, rec, own, original_path, output_path)

    @staticmethod
    def _insert_record(
        c: sqlite3.Connection, rec: TagRecord, own: bool, orig: str, out: str
    ) -> None:
        c.execute(
            "INSERT INTO records (key_id, serial, identity_key_id, contact_key_id, created,"
            " file_sha256, original_path, output_path, signature, record_json, added)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (signature) DO NOTHING",
            (rec.key_id, rec.serial, rec.key_id if own else None, None if own else rec.key_id,
             rec.created, rec.file_sha256, orig, out, rec.signature,
             json.dumps(rec.to_dict(), sort_keys=True), utc_now_iso()),
        )  # fmt: skip

    def _records(self, where: str, args: tuple[object, ...]) -> list[TagRecord]:
        rows = self._read(
            f"SELECT record_json FROM records WHERE {where}"
            " ORDER BY identity_key_id IS NULL, serial, id",
            args,
        )
        return [TagRecord.from_dict(json.loads(r[0])) for r in rows]

    def records_for(self, key_id: KeyIdLike, serial: int) -> list[TagRecord]:
        """Every stored record (own first, then contacts') for this key ID and serial. Callers
        deciding a verdict should still run verify_record on them."""
        return self._records("key_id = ? AND serial = ?", (key_hex(key_id), int(serial)))

    def known_payloads(self) -> tuple[str, ...]:
        """Every payload (hex) with a stored record, own or a contact's: the candidates for
        record-informed decoding (engine.match). Signatures are checked later, by the verdict."""
        rows = self._read("SELECT DISTINCT json_extract(record_json, '$.payload') FROM records")
        return tuple(sorted(r[0] for r in rows if r[0]))

    def records_of(self, key_id: KeyIdLike) -> list[TagRecord]:
        """All records of one key (for card export), ordered by serial."""
        return self._records("key_id = ?", (key_hex(key_id),))

    def history(self, search: str = "", limit: int = 500) -> list[HistoryRow]:
        """Own tagging history, newest first, one row per output file. *search* matches paths,
        identity name or key ID (case-insensitive substring)."""
        term = search.strip()
        key_term = term.replace("-", "").replace(" ", "").lower()
        # One query: the thumbnail comes from the group's first record, joined in by id, and only
        # its face_thumb field is pulled out of the stored JSON.
        rows = self._read(
            "SELECT g.created, g.orig, g.out, g.sha, g.key_id, g.serials, g.name,"
            " json_extract(f.record_json, '$.face_thumb') FROM ("
            " SELECT min(r.id) AS first_id, min(r.created) AS created, r.original_path AS orig,"
            " r.output_path AS out, r.file_sha256 AS sha, r.key_id, group_concat(r.serial) AS"
            " serials, i.name FROM records r JOIN identities i ON i.key_id = r.identity_key_id"
            " WHERE ? = '' OR r.original_path LIKE ? ESCAPE '\\' OR r.output_path LIKE ? ESCAPE '\\'"
            " OR i.name LIKE ? ESCAPE '\\' OR (? <> '' AND r.key_id LIKE ? ESCAPE '\\')"
            " GROUP BY r.output_path, r.file_sha256, r.key_id, r.original_path"
            " ORDER BY min(r.created) DESC, min(r.id) DESC LIMIT ?"
            ") g JOIN records f ON f.id = g.first_id ORDER BY g.created DESC, g.first_id DESC",
            (term, _like(term), _like(term), _like(term), key_term, _like(key_term), int(limit)),
        )
        result = []
        for created, orig, out, sha, hex_id, serials, name, thumb_b64 in rows:
            thumb = b64decode_strict(thumb_b64) or b""
            nums = tuple(sorted(int(s) for s in str(serials).split(",")))
            result.append(
                HistoryRow(created, orig, out, sha, nums, bytes.fromhex(hex_id), name, thumb)
            )
        return result
