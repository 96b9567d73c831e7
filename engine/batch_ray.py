"""The Ray engine of batch jobs (`faketagger batch --engine ray`): Ray Data beyond one process.

Workers are pure: they read the photo (EXIF orientation applied), find the faces (MTCNN), and
later embed the payload bits they are given, encode the file's bytes and cut the thumbnails.
They never see the identity's keys, the ledger or the output folder. The driver (this process)
alone reserves serials (one SQLite transaction per chunk, planned before any embedding), turns
them into payload bits, and commits each photo exactly as the local engine does
(engine.protect.commit_tag: temp file + fsync, hash, sign, stage, publish, finish). A retried or
duplicated worker task can therefore never make a second record: a reservation is committed
once, keyed by its token. Model weights go from the driver to the actors, so every worker
embeds with exactly the driver's model. Optional (the `scale` extra) and never in the desktop
build (installer/faketagger.spec excludes this module and ray).

Photos are read by the workers from their paths: on a cluster, inputs and the working folder
must be on storage every node sees (docs/SCALE.md).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import ray

from engine.batch import (
    ROLL_MARGIN,
    Roll,
    finish_job,
    open_job,
    record_outcome,
    still_same,
)
from engine.errors import FakeTaggerError
from engine.faces import Face, FaceDetector
from engine.files import display_path
from engine.identity import UnlockedIdentity
from engine.jobs import JobProgress
from engine.model.registry import Watermarker, all_watermarkers
from engine.photos import load_photo, write_temp_bytes
from engine.pipeline import (
    CancelToken,
    Pipeline,
    already_tagged,
    describe_tag,
    first_tag,
    usable_faces,
)
from engine.protect import (
    FaceMarks,
    ProtectOutcome,
    Reason,
    Rendered,
    commit_tag,
    output_target,
    payload_bits,
    payloads_for,
    render_tagged,
)
from engine.readback import ReadBack
from engine.store.batches import BatchItem
from engine.store.tagging import TagPlan

#: Fraction of a CPU each actor asks for. Two actors with num_cpus=1 on a 2-CPU local cluster
#: leave nothing for Ray Data's other tasks and the job hangs (measured); fractions do not.
ACTOR_CPUS = 0.5
#: Test hook: a worker that finds this file removes it and dies (os._exit), once.
DIE_ONCE_ENV = "FAKETAGGER_RAY_DIE_ONCE"


def _models_from_bytes(blobs: list[bytes], device: str) -> list[Watermarker]:
    """The driver's model files, rebuilt in the worker (newest first, as the driver has them)."""
    folder = Path(tempfile.mkdtemp(prefix="faketagger-models-"))
    models = []
    for k, blob in enumerate(blobs):
        path = folder / f"model-{k}.safetensors"
        path.write_bytes(blob)
        models.append(Watermarker(path, device))
    return models


def _die_once() -> None:
    marker = os.environ.get(DIE_ONCE_ENV)
    if marker and os.path.exists(marker):
        try:
            os.unlink(marker)
        except OSError:
            return  # another worker took it
        os._exit(17)


