"""Own identities: their key files, ledger rows, the default, sub-keys, and the key a job tags with.

:class:`Identities` is the Ledger's store object for them (``ledger.identities``). It is given
the key files (:class:`KeyFiles`), the serials (a new row starts after the key's high-water mark;
the tagging key is the one with serials left) and the contacts (a new key ID must not be a
contact's), and nothing else.

Each identity row stores the HKDF-derived tag-MAC key so verification can recognise the user's own
tags without asking for the passphrase. That is acceptable because HKDF is one-way (the MAC key
reveals nothing about the Ed25519 private key) and the 8-bit in-image MAC is only a filter against
random matches: ownership is proven by Ed25519-signed records, which the MAC key cannot forge.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from engine.atomic import remove_if_same
from engine.errors import (
    IdentityError,
    KeyIdError,
    KeyStoreError,
    LedgerError,
    SerialsExhaustedError,
)
from engine.identity import (
    Identity,
    KeyId,
    UnlockedIdentity,
    check_passphrase,
    load_unlocked,
    name_problem,
    write_private_file,
)
from engine.passphrase import require_strong
from engine.store.cards import CardHeader, sign_card_header
from engine.store.contacts import Contacts
from engine.store.db import Database
from engine.store.records import MAX_SERIAL
from engine.store.schema import KeyIdLike, key_hex
from engine.store.serials import Serials
from engine.store.subkeys import SubkeyCert, certify, parse_cert_json

_ID_COLS = "name, public_key, key_id, created"
#: SQL condition: an owner identity's row, not one of its sub-keys'
_MAIN = "parent_key_id IS NULL"


def _identity(row: tuple) -> Identity:
    return Identity(row[0], bytes(row[1]), KeyId.from_hex(row[2]), row[3])


class KeyFiles:
    """The encrypted key files (``<key id>.pem``, 0600) in the keys folder."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir

    def path(self, key_id: KeyId) -> Path:
        return self.keys_dir / f"{key_id.hex()}.pem"

    def read(self, ident: Identity) -> bytes:
        """The identity's encrypted key file; KeyStoreError (not a bare OSError) when it is
        missing or unreadable, so unlock and backup export report it the same way."""
        key_path = self.path(ident.key_id)
        try:
            return key_path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"key file of {ident.key_id} is missing: {key_path}") from None
        except OSError as exc:
            raise KeyStoreError(
                f"key file of {ident.key_id} cannot be read: {key_path} ({exc.strerror})"
            ) from None


