"""The ledger's on-disk format: table definitions, migrations, how the file is opened, and the
key-ID column form.

Kept apart from :mod:`engine.store.ledger` so that the (append-only, never edited) schema history can be
read and reviewed on its own, and so the queries in ``ledger`` and ``contacts`` share one notion of
what a key-ID column holds.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import KeyIdError, LedgerError
from engine.identity import format_key_id, parse_key_id, utc_now_iso

KeyIdLike = bytes | str

# Append-only: migration i takes user_version i to i + 1. Never edit a released entry.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
        """CREATE TABLE identities (
            key_id TEXT PRIMARY KEY CHECK (length(key_id) = 8),
            name TEXT NOT NULL,
            public_key BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
            created TEXT NOT NULL,
            mac_key BLOB NOT NULL CHECK (length(mac_key) = 32),
            card_header TEXT NOT NULL,
            is_default INTEGER NOT NULL DEFAULT 0,
            next_serial INTEGER NOT NULL DEFAULT 1 CHECK (next_serial >= 1))""",
        """CREATE TABLE contacts (
            key_id TEXT PRIMARY KEY CHECK (length(key_id) = 8),
            name TEXT NOT NULL,
            public_key BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
            created TEXT NOT NULL,
            card_header TEXT NOT NULL,
            imported TEXT NOT NULL,
            updated TEXT NOT NULL)""",
        """CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            key_id TEXT NOT NULL,
            serial INTEGER NOT NULL,
            identity_key_id TEXT REFERENCES identities(key_id),
            contact_key_id TEXT REFERENCES contacts(key_id) ON DELETE CASCADE,
            created TEXT NOT NULL,
            file_sha256 TEXT NOT NULL,
            original_path TEXT NOT NULL DEFAULT '',
            output_path TEXT NOT NULL DEFAULT '',
            signature TEXT NOT NULL UNIQUE,
            record_json TEXT NOT NULL,
            added TEXT NOT NULL,
            CHECK ((identity_key_id IS NULL) <> (contact_key_id IS NULL)),
            CHECK (key_id = coalesce(identity_key_id, contact_key_id)))""",
        "CREATE INDEX records_by_serial ON records (key_id, serial)",
        "CREATE INDEX records_by_created ON records (created)",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


def key_hex(key_id: KeyIdLike) -> str:
    """Accept 4 raw bytes or any text form of a key ID; return 8 lowercase hex digits (the form
    every key-ID column stores, so lookups match whatever the caller was given)."""
    if isinstance(key_id, bytes | bytearray) and len(key_id) == 4:
        return bytes(key_id).hex()
    if isinstance(key_id, str):
        return parse_key_id(key_id).hex()
    raise KeyIdError(f"not a key ID: {key_id!r}")


def key_text(hex_digits: str) -> str:
    """A stored key-ID column value in the form users see in messages."""
    return format_key_id(bytes.fromhex(hex_digits))


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction: all of it is stored, or (on any exception) none of it.

    IMMEDIATE takes the write lock up front, so two processes sharing the file (GUI + CLI) cannot
    both read the same serial counter before either writes it back. Not thread-safe by itself:
    callers sharing *conn* across threads must hold their own lock around it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        # Inside the try: a COMMIT that fails (busy reader on a rollback journal, deferred
        # constraint) must not leave the transaction open for the next caller to inherit.
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back by itself
            conn.execute("ROLLBACK")
        raise


def open_ledger_db(path: Path) -> sqlite3.Connection:
    """Connect to the ledger file at *path* (created 0600 if missing) and bring its schema up to
    date. Damaged files surface as LedgerError, not a bare sqlite3 error, so the CLI and GUI can
    report them; the connection is closed again on any failure so the file is not left locked."""
    if not path.exists():  # private from the start: it holds the tag-MAC keys
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    # One connection shared across threads (the GUI's worker): the Ledger serialises use with a
    # lock. Autocommit mode, so transactions are exactly the explicit ones from immediate().
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL lets readers proceed during a write. Where SQLite cannot use it (some network shares
        # and FUSE mounts) it keeps a rollback journal and says so in the result: still correct,
        # as IMMEDIATE plus the busy timeout serialise writers, but synchronous=NORMAL is only
        # corruption-safe with WAL, so the rollback journal gets FULL.
        row = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        wal = bool(row) and str(row[0]).lower() == "wal"
        conn.execute(f"PRAGMA synchronous = {'NORMAL' if wal else 'FULL'}")
        _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(f"cannot open ledger {path}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the missing migrations, one transaction each, re-checking the version inside it
    because another process may be opening (and migrating) the same file at the same time."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger {path} was written by a newer FakeTagger (schema {version}); update"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with immediate(conn) as c:
            if c.execute("PRAGMA user_version").fetchone()[0] != target - 1:
                continue  # another process migrated meanwhile
            for statement in MIGRATIONS[target - 1]:
                c.execute(statement)
            c.execute("INSERT INTO schema_migrations VALUES (?, ?)", (target, utc_now_iso()))
            c.execute(f"PRAGMA user_version = {target:d}")
