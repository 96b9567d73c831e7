"""The ledger's on-disk format: table definitions, migrations, how the file is opened, and the
key-ID column form.

Kept apart from :mod:`engine.store.ledger` so that the (append-only, never edited) schema history can be
read and reviewed on its own, and so the queries in ``ledger`` and ``contacts`` share one notion of
what a key-ID column holds.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.atomic import atomic_path, clean_temps
from engine.errors import LedgerError
from engine.identity import KeyId, utc_now_iso

# What the ledger's methods accept as a key ID: a KeyId (or its 4 plain bytes) or any text form.
KeyIdLike = KeyId | bytes | str

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
    (  # 2: crash-safe tagging (engine.store.tagging): staged records, reservations, free serials
        "ALTER TABLE records ADD COLUMN state TEXT NOT NULL DEFAULT 'done'"
        " CHECK (state IN ('pending', 'done'))",
        "ALTER TABLE records ADD COLUMN token TEXT",
        "CREATE INDEX records_by_token ON records (token) WHERE token IS NOT NULL",
        """CREATE TABLE reservations (
            key_id TEXT NOT NULL REFERENCES identities(key_id),
            serial INTEGER NOT NULL CHECK (serial >= 1),
            token TEXT NOT NULL,
            session TEXT NOT NULL,
            original_path TEXT NOT NULL,
            output_path TEXT NOT NULL,
            tmp_path TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (key_id, serial))""",
        "CREATE INDEX reservations_by_token ON reservations (token)",
        """CREATE TABLE free_serials (
            key_id TEXT NOT NULL REFERENCES identities(key_id),
            serial INTEGER NOT NULL CHECK (serial >= 1),
            PRIMARY KEY (key_id, serial))""",
    ),
    (  # 3: batch jobs (engine.store.batches): inputs, their hashes and state, resumable
        """CREATE TABLE batch_jobs (
            id TEXT PRIMARY KEY,
            key_id TEXT NOT NULL REFERENCES identities(key_id),
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('open', 'done')),
            out_dir BLOB NOT NULL,
            options TEXT NOT NULL)""",
        """CREATE TABLE batch_items (
            job_id TEXT NOT NULL REFERENCES batch_jobs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            src BLOB NOT NULL,
            out_dir BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'todo' CHECK (state IN
                ('todo', 'tagged', 'no_face', 'copied', 'skipped', 'failed')),
            output BLOB,
            serials TEXT NOT NULL DEFAULT '',
            faces TEXT,
            error TEXT,
            token TEXT,
            PRIMARY KEY (job_id, idx))""",
        "CREATE UNIQUE INDEX batch_items_by_src ON batch_items (job_id, src)",
        "CREATE INDEX batch_items_by_token ON batch_items (token) WHERE token IS NOT NULL",
    ),
    (  # 4: the generation of the last serial allocation, matched against the keys/<id>.serial
        # high-water mark on open (engine.store.marks); NULL until the first allocation
        "ALTER TABLE identities ADD COLUMN serial_gen TEXT",
    ),
    (  # 5: certified sub-keys (engine.store.subkeys): a row of identities (own) or contacts (a
        # contact's card) whose parent_key_id is the owner's row, with the owner's certificate
        # (no REFERENCES clause: removing a contact removes its sub-key rows in code)
        "ALTER TABLE identities ADD COLUMN parent_key_id TEXT",
        "ALTER TABLE identities ADD COLUMN certificate TEXT",
        "ALTER TABLE contacts ADD COLUMN parent_key_id TEXT",
        "ALTER TABLE contacts ADD COLUMN certificate TEXT",
    ),
    (  # 6: Content Credentials (engine.credentials): each key's C2PA chain (PEM, NULL until
        # made: own keys on the first protect with C2PA, contacts' from their card), and the CA
        # certificates the user chose to trust
        "ALTER TABLE identities ADD COLUMN c2pa_chain TEXT",
        "ALTER TABLE contacts ADD COLUMN c2pa_chain TEXT",
        """CREATE TABLE trust_anchors (
            fingerprint TEXT PRIMARY KEY,
            label TEXT NOT NULL,
            pem TEXT NOT NULL,
            added TEXT NOT NULL)""",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


def key_hex(key_id: KeyIdLike) -> str:
    """Accept a KeyId, 4 raw bytes or any text form of a key ID; return 8 lowercase hex digits
    (the form every key-ID column stores, so lookups match whatever the caller was given).
    KeyIdError for anything else. Read a column back with ``KeyId.from_hex``."""
    return KeyId.coerce(key_id).hex()


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


#: What every damaged-ledger message ends with: the way out.
DAMAGED_HINT = ("nothing was changed. `faketagger ledger restore` puts back the latest automatic "
                "backup (keeping the damaged file aside); `faketagger ledger check` tells more")
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    # WAL lets readers proceed during a write. Where SQLite cannot use it (some network shares
    # and FUSE mounts) it keeps a rollback journal and says so in the result: still correct,
    # as IMMEDIATE plus the busy timeout serialise writers, but synchronous=NORMAL is only
    # corruption-safe with WAL, so the rollback journal gets FULL.
    row = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    wal = bool(row) and str(row[0]).lower() == "wal"
    conn.execute(f"PRAGMA synchronous = {'NORMAL' if wal else 'FULL'}")


def _create(path: Path) -> None:
    """A new, fully migrated ledger appears under *path* in one step (temp file, then link), so
    a kill while creating never leaves an empty file that would later pass for a ledger."""
    with (contextlib.suppress(FileExistsError),  # another process made it meanwhile: use theirs
          atomic_path(path, overwrite=False, mode=0o600) as tmp):  # 0600: it holds MAC keys
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
            _migrate(conn, tmp)
        finally:
            conn.close()


def damage(path: Path) -> str | None:
    """Why the file at *path* is not a usable ledger (empty, not SQLite), or None. Cheap: reads
    the 16-byte header only; :func:`open_ledger_db` also runs SQLite's own quick check."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not head:
        return "is empty (0 bytes): its identities, serial counters and records are gone"
    if head != _SQLITE_MAGIC:
        return "is not a FakeTagger ledger (not an SQLite database) or its header is damaged"
    return None


