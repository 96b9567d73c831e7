"""Batch scale bench (issue 12): `python -m engine.bench.scale [--photos N] [--ray]`.

Measures, on synthetic ~1920x1280 photos each holding one real face (the bundled sample and the
test faces pasted onto a larger textured canvas): a single protect loop (Pipeline.protect over
the list, what `faketagger protect` runs) vs the local batch engine (engine.run.local.run_batch) on
the same photos; RSS at photo 100 and at the end; the Ray engine on a local cluster of
--ray-cpus CPUs; the driver-side cost per face (signing + SQLite: reserve, stage, finish); and
a projection of cluster throughput per added node. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine.paths import assets_dir
from engine.photos import encode_jpeg_thumbnail
from engine.pipeline import Pipeline, Progress
from engine.protect import ProtectOutcome, payloads_for
from engine.protect.spec import JobSpec
from engine.run.jobs import create_job, mirror_plan
from engine.run.local import run_batch
from engine.store.ledger import Ledger
from engine.store.records import sign_record
from engine.store.tagging import TagPlan

PASS = "bench scale passphrase horse battery"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_photos(folder: Path, n: int, size=(1920, 1280)) -> list[Path]:
    faces = [Image.open(assets_dir() / "sample.jpg").convert("RGB")]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        noise = rng.integers(90, 170, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        canvas = Image.fromarray(noise).resize(size, Image.Resampling.BILINEAR)
        face = faces[k % len(faces)]
        canvas.paste(face, (200 + (k * 37) % 1000, 150 + (k * 23) % 500))
        path = folder / f"d{k // 100:02d}" / f"p{k:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        canvas.save(path, quality=90)
        paths.append(path)
    return paths


def _ledger(home: Path) -> tuple[Ledger, object]:
    led = Ledger(home / "ledger.sqlite3")
    led.create_identity("Bench", PASS)
    return led, led.unlock(None, PASS)


def protect_loop(photos: list[Path], home: Path, out: Path) -> dict:
    led, unlocked = _ledger(home)
    pipe = Pipeline(led, device="cpu")
    pipe.warm_up()
    t0, faces = time.perf_counter(), 0
    for e in pipe.protect(photos, unlocked, JobSpec(out_dir=out)):
        if isinstance(e, ProtectOutcome):
            faces += len(e.faces)
    dt = time.perf_counter() - t0
    led.close()
    return {"photos": len(photos), "faces": faces, "seconds": dt, "photos_per_s": len(photos) / dt}


def batch_local(src: Path, home: Path, out: Path) -> dict:
    led, unlocked = _ledger(home)
    pipe = Pipeline(led, device="cpu")
    pipe.warm_up()
    job = create_job(led, unlocked.key_id, mirror_plan([src], out), out, JobSpec())
    t0, rss = time.perf_counter(), {}
    for e in run_batch(pipe, unlocked, job):
        if isinstance(e, Progress) and e.done in (100, e.total) and e.done not in rss:
            rss[e.done] = rss_mb()
    dt = time.perf_counter() - t0
    n = led.batch_job(job).total
    led.close()
    return {"photos": n, "seconds": dt, "photos_per_s": n / dt, "rss_mb": rss}


def batch_ray(src: Path, home: Path, out: Path, cpus: int) -> dict:
    import ray

    from engine.run.ray_runner import run_batch_ray

    led, unlocked = _ledger(home)
    pipe = Pipeline(led, device="cpu")
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    job = create_job(led, unlocked.key_id, mirror_plan([src], out), out, JobSpec())
    t0 = time.perf_counter()
    for _ in run_batch_ray(pipe, unlocked, job):
        pass
    dt = time.perf_counter() - t0
    n = led.batch_job(job).total
    led.close()
    ray.shutdown()
    return {"photos": n, "seconds": dt, "photos_per_s": n / dt, "cpus": cpus,
            "note": "includes Ray start-up of actors and both stages"}


def driver_cost(home: Path, faces: int = 500, chunk: int = 64) -> dict:
    """Per face, what only the driver can do: reserve (one transaction per chunk), sign, stage,
    finish (the file writes are left out: they scale with the storage, not the driver)."""
    led, unlocked = _ledger(home)
    thumb = encode_jpeg_thumbnail(np.zeros((48, 48, 3), np.uint8))

    t_sign = t_sql = 0.0
    for start in range(0, faces, chunk):
        n = min(chunk, faces - start)
        t = time.perf_counter()
        jobs = led.begin_tags(unlocked.key_id, [TagPlan(1, f"/x/{start + k}.jpg",
                                                        home / f"o{start + k}.jpg",
                                                        home / f".o{start + k}.part")
                                                for k in range(n)])
        t_sql += time.perf_counter() - t
        for job in jobs:
            t = time.perf_counter()
            [payload] = payloads_for(unlocked, job.serials, 1)
            rec = sign_record(unlocked, serial=payload.serial, payload_hex=payload.to_hex(),
                              file_sha256="ab" * 32, face_box=[0, 0, 9, 9],
                              face_thumb_jpeg=thumb)
            t_sign += time.perf_counter() - t
            t = time.perf_counter()
            led.stage_tag(job, [rec])
            led.finish_tag(job)
            t_sql += time.perf_counter() - t
    led.close()
    return {"faces": faces, "sign_ms_per_face": 1000 * t_sign / faces,
            "sqlite_ms_per_face": 1000 * t_sql / faces,
            "driver_faces_per_s": faces / (t_sign + t_sql)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.bench.scale", description=__doc__)
    ap.add_argument("--photos", type=int, default=1000)
    ap.add_argument("--ray", action="store_true", help="also the Ray engine (needs .[scale])")
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="faketagger-scale-"))
    try:
        src = work / "src"
        photos = make_photos(src, args.photos)
        result: dict = {"machine": f"{os.cpu_count()} CPUs", "photo_size": [1920, 1280]}
        result["protect_loop"] = protect_loop(photos, work / "h1", work / "o1")
        result["batch_local"] = batch_local(src, work / "h2", work / "o2")
        result["local_vs_loop"] = (result["batch_local"]["photos_per_s"]
                                   / result["protect_loop"]["photos_per_s"])
        if args.ray:
            result["batch_ray"] = batch_ray(src, work / "h3", work / "o3", args.ray_cpus)
            result["ray_vs_local"] = (result["batch_ray"]["photos_per_s"]
                                      / result["batch_local"]["photos_per_s"])
        result["driver"] = driver_cost(work / "h4")
        per_cpu = result["batch_local"]["photos_per_s"] / (os.cpu_count() or 1)
        drv = result["driver"]["driver_faces_per_s"]
        result["projection"] = {
            "photos_per_s_per_cpu_core": per_cpu,
            "16_core_cpu_node_photos_per_s": 16 * per_cpu,
            "driver_ceiling_faces_per_s": drv,
            "cpu_nodes_for_1M_photos_per_day": 1e6 / 86400 / (16 * per_cpu),
        }
        text = json.dumps(result, indent=1)
        print(text)
        if args.json:
            Path(args.json).write_text(text + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
