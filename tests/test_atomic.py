"""engine.atomic is the one way files are written (issue #19): one temp name, fsync, no clobbering,
nothing half-written after a failure, and recovery that knows every temp name ever used."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine import atomic
from engine.atomic import (
    Abandon,
    atomic_path,
    atomic_writer,
    clean_temps,
    is_temp_name,
    temp_path_for,
    write_atomic,
)

POSIX = os.name == "posix"
CURRENT = re.compile(r"\.(?P<target>.+)\.[0-9a-f]{12}\.part")
ENGINE = Path(__file__).resolve().parent.parent / "engine"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(temp name, final name) of every publish, however it happens (link or replace)."""
    seen: list[tuple[str, str]] = []
    real_link, real_replace = os.link, os.replace

    def link(src, dst, *a, **k):
        seen.append((Path(src).name, Path(dst).name))
        return real_link(src, dst, *a, **k)

    def replace(src, dst, *a, **k):
        seen.append((Path(src).name, Path(dst).name))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "replace", replace)
    return seen


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


# --- one temp naming for every writer -------------------------------------------------------------


def _photo(tmp_path: Path) -> None:
    from engine.photos import load_photo, save_photo

    src = tmp_path / "src" / "a.jpg"
    src.parent.mkdir()
    Image.fromarray(np.full((24, 32, 3), 120, np.uint8)).save(src)
    photo = load_photo(src)
    save_photo(photo, photo.rgb, tmp_path / "a-tagged.jpg")


def _key_file(tmp_path: Path) -> None:
    from engine.identity import write_private_file

    write_private_file(tmp_path / "k.pem", b"secret")


def _user_file(tmp_path: Path) -> None:
    from engine.files import write_file

    write_file(tmp_path / "card.json", b"{}", overwrite=False)


def _settings(tmp_path: Path) -> None:
    from engine.settings import AppSettings

    AppSettings().save()


def _weights(tmp_path: Path) -> None:
    from engine.model.nets import ModelConfig, WatermarkNet
    from engine.model.weights import save_weights

    save_weights(WatermarkNet(ModelConfig()), tmp_path / "w.safetensors")


def _ledger_and_backup(tmp_path: Path) -> None:
    from engine.store.ledger_backups import make_backup, restore_ledger
    from engine.store.schema import open_ledger_db

    path = tmp_path / "ledger.sqlite3"
    conn = open_ledger_db(path)
    try:
        assert make_backup(conn, path) is not None
    finally:
        conn.close()
    restore_ledger(path)


def _bench_report(tmp_path: Path) -> None:
    from engine.bench.report import write_markdown

    write_markdown(tmp_path / "BENCH.md", "| a |\n")


def _training_members(tmp_path: Path) -> None:
    from engine.training.sources import _write_members

    _write_members([("m/a.png", lambda: b"png")], {"m/a.png"}, tmp_path)


WRITERS: dict[str, Callable[[Path], None]] = {
    "write_atomic": lambda d: write_atomic(d / "x.bin", b"x"),
    "photo": _photo,
    "key file": _key_file,
    "user file": _user_file,
    "settings": _settings,
    "weights": _weights,
    "ledger, backup, restore": _ledger_and_backup,
    "bench report": _bench_report,
    "training cache member": _training_members,
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_every_writer_publishes_from_one_temp_naming_and_fsyncs(
    writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    published: list[tuple[str, str]], fsyncs: list[int],
) -> None:
    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "home"))
    WRITERS[writer](tmp_path)
    assert published, "nothing was published through a rename or link"
    for temp, final in published:
        if ".damaged-" in final:
            continue  # restore moves the old ledger aside: a rename, not a write
        match = CURRENT.fullmatch(temp)
        assert match and match["target"] == final, (temp, final)
        assert is_temp_name(temp)
    assert len(fsyncs) >= len(published)  # each file (and its folder) synced
    leftovers = [p for p in tmp_path.rglob("*") if is_temp_name(p.name)]
    assert not leftovers


