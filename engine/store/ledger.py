"""The local ledger (SQLite): own identities, serial allocation, signed tag records and contacts.

One connection per Ledger, shared across threads under a lock (the GUI runs protect/verify jobs on
a worker thread). Writes use BEGIN IMMEDIATE so serial allocation and card import are atomic even
when two processes (GUI + CLI) share the file; WAL lets readers proceed meanwhile.

Each identity row stores the HKDF-derived tag-MAC key so verification can recognise the user's own
tags without asking for the passphrase. That is acceptable because HKDF is one-way (the MAC key
reveals nothing about the Ed25519 private key) and the 8-bit in-image MAC is only a filter against
random matches: ownership is proven by Ed25519-signed records, which the MAC key cannot forge.

The schema, migrations and file opening live in :mod:`engine.store.schema`; contacts and card
import/export in :mod:`engine.store.contacts`; tag records and history in
:mod:`engine.store.history` (both mixed into :class:`Ledger`). This module keeps the connection,
identities, key backups and serials, and re-exports the row types so ``engine.store.ledger``
stays the one import callers need.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from engine import paths
from engine.atomic import remove_if_same
from engine.errors import (
    KeyStoreError,
    LedgerError,
    PassphraseError,
    SerialsExhaustedError,
)
from engine.identity import (
    Identity,
    UnlockedIdentity,
    check_passphrase,
    load_unlocked,
    write_private_file,
)
from engine.store.backup import export_backup, restore_backup
from engine.store.cards import sign_card_header
from engine.store.contacts import Contact, ContactsMixin, Owner
from engine.store.history import HistoryRow, RecordsMixin
from engine.store.records import MAX_SERIAL
from engine.store.schema import (
    SCHEMA_VERSION,
    KeyIdLike,
    immediate,
    key_hex,
    key_text,
    open_ledger_db,
)

__all__ = ["SCHEMA_VERSION", "Contact", "HistoryRow", "KeyIdLike", "Ledger", "Owner"]


class Ledger(ContactsMixin, RecordsMixin):
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