class Identities:
    """Your identities and their certified sub-keys."""

    def __init__(self, db: Database, keys: KeyFiles, serials: Serials,
                 contacts: Contacts) -> None:
        self._db = db
        self._keys = keys
        self._serials = serials
        self._contacts = contacts

    def create(self, name: str, passphrase: str) -> Identity:
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
            if self._contacts.lookup_owner(unlocked.key_id) is None:
                return self.install(unlocked, unlocked.encrypt(passphrase), next_serial=1)
        raise LedgerError("could not draw a key ID that is not already in use")

    def _check_name_free(self, name: str) -> None:
        taken = self._db.read("SELECT key_id FROM identities WHERE lower(name) = lower(?)"
                              f" AND {_MAIN}", (name,))
        if taken:
            raise IdentityError(f"you already have an identity named {name!r} "
                                f"({KeyId.from_hex(taken[0][0])}); choose another name")

    def install(self, unlocked: UnlockedIdentity, key_file: bytes, next_serial: int,
                *, adopt_key_file: bool = False, cert: SubkeyCert | None = None) -> Identity:
        """Store a new identity row (and its key file, unless *adopt_key_file*: the matching file
        is already there, e.g. after the ledger was lost). The serial counter starts at the
        highest of *next_serial* and the identity's high-water mark on this machine."""
        ident = unlocked.identity
        header = sign_card_header(unlocked)
        key_path = self._keys.path(ident.key_id)
        mark = self._serials.mark(ident.key_id.hex())
        if mark is not None:  # the new row follows the mark's ledger state: they agree
            next_serial = max(next_serial, mark.next)
        gen = mark.gen if mark is not None else None
        if adopt_key_file:
            with self._db.write() as c:
                self._insert(c, unlocked, header, next_serial, gen, cert)
            return ident
        write_private_file(key_path, key_file)  # refuses, race-free, if the name is taken
        ours = os.stat(key_path)
        try:
            with self._db.write() as c:
                self._insert(c, unlocked, header, next_serial, gen, cert)
        except BaseException:
            remove_if_same(key_path, ours)  # only the file this call created
            raise
        return ident

    @staticmethod
    def _insert(c: sqlite3.Connection, unlocked: UnlockedIdentity, header: CardHeader,
                next_serial: int, serial_gen: str | None = None,
                cert: SubkeyCert | None = None) -> None:
        ident = unlocked.identity
        if c.execute("SELECT 1 FROM contacts WHERE key_id = ?", (ident.key_id.hex(),)).fetchone():
            raise LedgerError(f"key ID {ident.key_id} already belongs to a contact")
        has_default = c.execute("SELECT 1 FROM identities WHERE is_default").fetchone()
        parent = KeyId.of(cert.owner_raw).hex() if cert is not None else None
        c.execute(
            "INSERT INTO identities (key_id, name, public_key, created, mac_key,"
            " card_header, is_default, next_serial, serial_gen, parent_key_id, certificate)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ident.key_id.hex(), ident.name, ident.public_raw, ident.created,
             unlocked.mac_key, header.to_json(), 0 if has_default or cert else 1, next_serial,
             serial_gen, parent, cert.to_json() if cert else None),
        )  # fmt: skip

    def all(self) -> list[Identity]:
        """Your owner identities (sub-keys are listed by :meth:`subkeys`)."""
        rows = self._db.read(f"SELECT {_ID_COLS} FROM identities WHERE {_MAIN}"
                             " ORDER BY created, key_id")
        return [_identity(r) for r in rows]

    def get(self, key_id: KeyIdLike) -> Identity | None:
        """An own identity or sub-key by key ID; None when it is not yours."""
        rows = self._db.read(
            f"SELECT {_ID_COLS} FROM identities WHERE key_id = ?", (key_hex(key_id),)
        )
        return _identity(rows[0]) if rows else None

    def require(self, key_id: KeyIdLike | None) -> Identity:
        """The identity *key_id* (the default one for None); LedgerError saying what to do when
        there is none."""
        if key_id is None:
            ident = self.default()
            if ident is None:
                several = bool(self.all())
                raise LedgerError(
                    "several identities and none is the default; choose one"
                    if several
                    else "no identity yet; create one first"
                )
            return ident
        ident = self.get(key_id)
        if ident is None:
            raise LedgerError(f"no identity of yours has key ID {KeyId.coerce(key_id)}")
        return ident

    def resolve(self, choice: str | None) -> Identity:
        """The identity a person means: None for the default; else a key ID (``3F2A-91C0``,
        any case, dashes optional) or a name (case-insensitive) of one of your identities."""
        if choice is None or not str(choice).strip():
            return self.require(None)
        text = str(choice).strip()
        with contextlib.suppress(KeyIdError):
            ident = self.get(text)
            if ident is not None:
                return ident
        named = [i for i in self.all() if i.name.casefold() == text.casefold()]
        if len(named) == 1:
            return named[0]
        mine = ", ".join(f"{i.name} ({i.key_id})" for i in self.all())
        if named:
            raise LedgerError(f"several identities are named {text!r}; give a key ID: {mine}")
        raise LedgerError(f"no identity of yours is {text!r}"
                          + (f"; yours: {mine}" if mine else "; create one first"))

    def default(self) -> Identity | None:
        """The identity marked default, else the only one, else None."""
        rows = self._db.read(f"SELECT {_ID_COLS} FROM identities WHERE is_default")
        if rows:
            return _identity(rows[0])
        rows = self._db.read(f"SELECT {_ID_COLS} FROM identities WHERE {_MAIN} LIMIT 2")
        return _identity(rows[0]) if len(rows) == 1 else None

    def set_default(self, key_id: KeyIdLike) -> None:
        ident = self.require(key_id)
        with self._db.write() as c:
            c.execute("UPDATE identities SET is_default = (key_id = ?)", (ident.key_id.hex(),))

    def unlock(self, key_id: KeyIdLike | None, passphrase: str) -> UnlockedIdentity:
        """Decrypt the identity's key (default identity if key_id is None)."""
        ident = self.require(key_id)
        return load_unlocked(ident, self._keys.read(ident), passphrase)

    def change_passphrase(self, key_id: KeyIdLike, old: str, new: str) -> None:
        """Re-encrypt the key file under *new*; the old file is replaced atomically."""
        check_passphrase(new)
        unlocked = self.unlock(key_id, old)
        # Sub-keys are under the owner's passphrase too: re-encrypt them first, so a failure
        # leaves the owner key (the one that proves the passphrase) on the old one.
        for sub in [self.unlock(s.key_id, old) for s in self.subkeys(unlocked.key_id)]:
            write_private_file(self._keys.path(sub.key_id), sub.encrypt(new),
                               overwrite=True)
        write_private_file(self._keys.path(unlocked.key_id), unlocked.encrypt(new),
                           overwrite=True)  # fmt: skip

    def own_mac_key(self, key_id: KeyIdLike) -> bytes | None:
        """The tag-MAC key of an own key (None when it is not yours): no passphrase needed."""
        rows = self._db.read("SELECT mac_key FROM identities WHERE key_id = ?",
                             (key_hex(key_id),))
        return bytes(rows[0][0]) if rows else None

    # --- sub-keys (engine.store.subkeys) ---------------------------------------------------------

    def subkeys(self, key_id: KeyIdLike) -> list[Identity]:
        """The certified sub-keys of one of your identities, oldest first."""
        rows = self._db.read(f"SELECT {_ID_COLS} FROM identities WHERE parent_key_id = ?"
                             " ORDER BY created, key_id", (key_hex(key_id),))
        return [_identity(r) for r in rows]

    def parent_of(self, key_id: KeyIdLike) -> Identity | None:
        """The owner identity of one of your sub-keys; None for an owner key (or unknown)."""
        rows = self._db.read("SELECT parent_key_id FROM identities WHERE key_id = ?",
                             (key_hex(key_id),))
        return self.get(rows[0][0]) if rows and rows[0][0] else None

    def create_subkey(self, key_id: KeyIdLike, passphrase: str) -> Identity:
        """A new sub-key of your identity *key_id*: a fresh Ed25519 key pair (own key ID, own
        65,535 serials), encrypted under the owner's passphrase and certified by the owner's
        key. The owner's exported card carries the certificate from now on."""
        owner = self.unlock(key_id, passphrase)
        if self.parent_of(owner.key_id) is not None:
            raise IdentityError("a sub-key cannot have sub-keys; give its owner identity")
        for _ in range(32):  # a 32-bit key ID may collide with a known one; draw again
            sub = UnlockedIdentity.generate(owner.name)
            if self._contacts.lookup_owner(sub.key_id) is None:
                cert = certify(owner, sub, sub.created)
                return self.install(sub, sub.encrypt(passphrase), next_serial=1, cert=cert)
        raise LedgerError("could not draw a key ID that is not already in use")

    def subkey_certs(self, key_id: KeyIdLike) -> list[SubkeyCert]:
        """The certificates of an own identity's sub-keys, each checked again."""
        owner = self.get(key_id)
        if owner is None:
            return []
        rows = self._db.read("SELECT certificate FROM identities WHERE parent_key_id = ?"
                             " ORDER BY key_id", (owner.key_id.hex(),))
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
        if self._serials.left(owner.key_id) >= count:
            return owner, None
        if subkeys:
            count = min(count, MAX_SERIAL)  # a longer job rolls over mid-way (engine.run)
            for sub in self.subkeys(owner.key_id):
                if self._serials.left(sub.key_id) >= count:
                    return (self.unlock(sub.key_id, passphrase),
                            f"{owner.key_id} has too few serials left; tagging "
                            f"with its certified sub-key {sub.key_id}")
            sub = self.create_subkey(owner.key_id, passphrase)
            return (self.unlock(sub.key_id, passphrase),
                    f"{owner.key_id} has too few serials left; created the "
                    f"certified sub-key {sub.key_id} (65535 serials) and tagging with it; "
                    "export your card again so contacts can verify these tags")
        left = self._serials.left(owner.key_id)
        raise SerialsExhaustedError(
            f"this job has {count} photos but the identity has {left} tag serials left (of "
            f"{MAX_SERIAL}; one per face); leave out --no-subkeys to tag with a certified "
            "sub-key, or split the job")
