"""The local ledger (SQLite): own identities, serial allocation, signed tag records and contacts.

:class:`Ledger` opens the file and wires small store objects together, each given exactly the
collaborators it uses, so that what depends on what is written in one place (``__init__``):

- ``db`` (:mod:`engine.store.db`): the connection, its lock, reads and IMMEDIATE transactions,
  automatic backups. One connection shared across threads under one lock (the GUI runs jobs on a
  worker thread); BEGIN IMMEDIATE keeps serial allocation and card import atomic when two
  processes (GUI + CLI) share the file.
- ``serials`` (:mod:`engine.store.serials`): counters, free lists, high-water marks.
- ``records`` (:mod:`engine.store.history`): signed tag records and the history.
- ``contacts`` (:mod:`engine.store.contacts`): imported cards, card export, whose a key ID is.
- ``identities`` (:mod:`engine.store.identities`): own keys and sub-keys, the tagging key.
- ``key_backups`` (:mod:`engine.store.key_backups`): identity export and restore.
- ``tagging`` (:mod:`engine.store.tagging`): crash-safe tag jobs and their recovery.
- ``batches`` (:mod:`engine.store.batches`): batch jobs and their items.
- ``credentials`` (:mod:`engine.store.credentials`): C2PA chains and trust anchors.

Every other method is a one-line delegation kept so callers (protect, verify, batch, the CLI,
the GUI, tests) keep one object to talk to; new code may use the stores directly. The schema,
migrations and file opening live in :mod:`engine.store.schema`. This module re-exports the row
types so ``engine.store.ledger`` stays the one import callers need.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from engine import paths
from engine.errors import LedgerError
from engine.identity import Identity, UnlockedIdentity
from engine.store.batches import BatchItem, BatchJobInfo, BatchJobs, ItemState
from engine.store.contacts import Contact, Contacts, Owner
from engine.store.credentials import CredentialsStore
from engine.store.db import Database
from engine.store.history import HistoryRow, Records
from engine.store.identities import Identities, KeyFiles
from engine.store.key_backups import KeyBackups
from engine.store.ledger_backups import backups_dir, list_backups
from engine.store.records import TagRecord
from engine.store.schema import SCHEMA_VERSION, KeyIdLike
from engine.store.serials import MarkFiles, Serials
from engine.store.subkeys import SubkeyCert
from engine.store.tagging import RecoveryReport, Tagging, TagJob, TagPlan

__all__ = ["SCHEMA_VERSION", "Contact", "HistoryRow", "KeyIdLike", "Ledger", "Owner",
           "RecoveryReport", "TagJob", "TagPlan"]


class Ledger:
    """Open (and create or migrate) the ledger at *path*; keys live in *keys_dir*, by default the
    ``keys`` folder beside the database (data_dir()/keys for the default ledger).

    Opening also finishes or rolls back the tag jobs of runs that were killed mid-way
    (:meth:`recover`; what it did is in :attr:`recovered`) and reconciles each identity's serial
    counter with its high-water mark in the keys folder (engine.store.marks), so a ledger put
    back from a backup never hands out a serial again."""

    def __init__(self, path: Path | None = None, *, keys_dir: Path | None = None) -> None:
        try:
            self.path = Path(path) if path is not None else paths.ledger_path()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.keys_dir = (Path(keys_dir) if keys_dir is not None
                             else paths.keys_dir(self.path.parent))
            self.keys_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = exc.filename or (path if path is not None else "FakeTagger's data folder")
            raise LedgerError(f"cannot use the data folder {where} ({exc.strerror}); set "
                              f"{paths.HOME_ENV} to a writable folder") from None
        if not os.path.lexists(self.path) and list_backups(self.path):
            raise LedgerError(
                f"ledger {self.path} is missing, but automatic backups of it exist; nothing was "
                "changed. `faketagger ledger restore` puts the newest back (or move the "
                f"{backups_dir(self.path)} folder away to start a new ledger)")
        self.db = Database(self.path)
        self._marks = MarkFiles(self.keys_dir)
        # Serial marks are written, and a tag job's mark confirmed, through this Ledger's
        # _write_mark and _confirm_serial_mark, looked up at each call: the seams where tests
        # fail a write or kill the process mid-way (test_serial_marks.py, test_crash_safety.py).
        self.serials = Serials(self.db, self._marks.read,
                               lambda hex_id, data: self._write_mark(hex_id, data))
        self.records = Records(self.db, self.serials)
        self.contacts = Contacts(self.db, self.records)
        keys = KeyFiles(self.keys_dir)
        self.identities = Identities(self.db, keys, self.serials, self.contacts)
        self.key_backups = KeyBackups(self.db, keys, self.identities, self.serials)
        self.batches = BatchJobs(self.db)
        self.tagging = Tagging(self.db, self.serials, self.records, self.batches,
                               self.path.parent / "locks",
                               lambda hex_id, gen, value: self._confirm_serial_mark(
                                   hex_id, gen, value))
        self.credentials = CredentialsStore(self.db)
        self.recovered = RecoveryReport()
        try:
            # Recovery first: when the ledger turns out older than a mark, the serials it frees
            # are dropped with the rest of the free list.
            if self.db.read("SELECT 1 FROM reservations LIMIT 1"):
                self.recovered = self.recover()
            self.serials.reconcile()
        except BaseException:
            self.db.conn.close()
            raise

    # --- plumbing -----------------------------------------------------------------------------

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database; after a session that wrote, keep an automatic backup of it."""
        with self.db.lock:
            self.db.close()
            self.tagging.close()

    def checkpoint_backup(self) -> Path | None:
        """An automatic backup if anything was written since the last one (the job runners call
        this after each protect job; close() too). Never fails the work."""
        return self.db.checkpoint_backup()

    def backup_now(self) -> Path | None:
        """A backup right now (``faketagger ledger backup``)."""
        return self.db.backup_now()

    # --- seams for tests ---------------------------------------------------------------------
    # Private names the tests use to look inside or to fail or kill a step. ``_conn`` and
    # ``_write`` are the database handle's (assigning ``_write`` replaces the handle's, so every
    # store sees it); serial marks are written and confirmed through the two methods below.

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.db.conn

    @property
    def _write(self) -> Callable[[], AbstractContextManager[sqlite3.Connection]]:
        return self.db.write

    @_write.setter
    def _write(self, write: Callable[[], AbstractContextManager[sqlite3.Connection]]) -> None:
        self.db.write = write  # type: ignore[method-assign]

    def _write_mark(self, hex_id: str, data: bytes) -> None:
        self._marks.write(hex_id, data)

    def _confirm_serial_mark(self, hex_id: str, gen: str, value: int) -> None:
        self.serials.confirm_mark(hex_id, gen, value)

    # --- identities and sub-keys (self.identities) ---------------------------------------------

    def create_identity(self, name: str, passphrase: str) -> Identity:
        return self.identities.create(name, passphrase)

    def list_identities(self) -> list[Identity]:
        return self.identities.all()

    def get_identity(self, key_id: KeyIdLike) -> Identity | None:
        return self.identities.get(key_id)

    def resolve_identity(self, choice: str | None) -> Identity:
        return self.identities.resolve(choice)

    def default_identity(self) -> Identity | None:
        return self.identities.default()

    def set_default(self, key_id: KeyIdLike) -> None:
        return self.identities.set_default(key_id)

    def unlock(self, key_id: KeyIdLike | None, passphrase: str) -> UnlockedIdentity:
        return self.identities.unlock(key_id, passphrase)

    def change_passphrase(self, key_id: KeyIdLike, old: str, new: str) -> None:
        return self.identities.change_passphrase(key_id, old, new)

    def own_mac_key(self, key_id: KeyIdLike) -> bytes | None:
        return self.identities.own_mac_key(key_id)

    def subkeys(self, key_id: KeyIdLike) -> list[Identity]:
        return self.identities.subkeys(key_id)

    def parent_of(self, key_id: KeyIdLike) -> Identity | None:
        return self.identities.parent_of(key_id)

    def create_subkey(self, key_id: KeyIdLike, passphrase: str) -> Identity:
        return self.identities.create_subkey(key_id, passphrase)

    def subkey_certs(self, key_id: KeyIdLike) -> list[SubkeyCert]:
        return self.identities.subkey_certs(key_id)

    def tagging_key(self, key_id: KeyIdLike, count: int, passphrase: str, *,
                    subkeys: bool = True) -> tuple[UnlockedIdentity, str | None]:
        return self.identities.tagging_key(key_id, count, passphrase, subkeys=subkeys)

    # --- key backups (self.key_backups) and serials (self.serials) -----------------------------

    def export_backup(self, key_id: KeyIdLike) -> bytes:
        return self.key_backups.export(key_id)

    def restore_backup(self, data: bytes, passphrase: str) -> Identity:
        return self.key_backups.restore(data, passphrase)

    def serials_left(self, key_id: KeyIdLike) -> int:
        return self.serials.left(key_id)

    def allocate_serials(self, key_id: KeyIdLike, count: int) -> list[int]:
        return self.serials.allocate(key_id, count)

    # --- contacts and cards (self.contacts) ----------------------------------------------------

    def import_card(self, data: bytes) -> Contact:
        return self.contacts.import_card(data)

    def list_contacts(self) -> list[Contact]:
        return self.contacts.all()

    def get_contact(self, key_id: KeyIdLike) -> Contact | None:
        return self.contacts.get(key_id)

    def remove_contact(self, key_id: KeyIdLike) -> bool:
        return self.contacts.remove(key_id)

    def export_card(self, key_id: KeyIdLike, include_records: bool = True,
                    serials: Collection[int] | None = None) -> bytes:
        return self.contacts.export_card(key_id, include_records, serials)

    def lookup_owner(self, key_id: KeyIdLike) -> Owner | None:
        return self.contacts.lookup_owner(key_id)

    # --- records and history (self.records) ----------------------------------------------------

    def add_record(self, rec: TagRecord, *, original_path: str, output_path: str,
                   own: bool = True) -> None:
        return self.records.add([rec], original_path=original_path, output_path=output_path,
                                own=own)

    def add_records(self, recs: list[TagRecord], *, original_path: str, output_path: str,
                    own: bool = True) -> None:
        return self.records.add(recs, original_path=original_path, output_path=output_path,
                                own=own)

    def records_for(self, key_id: KeyIdLike, serial: int) -> list[TagRecord]:
        return self.records.for_serial(key_id, serial)

    def records_of(self, key_id: KeyIdLike) -> list[TagRecord]:
        return self.records.of_key(key_id)

    def known_payloads(self) -> tuple[str, ...]:
        return self.records.known_payloads()

    def history(self, search: str = "", limit: int = 500) -> list[HistoryRow]:
        return self.records.history(search, limit)

    def original_path(self, key_id: KeyIdLike, serial: int, file_sha256: str) -> str | None:
        return self.records.original_path(key_id, serial, file_sha256)

    # --- tag jobs (self.tagging) ---------------------------------------------------------------

    def begin_tag(self, key_id: KeyIdLike, count: int, *, original_path: str,
                  output_path: Path, tmp_path: Path, batch_job: str | None = None,
                  source: Path | None = None) -> TagJob:
        return self.tagging.begin(key_id, count, original_path=original_path,
                                  output_path=output_path, tmp_path=tmp_path,
                                  batch_job=batch_job, source=source)

    def begin_tags(self, key_id: KeyIdLike, plans: list[TagPlan]) -> list[TagJob]:
        return self.tagging.begin_many(key_id, plans)

    def stage_tag(self, job: TagJob, records: list[TagRecord]) -> None:
        return self.tagging.stage(job, records)

    def move_tag(self, job: TagJob, output_path: Path) -> None:
        return self.tagging.move(job, output_path)

    def finish_tag(self, job: TagJob) -> None:
        return self.tagging.finish(job)

    def abort_tag(self, job: TagJob) -> None:
        return self.tagging.abort(job)

    def pending_jobs(self) -> list[tuple[str, str, Path, Path]]:
        return self.tagging.pending_jobs()

    def recover(self) -> RecoveryReport:
        return self.tagging.recover()

    # --- batch jobs (self.batches) -------------------------------------------------------------

    def create_batch(self, key_id: KeyIdLike, out_dir: Path, options: dict,
                     items: list[tuple[Path, Path, str, list[int] | None]]) -> str:
        return self.batches.create(key_id, out_dir, options, items)

    def batch_job(self, job_id: str) -> BatchJobInfo:
        return self.batches.job(job_id)

    def batch_jobs(self, open_only: bool = False) -> list[BatchJobInfo]:
        return self.batches.jobs(open_only)

    def batch_items(self, job_id: str,
                    states: tuple[str, ...] | None = None) -> list[BatchItem]:
        return self.batches.items(job_id, states)

    def set_batch_item(self, job_id: str, idx: int, state: ItemState, *,
                       output: Path | None = None, error: str | None = None) -> None:
        return self.batches.set_item(job_id, idx, state, output=output, error=error)

    def close_batch(self, job_id: str) -> None:
        return self.batches.close_job(job_id)