def integrity_problems(conn: sqlite3.Connection, full: bool = False) -> list[str]:
    """SQLite's own check of every page and index ("ok" means none)."""
    rows = conn.execute("PRAGMA integrity_check" if full else "PRAGMA quick_check").fetchall()
    found = [str(r[0]) for r in rows]
    return [] if found == ["ok"] else found


def open_ledger_db(path: Path) -> sqlite3.Connection:
    """Connect to the ledger file at *path* (created, 0600, if missing) and bring its schema up
    to date. An empty, foreign or damaged file is refused with a LedgerError that says the way
    out, never silently replaced by a new ledger (that would drop the identities, the serial
    counters and every record). The connection is closed again on any failure. Opening is also
    the recovery of the ledger's folder: temps that a killed create or restore left are removed."""
    clean_temps(Path(path).parent)
    if not os.path.lexists(path):
        try:
            _create(path)
        except OSError as exc:
            raise LedgerError(f"cannot create the ledger {path} ({exc.strerror})") from None
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot create the ledger {path} ({exc})") from None
    problem = damage(path)
    if problem:
        raise LedgerError(f"ledger {path} {problem}; {DAMAGED_HINT}")
    # One connection shared across threads (the GUI's worker): the Ledger serialises use with a
    # lock. Autocommit mode, so transactions are exactly the explicit ones from immediate().
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    try:
        _configure(conn)
        problems = integrity_problems(conn)
        if problems:
            raise LedgerError(f"ledger {path} is damaged ({problems[0]}); {DAMAGED_HINT}")
        _migrate(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LedgerError(f"ledger {path} cannot be opened ({exc}); {DAMAGED_HINT}") from None
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
