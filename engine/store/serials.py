"""Tag serials: each own key's counter, its free list, and the high-water mark beside its key file.

Beside each key file, ``<key id>.serial`` records the key's next serial and the ledger generation
it follows (:mod:`engine.store.marks` holds the rules): a ledger restored from a backup (or rebuilt
from a key backup) continues after every serial ever handed out on this machine, while a kill
between writing the mark and the commit burns nothing. Serial allocation (here and in
:mod:`engine.store.tagging`) stages a pending mark as the last step of its transaction and confirms
it after the commit; opening the ledger reconciles counters with marks.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from engine.errors import LedgerError, SerialsExhaustedError
from engine.identity import KeyId, write_private_file
from engine.store import marks
from engine.store.db import Database
from engine.store.records import MAX_SERIAL
from engine.store.schema import KeyIdLike, key_hex

log = logging.getLogger(__name__)

ReadMark = Callable[[str], marks.Mark | None]
WriteMark = Callable[[str, bytes], None]


class MarkFiles:
    """The ``<key id>.serial`` files in the keys folder."""

    def __init__(self, keys_dir: Path) -> None:
        self.keys_dir = keys_dir

    def path(self, hex_id: str) -> Path:
        return self.keys_dir / f"{hex_id}.serial"

    def read(self, hex_id: str) -> marks.Mark | None:
        """The key's mark; None when there is none or it cannot be read (then it is ignored)."""
        try:
            return marks.parse(self.path(hex_id).read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError):
            return None

    def write(self, hex_id: str, data: bytes) -> None:
        try:
            write_private_file(self.path(hex_id), data, overwrite=True)
        except OSError as exc:
            raise LedgerError(f"cannot record the serial counter in {self.keys_dir} "
                              f"({exc.strerror})") from None


class Serials:
    """Counters, free lists and marks of own keys. *read_mark* and *write_mark* are the mark
    files' (:class:`MarkFiles`), given as functions so the Ledger can route writes through one
    seam of its own."""

    def __init__(self, db: Database, read_mark: ReadMark, write_mark: WriteMark) -> None:
        self._db = db
        self._read_mark = read_mark
        self._write_mark = write_mark

    def mark(self, hex_id: str) -> marks.Mark | None:
        """The key's high-water mark on this machine (a new identity row starts after it)."""
        return self._read_mark(hex_id)

    def next_serial(self, hex_id: str) -> int:
        """The key's counter: the next serial never handed out (free ones aside)."""
        rows = self._db.read("SELECT next_serial FROM identities WHERE key_id = ?", (hex_id,))
        if not rows:
            raise LedgerError(f"no identity of yours has key ID {KeyId.from_hex(hex_id)}")
        return int(rows[0][0])

    def left(self, key_id: KeyIdLike) -> int:
        """How many serials the key can still hand out: the counter's rest plus freed ones."""
        hex_id = key_hex(key_id)
        free = self._db.read("SELECT count(*) FROM free_serials WHERE key_id = ?", (hex_id,))
        return MAX_SERIAL + 1 - self.next_serial(hex_id) + int(free[0][0])

    def allocate(self, key_id: KeyIdLike, count: int) -> list[int]:
        """Reserve *count* fresh serials (1, 2, ... per identity). Atomic across threads and
        processes; a serial is never handed out twice, even if the caller later fails."""
        if count < 0:
            raise ValueError("count must be >= 0")
        hex_id = key_hex(key_id)
        with self._db.write() as c:
            row = c.execute("SELECT next_serial FROM identities WHERE key_id = ?", (hex_id,))
            first = row.fetchone()
            if first is None:
                raise LedgerError(f"no identity of yours has key ID {KeyId.from_hex(hex_id)}")
            start = int(first[0])
            if start + count - 1 > MAX_SERIAL:
                raise SerialsExhaustedError(
                    f"identity {KeyId.from_hex(hex_id)} has {MAX_SERIAL + 1 - start} tag serials"
                    f" left, {count} needed; create a new identity to keep tagging"
                )
            c.execute(
                "UPDATE identities SET next_serial = ? WHERE key_id = ?", (start + count, hex_id)
            )
            staged = self.stage_mark(c, hex_id, start + count) if count else None
        if staged is not None:
            self.confirm_mark(hex_id, *staged)
        return list(range(start, start + count))

    def stage_mark(self, c: sqlite3.Connection, hex_id: str,
                   counter_after: int) -> tuple[str, int]:
        """Inside a transaction that hands out serials, last before its commit: a new
        generation goes into the ledger and a pending mark onto disk. Returns (generation, next
        serial) for :meth:`confirm_mark` after the commit."""
        row = c.execute("SELECT serial_gen FROM identities WHERE key_id = ?", (hex_id,))
        prev = row.fetchone()[0]
        mark = self._read_mark(hex_id)
        gen = marks.new_gen()
        value = marks.next_value(mark, prev, counter_after)
        c.execute("UPDATE identities SET serial_gen = ? WHERE key_id = ?", (gen, hex_id))
        self._write_mark(hex_id, marks.pending_text(value, gen, prev))
        return gen, value

    def confirm_mark(self, hex_id: str, gen: str, value: int) -> None:
        """After the commit, before any of its serials is used: the mark becomes confirmed (so a
        ledger later put back to the state before that transaction is known to be older). Under
        the write lock, and only while the ledger still holds *gen* (a later transaction's mark
        supersedes it)."""
        with self._db.write() as c:
            row = c.execute("SELECT serial_gen FROM identities WHERE key_id = ?", (hex_id,))
            found = row.fetchone()
            if found is not None and found[0] == gen:
                self._write_mark(hex_id, marks.confirmed_text(value, gen))

    def reconcile(self) -> None:
        """On open: bring each identity's counter in line with its mark (engine.store.marks)."""
        query = "SELECT key_id, next_serial, serial_gen FROM identities"
        rows = self._db.read(query)
        if not any(marks.reconcile(self._read_mark(h), int(n), g) for h, n, g in rows):
            return
        with self._db.write() as c:  # again under the write lock: another process may allocate
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
                                self._db.path, KeyId.from_hex(hex_id), fix.raise_to, dropped)
                if fix.adopt_gen is not None:
                    c.execute("UPDATE identities SET serial_gen = ? WHERE key_id = ?",
                              (fix.adopt_gen, hex_id))
