"""Key backups: one JSON file that carries an identity, its encrypted key file and its serial
counter to another machine.

Kept apart from :mod:`engine.identity` because a backup is a file format of its own (parsed from
untrusted input, validated field by field), while identity holds the key material rules it reuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.errors import KeyStoreError
from engine.identity import (
    PEM_BEGIN,
    Identity,
    KeyId,
    UnlockedIdentity,
    b64decode_strict,
    b64encode,
    is_utc_iso,
    load_unlocked,
    name_problem,
)

BACKUP_FORMAT = "faketagger-key-backup/1"


@dataclass(frozen=True)
class KeyBackup:
    """A parsed key backup: the identity, its encrypted key file and the serial high-water mark."""

    identity: Identity
    key_file: bytes
    next_serial: int

    def unlock(self, passphrase: str) -> UnlockedIdentity:
        return load_unlocked(self.identity, self.key_file, passphrase)


def export_backup(identity: Identity, key_file: bytes, *, next_serial: int = 1) -> bytes:
    """Backup JSON: name, created, public key, key ID, next serial and the encrypted key file as
    written on disk (still protected by the identity's passphrase). ``next_serial`` travels along
    so a restored identity does not hand out serials that were already used in published images."""
    doc = {
        "format": BACKUP_FORMAT,
        "name": identity.name,
        "created": identity.created,
        "public_key": b64encode(identity.public_raw),
        "key_id": identity.key_id.hex(),
        "next_serial": int(next_serial),
        "encrypted_key": key_file.decode("ascii"),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_backup(data: bytes) -> KeyBackup:
    """Validate a backup without decrypting it (KeyStoreError with the reason if unusable)."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))  # a byte-order mark is not part of it
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise KeyStoreError("not a FakeTagger key backup (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
        raise KeyStoreError("not a FakeTagger key backup (wrong format)")
    public_raw = b64decode_strict(doc.get("public_key"))
    if public_raw is None or len(public_raw) != 32:
        raise KeyStoreError("key backup has a bad public key")
    if doc.get("key_id") != KeyId.of(public_raw).hex():
        raise KeyStoreError("key backup's key ID does not match its public key")
    problem = name_problem(doc.get("name"))
    if problem:
        raise KeyStoreError(f"key backup: {problem}")
    if not is_utc_iso(doc.get("created")):
        raise KeyStoreError("key backup has a bad creation time")
    serial = doc.get("next_serial")
    if type(serial) is not int or serial < 1:
        raise KeyStoreError("key backup has a bad next_serial")
    key_text = doc.get("encrypted_key")
    if not isinstance(key_text, str) or PEM_BEGIN not in key_text or not key_text.isascii():
        raise KeyStoreError("key backup does not contain an encrypted private key")
    ident = Identity(doc["name"], public_raw, KeyId.of(public_raw), doc["created"])
    return KeyBackup(ident, key_text.encode("ascii"), serial)


def restore_backup(data: bytes, passphrase: str) -> tuple[UnlockedIdentity, KeyBackup]:
    """Parse and decrypt a backup; proves the passphrase and that the key matches the identity."""
    backup = parse_backup(data)
    return backup.unlock(passphrase), backup
