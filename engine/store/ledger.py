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

import contextlib
import logging
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
    IdentityError,
    KeyIdError,
    KeyStoreError,
    LedgerError,
    PassphraseError,
    SerialsExhaustedError,
    WrongPassphraseError,
)
from engine.identity import (
    Identity,
    UnlockedIdentity,
    check_passphrase,
    key_id_of,
    load_unlocked,
    name_problem,
    write_private_file,
)
from engine.passphrase import require_strong
from engine.store import marks
from engine.store.backup import export_backup, restore_backup
from engine.store.batches import BatchesMixin
from engine.store.cards import sign_card_header
from engine.store.contacts import Contact, ContactsMixin, Owner
from engine.store.credentials import CredentialsStore
from engine.store.history import HistoryRow, RecordsMixin
from engine.store.ledger_backups import backups_dir, list_backups, make_backup
from engine.store.records import MAX_SERIAL
from engine.store.schema import (
    DAMAGED_HINT,
    SCHEMA_VERSION,
    KeyIdLike,
    immediate,
    key_hex,
    key_text,
    open_ledger_db,
)
from engine.store.session import SessionLock
from engine.store.subkeys import SubkeyCert, certify, parse_cert_json
from engine.store.tagging import RecoveryReport, TaggingMixin, TagJob, TagPlan

log = logging.getLogger(__name__)

__all__ = ["SCHEMA_VERSION", "Contact", "HistoryRow", "KeyIdLike", "Ledger", "Owner",
           "RecoveryReport", "TagJob", "TagPlan"]


def _sqlite_message(path: Path, exc: sqlite3.Error) -> str:
    """One line for a user about an SQLite failure, with what to do."""
    text = str(exc)
    low = text.lower()
    if "full" in low:
        return f"ledger {path}: the disk is full; nothing was recorded. Free some space and retry"
    if "locked" in low or "busy" in low:
        return f"ledger {path} is busy (another FakeTagger is writing to it); try again"
    if "readonly" in low or "read-only" in low:
        return f"ledger {path} is read-only; nothing was recorded"
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return f"ledger {path} is damaged ({text}); {DAMAGED_HINT}"
    if "disk i/o" in low:
        return f"ledger {path}: the disk failed to read or write ({text}); nothing was recorded"
    return f"ledger {path}: {text}"


