"""Batch jobs in the ledger: which photos a job covers, their SHA-256, the state of each, the
serials and output it got, and why one failed. `faketagger batch --resume JOB` and the GUI on
restart continue from here (engine.run drives it).

A photo's item is tied to its tag job's reservation (engine.store.tagging): the item becomes
``tagged`` in the very transaction that commits its records, and recovery after a kill finishes
or rolls back both together. So a resumed job never tags a photo twice, and never skips one
whose file was not published. :class:`BatchJobs` is the Ledger's store object for them
(``ledger.batches``); the tag-job store calls its in-transaction methods (:meth:`BatchJobs.tie`,
:meth:`BatchJobs.item_tagged`, :meth:`BatchJobs.untie`) with its own connection.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from engine.errors import LedgerError
from engine.identity import utc_now_iso
from engine.store.db import Database
from engine.store.schema import KeyIdLike, key_hex


class ItemState(StrEnum):
    """The state of one photo of a batch job (stored: never rename a value)."""

    TODO = "todo"
    TAGGED = "tagged"
    NO_FACE = "no_face"
    COPIED = "copied"  # no face; copied through unchanged (--copy-no-face)
    SKIPPED = "skipped"  # already tagged (not --retag), or inside the output folder
    FAILED = "failed"


#: States a job is finished with; a resume redoes the others (todo, and failed: errors may pass).
FINAL = (ItemState.TAGGED, ItemState.NO_FACE, ItemState.COPIED, ItemState.SKIPPED)


@dataclass(frozen=True)
class BatchItem:
    job_id: str
    idx: int
    src: Path
    out_dir: Path
    sha256: str
    state: ItemState
    output: Path | None
    serials: tuple[int, ...]
    faces: list[int] | None  # face indices to tag (the GUI's choice); None: all
    error: str | None

    def to_json(self) -> dict:
        return {"index": self.idx, "input": os.fsdecode(bytes(self.src)) if isinstance(
                    self.src, bytes) else str(self.src),
                "sha256": self.sha256, "state": self.state.value,
                "output": str(self.output) if self.output else None,
                "serials": list(self.serials), "error": self.error}


@dataclass(frozen=True)
class BatchJobInfo:
    id: str
    key_id: str  # 8 hex digits
    created: str
    updated: str
    done: bool
    out_dir: Path
    options: dict
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in FINAL)


def _raw(path: Path | str) -> bytes:
    """A path as the file system's bytes (names need not be valid UTF-8)."""
    return os.fsencode(os.path.abspath(path))


def _path(value: bytes | str | None) -> Path | None:
    if value is None:
        return None
    return Path(os.fsdecode(value) if isinstance(value, bytes) else value)


