"""The Ray engine (engine.run.ray_runner) on a real local Ray cluster (ray.init(num_cpus=2)): same
outputs and records as the local engine, a worker killed mid-batch (retried: no duplicate or
missing record), the driver killed mid-job then resumed. Skipped only where Ray is not
installed (the `scale` extra)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from engine.pipeline import Pipeline  # noqa: E402
from engine.protect import ProtectOutcome  # noqa: E402
from engine.protect.spec import JobSpec  # noqa: E402
from engine.run.jobs import create_job, mirror_plan  # noqa: E402
from engine.run.local import run_batch  # noqa: E402
from engine.run.ray_runner import DIE_ONCE_ENV, run_batch_ray  # noqa: E402
from engine.store.ledger import Ledger  # noqa: E402
from tests.batch_util import job_state, photo_tree  # noqa: E402
from tests.conftest import PASSPHRASE, ROOT  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    marker = tmp_path_factory.mktemp("ray") / "die-once"
    os.environ[DIE_ONCE_ENV] = str(marker)  # workers inherit the environment at start
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield marker
    ray.shutdown()
    os.environ.pop(DIE_ONCE_ENV, None)


def _home_with_identity(path: Path) -> Path:
    with Ledger(path / "ledger.sqlite3") as led:
        led.create_identity("Alice", PASSPHRASE)
    return path


def _clone_home(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for lock in (dst / "locks").glob("*") if (dst / "locks").exists() else []:
        lock.unlink()
    return dst


def _run(home: Path, src: Path, out: Path, engine: str, **kw) -> tuple[str, list]:
    with Ledger(home / "ledger.sqlite3") as led:
        unlocked = led.unlock(None, PASSPHRASE)
        job = create_job(led, unlocked.key_id, mirror_plan([src], out), out,
                         JobSpec(copy_no_face=True))
        pipe = Pipeline(led, device="cpu")
        run = run_batch_ray if engine == "ray" else run_batch
        events = list(run(pipe, unlocked, job, **kw))
        return job, [e for e in events if isinstance(e, ProtectOutcome)]


def _summary(home: Path, out: Path) -> dict:
    con = sqlite3.connect(home / "ledger.sqlite3")
    rows = con.execute("SELECT serial, output_path, record_json FROM records").fetchall()
    con.close()
    recs = sorted((s, str(Path(o).relative_to(out)), json.loads(r)["payload"],
                   json.loads(r)["file_sha256"], tuple(json.loads(r)["face_box"]))
                  for s, o, r in rows)
    files = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(out.rglob("*")) if p.is_file()}
    return {"records": recs, "files": files}


def test_ray_engine_matches_the_local_engine(cluster, tmp_path) -> None:
    src = photo_tree(tmp_path)
    base = _home_with_identity(tmp_path / "base")
    local_home = _clone_home(base, tmp_path / "local")
    ray_home = _clone_home(base, tmp_path / "rayhome")
    _run(local_home, src, tmp_path / "out-local", "local")
    job, outs = _run(ray_home, src, tmp_path / "out-ray", "ray", chunk=2)
    local = _summary(local_home, tmp_path / "out-local")
    remote = _summary(ray_home, tmp_path / "out-ray")
    assert local["records"] and remote == local  # same files, bytes, serials, payloads, boxes
    with Ledger(ray_home / "ledger.sqlite3") as led:
        assert led.batch_job(job).done


def test_a_worker_killed_mid_batch_is_retried_without_duplicates(cluster, tmp_path) -> None:
    src = photo_tree(tmp_path)
    home = _home_with_identity(tmp_path / "home")
    cluster.write_text("die")  # the first embedding task's worker dies; Ray restarts it
    job, _ = _run(home, src, tmp_path / "out", "ray")
    assert not cluster.exists()  # a worker really died
    state = job_state(home / "ledger.sqlite3", tmp_path / "out")
    assert state["tagged"] == 3 and state["records"] == 4
    assert {k: v for k, v in state.items() if k not in ("tagged", "records") and v} == {}
    with Ledger(home / "ledger.sqlite3") as led:
        assert led.batch_job(job).counts == {"tagged": 3, "copied": 1}


@pytest.mark.slow
def test_ray_driver_killed_mid_job_then_resume(tmp_path) -> None:
    home = _home_with_identity(tmp_path / "home")
    src = photo_tree(tmp_path)
    for k in range(4):
        shutil.copy(src / "two.jpg", src / f"more{k}.jpg")
    out = tmp_path / "out"
    env = {**os.environ, "FAKETAGGER_HOME": str(home), "FAKETAGGER_PASSPHRASE": PASSPHRASE,
           "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "engine.cli", "batch", "--device", "cpu", "--engine", "ray"]
    first = subprocess.Popen(cli + [str(src), "--out", str(out), "--chunk", "2"], env=env,
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Kill the driver once the first photo is committed.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        if out.exists() and any(out.rglob("*-tagged*")):
            break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    mid = job_state(home / "ledger.sqlite3", out)
    with Ledger(home / "ledger.sqlite3") as led:
        job = led.batch_jobs()[0].id
    done = subprocess.run(cli + ["--resume", job], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    final = job_state(home / "ledger.sqlite3", out)
    for state in (mid, final):
        assert {k: v for k, v in state.items() if k not in ("tagged", "records") and v} == {}
    assert final["tagged"] == 7 and final["records"] == 12  # exactly one record set per face


def test_ray_engine_rolls_over_to_a_certified_subkey(cluster, tmp_path) -> None:
    """The owner key has 2 serials left: the chunks after them are reserved and signed with a
    certified sub-key (engine.store.subkeys), every photo tagged once."""
    from engine.store.records import MAX_SERIAL, verify_record

    src = photo_tree(tmp_path)
    home = _home_with_identity(tmp_path / "home")
    with sqlite3.connect(home / "ledger.sqlite3") as con:
        con.execute("UPDATE identities SET next_serial = ?", (MAX_SERIAL - 1,))
    with Ledger(home / "ledger.sqlite3") as led:
        owner = led.unlock(None, PASSPHRASE)

        def roll(serials: int):
            return led.tagging_key(owner.key_id, serials, PASSPHRASE)[0]

        out = tmp_path / "out"
        job = create_job(led, owner.key_id, mirror_plan([src], out), out,
                         JobSpec(copy_no_face=True))
        events = list(run_batch_ray(Pipeline(led, device="cpu"), owner, job, chunk=1, roll=roll))
        outs = [e for e in events if isinstance(e, ProtectOutcome)]
        assert not [o.error for o in outs if o.error]
        assert led.batch_job(job).done
        [sub] = led.subkeys(owner.key_id)
        mine, subs = led.records_of(owner.key_id), led.records_of(sub.key_id)
        assert mine and subs and all(verify_record(r) for r in mine + subs)
        assert {r.owner_public_raw for r in subs} == {sub.public_raw}
        assert [r.serial for r in subs] == list(range(1, len(subs) + 1))
    assert job_state(home / "ledger.sqlite3", out)["duplicates"] == 0
