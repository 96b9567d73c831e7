"""Batch jobs, local engine (engine.run): a job in the ledger, a mirrored output tree, photos
without faces reported or copied, per-photo errors in the report, and resume after kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.pipeline import Progress
from engine.protect import ProtectOutcome, Reason
from engine.protect.spec import JobSpec
from engine.run.jobs import (
    capacity_problem,
    create_job,
    mirror_plan,
    protect_job,
    write_report,
)
from engine.run.local import run_batch
from engine.store.batches import ItemState
from engine.store.ledger import Ledger
from tests.batch_util import job_state, photo_tree
from tests.conftest import PASSPHRASE, ROOT


def outcomes(events) -> list[ProtectOutcome]:
    return [e for e in events if isinstance(e, ProtectOutcome)]


def test_mirror_plan_keeps_the_tree_and_leaves_out_the_output(tmp_path: Path) -> None:
    src = photo_tree(tmp_path)
    out = tmp_path / "out"
    plan = dict(mirror_plan([src], out))
    assert plan[src / "trip" / "day2" / "grace.jpg"] == out / "trip" / "day2"
    assert plan[src / "two.jpg"] == out
    two = mirror_plan([src / "trip", src / "misc"], out)
    assert dict(two)[src / "misc" / "sky.jpg"] == out / "misc"
    inside = mirror_plan([src], src / "trip")  # the output inside the input: never re-tagged
    assert all(not p.is_relative_to(src / "trip") for p, _ in inside)


def test_local_batch_tags_mirrors_reports_and_closes(tmp_path, ledger, identity, pipeline):
    src = photo_tree(tmp_path)
    (src / "broken.jpg").write_bytes(b"not a photo")
    out = tmp_path / "out"
    opts = JobSpec(copy_no_face=True)
    job = create_job(ledger, identity.key_id, mirror_plan([src], out), out, opts)
    events = list(run_batch(pipeline, identity, job))
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == 5 and progress[-1].rate() > 0
    by_name = {o.input.name: o for o in outcomes(events)}
    assert by_name["grace.jpg"].output.parent == out / "trip" / "day2"
    assert len(by_name["two.jpg"].faces) == 2
    assert by_name["sky.jpg"].output == out / "misc" / "sky.jpg"  # copied through
    assert by_name["sky.jpg"].state is ItemState.COPIED and by_name["two.jpg"].state is ItemState.TAGGED
    assert by_name["broken.jpg"].state is ItemState.FAILED
    info = ledger.batch_job(job)
    assert info.counts == {"tagged": 3, "copied": 1, "failed": 1} and not info.done
    items = {i.src.name: i for i in ledger.batch_items(job)}
    assert items["two.jpg"].serials and items["two.jpg"].state is ItemState.TAGGED
    assert job_state(ledger.path, out) | {"tagged": 0, "records": 0} == dict.fromkeys(
        ("lost", "orphans", "duplicates", "tagged_twice", "burned", "pending", "temps",
         "tagged", "records"), 0)
    write_report(ledger, job, tmp_path / "r.json")
    write_report(ledger, job, tmp_path / "r.csv")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [p["error"] for p in doc["photos"] if p["state"] == "failed"][0]
    assert "broken.jpg" in (tmp_path / "r.csv").read_text()
    # Resume: only the failed photo is tried again; fixed, the job closes.
    from shutil import copy

    os.unlink(src / "broken.jpg")
    copy(ROOT / "tests" / "data" / "grace_hopper.jpg", src / "broken.jpg")
    again = outcomes(run_batch(pipeline, identity, job))
    assert [o.input.name for o in again] == ["broken.jpg"]
    assert again[0].state is ItemState.FAILED and "changed since" in again[0].error
    assert ledger.batch_job(job).counts["failed"] == 1


def test_a_new_job_into_the_same_folder_skips_photos_already_tagged_there(
        tmp_path, ledger, identity, pipeline) -> None:
    """Issue #19: a photo whose tagged copy the ledger records in its output folder (and
    which is still there, and newer than the photo) is skipped with a note, by any job; an
    edited photo or a deleted copy is tagged again."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (src / name).write_bytes((ROOT / "tests" / "data" / "grace_hopper.jpg").read_bytes())
    out = tmp_path / "out"
    plan = mirror_plan([src], out)
    first = outcomes(run_batch(pipeline, identity, create_job(
        ledger, identity.key_id, plan, out, JobSpec())))
    assert [o.state for o in first] == [ItemState.TAGGED, ItemState.TAGGED]
    second = outcomes(run_batch(pipeline, identity, create_job(
        ledger, identity.key_id, plan, out, JobSpec())))
    assert all(o.state is ItemState.SKIPPED and o.reason is Reason.COPY_EXISTS
               and "already tagged into this output folder" in o.error
               and o.input.name in o.error for o in second) and len(second) == 2
    # b.jpg edited since it was tagged, a.jpg's copy deleted: both are tagged again.
    later = time.time() + 5
    os.utime(src / "b.jpg", (later, later))
    first[0].output.unlink()
    job = create_job(ledger, identity.key_id, plan, out, JobSpec())
    third = outcomes(run_batch(pipeline, identity, job))
    assert [o.state for o in third] == [ItemState.TAGGED, ItemState.TAGGED]
    assert ledger.batch_job(job).counts == {"tagged": 2}
    assert third[0].output == first[0].output  # the deleted copy's name, no "-2"