class BatchJobs:
    """The ``batch_jobs`` and ``batch_items`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self, key_id: KeyIdLike, out_dir: Path, options: dict,
        items: list[tuple[Path, Path, str, list[int] | None]],
    ) -> str:
        """Record a new job over *items* (source, output folder, SHA-256, face indices or None),
        all in state todo; returns its ID (``b`` + 10 hex digits)."""
        job_id = "b" + os.urandom(5).hex()
        now = utc_now_iso()
        with self._db.write() as c:
            c.execute("INSERT INTO batch_jobs (id, key_id, created, updated, state, out_dir,"
                      " options) VALUES (?, ?, ?, ?, 'open', ?, ?)",
                      (job_id, key_hex(key_id), now, now, _raw(out_dir),
                       json.dumps(options, sort_keys=True)))
            c.executemany(
                "INSERT INTO batch_items (job_id, idx, src, out_dir, sha256, faces)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(job_id, k, _raw(src), _raw(out), sha, None if faces is None else
                  json.dumps(faces)) for k, (src, out, sha, faces) in enumerate(items)])
        return job_id

    def job(self, job_id: str) -> BatchJobInfo:
        rows = self._db.read("SELECT id, key_id, created, updated, state, out_dir, options FROM"
                             " batch_jobs WHERE id = ?", (job_id,))
        if not rows:
            known = ", ".join(j.id for j in self.jobs(open_only=True)) or "none"
            raise LedgerError(f"no batch job {job_id!r} in this ledger (unfinished jobs: "
                              f"{known})")
        r = rows[0]
        counts = {str(s): int(n) for s, n in self._db.read(
            "SELECT state, count(*) FROM batch_items WHERE job_id = ? GROUP BY state",
            (job_id,))}
        return BatchJobInfo(r[0], r[1], r[2], r[3], r[4] == "done", _path(r[5]),
                            json.loads(r[6]), counts)

    def jobs(self, open_only: bool = False) -> list[BatchJobInfo]:
        """Every batch job (newest first); with *open_only*, the unfinished ones (the GUI offers
        to resume them on start)."""
        where = " WHERE state = 'open'" if open_only else ""
        ids = [r[0] for r in self._db.read(f"SELECT id FROM batch_jobs{where} ORDER BY created"
                                           " DESC, id")]
        return [self.job(i) for i in ids]

    def items(self, job_id: str, states: tuple[str, ...] | None = None) -> list[BatchItem]:
        """The job's items in job order; with *states*, only those in one of them."""
        sql = ("SELECT job_id, idx, src, out_dir, sha256, state, output, serials, faces, error"
               " FROM batch_items WHERE job_id = ?")
        args: tuple[object, ...] = (job_id,)
        if states is not None:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args += tuple(str(s) for s in states)
        rows = self._db.read(sql + " ORDER BY idx", args)
        return [BatchItem(r[0], int(r[1]), _path(r[2]), _path(r[3]), r[4], ItemState(r[5]),
                          _path(r[6]), tuple(int(s) for s in r[7].split(",") if s),
                          None if r[8] is None else json.loads(r[8]), r[9]) for r in rows]

    def set_item(self, job_id: str, idx: int, state: ItemState, *,
                 output: Path | None = None, error: str | None = None) -> None:
        """Record a photo's end state (not tagged: tagging marks its item with its records).
        A tagged item is never changed."""
        with self._db.write() as c:
            c.execute("UPDATE batch_items SET state = ?, output = ?, error = ? WHERE job_id = ?"
                      " AND idx = ? AND state != 'tagged'",
                      (state.value, None if output is None else _raw(output), error, job_id,
                       idx))
            c.execute("UPDATE batch_jobs SET updated = ? WHERE id = ?", (utc_now_iso(), job_id))

    def close_job(self, job_id: str) -> None:
        """Every photo is done (tagged, no face, copied, skipped): the job is finished."""
        with self._db.write() as c:
            c.execute("UPDATE batch_jobs SET state = 'done', updated = ? WHERE id = ?",
                      (utc_now_iso(), job_id))

    # --- inside a tag job's transaction (engine.store.tagging) ---------------------------------

    @staticmethod
    def tie(c: sqlite3.Connection, job_id: str, src: Path | str, token: str) -> None:
        """Tie the job's item for photo *src* to tag job *token*, as its serials are reserved."""
        c.execute("UPDATE batch_items SET token = ? WHERE job_id = ? AND src = ?",
                  (token, job_id, _raw(src)))

    @staticmethod
    def item_tagged(c: sqlite3.Connection, token: str, output: Path, serials: list[int]) -> None:
        """The item tied to tag job *token* (if any) is tagged: in the same transaction as its
        records, so a resumed batch never tags that photo again."""
        c.execute("UPDATE batch_items SET state = 'tagged', output = ?, serials = ?, error = NULL,"
                  " token = NULL WHERE token = ?",
                  (_raw(output), ",".join(str(s) for s in serials), token))

    @staticmethod
    def untie(c: sqlite3.Connection, token: str) -> None:
        """Tag job *token* was rolled back: its item (if any) is free to be tagged again."""
        c.execute("UPDATE batch_items SET token = NULL WHERE token = ?", (token,))
