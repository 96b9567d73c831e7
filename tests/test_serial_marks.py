"""Serial high-water marks (engine.store.marks): a kill between the mark and the commit burns
nothing; a ledger put back from a backup (even to the state right before the last job, or with
freed serials that were reused since) never hands out a serial that may be in a published file;
legacy bare-number marks still raise the counter."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from engine.store import marks
from engine.store.ledger import Ledger

from .conftest import PASSPHRASE


def _state(path: Path, hex_id: str) -> tuple[int, str | None, set[int]]:
    con = sqlite3.connect(path)
    try:
        counter, gen = con.execute("SELECT next_serial, serial_gen FROM identities"
                                   " WHERE key_id = ?", (hex_id,)).fetchone()
        free = {r[0] for r in con.execute("SELECT serial FROM free_serials")}
    finally:
        con.close()
    return counter, gen, free


def _copy(path: Path, to: Path) -> None:
    """A closed ledger file (WAL checkpointed on close) copied as a backup would be."""
    shutil.copyfile(path, to)


def _put_back(backup: Path, path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, path)


def _tag_job(led: Ledger, kid, tmp: Path, count: int):
    return led.begin_tag(kid, count, original_path=str(tmp / "a.jpg"),
                         output_path=tmp / "a-tagged.jpg", tmp_path=tmp / ".a.part")


def test_parse_and_reconcile_rules() -> None:
    g1, g2, g3 = "1" * 16, "2" * 16, "3" * 16
    assert marks.parse("7\n") == marks.Mark(7, None)
    assert marks.parse(f"7 {g1}\n") == marks.Mark(7, g1)
    assert marks.parse(f"7 {g2} -\n") == marks.Mark(7, g2, None, pending=True)
    for bad in ("", "x", "-1", "7 zz", f"7 {g1} {g2} {g3}", "123456789"):
        assert marks.parse(bad) is None
    assert marks.reconcile(marks.Mark(7, g1), 7, g1) is None  # in step
    assert marks.reconcile(marks.Mark(9, g2, g1, pending=True), 7, g1) is None  # never committed
    assert marks.reconcile(marks.Mark(9, g2, g1, pending=True), 9, g2) is None  # committed
    assert marks.reconcile(marks.Mark(9, g2), 7, g1) == marks.Fix(9, True, g2)  # older ledger
    assert marks.reconcile(marks.Mark(9, g3, g2, pending=True), 7, g1) == marks.Fix(9, True, g3)
    assert marks.reconcile(marks.Mark(9, None), 7, g1) == marks.Fix(9, False, None)  # legacy
    assert marks.reconcile(None, 7, g1) is None


def test_failure_between_mark_and_commit_burns_nothing(home, monkeypatch, tmp_path) -> None:
    path = home / "ledger.sqlite3"
    with Ledger() as led:
        kid = led.create_identity("Alice", PASSPHRASE).key_id
        assert led.allocate_serials(kid, 2) == [1, 2]
        real = Ledger._write_mark

        def then_fail(self, hex_id, data):
            real(self, hex_id, data)
            if data.count(b" ") == 2:  # the pending mark: fail before the commit
                raise KeyboardInterrupt

        with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
            patch.setattr(Ledger, "_write_mark", then_fail)
            _tag_job(led, kid, tmp_path, 3)
    hex_id = kid.hex()
    mark = marks.parse((home / "keys" / f"{hex_id}.serial").read_text())
    assert mark.pending and mark.next == 6  # the mark ran ahead of the ledger
    assert _state(path, hex_id)[0] == 3
    with Ledger() as led:  # reopened: the transaction never committed, nothing is burned
        assert _state(path, hex_id)[0] == 3
        assert led.allocate_serials(kid, 1) == [3]
    assert marks.parse((home / "keys" / f"{hex_id}.serial").read_text()) == marks.Mark(
        4, _state(path, hex_id)[1])


def test_ledger_put_back_to_right_before_the_last_job_never_reissues(home, tmp_path) -> None:
    path = home / "ledger.sqlite3"
    with Ledger() as led:
        kid = led.create_identity("Alice", PASSPHRASE).key_id
        assert led.allocate_serials(kid, 2) == [1, 2]
    _copy(path, tmp_path / "backup.sqlite3")  # the automatic backup after a job
    with Ledger() as led:
        job = _tag_job(led, kid, tmp_path, 2)  # serials 3 and 4 go into a published photo
        assert job.serials == [3, 4]
    _put_back(tmp_path / "backup.sqlite3", path)
    with Ledger() as led:
        assert led.allocate_serials(kid, 1) == [5]


def test_reused_freed_serials_are_not_reissued_after_a_restore(home, tmp_path) -> None:
    path = home / "ledger.sqlite3"
    with Ledger() as led:
        kid = led.create_identity("Alice", PASSPHRASE).key_id
        led.abort_tag(_tag_job(led, kid, tmp_path, 2))  # serials 1, 2 freed
        assert led.serials_left(kid) == 65535
    _copy(path, tmp_path / "backup.sqlite3")
    with Ledger() as led:
        assert _tag_job(led, kid, tmp_path, 1).serials == [1]  # reused, then published
    _put_back(tmp_path / "backup.sqlite3", path)
    with Ledger() as led:  # the old free list is dropped: 1 (maybe published) and 2 burned
        counter, gen, free = _state(path, kid.hex())
        assert counter == 3 and not free
        assert gen == marks.parse((home / "keys" / f"{kid.hex()}.serial").read_text()).gen
        assert led.allocate_serials(kid, 1) == [3]


def test_legacy_mark_still_raises_the_counter(home) -> None:
    with Ledger() as led:
        kid = led.create_identity("Alice", PASSPHRASE).key_id
    (home / "keys" / f"{kid.hex()}.serial").write_text("7\n")  # an older FakeTagger's mark
    with Ledger() as led:
        assert led.allocate_serials(kid, 1) == [7]
    assert marks.parse((home / "keys" / f"{kid.hex()}.serial").read_text()).next == 8