def test_jobs_detect_faces_with_the_settings_they_were_made_with(tmp_path, ledger, identity,
                                                                 pipeline) -> None:
    """Issue #19: one default for every front end, and a stored job runs with its own
    detection settings whatever the pipeline that resumes it was built with."""
    from engine.faces import DEFAULT_MIN_FACE, DEFAULT_THRESHOLD, FaceDetector

    assert JobSpec().threshold == DEFAULT_THRESHOLD == FaceDetector().threshold
    assert JobSpec().min_face == DEFAULT_MIN_FACE == FaceDetector().min_face
    photo = tmp_path / "src" / "g.jpg"
    photo.parent.mkdir()
    photo.write_bytes((ROOT / "tests" / "data" / "grace_hopper.jpg").read_bytes())
    gui = protect_job(ledger, identity.key_id, [photo],
                      JobSpec(tmp_path / "o", threshold=0.9, min_face=4000))
    assert ledger.batch_job(gui).options["threshold"] == 0.9
    res = outcomes(run_batch(pipeline, identity, gui))  # the pipeline itself has min_face 40
    assert res[0].state is ItemState.NO_FACE and ledger.batch_job(gui).counts == {"no_face": 1}


def test_capacity_is_checked_before_a_job(ledger, identity) -> None:
    assert capacity_problem(ledger, identity.key_id, 10) is None
    problem = capacity_problem(ledger, identity.key_id, 70_000)
    assert "65535 tag serials left" in problem and "identity create" in problem


def test_gui_protect_job_keeps_face_choices_and_skips_outputs(tmp_path, ledger, identity,
                                                               pipeline) -> None:
    src = photo_tree(tmp_path)
    two = src / "two.jpg"
    inside = src / "tagged" / "old-tagged.jpg"
    inside.parent.mkdir()
    inside.write_bytes((src / "trip" / "sample.jpg").read_bytes())
    job = protect_job(ledger, identity.key_id, [two, inside],
                      JobSpec(src / "tagged", faces={two: [0]}))
    res = outcomes(run_batch(pipeline, identity, job))
    assert len(res) == 1 and len(res[0].faces) == 1  # the one face chosen, the output skipped
    assert res[0].output.parent == src / "tagged"
    assert ledger.batch_job(job).done


# --- kill -9 and resume -------------------------------------------------------------------------

CLI = [sys.executable, "-m", "engine.cli"]


