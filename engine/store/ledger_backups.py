"""Automatic ledger backups, the ledger check, and putting a backup back.

The ledger is the only record of what a person tagged, so a damaged one must be recoverable
without the ledger itself: these functions work on files, and the CLI's ``faketagger ledger
check|restore`` can run them when the ledger no longer opens. Backups are SQLite online backups
(consistent even while another process writes), made when a Ledger that wrote something closes
and after each protect job, the newest :data:`KEEP` kept, each 0600 (the ledger holds the tag-MAC
keys) in ``backups/`` beside the ledger.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.atomic import Abandon, atomic_path, atomic_writer, clean_temps
from engine.errors import LedgerError
from engine.store.schema import damage, integrity_problems

KEEP = 10
_SUFFIX = ".sqlite3"


def backups_dir(ledger_path: Path) -> Path:
    return Path(ledger_path).parent / "backups"


def _prefix(ledger_path: Path) -> str:
    """Backups are named after their ledger (``ledger-<time>.sqlite3`` for ledger.sqlite3), so
    two ledgers in one folder never take each other's backups."""
    return f"{Path(ledger_path).name.split('.')[0]}-"


def list_backups(ledger_path: Path) -> list[Path]:
    """Backups of this ledger, newest first."""
    folder = backups_dir(ledger_path)
    prefix = _prefix(ledger_path)
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(_SUFFIX)
                 and n[len(prefix):len(prefix) + 1].isdigit()]
    except OSError:
        return []
    return [folder / n for n in sorted(names, reverse=True)]


def make_backup(conn: sqlite3.Connection, ledger_path: Path) -> Path | None:
    """Copy the open ledger to a new backup (online backup API), then drop the oldest beyond
    KEEP. A copy that fails SQLite's quick check is deleted (None), never kept as a good one."""
    folder = backups_dir(ledger_path)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    clean_temps(folder)  # backups killed mid-way (this is the folder's only writer)
    target = folder / f"{_prefix(ledger_path)}{stamp}{_SUFFIX}"
    ok = False
    with atomic_path(target, mode=0o600) as tmp:
        dst = sqlite3.connect(tmp)
        try:
            conn.backup(dst)
            ok = not integrity_problems(dst)
        finally:
            dst.close()
        if not ok:
            raise Abandon
    if not ok:
        return None
    for old in list_backups(ledger_path)[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
    return target


@dataclass
class LedgerCheck:
    """What ``faketagger ledger check`` reports."""

    path: Path
    problems: list[str]
    backups: list[Path]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_ledger(ledger_path: Path) -> LedgerCheck:
    """A full integrity check of the ledger file (without opening it as a Ledger)."""
    path = Path(ledger_path)
    backups = list_backups(path)
    if not path.exists():
        return LedgerCheck(path, ["the ledger file is missing"] if backups else [], backups)
    problem = damage(path)
    if problem:
        return LedgerCheck(path, [f"the ledger file {problem}"], backups)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = integrity_problems(conn, full=True)
            if not problems:
                conn.execute("SELECT count(*) FROM identities").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        problems = [str(exc)]
    return LedgerCheck(path, problems, backups)


def restore_ledger(ledger_path: Path, source: Path | None = None) -> tuple[Path, Path | None]:
    """Put a backup (the newest good one, or *source*) in place of the ledger. The current file,
    if any, is kept aside as ``<name>.damaged-<time>``, never deleted. Returns (the backup used,
    where the old file went). Serial counters never go back: the Ledger raises each identity's
    counter to its high-water mark in the keys folder when it opens the restored file."""
    path = Path(ledger_path)
    candidates = [Path(source)] if source is not None else list_backups(path)
    if not candidates:
        raise LedgerError(f"no ledger backup found in {backups_dir(path)}")
    chosen = None
    for cand in candidates:
        if cand.exists() and check_ledger(cand).ok:
            chosen = cand
            break
        if source is not None:
            raise LedgerError(f"{cand} is not a usable ledger backup")
    if chosen is None:
        raise LedgerError(f"none of the backups in {backups_dir(path)} is usable")
    aside = None
    for suffix in ("-wal", "-shm"):  # a stale WAL must not be replayed onto the restored file
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(path.with_name(f"{path.name}.damaged-{_stamp()}{suffix}"))
    if os.path.lexists(path):
        aside = path.with_name(f"{path.name}.damaged-{_stamp()}")
        path.replace(aside)
    with atomic_writer(path, mode=0o600) as dst, open(chosen, "rb") as src:
        shutil.copyfileobj(src, dst, 1 << 20)
    return chosen, aside


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
