"""Tag records and tagging history: "what was tagged, by whom, and from which photo".

:class:`Records` is the Ledger's store object for the ``records`` table (``ledger.records``).
Queries the GUI needs live here, not in app/, so the CLI and batch jobs get the same answers.
Other stores that write records inside their own transaction (card import, tag jobs) call
:meth:`Records.insert` with their connection, so one row format serves all of them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from engine.errors import LedgerError, RecordError
from engine.identity import KeyId, b64decode_strict, utc_now_iso
from engine.store.db import Database
from engine.store.records import TagRecord, verify_record
from engine.store.schema import DAMAGED_HINT, KeyIdLike, key_hex
from engine.store.serials import Serials


@dataclass(frozen=True)
class HistoryRow:
    """One tagged output file (all faces tagged in it) for the GUI history table."""

    created: str
    original_path: str
    output_path: str
    file_sha256: str
    serials: tuple[int, ...]
    key_id: KeyId
    identity_name: str
    thumbnail: bytes  # JPEG of the first tagged face


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Records:
    """Signed tag records, own and contacts'. Needs *serials* to refuse an own record whose
    serial was never handed out."""

    def __init__(self, db: Database, serials: Serials) -> None:
        self._db = db
        self._serials = serials

    def add(
        self, recs: list[TagRecord], *, original_path: str, output_path: str, own: bool = True
    ) -> None:
        """Store the signed records of one tagged file (idempotent) in ONE transaction: all of
        them or none, so a failure never leaves a photo half-registered. Own records must use an
        allocated serial of one of your identities; others must come from an imported contact."""
        for rec in recs:
            if not verify_record(rec):
                raise RecordError("tag record signature does not verify; not stored")
        table = "identities" if own else "contacts"
        with self._db.write() as c:
            for rec in recs:
                row = c.execute(f"SELECT public_key FROM {table} WHERE key_id = ?", (rec.key_id,))
                found = row.fetchone()
                if found is None or bytes(found[0]) != rec.owner_public_raw:
                    raise LedgerError(
                        "record is not from one of your identities"
                        if own
                        else "record's owner is not a contact; import their card first"
                    )
                if own and rec.serial >= self._serials.next_serial(rec.key_id):
                    raise LedgerError(
                        f"serial {rec.serial} was never allocated for {KeyId.from_hex(rec.key_id)}"
                    )
                self.insert(c, rec, own, original_path, output_path)

    @staticmethod
    def insert(
        c: sqlite3.Connection, rec: TagRecord, own: bool, orig: str, out: str,
        state: str = "done", token: str | None = None,
    ) -> None:
        """One record row, inside the caller's transaction *c* (card import, tag jobs); a record
        already stored (same signature) is left as it is. ``pending`` ones (a tag job's,
        engine.store.tagging) are invisible to every query until the job finishes."""
        c.execute(
            "INSERT INTO records (key_id, serial, identity_key_id, contact_key_id, created,"
            " file_sha256, original_path, output_path, signature, record_json, added, state,"
            " token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (signature) DO NOTHING",
            (rec.key_id, rec.serial, rec.key_id if own else None, None if own else rec.key_id,
             rec.created, rec.file_sha256, orig, out, rec.signature,
             json.dumps(rec.to_dict(), sort_keys=True), utc_now_iso(), state, token),
        )  # fmt: skip

    def _records(self, where: str, args: tuple[object, ...]) -> list[TagRecord]:
        rows = self._db.read(
            f"SELECT record_json FROM records WHERE state = 'done' AND ({where})"
            " ORDER BY identity_key_id IS NULL, serial, id",
            args,
        )
        try:
            return [TagRecord.from_dict(json.loads(r[0])) for r in rows]
        except (ValueError, RecordError) as exc:  # flipped bytes inside a stored record
            raise LedgerError(f"ledger {self._db.path} holds a damaged tag record ({exc}); "
                              f"{DAMAGED_HINT}") from None

    def for_serial(self, key_id: KeyIdLike, serial: int) -> list[TagRecord]:
        """Every stored record (own first, then contacts') for this key ID and serial. Callers
        deciding a verdict should still run verify_record on them."""
        return self._records("key_id = ? AND serial = ?", (key_hex(key_id), int(serial)))

    def known_payloads(self) -> tuple[str, ...]:
        """Every payload (hex) with a stored record, own or a contact's: the candidates for
        record-informed decoding (engine.model.match). Signatures are checked later, by the
        verdict."""
        rows = self._db.read("SELECT DISTINCT json_extract(record_json, '$.payload') FROM records"
                             " WHERE state = 'done'")
        return tuple(sorted(r[0] for r in rows if r[0]))

    def of_key(self, key_id: KeyIdLike) -> list[TagRecord]:
        """All records of one key (for card export), ordered by serial."""
        return self._records("key_id = ?", (key_hex(key_id),))

    def history(self, search: str = "", limit: int = 500) -> list[HistoryRow]:
        """Own tagging history, newest first, one row per output file. *search* matches paths,
        identity name or key ID (case-insensitive substring)."""
        term = search.strip()
        key_term = term.replace("-", "").replace(" ", "").lower()
        # One query: the thumbnail comes from the group's first record, joined in by id, and only
        # its face_thumb field is pulled out of the stored JSON.
        rows = self._db.read(
            "SELECT g.created, g.orig, g.out, g.sha, g.key_id, g.serials, g.name,"
            " json_extract(f.record_json, '$.face_thumb') FROM ("
            " SELECT min(r.id) AS first_id, min(r.created) AS created, r.original_path AS orig,"
            " r.output_path AS out, r.file_sha256 AS sha, r.key_id, group_concat(r.serial) AS"
            " serials, i.name FROM records r JOIN identities i ON i.key_id = r.identity_key_id"
            " WHERE r.state = 'done' AND (? = '' OR r.original_path LIKE ? ESCAPE '\\'"
            " OR r.output_path LIKE ? ESCAPE '\\'"
            " OR i.name LIKE ? ESCAPE '\\' OR (? <> '' AND r.key_id LIKE ? ESCAPE '\\'))"
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
                HistoryRow(created, orig, out, sha, nums, KeyId.from_hex(hex_id), name, thumb)
            )
        return result

    def original_path(self, key_id: KeyIdLike, serial: int, file_sha256: str) -> str | None:
        """The photo an own tag was made from: the original path of the newest own record with
        this key ID, serial and tagged-file hash (None when the ledger has no such record)."""
        rows = self._db.read(
            "SELECT original_path FROM records WHERE identity_key_id IS NOT NULL AND key_id = ?"
            " AND state = 'done'"
            " AND serial = ? AND file_sha256 = ? ORDER BY created DESC, id DESC LIMIT 1",
            (key_hex(key_id), int(serial), file_sha256),
        )
        return rows[0][0] if rows else None
