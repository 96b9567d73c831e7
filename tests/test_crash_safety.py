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
from engine.protect import protect_photo
from engine.protect.spec import JobSpec
from engine.store.ledger import Ledger

from .conftest import PASSPHRASE, SAMPLE

pytestmark = pytest.mark.skipif(sys.platform == "win32" or not hasattr(os, "fork"),
                                reason="needs fork and SIGKILL")

#: Named points: after each durable step, inside the serial-mark window (the high-water mark
#: written, the reservation not yet committed; and committed, the mark not yet confirmed), and
#: inside the publish window (between the hard link that gives the file its name and the removal
#: of the temp name).
POINTS = ["after_mark_written", "before_mark_confirmed", "after_reserve", "after_temp_written",
          "after_stage", "inside_publish", "after_publish", "after_finish"]
#: Random moments, drawn over the run's steps: the k-th Python event (call, return, call into C)
#: in FakeTagger's own code, k uniform over a whole run. Deterministic, so every one lands
#: mid-run however loaded the machine is; each must kill.
RANDOM_TRIALS = 20
#: Random moments in time (a timer, so a kill can also land inside C code: SQLite, a write).
#: Checked for consistency like the others; how many land mid-run depends on the machine's
#: speed, so no count is required of them.
TIMED_TRIALS = 8


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _count_steps(kill_at: int | None) -> list[int]:
    """In the child: count the profile events whose frame is FakeTagger's engine code; with
    *kill_at*, SIGKILL at that event. Returns the running count (one item)."""
    import engine

    count = [0]

    root = os.path.dirname(os.path.abspath(engine.__file__)) + os.sep

    def hook(frame, _event, _arg):
        if frame.f_code.co_filename.startswith(root):
            count[0] += 1
            if count[0] == kill_at:
                _kill_self()

    sys.setprofile(hook)
    return count


def _arm(point: str, ledger_cls: type[Ledger]) -> None:
    """In the child: make the chosen step end in SIGKILL right after it completes."""
    import engine.protect.sequence as sequence

    def before(obj, name):
        real = getattr(obj, name)

        def wrapper(*a, **kw):
            _kill_self()
            return real(*a, **kw)

        setattr(obj, name, wrapper)

    def after(obj, name, *, owner=None):
        real = getattr(obj, name)

        def wrapper(*a, **kw):
            out = real(*a, **kw)
            _kill_self()
            return out

        setattr(owner or obj, name, wrapper)

    if point == "after_mark_written":  # the pending mark is the first mark write of the run
        after(ledger_cls, "_write_mark")
    elif point == "before_mark_confirmed":
        before(ledger_cls, "_confirm_serial_mark")
    elif point == "after_reserve":
        after(ledger_cls, "begin_tags")
    elif point == "after_temp_written":
        after(sequence, "write_temp_bytes")
    elif point == "after_stage":
        after(ledger_cls, "stage_tag")
    elif point == "inside_publish":
        after(os, "link")
    elif point == "after_publish":
        after(sequence, "publish_photo")
    elif point == "after_finish":
        after(ledger_cls, "finish_tag")
    elif point.startswith("random:"):  # SIGKILL after a random delay, wherever protect is
        delay = float(point.split(":", 1)[1])
        signal.signal(signal.SIGALRM, lambda *_: _kill_self())
        signal.setitimer(signal.ITIMER_REAL, delay)


def _child(point: str, home: Path, photo, faces, model, out_dir: Path) -> None:
    try:
        # GNU OpenMP is not fork-safe: once the parent has run torch's thread pool (as it does
        # unless OMP_NUM_THREADS=1), the child's first parallel op waits forever on the parent's
        # dead workers (seen in CI: the copy in Watermarker._to_input). One thread never enters
        # OpenMP, so the child runs the same code without the pool.
        import torch

        torch.set_num_threads(1)
        steps = None
        if point.startswith("step:") or point == "count":  # kill at the k-th event, or count
            steps = _count_steps(int(point.split(":", 1)[1]) if point != "count" else None)
        else:
            _arm(point, Ledger)
        with Ledger(home / "ledger.sqlite3") as ledger:
            unlocked = ledger.unlock(None, PASSPHRASE)
            protect_photo(photo, faces, unlocked, ledger, model, JobSpec(out_dir=out_dir))
        sys.setprofile(None)
        signal.setitimer(signal.ITIMER_REAL, 0)
        if steps is not None and point == "count":
            (out_dir.parent / "steps").write_text(str(steps[0]))
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


def _killed(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _trial_and_check(point, home, photo, faces, model, out_dir) -> bool:
    """One trial, then the ledger is reopened and checked; True when the child was killed."""
    status = _run_trial(point, home, photo, faces, model, out_dir)
    assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3), point
    counts = check_consistency(home, out_dir)
    bad = {k: v for k, v in counts.items() if k != "tagged" and v}
    assert not bad, f"after a kill at {point}: {bad}"
    return _killed(status)


def test_kill_at_every_step_and_at_random_moments_loses_nothing(setup, tmp_path):
    home, photo, faces, model = setup
    out_dir = tmp_path / "out"
    # A whole run (open, unlock, tag one photo), counted in steps and timed.
    calib = tmp_path / "calibrate"
    assert os.WIFEXITED(_run_trial("count", home, photo, faces, model, calib / "out"))
    steps = int((calib / "steps").read_text())
    start = time.monotonic()
    assert os.WIFEXITED(_run_trial("none", home, photo, faces, model, calib / "out"))
    duration = time.monotonic() - start
    assert steps > 1000
    for point in POINTS:  # each named point must really kill the child
        assert _trial_and_check(point, home, photo, faces, model, out_dir), point
    # The named points after the publish kept the photo; the ones before it freed the serials.
    assert check_consistency(home, out_dir)["tagged"] >= 2
    rng = random.Random(11)
    step_kills = []
    for _ in range(RANDOM_TRIALS):
        k = rng.randint(1, steps)
        for _retry in range(5):  # a run that took fewer steps ended first: draw an earlier one
            if _trial_and_check(f"step:{k}", home, photo, faces, model, out_dir):
                step_kills.append(k)
                break
            k = rng.randint(1, k)
    assert len(step_kills) == RANDOM_TRIALS, step_kills
    for _ in range(TIMED_TRIALS):
        _trial_and_check(f"random:{rng.uniform(0.0, duration):.4f}", home, photo, faces, model,
                         out_dir)


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
                            JobSpec(out_dir=tmp_path / "o"))
        assert out.output.name == "sample-tagged.jpg"  # the dead run left no file in the way
        assert ledger.serials_left(unlocked.key_id) == before - len(faces)
