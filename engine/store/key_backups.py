"""Key backups in and out of the ledger: export an identity, restore one (here or elsewhere).

:class:`KeyBackups` is the Ledger's store object for them (``ledger.key_backups``); the file
format is :mod:`engine.store.backup`'s. Restoring is the delicate part: the identity may already
be here, or its row lost while its key file survived (a re-created ledger), and neither a key file
nor a serial counter may ever go backwards. Automatic backups of the whole ledger file are another
matter (:mod:`engine.store.ledger_backups`, taken by :class:`engine.store.db.Database`).
"""

from __future__ import annotations

import os

from engine.errors import KeyStoreError, PassphraseError, WrongPassphraseError
from engine.identity import Identity, load_unlocked, write_private_file
from engine.store.backup import export_backup, restore_backup
from engine.store.db import Database
from engine.store.identities import Identities, KeyFiles
from engine.store.schema import KeyIdLike
from engine.store.serials import Serials


class KeyBackups:
    """Export and restore of identities (key file kept encrypted, serial counter carried)."""

    def __init__(self, db: Database, keys: KeyFiles, identities: Identities,
                 serials: Serials) -> None:
        self._db = db
        self._keys = keys
        self._identities = identities
        self._serials = serials

    def export(self, key_id: KeyIdLike) -> bytes:
        """Backup JSON of an identity (its key stays encrypted: no passphrase needed)."""
        ident = self._identities.require(key_id)
        key_file = self._keys.read(ident)
        next_serial = self._serials.next_serial(ident.key_id.hex())
        return export_backup(ident, key_file, next_serial=next_serial)

    def restore(self, data: bytes, passphrase: str) -> Identity:
        """Restore an identity from a backup (passphrase proves it decrypts). If the identity is
        already here, its key file is put back when missing or unreadable, and the serial counter
        moves forward, never back."""
        unlocked, backup = restore_backup(data, passphrase)
        hex_id = backup.identity.key_id.hex()
        with self._db.lock:
            existing = self._identities.get(hex_id)
            if existing is not None:
                if existing.public_raw != backup.identity.public_raw:
                    raise KeyStoreError(f"key ID {existing.key_id} is used by a different key")
                self._repair_key_file(existing, backup.key_file, passphrase)
                with self._db.write() as c:
                    c.execute(
                        "UPDATE identities SET next_serial = max(next_serial, ?) WHERE key_id = ?",
                        (backup.next_serial, hex_id),
                    )
                return existing
            key_path = self._keys.path(backup.identity.key_id)
            if os.path.lexists(key_path):
                # The ledger lost this identity but its key file is still here (a re-created
                # ledger): take the file back when it holds this key, never overwrite it blindly.
                try:
                    load_unlocked(backup.identity, self._keys.read(backup.identity), passphrase)
                except WrongPassphraseError:
                    raise KeyStoreError(
                        f"a key file for {backup.identity.key_id} already exists at "
                        f"{key_path} under another passphrase (changed after this backup?); "
                        "restore with that passphrase") from None
                except KeyStoreError:  # damaged or another key's: keep it aside, use the backup
                    key_path.replace(key_path.with_name(f"{key_path.name}.damaged"))
                    return self._identities.install(unlocked, backup.key_file,
                                                    backup.next_serial)
                return self._identities.install(unlocked, backup.key_file, backup.next_serial,
                                                adopt_key_file=True)
            return self._identities.install(unlocked, backup.key_file, backup.next_serial)

    def _repair_key_file(self, ident: Identity, key_file: bytes, passphrase: str) -> None:
        """Write the backup's key file back if the stored one is missing, unreadable or damaged.
        One that is fine but under another passphrase (changed after the backup) is kept."""
        key_path = self._keys.path(ident.key_id)
        try:
            load_unlocked(ident, self._keys.read(ident), passphrase)
        except PassphraseError:
            return  # readable and ours, just a newer passphrase: leave it alone
        except KeyStoreError:  # missing, unreadable, damaged or another key's
            write_private_file(key_path, key_file, overwrite=os.path.lexists(key_path))
