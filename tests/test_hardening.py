"""Issue 11 regressions that need a set-up of their own (the rest are in the hostile corpus,
tests/hostile.py, and the crash trials, tests/test_crash_safety.py). Real files, SQLite, MTCNN and
model throughout."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.errors import LedgerError
from engine.pipeline import run_all
from engine.protect import Reason
from engine.protect.spec import JobSpec
from engine.store.batches import ItemState
from engine.store.ledger import Ledger
from engine.store.schema import MIGRATIONS

from .conftest import PASSPHRASE, SAMPLE


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _tag(pipeline, identity, out_dir: Path, src: Path = SAMPLE, **kw):
    [res] = run_all(pipeline.protect([src], identity, JobSpec(out_dir=out_dir, **kw)))
    return res


def test_schema_1_ledger_is_migrated_with_its_records(home, tmp_path):
    """An existing ledger (schema 1, before issue 11) opens, migrates and keeps everything."""
    path = tmp_path / "old.sqlite3"
    with Ledger(path) as led:
        ident = led.create_identity("Alice", PASSPHRASE)
        unlocked = led.unlock(None, PASSPHRASE)
        from engine.payload import Payload
        from engine.photos import encode_jpeg_thumbnail
        from engine.store.records import sign_record

        [serial] = led.allocate_serials(ident.key_id, 1)
        import numpy as np

        rec = sign_record(unlocked, serial=serial, payload_hex=Payload.create(
            unlocked.mac_key, unlocked.key_id, serial, 1).to_hex(), file_sha256="ab" * 32,
            face_box=[0, 0, 9, 9], face_thumb_jpeg=encode_jpeg_thumbnail(
                np.zeros((8, 8, 3), np.uint8)))
        led.add_record(rec, original_path="/a.jpg", output_path="/b.jpg")
    # Turn it back into a schema-1 file: what an older FakeTagger left on disk.
    con = sqlite3.connect(path)
    con.executescript("ALTER TABLE identities DROP COLUMN c2pa_chain;"
                      "ALTER TABLE contacts DROP COLUMN c2pa_chain; DROP TABLE trust_anchors;"
                      "DELETE FROM schema_migrations WHERE version = 6;"
                      "ALTER TABLE identities DROP COLUMN parent_key_id;"
                      "ALTER TABLE identities DROP COLUMN certificate;"
                      "ALTER TABLE contacts DROP COLUMN parent_key_id;"
                      "ALTER TABLE contacts DROP COLUMN certificate;"
                      "DELETE FROM schema_migrations WHERE version = 5;"
                      "ALTER TABLE identities DROP COLUMN serial_gen;"
                      "DELETE FROM schema_migrations WHERE version = 4;"
                      "DROP TABLE batch_items; DROP TABLE batch_jobs;"
                      "DELETE FROM schema_migrations WHERE version = 3;"
                      "DROP TABLE reservations; DROP TABLE free_serials;"
                      "DROP INDEX records_by_token; ALTER TABLE records DROP COLUMN token;"
                      "ALTER TABLE records DROP COLUMN state;"
                      "DELETE FROM schema_migrations WHERE version = 2; PRAGMA user_version = 1;")
    con.close()
    assert len(MIGRATIONS) == 6
    with Ledger(path) as led:
        assert led._conn.execute("PRAGMA user_version").fetchone()[0] == 6
        assert [r.serial for r in led.records_of(ident.key_id)] == [serial]
        assert led.history()[0].original_path == "/a.jpg"
        assert led.serials_left(ident.key_id) == 65535 - 1


def test_name_clash_at_publish_picks_a_new_name(pipeline, identity, tmp_path, monkeypatch):
    """Another program takes the chosen output name while the photo is being tagged: the tagged
    copy gets the next free name, the other file is untouched, the record follows the file."""
    import engine.protect.sequence as sequence

    out_dir = tmp_path / "out"
    real = sequence.write_temp_bytes

    def and_then_someone_else_writes(data, photo_path, out_path, tmp, **kw):
        real(data, photo_path, out_path, tmp, **kw)
        Path(out_path).write_bytes(b"someone else's file")

    monkeypatch.setattr(sequence, "write_temp_bytes", and_then_someone_else_writes)
    res = _tag(pipeline, identity, out_dir)
    assert res.error is None and res.output.name == "sample-tagged-2.jpg"
    assert (out_dir / "sample-tagged.jpg").read_bytes() == b"someone else's file"
    [row] = pipeline.ledger.history()
    assert row.output_path == str(res.output)
    assert sorted(p.name for p in out_dir.iterdir()) == ["sample-tagged-2.jpg",
                                                         "sample-tagged.jpg"]


def test_full_disk_is_one_line_and_burns_nothing(pipeline, identity, tmp_path):
    """SQLite's own "database or disk is full" (the ledger may not grow): a one-line error, no
    tagged file left behind, no serial used up."""
    led = pipeline.ledger
    assert _tag(pipeline, identity, tmp_path / "first").output  # the record pages fill up
    left = led.serials_left(identity.key_id)
    led._conn.execute("VACUUM")  # no free pages left: the next page needed is a new one
    pages = led._conn.execute("PRAGMA page_count").fetchone()[0]
    led._conn.execute(f"PRAGMA max_page_count = {pages}")
    res = _tag(pipeline, identity, tmp_path / "out")
    assert res.error and "disk is full" in res.error and "\n" not in res.error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    led._conn.execute("PRAGMA max_page_count = 1073741823")
    led.recover()
    assert led.serials_left(identity.key_id) == left


def test_history_keeps_absolute_original_paths(pipeline, identity, tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "me.jpg").write_bytes(SAMPLE.read_bytes())
    monkeypatch.chdir(tmp_path)
    res = _tag(pipeline, identity, Path("out"), src=Path("in/me.jpg"))
    [row] = pipeline.ledger.history()
    assert row.original_path == str(tmp_path / "in" / "me.jpg")
    assert row.output_path == str(tmp_path / "out" / res.output.name)


def test_already_tagged_photo_is_skipped_unless_retag(pipeline, identity, tmp_path):
    first = _tag(pipeline, identity, tmp_path / "a")
    again = _tag(pipeline, identity, tmp_path / "b", src=first.output)
    assert again.state is ItemState.SKIPPED and again.reason is Reason.HAS_TAG and "already tagged" in again.error and again.output is None
    assert not (tmp_path / "b").exists()
    forced = _tag(pipeline, identity, tmp_path / "c", src=first.output, retag=True)
    assert forced.output is not None and forced.faces


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_backups_and_cards_are_private(home, capsys, tmp_path):
    assert cli(capsys, "identity", "create", "--name", "Alice")[0] == 0
    for argv, path in ((("identity", "backup"), tmp_path / "k.json"),
                       (("card", "export"), tmp_path / "c.json")):
        assert cli(capsys, *argv, str(path))[0] == 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for backup in (home / "backups").iterdir():
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_damaged_record_inside_the_ledger_is_one_line(home, capsys, tmp_path):
    """Bytes flipped inside a stored record (SQLite's page checks cannot see it): history, card
    export and verify say the ledger is damaged and how to restore it; no traceback."""
    assert cli(capsys, "identity", "create", "--name", "Alice")[0] == 0
    assert cli(capsys, "protect", str(SAMPLE), "--out", str(tmp_path / "o"))[0] == 0
    con = sqlite3.connect(home / "ledger.sqlite3")
    con.execute("UPDATE records SET record_json = substr(record_json, 1, 40) || '\x01garbage'")
    con.commit()
    con.close()
    for argv in (("history",), ("card", "export", str(tmp_path / "c.json"))):
        code, _, err = cli(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and "damaged" in err and "restore" in err
        assert "Traceback" not in err


def test_key_backup_restore_after_ledger_loss_never_reuses_serials(home, capsys, tmp_path):
    """Issue 11: the ledger is lost, a new one made, an OLD key backup restored: serials go on
    after the highest one ever handed out here, and the key file left behind is taken back."""
    assert cli(capsys, "identity", "create", "--name", "Alice")[0] == 0
    old_backup = tmp_path / "old.key.json"
    assert cli(capsys, "identity", "backup", str(old_backup))[0] == 0  # next_serial 1
    for k in range(3):
        assert cli(capsys, "protect", str(SAMPLE), "--out", str(tmp_path / f"o{k}"))[0] == 0
    ledger = home / "ledger.sqlite3"
    ledger.write_bytes(b"")  # the loss
    code, _, err = cli(capsys, "identity", "restore", str(old_backup))
    assert code == 1 and "empty" in err and "ledger restore" in err  # refused, not re-created
    ledger.unlink()
    for side in ("-wal", "-shm"):
        Path(str(ledger) + side).unlink(missing_ok=True)
    for backup in (home / "backups").iterdir():  # and no automatic backup either
        backup.unlink()
    code, out, err = cli(capsys, "identity", "restore", str(old_backup))
    assert code == 0, err
    code, out, _ = cli(capsys, "protect", str(SAMPLE), "--out", str(tmp_path / "after"))
    assert code == 0 and "serials 4" in out


def test_settings_ranges_come_from_the_engine(qtbot, home):
    from app.context import AppContext
    from app.settings_tab import SettingsTab
    from engine.limits import JPEG_QUALITY, STRENGTH, THRESHOLD

    ctx = AppContext()
    tab = SettingsTab(ctx)
    qtbot.addWidget(tab)
    assert (tab.strength.minimum(), tab.strength.maximum()) == (STRENGTH.lo, STRENGTH.hi)
    assert (tab.threshold.minimum(), tab.threshold.maximum()) == (THRESHOLD.lo, THRESHOLD.hi)
    assert (tab.jpeg_quality.minimum(), tab.jpeg_quality.maximum()) == (JPEG_QUALITY.lo,
                                                                        JPEG_QUALITY.hi)
    ctx.ledger.close()


def test_option_types_validate_themselves(ledger):
    from engine.limits import OptionError
    from engine.pipeline import Pipeline

    for kw in ({"strength": float("nan")}, {"strength": 0.0}, {"jpeg_quality": 0},
               {"fmt": "gif"}, {"threshold": 5.0}, {"min_face": -3}):
        with pytest.raises(OptionError):
            JobSpec(**kw)
        assert isinstance(OptionError("x"), LedgerError.__mro__[1])  # a FakeTaggerError
    for kw in ({"threshold": 5.0}, {"min_face": -3}):
        with pytest.raises(OptionError):
            Pipeline(ledger, device="cpu", **kw)
    assert json.loads(json.dumps({"ok": True}))


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KiB file system (tmpfs), where this machine allows mounting one (root in a
    container with the right to mount); skipped elsewhere."""
    import subprocess

    where = tmp_path / "disk"
    where.mkdir()
    if os.name != "posix" or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small file system here")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_full_photo_disk_and_read_only_folders_are_one_line(home, capsys, small_disk, tmp_path):
    import subprocess

    assert cli(capsys, "identity", "create", "--name", "Alice")[0] == 0
    code, out, err = cli(capsys, "protect", str(SAMPLE), "--out", str(small_disk / "out"),
                         "--format", "png")  # a lossless copy is far over 64 KiB
    assert code == 1 and err.count("\n") == 1 and "disk is full" in err, (code, out, err)
    assert [p.name for p in (small_disk / "out").iterdir()] == []  # no temp, no half file
    with Ledger() as led:
        assert led.serials_left(led.default_identity().key_id) == 65535  # nothing burned
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)]).returncode == 0
    for out_dir in (small_disk / "out", small_disk / "new"):
        code, _, err = cli(capsys, "protect", str(SAMPLE), "--out", str(out_dir))
        assert code == 1 and err.count("\n") == 1 and "read-only" in err
    code, _, err = cli(capsys, "verify", str(SAMPLE), "--report", str(small_disk / "r.html"))
    assert code == 1 and err.count("\n") == 1 and "cannot write" in err
    os.environ["FAKETAGGER_HOME"] = str(small_disk / "home")
    code, _, err = cli(capsys, "identity", "list")
    assert code == 1 and "data folder" in err and "Read-only" in err


def test_commit_failure_after_publish_is_finished_on_next_open(home, identity, ledger, tmp_path):
    """The file is out but its records cannot be committed (the ledger failed right then): the
    photo reports it in one line, and the next open of the ledger commits the staged records."""
    from engine.pipeline import Pipeline

    def fails(self, job):
        raise LedgerError("ledger: the disk is full; nothing was recorded")

    real = Ledger.finish_tag
    Ledger.finish_tag = fails
    try:
        res = _tag(Pipeline(ledger, device="cpu"), identity, tmp_path / "out")
    finally:
        Ledger.finish_tag = real
    assert res.error and "was written" in res.error and "next time" in res.error
    [written] = list((tmp_path / "out").iterdir())
    assert ledger.history() == []  # staged, not yet final
    ledger.close()
    with Ledger() as again:
        assert again.recovered.finished == [str(written)]
        [row] = again.history()
        assert row.output_path == str(written)
