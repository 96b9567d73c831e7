"""Crash consistency of protect (issue 11): kill -9 at every step of the tagging sequence and at
random moments, then reopen the ledger (which recovers) and check that nothing is lost, orphaned,
duplicated or burned.

Each trial forks a child that tags one photo with the real model, MTCNN faces, files and SQLite,
and SIGKILLs itself at the chosen point (a real kill -9: no finally blocks, no atexit, locks
dropped by the kernel). Forking keeps the loaded models, so a trial costs a fraction of a second.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from engine.pipeline import Pipeline
from engine.protect import ProtectOptions, protect_photo
from engine.store.ledger import Ledger

from .conftest import PASSPHRASE, SAMPLE

pytestmark = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "fork"),
                                reason="needs fork and SIGKILL")

#: Named points: after each durable step, and inside the publish window (between the hard link
#: that gives the file its name and the removal of the temp name).
POINTS = ["after_reserve", "after_temp_written", "after_stage", "inside_publish",
          "after_publish", "after_finish"]
RANDOM_TRIALS = 20


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str, ledger_cls: type[Ledger]) -> None:
    """In the child: make the chosen step end in SIGKILL right after it completes."""
    import engine.protect as protect

    def after(obj, name, *, owner=None):
        real = getattr(obj, name)

        def wrapper(*a, **kw):
            out = real(*a, **kw)
            _kill_self()
            return out

        setattr(owner or obj, name, wrapper)

    if point == "after_reserve":
        after(ledger_cls, "begin_tag")
    elif point == "after_temp_written":
        after(protect, "write_photo_temp")
    elif point == "after_stage":
        after(ledger_cls, "stage_tag")
    elif point == "inside_publish":
        after(os, "link")
    elif point == "after_publish":
        after(protect, "publish_photo")
    elif point == "after_finish":
        after(ledger_cls, "finish_tag")
    elif point.startswith("random:"):  # SIGKILL after a random delay, wherever protect is
        delay = float(point.split(":", 1)[1])
        signal.signal(signal.SIGALRM, lambda *_: _kill_self())
        signal.setitimer(signal.ITIMER_REAL, delay)


def _child(point: str, home: Path, photo, faces, model, out_dir: Path) -> None:
    try:
        _arm(point, Ledger)
        with Ledger(home / "ledger.sqlite3") as ledger:
            unlocked = ledger.unlock(None, PASSPHRASE)
            protect_photo(photo, faces, unlocked, ledger, model, ProtectOptions(out_dir=out_dir))
        signal.setitimer(signal.ITIMER_REAL, 0)
        os._exit(0)
    except BaseException:  # noqa: BLE001 - a child must never return into pytest
        os._exit(3)


def _run_trial(point, home, photo, faces, model, out_dir) -> int:
    pid = os.fork()
    if pid == 0:
        _child(point, home, photo, faces, model, out_dir)
    _, status = os.waitpid(pid, 0)
    return status


def check_consistency(home: Path, out_dir: Path) -> dict:
    """Open the ledger (recovery runs) and count what issue 11 forbids."""
    with Ledger(home / "ledger.sqlite3") as ledger:
        ledger.recover()
        pending = ledger.pending_jobs()
    con = sqlite3.connect(home / "ledger.sqlite3")
    try:
        rows = con.execute("SELECT serial, state, output_path, record_json FROM records"
                           " WHERE identity_key_id IS NOT NULL").fetchall()
        next_serial = con.execute("SELECT next_serial FROM identities").fetchone()[0]
        free = {r[0] for r in con.execute("SELECT serial FROM free_serials")}
    finally:
        con.close()
    import hashlib

    files = sorted(p for p in out_dir.iterdir()) if out_dir.exists() else []
    temps = [p for p in files if p.name.startswith(".")]
    tagged = [p for p in files if not p.name.startswith(".")]
    by_output: dict[str, set[str]] = {}
    for _serial, _state, out, rec in rows:
        by_output.setdefault(out, set()).add(json.loads(rec)["file_sha256"])
    lost = [p for p in tagged if str(p) not in by_output or
            hashlib.sha256(p.read_bytes()).hexdigest() not in by_output[str(p)]]
    orphans = [out for out in by_output if not Path(out).exists()]
    serials = [r[0] for r in rows]
    used = set(serials)
    return {
        "lost": len(lost),  # tagged files the ledger does not know
        "orphan_records": len(orphans),  # records of files that are not there
        "duplicates": len(serials) - len(used),
        "burned": len(set(range(1, next_serial)) - used - free),
        "pending_records": sum(1 for r in rows if r[1] != "done"),
        "pending_jobs": len(pending),
        "temp_files": len(temps),
        "tagged": len(tagged),
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    os.environ.setdefault("FAKETAGGER_PASSPHRASE", PASSPHRASE)
    home = tmp_path_factory.mktemp("crash-home")
    from engine.photos import load_photo

    with Ledger(home / "ledger.sqlite3") as ledger:
        ledger.create_identity("Alice", PASSPHRASE)
        pipe = Pipeline(ledger, device="cpu")
        photo = load_photo(SAMPLE)
        faces = pipe.detect(photo.rgb)
        model = pipe.model
    assert faces
    return home, photo, faces, model


def test_kill_at_every_step_and_at_random_moments_loses_nothing(setup, tmp_path):
    home, photo, faces, model = setup
    out_dir = tmp_path / "out"
    # How long a whole run takes (open, unlock, tag one photo): random kills land inside it.
    start = time.monotonic()
    assert os.WIFEXITED(_run_trial("none", home, photo, faces, model, tmp_path / "calibrate"))
    duration = time.monotonic() - start
    rng = random.Random(11)
    delays = [rng.uniform(0.0, duration) for _ in range(RANDOM_TRIALS)]
    points = POINTS + [f"random:{d:.4f}" for d in delays]
    killed = []
    for point in points:
        status = _run_trial(point, home, photo, faces, model, out_dir)
        assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3), point
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            killed.append(point)
        counts = check_consistency(home, out_dir)
        bad = {k: v for k, v in counts.items() if k != "tagged" and v}
        assert not bad, f"after a kill at {point}: {bad}"
    assert set(POINTS) <= set(killed)  # every named point really killed the child
    assert len(killed) - len(POINTS) >= RANDOM_TRIALS // 2  # most random kills came mid-run
    # The named points after the publish kept the photo; the ones before it freed the serials.
    assert check_consistency(home, out_dir)["tagged"] >= 2


def test_a_rerun_after_a_kill_reuses_freed_serials(setup, tmp_path):
    home, photo, faces, model = setup
    with Ledger(home / "ledger.sqlite3") as ledger:
        before = ledger.serials_left(ledger.default_identity().key_id)
    status = _run_trial("after_stage", home, photo, faces, model, tmp_path / "o")
    assert os.WIFSIGNALED(status)
    with Ledger(home / "ledger.sqlite3") as ledger:  # opening recovers the dead run's job
        assert ledger.recovered.rolled_back and ledger.recovered.freed_serials == len(faces)
        assert ledger.serials_left(ledger.default_identity().key_id) == before
        unlocked = ledger.unlock(None, PASSPHRASE)
        out = protect_photo(photo, faces, unlocked, ledger, model,
                            ProtectOptions(out_dir=tmp_path / "o"))
        assert out.output.name == "sample-tagged.jpg"  # the dead run left no file in the way
        assert ledger.serials_left(unlocked.key_id) == before - len(faces)