class Ledger(ContactsMixin, RecordsMixin, TaggingMixin, BatchesMixin):
    """Open (and create or migrate) the ledger at *path*; keys live in *keys_dir*, by default the
    ``keys`` folder beside the database (data_dir()/keys for the default ledger).

    Opening also finishes or rolls back the tag jobs of runs that were killed mid-way
    (:meth:`recover`; what it did is in :attr:`recovered`) and reconciles each identity's serial
    counter with its high-water mark in the keys folder (engine.store.marks), so a ledger put
    back from a backup never hands out a serial again."""

    def __init__(self, path: Path | None = None, *, keys_dir: Path | None = None) -> None:
        try:
            self.path = Path(path) if path is not None else paths.ledger_path()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.keys_dir = (Path(keys_dir) if keys_dir is not None
                             else paths.keys_dir(self.path.parent))
            self.keys_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = exc.filename or (path if path is not None else "FakeTagger's data folder")
            raise LedgerError(f"cannot use the data folder {where} ({exc.strerror}); set "
                              f"{paths.HOME_ENV} to a writable folder") from None
        if not os.path.lexists(self.path) and list_backups(self.path):
            raise LedgerError(
                f"ledger {self.path} is missing, but automatic backups of it exist; nothing was "
                "changed. `faketagger ledger restore` puts the newest back (or move the "
                f"{backups_dir(self.path)} folder away to start a new ledger)")
        self._lock = threading.RLock()
        self._session_lock: SessionLock | None = None
        self._wrote = False
        self._conn = open_ledger_db(self.path)
        self.credentials = CredentialsStore(self._read, self._write)
        self.recovered = RecoveryReport()
        try:
            # Recovery first: when the ledger turns out older than a mark, the serials it frees
            # are dropped with the rest of the free list.
            if self._read("SELECT 1 FROM reservations LIMIT 1"):
                self.recovered = self.recover()
            self._reconcile_marks()
        except BaseException:
            self._conn.close()
            raise

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
        """Close the database; after a session that wrote, keep an automatic backup of it."""
        with self._lock:
            self.checkpoint_backup()
            self._conn.close()
            if self._session_lock is not None:
                self._session_lock.close()
                self._session_lock = None

    def checkpoint_backup(self) -> Path | None:
        """An automatic backup if anything was written since the last one (engine.jobs calls
        this after each protect job; close() too). Never fails the work: a backup that cannot
        be written is logged."""
        with self._lock:
            if not self._wrote:
                return None
            self._wrote = False
            try:
                return make_backup(self._conn, self.path)
            except (OSError, sqlite3.Error) as exc:
                log.warning("ledger backup failed: %s", exc)
                return None

    def backup_now(self) -> Path | None:
        """A backup right now (``faketagger ledger backup``)."""
        with self._lock:
            try:
                return make_backup(self._conn, self.path)
            except sqlite3.Error as exc:
                raise LedgerError(_sqlite_message(self.path, exc)) from None
            except OSError as exc:
                raise LedgerError(f"cannot write a ledger backup ({exc.strerror})") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the lock: all of it is stored, or none of it. SQLite
        failures (disk full, damaged file, read-only) become a one-line LedgerError."""
        with self._lock:
            try:
                with immediate(self._conn) as c:
                    yield c
            except sqlite3.Error as exc:
                raise LedgerError(_sqlite_message(self.path, exc)) from None
            self._wrote = True

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(_sqlite_message(self.path, exc)) from None

    def _locks_dir(self) -> Path:
        return self.path.parent / "locks"

    def _session(self) -> SessionLock:
        """This Ledger's session lock (engine.store.session), made on the first tag job."""
        with self._lock:
            if self._session_lock is None:
                try:
                    self._session_lock = SessionLock(self._locks_dir())
                except OSError as exc:
                    raise LedgerError(f"cannot write in {self._locks_dir()} "
                                      f"({exc.strerror})") from None
            return self._session_lock

    # --- serial high-water marks ---------------------------------------------------------------
    # Beside each key file, ``<key id>.serial`` records the identity's next serial and the ledger
    # generation it follows (engine.store.marks): a ledger restored from a backup (or rebuilt from
    # a key backup) continues after every serial ever handed out on this machine, while a kill
    # between writing the mark and the commit burns nothing.

    def _mark_path(self, hex_id: str) -> Path:
        return self.keys_dir / f"{hex_id}.serial"

    def _read_mark(self, hex_id: str) -> marks.Mark | None:
        try:
            return marks.parse(self._mark_path(hex_id).read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError):
            return None

    def _write_mark(self, hex_id: str, data: bytes) -> None:
        try:
            write_private_file(self._mark_path(hex_id), data, overwrite=True)
        except OSError as exc:
            raise LedgerError(f"cannot record the serial counter in {self.keys_dir} "
                              f"({exc.strerror})") from None

    def _stage_serial_mark(self, c: sqlite3.Connection, hex_id: str,
                           counter_after: int) -> tuple[str, int]:
        """Inside a transaction that hands out serials, last before its commit: a new
        generation goes into the ledger and a pending mark onto disk. Returns (generation, next
        serial) for :meth:`_confirm_serial_mark` after the commit."""
        row = c.execute("SELECT serial_gen FROM identities WHERE key_id = ?", (hex_id,))
        prev = row.fetchone()[0]
        mark = self._read_mark(hex_id)
        gen = marks.new_gen()
        value = marks.next_value(mark, prev, counter_after)
        c.execute("UPDATE identities SET serial_gen = ? WHERE key_id = ?", (gen, hex_id))
        self._write_mark(hex_id, marks.pending_text(value, gen, prev))
        return gen, value

    def _confirm_serial_mark(self, hex_id: str, gen: str, value: int) -> None:
        """After the commit, before any of its serials is used: the mark becomes confirmed (so a
        ledger later put back to the state before that transaction is known to be older). Under
        the write lock, and only while the ledger still holds *gen* (a later transaction's mark
        supersedes it)."""
        with self._write() as c:
            row = c.execute("SELECT serial_gen FROM identities WHERE key_id = ?", (hex_id,))
            found = row.fetchone()
            if found is not None and found[0] == gen:
                self._write_mark(hex_id, marks.confirmed_text(value, gen))

    def _reconcile_marks(self) -> None:
        """On open: bring each identity's counter in line with its mark (engine.store.marks)."""
        query = "SELECT key_id, next_serial, serial_gen FROM identities"
        if not any(marks.reconcile(self._read_mark(h), int(n), g) for h, n, g in self._read(query)):
            return
        with self._write() as c:  # again under the write lock: another process may be allocating
            for hex_id, counter, gen in c.execute(query).fetchall():
                fix = marks.reconcile(self._read_mark(hex_id), int(counter), gen)
                if fix is None:
                    continue
                c.execute("UPDATE identities SET next_serial = max(next_serial, ?)"
                          " WHERE key_id = ?", (fix.raise_to, hex_id))
                if fix.drop_free:
                    dropped = c.execute("DELETE FROM free_serials WHERE key_id = ?",
                                        (hex_id,)).rowcount
                    log.warning("ledger %s is older than the serial mark of %s (restored from a "
                                "backup?): counter raised to %d, %d freed serials dropped",
                                self.path, key_text(hex_id), fix.raise_to, dropped)
                if fix.adopt_gen is not None:
                    c.execute("UPDATE identities SET serial_gen = ? WHERE key_id = ?",
                              (fix.adopt_gen, hex_id))

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
        The first identity becomes the default. Names are unique among your identities (the CLI's
        ``--identity`` and the GUI tell them apart by name), and a guessable passphrase is
        refused (engine.passphrase)."""
        check_passphrase(passphrase)
        problem = name_problem(name)
        if problem:
            raise IdentityError(problem)
        require_strong(passphrase, user_inputs=[name])
        self._check_name_free(name)
        for _ in range(32):  # a 32-bit key ID may collide with a contact's; draw again
            unlocked = UnlockedIdentity.generate(name)
            if self.lookup_owner(unlocked.key_id) is None:
                return self._install(unlocked, unlocked.encrypt(passphrase), next_serial=1)
        raise LedgerError("could not draw a key ID that is not already in use")

    def _check_name_free(self, name: str) -> None:
        taken = self._read("SELECT key_id FROM identities WHERE lower(name) = lower(?)"
                           f" AND {self._MAIN}", (name,))
        if taken:
            raise IdentityError(f"you already have an identity named {name!r} "
                                f"({key_text(taken[0][0])}); choose another name")

    def _install(self, unlocked: UnlockedIdentity, key_file: bytes, next_serial: int,
                 *, adopt_key_file: bool = False, cert: SubkeyCert | None = None) -> Identity:
        """Store a new identity row (and its key file, unless *adopt_key_file*: the matching file
        is already there, e.g. after the ledger was lost). The serial counter starts at the
        highest of *next_serial* and the identity's high-water mark on this machine."""
        ident = unlocked.identity
        header = sign_card_header(unlocked)
        key_path = self._key_path(ident.key_id_hex)
        mark = self._read_mark(ident.key_id_hex)
        if mark is not None:  # the new row follows the mark's ledger state: they agree
            next_serial = max(next_serial, mark.next)
        gen = mark.gen if mark is not None else None
        if adopt_key_file:
            with self._write() as c:
                self._insert_identity(c, unlocked, header, next_serial, gen, cert)
            return ident
        write_private_file(key_path, key_file)  # refuses, race-free, if the name is taken
        ours = os.stat(key_path)
        try:
            with self._write() as c:
                self._insert_identity(c, unlocked, header, next_serial, gen, cert)
        except BaseException:
            remove_if_same(key_path, ours)  # only the file this call created
            raise
        return ident

    @staticmethod
    def _insert_identity(c: sqlite3.Connection, unlocked: UnlockedIdentity, header,
                         next_serial: int, serial_gen: str | None = None,
                         cert: SubkeyCert | None = None) -> None:
        ident = unlocked.identity
        if c.execute("SELECT 1 FROM contacts WHERE key_id = ?", (ident.key_id_hex,)).fetchone():
            raise LedgerError(f"key ID {ident.key_id_text} already belongs to a contact")
        has_default = c.execute("SELECT 1 FROM identities WHERE is_default").fetchone()
        parent = key_id_of(cert.owner_raw).hex() if cert is not None else None
        c.execute(
            "INSERT INTO identities (key_id, name, public_key, created, mac_key,"
            " card_header, is_default, next_serial, serial_gen, parent_key_id, certificate)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ident.key_id_hex, ident.name, ident.public_raw, ident.created,
             unlocked.mac_key, header.to_json(), 0 if has_default or cert else 1, next_serial,
             serial_gen, parent, cert.to_json() if cert else None),
        )  # fmt: skip

    #: SQL condition: an owner identity's row, not one of its sub-keys'
    _MAIN = "parent_key_id IS NULL"

    def list_identities(self) -> list[Identity]:
        """Your owner identities (sub-keys are listed by :meth:`subkeys`)."""
        rows = self._read(f"SELECT {self._ID_COLS} FROM identities WHERE {self._MAIN}"
                          " ORDER BY created, key_id")
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

    def resolve_identity(self, choice: str | None) -> Identity:
        """The identity a person means: None for the default; else a key ID (``3F2A-91C0``,
        any case, dashes optional) or a name (case-insensitive) of one of your identities."""
        if choice is None or not str(choice).strip():
            return self._require_identity(None)
        text = str(choice).strip()
        with contextlib.suppress(KeyIdError):
            ident = self.get_identity(text)
            if ident is not None:
                return ident
        named = [i for i in self.list_identities() if i.name.casefold() == text.casefold()]
        if len(named) == 1:
            return named[0]
        mine = ", ".join(f"{i.name} ({i.key_id_text})" for i in self.list_identities())
        if named:
            raise LedgerError(f"several identities are named {text!r}; give a key ID: {mine}")
        raise LedgerError(f"no identity of yours is {text!r}"
                          + (f"; yours: {mine}" if mine else "; create one first"))

    def default_identity(self) -> Identity | None:
        """The identity marked default, else the only one, else None."""
        rows = self._read(f"SELECT {self._ID_COLS} FROM identities WHERE is_default")
        if rows:
            return self._identity(rows[0])
        rows = self._read(f"SELECT {self._ID_COLS} FROM identities WHERE {self._MAIN} LIMIT 2")
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
        # Sub-keys are under the owner's passphrase too: re-encrypt them first, so a failure
        # leaves the owner key (the one that proves the passphrase) on the old one.
        for sub in [self.unlock(s.key_id, old) for s in self.subkeys(unlocked.key_id)]:
            write_private_file(self._key_path(sub.identity.key_id_hex), sub.encrypt(new),
                               overwrite=True)
        write_private_file(self._key_path(unlocked.identity.key_id_hex), unlocked.encrypt(new),
                           overwrite=True)  # fmt: skip

    # --- sub-keys (engine.store.subkeys) ---------------------------------------------------------

    def subkeys(self, key_id: KeyIdLike) -> list[Identity]:
        """The certified sub-keys of one of your identities, oldest first."""
        rows = self._read(f"SELECT {self._ID_COLS} FROM identities WHERE parent_key_id = ?"
                          " ORDER BY created, key_id", (key_hex(key_id),))
        return [self._identity(r) for r in rows]

    def parent_of(self, key_id: KeyIdLike) -> Identity | None:
        """The owner identity of one of your sub-keys; None for an owner key (or unknown)."""
        rows = self._read("SELECT parent_key_id FROM identities WHERE key_id = ?",
                          (key_hex(key_id),))
        return self.get_identity(rows[0][0]) if rows and rows[0][0] else None

    def create_subkey(self, key_id: KeyIdLike, passphrase: str) -> Identity:
        """A new sub-key of your identity *key_id*: a fresh Ed25519 key pair (own key ID, own
        65,535 serials), encrypted under the owner's passphrase and certified by the owner's
        key. The owner's exported card carries the certificate from now on."""
        owner = self.unlock(key_id, passphrase)
        if self.parent_of(owner.key_id) is not None:
            raise IdentityError("a sub-key cannot have sub-keys; give its owner identity")
        for _ in range(32):  # a 32-bit key ID may collide with a known one; draw again
            sub = UnlockedIdentity.generate(owner.name)
            if self.lookup_owner(sub.key_id) is None:
                cert = certify(owner, sub, sub.created)
                return self._install(sub, sub.encrypt(passphrase), next_serial=1, cert=cert)
        raise LedgerError("could not draw a key ID that is not already in use")

    def subkey_certs(self, key_id: KeyIdLike) -> list[SubkeyCert]:
        """The certificates of an own identity's sub-keys, each checked again."""
        owner = self.get_identity(key_id)
        if owner is None:
            return []
        rows = self._read("SELECT certificate FROM identities WHERE parent_key_id = ?"
                          " ORDER BY key_id", (owner.key_id_hex,))
        return [parse_cert_json(r[0], owner.public_raw) for r in rows]

    def tagging_key(self, key_id: KeyIdLike, count: int, passphrase: str, *,
                    subkeys: bool = True) -> tuple[UnlockedIdentity, str | None]:
        """The key a job of *count* photos (or serials) tags with, unlocked: the identity's own
        key while it has the serials, else its oldest sub-key that has them (at most 65,535:
        longer batch jobs roll over to the next key mid-way), else (with *subkeys*) a new
        certified sub-key. Returns it with a line for the user when it is not the owner key.
        SerialsExhaustedError when the owner key cannot cover the job and *subkeys* is off."""
        parent = self.parent_of(key_id)  # a sub-key given: its owner's keys are the choice
        owner = self.unlock(parent.key_id if parent is not None else key_id, passphrase)
        if self.serials_left(owner.key_id) >= count:
            return owner, None
        if subkeys:
            count = min(count, MAX_SERIAL)  # a longer job rolls over mid-way (engine.batch)
            for sub in self.subkeys(owner.key_id):
                if self.serials_left(sub.key_id) >= count:
                    return (self.unlock(sub.key_id, passphrase),
                            f"{owner.identity.key_id_text} has too few serials left; tagging "
                            f"with its certified sub-key {sub.key_id_text}")
            sub = self.create_subkey(owner.key_id, passphrase)
            return (self.unlock(sub.key_id, passphrase),
                    f"{owner.identity.key_id_text} has too few serials left; created the "
                    f"certified sub-key {sub.key_id_text} (65535 serials) and tagging with it; "
                    "export your card again so contacts can verify these tags")
        left = self.serials_left(owner.key_id)
        raise SerialsExhaustedError(
            f"this job has {count} photos but the identity has {left} tag serials left (of "
            f"{MAX_SERIAL}; one per face); leave out --no-subkeys to tag with a certified "
            "sub-key, or split the job")

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
            key_path = self._key_path(hex_id)
            if os.path.lexists(key_path):
                # The ledger lost this identity but its key file is still here (a re-created
                # ledger): take the file back when it holds this key, never overwrite it blindly.
                try:
                    load_unlocked(backup.identity, self._read_key_file(backup.identity),
                                  passphrase)
                except WrongPassphraseError:
                    raise KeyStoreError(
                        f"a key file for {backup.identity.key_id_text} already exists at "
                        f"{key_path} under another passphrase (changed after this backup?); "
                        "restore with that passphrase") from None
                except KeyStoreError:  # damaged or another key's: keep it aside, use the backup
                    key_path.replace(key_path.with_name(f"{key_path.name}.damaged"))
                    return self._install(unlocked, backup.key_file, backup.next_serial)
                return self._install(unlocked, backup.key_file, backup.next_serial,
                                     adopt_key_file=True)
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
        hex_id = key_hex(key_id)
        free = self._read("SELECT count(*) FROM free_serials WHERE key_id = ?", (hex_id,))
        return MAX_SERIAL + 1 - self._next_serial(hex_id) + int(free[0][0])

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
            staged = self._stage_serial_mark(c, hex_id, start + count) if count else None
        if staged is not None:
            self._confirm_serial_mark(hex_id, *staged)
        return list(range(start, start + count))
