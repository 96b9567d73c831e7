"""Crash-safe tagging: serials are reserved, records staged, the file published, then committed.

Why: a tagged file's serial is in its pixels and its record holds the file's SHA-256, so the file
must exist before its record is final, yet a kill between the two must neither leave a tagged file
the ledger does not know nor burn serials of a photo that was never written. The steps of one
:class:`TagJob` (protect drives them, :mod:`engine.protect`):

1. :meth:`Tagging.begin` reserves serials (free ones first, then new ones) in one
   transaction (the serial high-water mark written before its commit and confirmed after it,
   :mod:`engine.store.marks`), naming the temp file and the output path the job will use, and
   this process's session (a lock file held while the process lives,
   :mod:`engine.store.session`).
2. The photo is written to the temp file (fsynced), hashed, and its records signed.
3. :meth:`Tagging.stage` stores the records as ``pending``.
4. The temp file is published under the output name (an atomic link or rename).
5. :meth:`Tagging.finish` marks the records ``done`` and drops the reservation.

Any failure before 4 ends in :meth:`Tagging.abort`: temp file removed, pending records dropped,
serials back in the free list, so nothing is burned. A kill at any instruction leaves a
reservation whose session is dead; :meth:`Tagging.recover` (run whenever a ledger is opened)
then finishes the job if its published file is there with the staged hash, and rolls it back
otherwise. Either way there is a tagged file with its records, or neither.

:class:`Tagging` is the Ledger's store object for these steps (``ledger.tagging``). It is given
the stores whose rows a job touches in its transactions: serials (reserved and freed), records
(staged, then made final) and batch jobs (an item is tagged with its records).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import LedgerError, RecordError, SerialsExhaustedError
from engine.files import display_path
from engine.identity import KeyId, utc_now_iso
from engine.store.batches import BatchJobs
from engine.store.db import Database
from engine.store.history import Records
from engine.store.records import MAX_SERIAL, TagRecord, verify_record
from engine.store.schema import KeyIdLike, key_hex
from engine.store.serials import Serials
from engine.store.session import SessionLock, session_alive


@dataclass
class TagJob:
    """One photo being tagged: its reserved serials and where its file goes."""

    token: str
    key_id: str  # 8 hex digits
    serials: list[int]
    original_path: str
    output_path: Path
    tmp_path: Path
    staged: bool = False


@dataclass(frozen=True)
class TagPlan:
    """What :meth:`Tagging.begin_many` reserves for one photo."""

    count: int  # faces, one serial each
    original_path: str  # as shown to people (records' history)
    output_path: Path
    tmp_path: Path
    batch_job: str | None = None  # the batch job whose item for this photo the tag completes
    source: Path | None = None  # the photo's path as the batch job holds it (else original_path)


@dataclass
class RecoveryReport:
    """What :meth:`Tagging.recover` did with the jobs of sessions that ended mid-way."""

    finished: list[str] = field(default_factory=list)  # output files whose records were committed
    rolled_back: list[str] = field(default_factory=list)  # output paths never published
    freed_serials: int = 0

    def __bool__(self) -> bool:
        return bool(self.finished or self.rolled_back)


def _raw(path: Path) -> bytes:
    """A path as the bytes the file system uses: reservations must find the file again, even
    when its name is not valid UTF-8 (which SQLite text cannot hold)."""
    return os.fsencode(os.path.abspath(path))


def _path(value: bytes | str) -> Path:
    return Path(os.fsdecode(value) if isinstance(value, bytes) else value)


def _sha256(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _remove_temp(path: Path) -> None:
    """Remove one of our temp files (hidden ``.*.part`` names only: never a user's file)."""
    if path.name.startswith(".") and path.name.endswith(".part"):
        with contextlib.suppress(OSError):  # gone already, or a read-only folder: harmless
            path.unlink()


ConfirmMark = Callable[[str, str, int], None]


class Tagging:
    """Tag jobs of this process: reserve, stage, publish-then-finish or abort, and recovery of
    other sessions' jobs. Holds this process's session lock (in *locks_dir*, made on the first
    job) until :meth:`close`.

    *confirm_mark* confirms a reservation's serial mark after its commit; by default
    ``serials.confirm_mark``. The Ledger passes its own ``_confirm_serial_mark`` (looked up at
    each call): the crash tests kill a process right there, between commit and confirmation."""

    def __init__(self, db: Database, serials: Serials, records: Records, batches: BatchJobs,
                 locks_dir: Path, confirm_mark: ConfirmMark | None = None) -> None:
        self._db = db
        self._serials = serials
        self._confirm_mark = confirm_mark or serials.confirm_mark
        self._records = records
        self._batches = batches
        self._locks_dir = locks_dir
        self._session_lock: SessionLock | None = None

    def _session(self) -> SessionLock:
        """This process's session lock (engine.store.session), made on the first tag job."""
        with self._db.lock:
            if self._session_lock is None:
                try:
                    self._session_lock = SessionLock(self._locks_dir)
                except OSError as exc:
                    raise LedgerError(f"cannot write in {self._locks_dir} "
                                      f"({exc.strerror})") from None
            return self._session_lock

    def close(self) -> None:
        """Let go of the session lock: from now on, recovery may take over this session's jobs."""
        with self._db.lock:
            if self._session_lock is not None:
                self._session_lock.close()
                self._session_lock = None

    def begin(
        self, key_id: KeyIdLike, count: int, *, original_path: str, output_path: Path,
        tmp_path: Path, batch_job: str | None = None, source: Path | None = None,
    ) -> TagJob:
        """Reserve *count* serials for one photo (step 1). Freed serials (of photos that were
        never written) are used first, lowest first; then new ones from the counter. With
        *batch_job*, the job's item for that photo is tied to the reservation, so it is marked
        tagged in the very transaction that commits its records (never tagged twice)."""
        return self.begin_many(key_id, [TagPlan(count, original_path, Path(output_path),
                                                Path(tmp_path), batch_job, source)])[0]

    def begin_many(self, key_id: KeyIdLike, plans: list[TagPlan]) -> list[TagJob]:
        """:meth:`begin` for many photos in one transaction (a batch chunk): all reserved,
        or none (SerialsExhaustedError when the identity has too few serials left)."""
        if any(plan.count < 1 for plan in plans):
            raise ValueError("count must be >= 1")
        hex_id = key_hex(key_id)
        session = self._session()
        need = sum(plan.count for plan in plans)
        jobs = []
        with self._db.write() as c:
            row = c.execute("SELECT next_serial FROM identities WHERE key_id = ?", (hex_id,))
            first = row.fetchone()
            if first is None:
                raise LedgerError(f"no identity of yours has key ID {KeyId.from_hex(hex_id)}")
            free = [int(r[0]) for r in c.execute(
                "SELECT serial FROM free_serials WHERE key_id = ? ORDER BY serial LIMIT ?",
                (hex_id, need))]
            start = int(first[0])
            new = need - len(free)
            if start + new - 1 > MAX_SERIAL:
                raise SerialsExhaustedError(
                    f"identity {KeyId.from_hex(hex_id)} has {MAX_SERIAL + 1 - start + len(free)}"
                    f" tag serials left, {need} needed; create a new identity to keep tagging")
            serials = free + list(range(start, start + new))
            c.executemany("DELETE FROM free_serials WHERE key_id = ? AND serial = ?",
                          [(hex_id, s) for s in free])
            if new:
                c.execute("UPDATE identities SET next_serial = ? WHERE key_id = ?",
                          (start + new, hex_id))
            now = utc_now_iso()
            for plan in plans:
                token = f"{session.token}-{os.urandom(6).hex()}"
                mine, serials = serials[:plan.count], serials[plan.count:]
                c.executemany(
                    "INSERT INTO reservations (key_id, serial, token, session, original_path,"
                    " output_path, tmp_path, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(hex_id, s, token, session.token, plan.original_path,
                      _raw(plan.output_path), _raw(plan.tmp_path), now) for s in mine])
                if plan.batch_job is not None:
                    self._batches.tie(c, plan.batch_job, plan.source or plan.original_path,
                                      token)
                jobs.append(TagJob(token, hex_id, mine, plan.original_path,
                                   Path(plan.output_path), Path(plan.tmp_path)))
            # Last before the commit: a new generation and a pending high-water mark (also when
            # only freed serials are reused, so a ledger put back to before this job is known
            # to be older). A kill before the commit burns nothing (engine.store.marks).
            staged = self._serials.stage_mark(c, hex_id, start + new)
        try:
            self._confirm_mark(hex_id, *staged)
        except BaseException:  # none of these serials may be used: hand them back
            for job in jobs:
                with contextlib.suppress(LedgerError):
                    self.abort(job)
            raise
        return jobs

    def stage(self, job: TagJob, records: list[TagRecord]) -> None:
        """Store the signed records as pending (step 3), all or none."""
        if sorted(r.serial for r in records) != sorted(job.serials) or any(
                r.key_id != job.key_id for r in records):
            raise LedgerError("the records do not match the reserved serials")
        for rec in records:
            if not verify_record(rec):
                raise RecordError("tag record signature does not verify; not stored")
        with self._db.write() as c:
            self._check_reserved(c, job)
            row = c.execute("SELECT public_key FROM identities WHERE key_id = ?", (job.key_id,))
            found = row.fetchone()
            if found is None or any(bytes(found[0]) != r.owner_public_raw for r in records):
                raise LedgerError("record is not from one of your identities")
            for rec in records:
                self._records.insert(c, rec, True, job.original_path,
                                     display_path(job.output_path),
                                     state="pending", token=job.token)
        job.staged = True

    def move(self, job: TagJob, output_path: Path) -> None:
        """The output name was taken meanwhile: the job publishes under *output_path* instead."""
        with self._db.write() as c:
            self._check_reserved(c, job)
            c.execute("UPDATE reservations SET output_path = ? WHERE token = ?",
                      (_raw(output_path), job.token))
            c.execute("UPDATE records SET output_path = ? WHERE token = ?",
                      (display_path(output_path), job.token))
        job.output_path = Path(output_path)

    def finish(self, job: TagJob) -> None:
        """The file is published (step 5): its records become final, the reservation goes."""
        with self._db.write() as c:
            self._check_reserved(c, job)
            self._batch_tagged(c, job.token, job.output_path)
            c.execute("UPDATE records SET state = 'done', token = NULL WHERE token = ?",
                      (job.token,))
            c.execute("DELETE FROM reservations WHERE token = ?", (job.token,))

    def abort(self, job: TagJob) -> None:
        """Nothing was published: drop the pending records, free the serials, remove the temp."""
        _remove_temp(job.tmp_path)
        with self._db.write() as c:
            self._rollback(c, job.token, job.key_id)

    @staticmethod
    def _check_reserved(c: sqlite3.Connection, job: TagJob) -> None:
        if c.execute("SELECT 1 FROM reservations WHERE token = ? LIMIT 1",
                     (job.token,)).fetchone() is None:
            raise LedgerError("this tag job's reservation is gone (recovered by another run?)")

    def _batch_tagged(self, c: sqlite3.Connection, token: str, output: Path) -> None:
        """The batch item tied to tag job *token* (if any) is tagged, with the job's serials."""
        serials = [int(r[0]) for r in c.execute(
            "SELECT serial FROM reservations WHERE token = ? ORDER BY serial", (token,))]
        self._batches.item_tagged(c, token, output, serials)

    def _rollback(self, c: sqlite3.Connection, token: str, hex_id: str) -> int:
        """Inside *c*: the job's pending records go, its serials return to the free list."""
        self._batches.untie(c, token)
        c.execute("DELETE FROM records WHERE token = ? AND state = 'pending'", (token,))
        rows = c.execute("SELECT serial FROM reservations WHERE token = ?", (token,)).fetchall()
        c.executemany("INSERT OR IGNORE INTO free_serials (key_id, serial) VALUES (?, ?)",
                      [(hex_id, int(r[0])) for r in rows])
        c.execute("DELETE FROM reservations WHERE token = ?", (token,))
        return len(rows)

    # --- recovery ------------------------------------------------------------------------------

    def pending_jobs(self) -> list[tuple[str, str, Path, Path]]:
        """(token, session, output path, temp path) of every unfinished tag job."""
        rows = self._db.read("SELECT token, session, output_path, tmp_path FROM reservations"
                             " GROUP BY token ORDER BY min(created), token")
        return [(r[0], r[1], _path(r[2]), _path(r[3])) for r in rows]

    def recover(self) -> RecoveryReport:
        """Finish or roll back the tag jobs of sessions that ended without finishing them (a
        kill, a power cut). Jobs of live sessions (another window, another command) are left
        alone. Safe to run at any time and any number of times."""
        report = RecoveryReport()
        for token, session, out, tmp in self.pending_jobs():
            if session_alive(self._locks_dir, session):
                continue
            with self._db.write() as c:
                rows = c.execute(
                    "SELECT key_id, record_json FROM records WHERE token = ? AND state ="
                    " 'pending'", (token,)).fetchall()
                key_rows = c.execute("SELECT DISTINCT key_id FROM reservations WHERE token = ?",
                                     (token,)).fetchall()
                if not key_rows:
                    continue  # another process recovered it meanwhile
                hex_id = key_rows[0][0]
                hashes = {json.loads(r[1])["file_sha256"] for r in rows}
                published = bool(rows) and len(hashes) == 1 and _sha256(out) in hashes
                if published:
                    self._batch_tagged(c, token, out)
                    c.execute("UPDATE records SET state = 'done', token = NULL WHERE token = ?",
                              (token,))
                    c.execute("DELETE FROM reservations WHERE token = ?", (token,))
                    report.finished.append(display_path(out))
                else:
                    report.freed_serials += self._rollback(c, token, hex_id)
                    report.rolled_back.append(display_path(out))
            _remove_temp(tmp)
        return report