class _Worker:
    def __init__(self, blobs: list[bytes], threshold: float, min_face: int, device: str,
                 threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.device = device
        self.models = _models_from_bytes(blobs, device)
        self.detector = FaceDetector(threshold=threshold, min_face=min_face, device=device)


class Detect(_Worker):
    """Stage 1 (pure): faces to tag, small faces, and any tag already in them."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, list] = {"idx": [], "faces": [], "small": [], "tag": [], "error": [],
                                "format": []}
        for idx, src, chosen, check in zip(batch["idx"], batch["src"], batch["chosen"],
                                           batch["check"], strict=True):
            faces, small, tag, error, fmt = [], [], "", "", ""
            try:
                photo = load_photo(Path(src))
                fmt = photo.format
                found = self.detector.detect(photo.rgb, include_small=True)
                picked = usable_faces(found, self.detector.min_face, json.loads(chosen))
                faces = [[float(v) for v in f.box] for f in picked]
                small = [f.int_box() for f in found if f.size < self.detector.min_face]
                if picked and check:
                    hit = first_tag(photo.rgb, picked, self.models)
                    if hit is not None:
                        tag = json.dumps([hit[0], hit[1].hex(), hit[2]])
            except FakeTaggerError as err:
                error = str(err)
            except Exception as err:  # noqa: BLE001 - one photo's bug must not end the job
                error = f"{display_path(Path(src))}: unexpected error ({type(err).__name__}: {err})"
            for key, value in (("idx", idx), ("faces", json.dumps(faces)),
                               ("small", json.dumps(small)), ("tag", tag), ("error", error),
                               ("format", fmt)):
                out[key].append(value)
        return {k: np.array(v, dtype=object if k != "idx" else np.int64) for k, v in out.items()}


class Embed(_Worker):
    """Stage 2 (pure): embed the given payload bits, encode the file, cut the thumbnails."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _die_once()
        out: dict[str, list] = {"idx": [], "rendered": [], "error": []}
        model = self.models[0]
        for idx, src, faces, bits, opts in zip(batch["idx"], batch["src"], batch["faces"],
                                               batch["bits"], batch["opts"], strict=True):
            rendered, error = "", ""
            try:
                o = json.loads(opts)
                photo = load_photo(Path(src))
                found = [Face(tuple(b), 1.0, np.zeros((5, 2), np.float32))
                         for b in json.loads(faces)]
                r = render_tagged(photo, found, np.asarray(json.loads(bits), np.float32), model,
                                  o["strength"], o["fmt"], o["quality"], o["thumb"])
                m = r.marks
                rendered = json.dumps({"data": base64.b64encode(r.data).decode(),
                                       "boxes": m.boxes, "psnrs": m.psnrs,
                                       "checks": [[c.boost, c.passed] for c in m.checks],
                                       "thumbs": [base64.b64encode(t).decode()
                                                  for t in m.thumbs]})
            except FakeTaggerError as err:
                error = str(err)
            except Exception as err:  # noqa: BLE001
                error = f"{display_path(Path(src))}: unexpected error ({type(err).__name__}: {err})"
            out["idx"].append(idx)
            out["rendered"].append(rendered)
            out["error"].append(error)
        return {k: np.array(v, dtype=object if k != "idx" else np.int64) for k, v in out.items()}


def _rendered(text: str) -> Rendered:
    doc = json.loads(text)
    return Rendered(base64.b64decode(doc["data"]), FaceMarks(
        doc["boxes"], [base64.b64decode(t) for t in doc["thumbs"]], doc["psnrs"],
        [ReadBack(boost, passed) for boost, passed in doc["checks"]]))


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join the cluster at *address*, or start a local one (all this machine's CPUs)."""
    if ray.is_initialized():
        return
    kwargs = {"include_dashboard": False, "log_to_driver": False,
              "configure_logging": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-stage progress is ours


def _map(ds, cls, args: tuple, actors: int, gpu: bool):
    return ds.map_batches(cls, fn_constructor_args=args, batch_size=1, concurrency=actors,
                          num_cpus=ACTOR_CPUS, num_gpus=1 if gpu else None,
                          max_restarts=-1, max_task_retries=-1)


def run_batch_ray(
    pipeline: Pipeline, unlocked: UnlockedIdentity, job_id: str, *,
    address: str | None = None, chunk: int = 64, actors: int | None = None,
    cancel: CancelToken | None = None, roll: Roll | None = None,
) -> Iterator[JobProgress | ProtectOutcome]:
    """The job's photos not yet done, on Ray Data; yields what :func:`engine.batch.run_batch`
    yields, and leaves the ledger exactly as the local engine would. With *roll*, a chunk the
    key has too few serials left for goes to the next key (a certified sub-key)."""
    cancel = cancel or CancelToken()
    ledger = pipeline.ledger
    run = open_job(ledger, job_id)
    spec, todo, progress = run.spec, run.todo, run.progress
    yield progress.tick(None, None)
    yield from run.skipped
    if not todo:
        finish_job(ledger, job_id)
        return
    connect(address)
    gpu = bool(ray.cluster_resources().get("GPU"))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = actors or max(1, int(cpus / ACTOR_CPUS / 2))
    device = "cuda" if gpu else "cpu"
    models = all_watermarkers(pipeline.device)
    blobs = [Path(m.path).read_bytes() for m in models]  # the driver's exact model files
    args = (blobs, spec.threshold, spec.min_face, device, 1)  # the job's own settings
    items = {item.idx: item for item in todo}

    # Stage 1: faces of every photo (pure workers), streamed back to the driver.
    rows = [{"idx": i.idx, "src": str(i.src), "chosen": json.dumps(i.faces),
             "check": not spec.retag} for i in todo]
    detected = _map(ray.data.from_items(rows, override_num_blocks=len(rows)), Detect,
                    args, actors, gpu)
    to_embed: list[tuple[BatchItem, list, object]] = []
    for row in detected.iter_rows():
        item = items[int(row["idx"])]
        faces = json.loads(row["faces"])
        outcome = None
        why = still_same(item)
        if why or row["error"]:
            outcome = ProtectOutcome(item.src, error=why or row["error"],
                                     reason=Reason.CHANGED if why else Reason.ERROR)
        elif row["tag"]:
            box, key_hex, serial = json.loads(row["tag"])
            outcome = already_tagged(item.src, describe_tag(ledger, box, bytes.fromhex(key_hex),
                                                            serial))
        elif not faces:
            outcome = ProtectOutcome(item.src, small_faces=json.loads(row["small"]))
        if outcome is not None:
            yield record_outcome(ledger, job_id, item, outcome, spec)
            yield progress.tick(outcome, item.src)
        else:
            to_embed.append((item, faces, row["format"]))
        if cancel.cancelled:
            return

    # The driver plans serials: one transaction per chunk, before any embedding, in the job's
    # order (rows come back in any order), so both engines give a photo the same serials.
    to_embed.sort(key=lambda entry: entry[0].idx)
    model = models[0]
    planned: dict[int, tuple] = {}
    signer: dict[int, UnlockedIdentity] = {}
    for start in range(0, len(to_embed), chunk):
        part = to_embed[start:start + chunk]
        targets, plans = [], []
        for item, faces, src_format in part:
            fmt, out_path, tmp = output_target(item.src, src_format, spec, item.out_dir)
            targets.append(fmt)
            plans.append(TagPlan(len(faces), display_path(item.src), out_path, tmp, job_id,
                                 item.src))
        need = sum(plan.count for plan in plans)
        if roll is not None and ledger.serials_left(unlocked.key_id) < need:
            unlocked = roll(max(need, ROLL_MARGIN))
        jobs = ledger.begin_tags(unlocked.key_id, plans)
        for (item, faces, _), fmt, job in zip(part, targets, jobs, strict=True):
            payloads = payloads_for(unlocked, job.serials, model.version)
            planned[item.idx] = (item, faces, fmt, job, payloads)
            signer[item.idx] = unlocked  # the key of its serials (a job may roll over)

    # Stage 2: embed + encode (pure workers); the driver commits each photo once.
    rows = [{"idx": idx, "src": str(item.src), "faces": json.dumps(faces),
             "bits": json.dumps(payload_bits(payloads).tolist()),
             "opts": json.dumps({"strength": spec.strength, "fmt": fmt,
                                 "quality": spec.jpeg_quality, "thumb": spec.thumb_side})}
            for idx, (item, faces, fmt, _job, payloads) in planned.items()]
    try:
        if rows:
            embedded = _map(ray.data.from_items(rows, override_num_blocks=len(rows)), Embed,
                            args, actors, gpu)
            for row in embedded.iter_rows():
                entry = planned.pop(int(row["idx"]), None)
                if entry is None:
                    continue  # a retried task's second answer: committed already
                item, _faces, fmt, job, payloads = entry
                outcome = _commit(ledger, signer[item.idx], item, spec, fmt, job, payloads, row)
                yield record_outcome(ledger, job_id, item, outcome, spec)
                yield progress.tick(outcome, item.src)
                if cancel.cancelled:
                    break
    finally:
        for _item, _faces, _fmt, job, _payloads in planned.values():
            ledger.abort_tag(job)  # never embedded or never answered: serials freed
    finish_job(ledger, job_id)
    ledger.checkpoint_backup()


def _commit(ledger, unlocked, item, spec, fmt, job, payloads, row) -> ProtectOutcome:
    if row["error"]:
        ledger.abort_tag(job)
        return ProtectOutcome(item.src, error=row["error"])
    rendered = _rendered(row["rendered"])

    def write():
        write_temp_bytes(rendered.data, item.src, job.output_path, job.tmp_path, fmt=fmt)
        return payloads, rendered.marks

    try:
        return commit_tag(ledger, unlocked, job, write, item.src, spec, fmt)
    except FakeTaggerError as err:
        return ProtectOutcome(item.src, error=str(err))