def test_no_hand_written_atomic_write_left_in_the_engine() -> None:
    """fsync, replace and link are engine.atomic's; a second copy drifts (issue #19)."""
    allowed = {
        "atomic.py",
        "training/train.py",  # training checkpoints: dev tooling
    }
    offenders = []
    for path in ENGINE.rglob("*.py"):
        rel = path.relative_to(ENGINE).as_posix()
        text = path.read_text(encoding="utf-8")
        if rel not in allowed and re.search(r"os\.(fsync|replace|link)\(", text):
            offenders.append(rel)
    assert not offenders


# --- fsync, failures, overwrite ----------------------------------------------------------------


def test_write_atomic_fsyncs_the_file_and_the_folder(tmp_path: Path, fsyncs: list[int]) -> None:
    write_atomic(tmp_path / "a", b"data")
    assert len(fsyncs) == (2 if POSIX else 1)
    assert (tmp_path / "a").read_bytes() == b"data"


def test_failure_mid_write_leaves_no_temp_and_no_target(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half")
        raise RuntimeError("killed")
    assert files_in(tmp_path) == []


def test_failure_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"new but half")
        raise RuntimeError("killed")
    assert files_in(tmp_path) == ["a.bin"] and target.read_bytes() == b"old"


def test_failing_fsync_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(tmp_path / "a.bin", b"data")
    assert files_in(tmp_path) == []


def test_failing_publish_removes_the_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_atomic(tmp_path / "a.bin", b"data")
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("links", [True, False])
def test_overwrite_false_never_clobbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        links: bool) -> None:
    if not links:
        def no_link(*_a: object) -> None:
            raise OSError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    target = tmp_path / "a.bin"
    target.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        write_atomic(target, b"ours", overwrite=False)
    assert target.read_bytes() == b"theirs"
    target.unlink()
    # A file that appears while ours is being written is not replaced either.
    with pytest.raises(FileExistsError), atomic_writer(target, overwrite=False) as fh:
        fh.write(b"ours")
        target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs" and files_in(tmp_path) == ["a.bin"]
    write_atomic(target, b"ours", overwrite=True)
    assert target.read_bytes() == b"ours"


def test_mode_is_set_at_creation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = atomic.publish

    def spy(tmp: Path, path: Path, *, overwrite: bool) -> None:
        seen.append(stat.S_IMODE(tmp.stat().st_mode))
        real(tmp, path, overwrite=overwrite)

    monkeypatch.setattr(atomic, "publish", spy)
    write_atomic(tmp_path / "k", b"secret", mode=0o600)
    if POSIX:
        assert seen == [0o600] and stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_abandon_publishes_nothing_quietly(tmp_path: Path) -> None:
    with atomic_writer(tmp_path / "a") as fh:
        fh.write(b"x")
        raise Abandon
    with atomic_path(tmp_path / "b") as name:
        sqlite3.connect(name).close()
        raise Abandon
    assert files_in(tmp_path) == []


def test_atomic_path_publishes_a_closed_sqlite_file(tmp_path: Path) -> None:
    target = tmp_path / "db.sqlite3"
    with atomic_path(target, overwrite=False, mode=0o600) as name:
        conn = sqlite3.connect(name)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    assert files_in(tmp_path) == ["db.sqlite3"]
    assert sqlite3.connect(target).execute("SELECT count(*) FROM t").fetchone() == (0,)
    with pytest.raises(FileExistsError), atomic_path(target, overwrite=False):
        pass


def test_failed_sqlite_fill_removes_the_temp_and_its_journal(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "db.sqlite3") as name:
        Path(f"{name}-journal").write_bytes(b"j")
        raise RuntimeError("killed")
    assert files_in(tmp_path) == []


# --- recovery ------------------------------------------------------------------------------------