def _batch(args, home, **kw):
    env = {**os.environ, "FAKETAGGER_HOME": str(home), "FAKETAGGER_PASSPHRASE": PASSPHRASE,
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(CLI + ["batch", "--device", "cpu", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _job_id(home: Path) -> str:
    with Ledger(home / "ledger.sqlite3") as led:
        return led.batch_jobs()[0].id


def kill_and_resume(tmp_path: Path, trials: int, seed: int, extra: int = 3,
                    rerun: str = "id") -> list[dict]:
    """Kill a batch at random moments, then continue it the way *rerun* says: ``id``
    (``--resume JOB``), ``latest`` (``--resume`` alone) or ``same`` (the same command again,
    as people rerun rsync)."""
    home = tmp_path / "home"
    with Ledger(home / "ledger.sqlite3") as led:
        led.create_identity("Alice", PASSPHRASE)
    src = photo_tree(tmp_path)
    for k in range(extra):  # more photos (two faces each), so kills land mid-job
        (src / f"more{k}.jpg").write_bytes((src / "two.jpg").read_bytes())
    out = tmp_path / "out"
    start = time.monotonic()
    first = _batch([str(src), "--out", str(out)], home)
    rng = random.Random(seed)
    states = []
    proc, killed = first, 0

    def tagged_now() -> int:
        return len(list(out.rglob("*-tagged*"))) if out.exists() else 0

    def wait_for_more(seen: int) -> None:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and tagged_now() <= seen:
            time.sleep(0.02)

    # How long one photo takes here: the kills wait at most that long after a photo appears,
    # so a fast machine does not finish the job before the kill.
    wait_for_more(0)
    appeared = time.monotonic()
    wait_for_more(tagged_now())
    per_photo = min(0.6, time.monotonic() - appeared)
    for trial in range(trials):
        # Kill at a random moment after the run has written its next tagged photo (so the kill
        # lands mid-job, past the model loading; the first run has just written one).
        if trial:
            wait_for_more(tagged_now())
        time.sleep(rng.uniform(0.0, per_photo))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed += 1
        states.append(job_state(home / "ledger.sqlite3", out))
        again = {"id": ["--resume", _job_id(home)], "latest": ["--resume"],
                 "same": [str(src), "--out", str(out)]}[rerun]
        proc = _batch(again, home)
    _, proc_err = proc.communicate(timeout=300)
    assert proc.returncode == 0, proc_err
    assert killed >= min(trials, 2)  # the kills landed mid-job
    del start
    states.append(job_state(home / "ledger.sqlite3", out))
    with Ledger(home / "ledger.sqlite3") as led:
        jobs = led.batch_jobs()
        assert len(jobs) == 1  # every rerun continued the one job
        assert jobs[0].done and jobs[0].counts == {"tagged": 3 + extra, "no_face": 1}
    return states


def _check(states: list[dict], extra: int = 3) -> None:
    for s in states:
        bad = {k: v for k, v in s.items() if k not in ("tagged", "records") and v}
        assert not bad, states
    final = states[-1]  # one record set per face, once
    assert final["tagged"] == 3 + extra and final["records"] == 4 + 2 * extra


def test_driver_killed_mid_job_then_resume(tmp_path: Path) -> None:
    _check(kill_and_resume(tmp_path, trials=2, seed=1))


def test_killed_then_the_same_command_again_never_tags_twice(tmp_path: Path) -> None:
    """Issue #19: kill -9, then the very same command (twice), then ``--resume`` with no ID:
    one job, every photo tagged once, no extra serials or records."""
    _check(kill_and_resume(tmp_path, trials=2, seed=5, rerun="same"))


def test_resume_without_an_id_takes_the_newest_interrupted_job(tmp_path: Path) -> None:
    _check(kill_and_resume(tmp_path, trials=1, seed=3, rerun="latest"))


@pytest.mark.slow
def test_resume_after_kill_9_at_random_points_20_trials(tmp_path: Path) -> None:
    _check(kill_and_resume(tmp_path, trials=20, seed=12, extra=24), extra=24)
