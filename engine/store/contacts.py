"""Contacts and public cards: importing other people's cards, exporting cards, and telling whose a
key ID is.

:class:`Contacts` is the Ledger's store object for *other* people's keys (``ledger.contacts``):
the ``contacts`` table, with the card rows of your own identities read for export. A card brings
its records along, so it is given :class:`engine.store.history.Records` to store and export them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass

from engine.errors import CardError, LedgerError
from engine.identity import KeyId, fingerprint, utc_now_iso
from engine.store.cards import CardHeader, build_card, parse_card
from engine.store.db import Database
from engine.store.history import Records
from engine.store.schema import KeyIdLike, key_hex
from engine.store.subkeys import SubkeyCert, parse_cert_json


class _KeyView:
    """Readable forms shared by rows that carry ``key_id`` and ``public_raw``."""

    key_id: KeyId
    public_raw: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_raw)


@dataclass(frozen=True)
class Owner(_KeyView):
    """Who a key ID belongs to, as far as this ledger knows."""

    name: str
    public_raw: bytes
    key_id: KeyId
    is_own: bool
    #: For a certified sub-key: the owner's key ID (name is the owner's; public_raw and key_id
    #: are the sub-key's, as its records carry them). None for an owner key.
    parent: KeyId | None = None

    @property
    def owner_key_id(self) -> KeyId:
        """The owner's key ID as people know it (the owner's, for a sub-key)."""
        return self.parent or self.key_id


@dataclass(frozen=True)
class Contact(_KeyView):
    """An imported public card."""

    name: str
    public_raw: bytes
    key_id: KeyId
    created: str
    imported: str
    updated: str
    record_count: int


class Contacts:
    """Imported public cards, and whose a key ID is (own identities first, then contacts)."""

    def __init__(self, db: Database, records: Records) -> None:
        self._db = db
        self._records = records

    def import_card(self, data: bytes) -> Contact:
        """Validate and store a public card and its records, all or nothing. Re-importing a card of
        a known contact updates the name and adds new records (records are never dropped)."""
        card = parse_card(data)
        card_hex, now = card.header.key_id, utc_now_iso()
        with self._db.write() as c:
            own = c.execute("SELECT public_key FROM identities WHERE key_id = ?", (card_hex,))
            own_row = own.fetchone()
            if own_row is not None:
                if bytes(own_row[0]) == card.public_raw:
                    raise CardError("this is your own card")
                raise CardError(f"card's key ID {card.key_id} collides with your own key")
            known = c.execute("SELECT public_key, parent_key_id FROM contacts WHERE key_id = ?",
                              (card_hex,))
            known_row = known.fetchone()
            if known_row is not None and (bytes(known_row[0]) != card.public_raw
                                          or known_row[1] is not None):
                raise CardError(
                    f"another contact already uses key ID {card.key_id}; remove it first"
                )
            for cert in card.subkeys:
                self._check_subkey_free(c, card_hex, cert)
            c.execute(
                "INSERT INTO contacts (key_id, name, public_key, created, card_header, imported,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET"
                " name = excluded.name, created = excluded.created,"
                " card_header = excluded.card_header, updated = excluded.updated",
                (
                    card_hex,
                    card.name,
                    card.public_raw,
                    card.created,
                    card.header.to_json(),
                    now,
                    now,
                ),
            )
            c.execute("UPDATE contacts SET name = ?, updated = ? WHERE parent_key_id = ?",
                      (card.name, now, card_hex))
            for cert in card.subkeys:  # certified sub-keys: rows under the owner's
                c.execute(
                    "INSERT INTO contacts (key_id, name, public_key, created, card_header,"
                    " imported, updated, parent_key_id, certificate)"
                    " VALUES (?, ?, ?, ?, '', ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
                    (cert.subkey_key_id, card.name, cert.subkey_raw, cert.created, now, now,
                     card_hex, cert.to_json()))
            for rec in card.records:
                self._records.insert(c, rec, False, "", "")
            for hex_id, chain in card.chains:  # checked against that key by parse_card
                c.execute("UPDATE contacts SET c2pa_chain = ? WHERE key_id = ?",
                          (chain.pem, hex_id))
        contact = self.get(card_hex)
        assert contact is not None
        return contact

    @staticmethod
    def _check_subkey_free(c: sqlite3.Connection, card_hex: str, cert: SubkeyCert) -> None:
        """A card's sub-key may not take a key ID that is yours or another contact's."""
        hex_id = cert.subkey_key_id
        if c.execute("SELECT 1 FROM identities WHERE key_id = ?", (hex_id,)).fetchone():
            raise CardError(f"card's sub-key {KeyId.from_hex(hex_id)} collides with your own key")
        row = c.execute("SELECT public_key, parent_key_id FROM contacts WHERE key_id = ?",
                        (hex_id,)).fetchone()
        if row is not None and (bytes(row[0]) != cert.subkey_raw or row[1] != card_hex):
            raise CardError(f"another contact already uses key ID {KeyId.from_hex(hex_id)} "
                            "(a sub-key of this card); remove it first")

    _CONTACT_SQL = (
        "SELECT c.name, c.public_key, c.key_id, c.created, c.imported, c.updated,"
        " (SELECT count(*) FROM records r WHERE r.contact_key_id = c.key_id OR r.contact_key_id"
        " IN (SELECT s.key_id FROM contacts s WHERE s.parent_key_id = c.key_id))"
        " FROM contacts c WHERE c.parent_key_id IS NULL"
    )

    @staticmethod
    def _contact(row: tuple) -> Contact:
        name, pub, hex_id, created, imported, updated, count = row
        return Contact(name, bytes(pub), KeyId.from_hex(hex_id), created, imported, updated, count)

    def all(self) -> list[Contact]:
        """Every contact (owners only: their sub-keys are rows under them), by name."""
        return [self._contact(r) for r in self._db.read(f"{self._CONTACT_SQL} ORDER BY c.name")]

    def get(self, key_id: KeyIdLike) -> Contact | None:
        """The contact whose owner key is *key_id*; None for a sub-key's or an unknown key ID."""
        rows = self._db.read(f"{self._CONTACT_SQL} AND c.key_id = ?", (key_hex(key_id),))
        return self._contact(rows[0]) if rows else None

    def remove(self, key_id: KeyIdLike) -> bool:
        """Forget a contact and its records; False if there was no such contact."""
        hex_id = key_hex(key_id)
        with self._db.write() as c:
            deleted = c.execute("DELETE FROM contacts WHERE key_id = ? AND parent_key_id IS NULL",
                                (hex_id,))
            if deleted.rowcount:  # its sub-keys (and, by cascade, their records) go with it
                c.execute("DELETE FROM contacts WHERE parent_key_id = ?", (hex_id,))
            return deleted.rowcount > 0

    def export_card(
        self, key_id: KeyIdLike, include_records: bool = True,
        serials: Collection[int] | None = None,
    ) -> bytes:
        """Card of an own identity (or re-share of a contact's), from the stored self-signed
        header, so no passphrase is needed. With *serials*, only the records of those serials go
        in (the History tab's "export selected records"); build_card re-checks every signature."""
        hex_id = key_hex(key_id)
        rows = self._db.read(
            "SELECT card_header FROM identities WHERE key_id = ?"
            " UNION ALL SELECT card_header FROM contacts WHERE key_id = ?"
            " AND parent_key_id IS NULL",
            (hex_id, hex_id),
        )
        if not rows:
            raise LedgerError(f"no identity or contact with key ID {KeyId.from_hex(hex_id)}")
        header = CardHeader.from_json(rows[0][0])
        certs = self._subkey_certs(hex_id, header.public_raw)
        keys = (hex_id, *(c.subkey_key_id for c in certs))
        records = [r for k in keys for r in self._records.of_key(k)] if include_records else []
        if serials is not None:  # (the History tab's choice: the owner key's own serials)
            records = [r for r in records if r.serial in serials and r.key_id == hex_id]
        chains = self._read_chains(list(keys))
        return build_card(header, records, certs, chains)

    def _read_chains(self, hex_ids: list[str]) -> dict[str, str]:
        """Stored C2PA chains (PEM) of these own or contact key IDs, for a card."""
        out = {}
        for key in hex_ids:
            rows = self._db.read("SELECT c2pa_chain FROM identities WHERE key_id = ? UNION ALL"
                                 " SELECT c2pa_chain FROM contacts WHERE key_id = ?", (key, key))
            if rows and rows[0][0]:
                out[key] = rows[0][0]
        return out

    def _subkey_certs(self, hex_id: str, owner_raw: bytes) -> list[SubkeyCert]:
        """The stored certificates of the sub-keys of an own identity or contact."""
        rows = self._db.read("SELECT certificate FROM identities WHERE parent_key_id = ?"
                             " UNION ALL SELECT certificate FROM contacts WHERE parent_key_id = ?",
                             (hex_id, hex_id))
        return [parse_cert_json(r[0], owner_raw) for r in rows]

    def lookup_owner(self, key_id: KeyIdLike) -> Owner | None:
        """Name and key for a key ID found in an image: own identities first, then contacts."""
        hex_id = key_hex(key_id)
        for table, is_own in (("identities", True), ("contacts", False)):
            rows = self._db.read(f"SELECT name, public_key, parent_key_id, certificate FROM {table}"
                                 " WHERE key_id = ?", (hex_id,))
            if not rows:
                continue
            name, public, parent_hex, cert_json = rows[0]
            if parent_hex is None:
                return Owner(name, bytes(public), KeyId.from_hex(hex_id), is_own)
            # A sub-key: it is the owner's only while the owner's certificate for it checks.
            parent = self._db.read(f"SELECT name, public_key FROM {table} WHERE key_id = ?",
                                   (parent_hex,))
            try:
                cert = parse_cert_json(cert_json or "", bytes(parent[0][1])) if parent else None
            except CardError:
                cert = None
            if cert is None or cert.subkey_raw != bytes(public) \
                    or cert.subkey_key_id != hex_id:
                return None  # uncertified or badly certified: never anyone's
            return Owner(parent[0][0], bytes(public), KeyId.from_hex(hex_id), is_own,
                         KeyId.from_hex(parent_hex))
        return None
