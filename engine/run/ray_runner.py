"""The Ray runner of jobs (`faketagger batch --engine ray`): Ray Data beyond one process.

The per-photo sequence (engine.protect.sequence) split where the keys are: pure workers plan
(read the photo, find the faces and any tag already there) and render (embed the bits they are
given, encode the bytes, cut the thumbnails), never seeing the keys, the ledger or the output
folder; the driver alone reserves serials (one transaction per chunk), makes the payload bits
and commits each reservation once, so a retried task never makes a second record. Stages pass
the sequence's typed records (:func:`_row`, :func:`_record`); the actors get the driver's model
files. Optional (the `scale` extra); never in the desktop build (installer/faketagger.spec).
Workers read photos by path: on a cluster, every node must see them (docs/SCALE.md).
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray

from engine.faces import Face, FaceDetector
from engine.identity import UnlockedIdentity
from engine.model.registry import Watermarker, all_watermarkers
from engine.photos import load_photo
from engine.pipeline import CancelToken, Pipeline, Progress
from engine.protect import ProtectOutcome, Reason
from engine.protect.render import Rendered, payload_bits, render_tagged
from engine.protect.sequence import Held, PhotoPlan, Tools, commit, plan_photo, reserve, settle
from engine.protect.spec import JobSpec
from engine.run.jobs import ROLL_MARGIN, Roll, finish_job, open_job, record_outcome, still_same

#: Fraction of a CPU each actor asks for. Two actors with num_cpus=1 on a 2-CPU local cluster
#: leave nothing for Ray Data's other tasks and the job hangs (measured); fractions do not.
ACTOR_CPUS = 0.5
#: Test hook: a worker that finds this file removes it and dies (os._exit), once.
DIE_ONCE_ENV = "FAKETAGGER_RAY_DIE_ONCE"


@dataclass(frozen=True)
class PlanTask:
    """Stage 1's question for one photo."""

    src: Path
    chosen: list[int] | None  # the faces to tag (None: all)


@dataclass(frozen=True)
class RenderTask:
    """Stage 2's question: the planned faces, the payload bits of their reserved serials (never
    the keys) and the copy's format."""

    src: Path
    faces: list[Face]
    bits: np.ndarray
    fmt: str


def _row(idx: int, record: Any) -> dict:
    """A typed record as a Ray Data row: with :func:`_record`, the one place records cross the
    Ray boundary (pickled, as Ray itself sends everything; the cluster is the user's own)."""
    return {"idx": idx, "record": pickle.dumps(record)}


