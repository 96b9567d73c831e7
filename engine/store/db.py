"""The ledger's database handle: one SQLite connection, its lock, and the read and transaction
helpers that every store object of :class:`engine.store.ledger.Ledger` is given.

Why one shared handle rather than a connection per store: SQLite has one writer per file, and a
connection shared across threads (the GUI runs protect and verify jobs on a worker thread) needs
one lock, so identities, serials, records, contacts, tag jobs and batch jobs must all go through
the same connection and the same lock. Each store receives this object in its constructor, which
makes the dependency explicit; nothing else about another store is reachable through it.

Writes use BEGIN IMMEDIATE (:func:`engine.store.schema.immediate`), so serial allocation and card
import are atomic even when two processes (GUI + CLI) share the file. The automatic backups
(:mod:`engine.store.ledger_backups`) live here too because they are taken of this connection,
after a session that wrote through it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import LedgerError
from engine.store.ledger_backups import make_backup
from engine.store.schema import DAMAGED_HINT, immediate, open_ledger_db

log = logging.getLogger(__name__)


def sqlite_message(path: Path, exc: sqlite3.Error) -> str:
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


class Database:
    """The open ledger file (created or migrated by :func:`open_ledger_db`).

    ``conn`` and ``lock`` are public for the stores that must run several statements as one
    unit under the lock (a transaction that spans a check and a write, or a key file written
    between two queries); everything else goes through :meth:`read` and :meth:`write`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.conn = open_ledger_db(path)
        self._wrote = False  # anything committed since the last automatic backup

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the lock: all of it is stored, or none of it. SQLite
        failures (disk full, damaged file, read-only) become a one-line LedgerError."""
        with self.lock:
            try:
                with immediate(self.conn) as c:
                    yield c
            except sqlite3.Error as exc:
                raise LedgerError(sqlite_message(self.path, exc)) from None
            self._wrote = True

    def read(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Every row of one query, under the lock; SQLite failures become a LedgerError."""
        with self.lock:
            try:
                return self.conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(sqlite_message(self.path, exc)) from None

    def checkpoint_backup(self) -> Path | None:
        """An automatic backup if anything was written since the last one. Never fails the
        work: a backup that cannot be written is logged."""
        with self.lock:
            if not self._wrote:
                return None
            self._wrote = False
            try:
                return make_backup(self.conn, self.path)
            except (OSError, sqlite3.Error) as exc:
                log.warning("ledger backup failed: %s", exc)
                return None

    def backup_now(self) -> Path | None:
        """A backup right now, whether or not anything was written; failures are LedgerErrors."""
        with self.lock:
            try:
                return make_backup(self.conn, self.path)
            except sqlite3.Error as exc:
                raise LedgerError(sqlite_message(self.path, exc)) from None
            except OSError as exc:
                raise LedgerError(f"cannot write a ledger backup ({exc.strerror})") from None

    def close(self) -> None:
        """Keep an automatic backup if the session wrote, then close the connection."""
        with self.lock:
            self.checkpoint_backup()
            self.conn.close()