#: Every temp name this project writes now or wrote before #19, with who wrote it.
LEFTOVERS = {
    ".a.jpg.0123456789ab.part": "now (engine.atomic.temp_path_for)",
    ".a-tagged.jpg.0123456789abcdef.part": "tagged photos (16 hex digits)",
    ".a-tagged.jpg.0123456789abcdef.part.c2pa": "the C2PA signed copy of a photo temp",
    ".settings.json.part": "settings",
    ".ledger-20240101T000000000000Z.sqlite3.part": "ledger backups",
    ".ledger-20240101T000000000000Z.sqlite3.part-journal": "ledger backups (SQLite journal)",
    ".BENCH.md.part": "bench report",
    ".k.pem.0123456789ab.tmp": "key files",
    ".ledger.sqlite3.0123456789ab.new": "a new ledger",
    ".ledger.sqlite3.0123456789ab.new-journal": "a new ledger (SQLite journal)",
    ".ledger.sqlite3.restore": "a ledger restore",
    ".m.png.4242.tmp": "training cache members",
    ".f.png.4242.tmp.png": "training video frames",
    "w.safetensors.part": "weights",
}
NOT_TEMPS = ["a.jpg", "a.jpg.part", ".part", ".bashrc", ".foo.tmp", "ledger.sqlite3",
             "ledger.sqlite3-journal", "notes.tmp", ".a.restore.jpg", "k.pem"]


@pytest.mark.parametrize("name", sorted(LEFTOVERS))
def test_every_temp_kind_is_recognised(name: str) -> None:
    assert is_temp_name(name), LEFTOVERS[name]


@pytest.mark.parametrize("name", NOT_TEMPS)
def test_finished_and_user_files_are_not_temps(name: str) -> None:
    assert not is_temp_name(name)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_clean_temps_removes_every_stale_kind_and_nothing_else(tmp_path: Path) -> None:
    for name in [*LEFTOVERS, *NOT_TEMPS]:
        (tmp_path / name).write_bytes(b"x")
        _age(tmp_path / name, 2 * atomic.STALE_AFTER_S)
    fresh = temp_path_for(tmp_path / "busy.jpg")  # another process is writing it right now
    fresh.write_bytes(b"x")
    (tmp_path / ".sub.part").mkdir()  # a folder is never ours to delete
    assert fresh != temp_path_for(tmp_path / "busy.jpg")  # random: two writers never share one
    removed = clean_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted(LEFTOVERS)
    assert files_in(tmp_path) == sorted([*NOT_TEMPS, fresh.name, ".sub.part"])
    assert clean_temps(tmp_path / "nope") == []  # best effort: never fails


def test_opening_the_ledger_recovers_its_folder(tmp_path: Path) -> None:
    from engine.store.schema import open_ledger_db

    stale = [tmp_path / ".ledger.sqlite3.0123456789ab.new", tmp_path / ".ledger.sqlite3.restore",
             tmp_path / ".ledger.sqlite3.0123456789ab.part"]
    for p in stale:
        p.write_bytes(b"")
        _age(p, 2 * atomic.STALE_AFTER_S)
    open_ledger_db(tmp_path / "ledger.sqlite3").close()
    assert [p for p in stale if p.exists()] == []
    assert "ledger.sqlite3" in files_in(tmp_path)


def test_a_backup_recovers_the_backups_folder(tmp_path: Path) -> None:
    from engine.store.ledger_backups import backups_dir, list_backups, make_backup
    from engine.store.schema import open_ledger_db

    path = tmp_path / "ledger.sqlite3"
    folder = backups_dir(path)
    folder.mkdir()
    stale = folder / ".ledger-20240101T000000000000Z.sqlite3.part"
    stale.write_bytes(b"")
    _age(stale, 2 * atomic.STALE_AFTER_S)
    conn = open_ledger_db(path)
    try:
        made = make_backup(conn, path)
    finally:
        conn.close()
    assert files_in(folder) == [made.name] and list_backups(path) == [made]
    if POSIX:
        assert stat.S_IMODE(made.stat().st_mode) == 0o600


def test_loading_settings_recovers_the_config_folder(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.settings import AppSettings, settings_path

    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path))
    stale = settings_path().parent / ".settings.json.part"
    stale.write_text("{")
    _age(stale, 2 * atomic.STALE_AFTER_S)
    assert AppSettings.load() == AppSettings()
    assert not stale.exists()


def test_a_name_being_written_in_any_convention_is_not_offered(tmp_path: Path) -> None:
    from engine.photos import unique_output_path

    (tmp_path / ".a-tagged.jpg.0123456789ab.part").touch()
    (tmp_path / ".a-tagged-2.jpg.part").touch()
    assert unique_output_path(tmp_path, Path("a.jpg")).name == "a-tagged-3.jpg"