def _record(row: dict) -> tuple[int, Any]:
    return int(row["idx"]), pickle.loads(row["record"])


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
    """A pure stage: the job's spec and the driver's models, no keys and no ledger; one photo's
    failure is its answer (a ProtectOutcome), never the end of the job."""

    def __init__(self, blobs: list[bytes], spec: JobSpec, device: str, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.spec = spec
        self.tools = Tools(FaceDetector(threshold=spec.threshold, min_face=spec.min_face,
                                        device=device), _models_from_bytes(blobs, device))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = []
        for idx, blob in zip(batch["idx"], batch["record"], strict=True):
            idx, task = _record({"idx": idx, "record": blob})
            try:
                answer = self.run(task)
            except Exception as err:  # noqa: BLE001 - typed: the outcome's reason comes from it
                answer = ProtectOutcome.failed(task.src, err)
            rows.append(_row(idx, answer))
        return {"idx": np.array([r["idx"] for r in rows], np.int64),
                "record": np.array([r["record"] for r in rows], dtype=object)}

    def run(self, task: Any) -> Any:
        raise NotImplementedError


class Plan(_Worker):
    """Stage 1 (pure): the plan step (engine.protect.sequence.plan_photo)."""

    def run(self, task: PlanTask) -> PhotoPlan:
        return plan_photo(load_photo(task.src), self.tools, self.spec, task.chosen)


class Render(_Worker):
    """Stage 2 (pure): the render step (engine.protect.render.render_tagged)."""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _die_once()
        return super().__call__(batch)

    def run(self, task: RenderTask) -> Rendered:
        return render_tagged(load_photo(task.src), task.faces, task.bits, self.tools.model,
                             self.spec, task.fmt)


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join the cluster at *address*, or start a local one (all this machine's CPUs)."""
    if ray.is_initialized():
        return
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, **kwargs)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-stage progress is ours


def _map(rows: list[dict], cls, args: tuple, actors: int, gpu: bool):
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    return ds.map_batches(cls, fn_constructor_args=args, batch_size=1, concurrency=actors,
                          num_cpus=ACTOR_CPUS, num_gpus=1 if gpu else None,
                          max_restarts=-1, max_task_retries=-1)


def run_batch_ray(
    pipeline: Pipeline, unlocked: UnlockedIdentity, job_id: str, *,
    address: str | None = None, chunk: int = 64, actors: int | None = None,
    cancel: CancelToken | None = None, roll: Roll | None = None,
) -> Iterator[Progress | ProtectOutcome]:
    """The job's photos not yet done, on Ray Data; yields what :func:`engine.run.local.run_batch`
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
    models = all_watermarkers(pipeline.device)
    blobs = [Path(m.path).read_bytes() for m in models]  # the driver's exact model files
    args = (blobs, spec, "cuda" if gpu else "cpu", 1)  # the job's own settings
    items = {item.idx: item for item in todo}

    def done(item, outcome: ProtectOutcome) -> Iterator[Progress | ProtectOutcome]:
        yield record_outcome(ledger, job_id, item, outcome, spec)
        yield progress.tick(outcome, item.src)

    # Plan (pure workers), streamed back; photos with nothing to tag end here.
    to_reserve: list[tuple[int, PhotoPlan]] = []
    planned = _map([_row(i.idx, PlanTask(i.src, i.faces)) for i in todo], Plan, args, actors,
                   gpu)
    for row in planned.iter_rows():
        idx, plan = _record(row)
        item = items[idx]
        why = still_same(item)
        if why:
            outcome = ProtectOutcome(item.src, error=why, reason=Reason.CHANGED)
        else:
            outcome = plan if isinstance(plan, ProtectOutcome) else settle(ledger, plan)
        if outcome is not None:
            yield from done(item, outcome)
        else:
            to_reserve.append((idx, plan))
        if cancel.cancelled:
            return

    # Reserve in the driver: one transaction per chunk, before any embedding, in the job's
    # order (rows come back in any order), so both engines give a photo the same serials.
    to_reserve.sort(key=lambda entry: entry[0])
    held: dict[int, Held] = {}
    for start in range(0, len(to_reserve), chunk):
        part = to_reserve[start:start + chunk]
        need = sum(len(plan.faces) for _idx, plan in part)
        if roll is not None and ledger.serials_left(unlocked.key_id) < need:
            unlocked = roll(max(need, ROLL_MARGIN))
        got = reserve(ledger, unlocked, [(plan, items[idx].out_dir) for idx, plan in part],
                      spec, models[0].version, job_id)
        held.update(zip((idx for idx, _plan in part), got, strict=True))

    # Render (pure workers); the driver commits each reservation once.
    try:
        if held:
            tasks = [_row(idx, RenderTask(h.plan.src, h.plan.faces, payload_bits(h.payloads),
                                          h.fmt)) for idx, h in held.items()]
            for row in _map(tasks, Render, args, actors, gpu).iter_rows():
                idx, answer = _record(row)
                h = held.pop(idx, None)
                if h is None:
                    continue  # a retried task's second answer: committed already
                yield from done(items[idx], _commit(ledger, h, spec, answer))
                if cancel.cancelled:
                    break
    finally:
        for h in held.values():
            ledger.abort_tag(h.job)  # never rendered or never answered: serials freed
    finish_job(ledger, job_id)
    ledger.checkpoint_backup()


def _commit(ledger, held: Held, spec: JobSpec, answer: Rendered | ProtectOutcome
            ) -> ProtectOutcome:
    """A worker's answer committed (engine.protect.sequence.commit), or its failure recorded
    and the reservation freed."""
    if isinstance(answer, ProtectOutcome):
        ledger.abort_tag(held.job)
        return answer
    try:
        return commit(ledger, held, spec, lambda: answer)
    except Exception as err:  # noqa: BLE001 - one photo's failure must not end the job
        return ProtectOutcome.failed(held.plan.src, err)
