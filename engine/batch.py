"""Batch jobs: tag whole folders as a job recorded in the ledger, resumable after any crash.

A job (engine.store.batches) lists every photo with its SHA-256 and output folder, the output
tree mirroring the input tree. :func:`run_batch` is the local engine: each photo goes through the
one pipeline (``Pipeline.protect``) with ``ProtectOptions.batch_job`` set, so its item is marked
tagged in the transaction that commits its records; a kill at any point is recovered on the next
open of the ledger and the resumed job starts with the photos not yet done. The Ray engine
(engine.batch_ray) shares the planning, the item bookkeeping and the report here. The CLI's
``faketagger batch`` and the GUI's Protect tab both run jobs through this module.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from engine.atomic import fsync_dir, publish
from engine.errors import FakeTaggerError
from engine.faces import DEFAULT_MIN_FACE, DEFAULT_THRESHOLD
from engine.files import display_path, write_file
from engine.identity import UnlockedIdentity
from engine.jobs import ALREADY_IN_OUTPUT, JobProgress, ProtectJob
from engine.limits import JPEG_QUALITY, MIN_FACE, STRENGTH, THRESHOLD
from engine.photos import PhotoError, iter_photos, sha256_file
from engine.pipeline import CancelToken, Pipeline, Stage
from engine.pipeline import Progress as PipelineProgress
from engine.protect import DEFAULT_STRENGTH, Outcome, ProtectOptions, ProtectOutcome, Reason
from engine.store.batches import FINAL, BatchItem, BatchJobInfo, ItemState
from engine.store.ledger import Ledger
from engine.store.records import MAX_SERIAL

CHANGED = "changed since the batch job started (its SHA-256 differs); not tagged"


@dataclass(frozen=True)
class BatchOptions:
    """A job's settings, stored with it so a resume works exactly as the start did."""

    fmt: str = "keep"
    jpeg_quality: int = 95
    strength: float = DEFAULT_STRENGTH
    retag: bool = False
    copy_no_face: bool = False  # copy photos without a face through, unchanged
    # The detector's own defaults, as `faketagger protect` uses them: a job must not skip faces
    # that protect would tag (they once differed: 0.95 here, 0.92 there).
    threshold: float = DEFAULT_THRESHOLD
    min_face: int = DEFAULT_MIN_FACE
    c2pa: bool = False  # ProtectOptions.c2pa; stored with the job, so a resume signs the same
    small_thumbnails: bool = False  # ProtectOptions.small_thumbnails

    def __post_init__(self) -> None:
        JPEG_QUALITY.check(self.jpeg_quality)
        STRENGTH.check(self.strength)
        THRESHOLD.check(self.threshold)
        MIN_FACE.check(self.min_face)

    def protect_options(self, out_dir: Path, job_id: str) -> ProtectOptions:
        return ProtectOptions(out_dir=out_dir, fmt=self.fmt, jpeg_quality=self.jpeg_quality,
                              strength=self.strength, retag=self.retag, batch_job=job_id,
                              c2pa=self.c2pa, small_thumbnails=self.small_thumbnails)

    @classmethod
    def from_json(cls, doc: dict) -> BatchOptions:
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


def mirror_plan(sources: list[Path], out: Path) -> list[tuple[Path, Path]]:
    """(photo, output folder) for every photo under *sources*: the output tree mirrors the
    input tree. With one folder given, its contents map onto *out*; with several, each keeps its
    own name under *out*; single files go to *out* itself. Photos inside *out* are left out."""
    out = Path(out).absolute()
    folders = [Path(s) for s in sources if Path(s).is_dir()]
    plan: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for src in map(Path, sources):
        base = out / src.absolute().name if src.is_dir() and len(folders) > 1 else out
        for photo in iter_photos([src]):
            real = photo.absolute()
            if real in seen or real.resolve().is_relative_to(out.resolve()):
                continue
            seen.add(real)
            rel = photo.relative_to(src).parent if src.is_dir() else Path()
            plan.append((photo, base / rel))
    return plan


def capacity_problem(ledger: Ledger, key_id: bytes | str, photos: int,
                     subkeys: bool = False) -> str | None:
    """Why the identity's serials cannot cover a job of *photos* photos (at least one face each
    is assumed), with what to do; None when they can. With *subkeys* every job fits: the job
    starts on the key :meth:`Ledger.tagging_key` picks and rolls over (a :data:`Roll`) to
    certified sub-keys as keys run out."""
    left = ledger.serials_left(key_id)
    if left >= photos or subkeys:
        return None
    return (f"this job has {photos} photos but the identity has {left} tag serials left (of "
            f"{MAX_SERIAL}; one per face). Split the job, leave out --no-subkeys to tag with a "
            "certified sub-key, or create another identity (faketagger identity create) and "
            "tag the rest with --identity")


def create_job(ledger: Ledger, key_id: bytes | str, plan: list[tuple[Path, Path]],
               out: Path, options: BatchOptions,
               faces: dict[Path, list[int]] | None = None) -> str:
    """Hash every photo of *plan* and record the job; returns its ID."""
    items = []
    for photo, out_dir in plan:
        try:
            digest = sha256_file(photo)
        except PhotoError:
            digest = ""  # unreadable: the run reports it as that photo's error
        items.append((photo, out_dir, digest, None if faces is None else faces.get(photo)))
    return ledger.create_batch(key_id, out, asdict(options), items)


def job_from_protect(ledger: Ledger, key_id: bytes | str, job: ProtectJob,
                     threshold: float = DEFAULT_THRESHOLD,
                     min_face: int = DEFAULT_MIN_FACE) -> str:
    """The GUI's Protect tab as a batch job: each photo to its ProtectJob output folder, the
    face choices kept; photos inside their own output folder are recorded as skipped. The
    detection settings the preview used are stored with it, so a resume (by the GUI or by
    ``faketagger batch --resume``) finds the same faces."""
    groups, inside = job.plan()
    plan = [(p, out) for out, group in groups.items() for p in group]
    plan += [(p, job.out_dir_for(p)) for p in inside]
    options = BatchOptions(fmt=job.output_format.value, jpeg_quality=job.jpeg_quality,
                           strength=job.strength, retag=job.retag, c2pa=job.c2pa,
                           small_thumbnails=job.small_thumbnails, threshold=threshold,
                           min_face=min_face)
    job_id = create_job(ledger, key_id, plan, job.output_dir or Path("."), options, job.include)
    for k in range(len(plan) - len(inside), len(plan)):
        ledger.set_batch_item(job_id, k, ItemState.SKIPPED, error=ALREADY_IN_OUTPUT)
    return job_id


def copy_through(item: BatchItem) -> Path:
    """Copy a photo without faces unchanged into its output folder (temp, fsync, new name)."""
    out_dir = Path(item.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / item.src.name
    if target.exists():
        if sha256_file(target) == item.sha256:
            return target  # copied before a crash: done
        raise PhotoError(f"{display_path(target)}: already exists; not copied over")
    tmp = out_dir / f".{target.name}.{os.urandom(6).hex()}.part"
    try:
        with open(item.src, "rb") as fin, open(tmp, "xb") as fout:
            shutil.copyfileobj(fin, fout)
            fout.flush()
            os.fsync(fout.fileno())
        publish(tmp, target, overwrite=False)
    except FileExistsError:
        raise PhotoError(f"{display_path(target)}: already exists; not copied over") from None
    except OSError as exc:
        raise PhotoError(f"{display_path(target)}: cannot copy ({exc.strerror})") from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(out_dir)
    return target


def record_outcome(ledger: Ledger, job_id: str, item: BatchItem, outcome: ProtectOutcome,
                   options: BatchOptions) -> ProtectOutcome:
    """Store a photo's end state (tagged items are already marked by the ledger)."""
    status = outcome.status
    if status is Outcome.NO_FACE:
        if options.copy_no_face:
            try:
                outcome.output = copy_through(item)
                ledger.set_batch_item(job_id, item.idx, ItemState.COPIED, output=outcome.output)
            except FakeTaggerError as err:
                outcome.error = str(err)
                ledger.set_batch_item(job_id, item.idx, ItemState.FAILED, error=str(err))
        else:
            ledger.set_batch_item(job_id, item.idx, ItemState.NO_FACE)
    elif status is Outcome.SKIPPED:
        ledger.set_batch_item(job_id, item.idx, ItemState.SKIPPED, error=outcome.error)
    elif status is Outcome.FAILED:
        ledger.set_batch_item(job_id, item.idx, ItemState.FAILED, error=outcome.error)
    return outcome


def still_same(item: BatchItem) -> str | None:
    """Why *item*'s photo must not be tagged now (gone, changed), or None."""
    try:
        digest = sha256_file(item.src)
    except PhotoError as err:
        return str(err)
    return None if digest == item.sha256 else f"{display_path(item.src)}: {CHANGED}"


class Progress:
    """Counts for JobProgress over a (resumed) job: photos/s over this run only."""

    def __init__(self, total: int, before: int) -> None:
        self.total, self.done, self.before, self.faces = total, before, before, 0
        self.start = time.monotonic()

    def tick(self, outcome: ProtectOutcome | None, path: Path | None) -> JobProgress:
        if outcome is not None:
            self.done += 1
            self.faces += len(outcome.faces)
        return JobProgress(self.done, self.total, self.faces, path,
                           time.monotonic() - self.start, self.before)


#: Serials the next key must have when a job rolls over (more than any photo's faces, so the
#: new key is not spent again within a photo or a Ray chunk of photos).
ROLL_MARGIN = 1024

#: ``roll(serials)``: the next key to tag with, with at least *serials* left (a sub-key of the
#: job's owner, created when needed: :meth:`Ledger.tagging_key`).
Roll = Callable[[int], UnlockedIdentity]


@dataclass(frozen=True)
class JobRun:
    """What every engine starts a job run with: the job's options, the photos not yet done
    (failed ones are retried), the photos skipped now because a tagged copy is already in their
    output folder (each engine reports them first) and the progress counter, which already
    counts every finished photo."""

    options: BatchOptions
    todo: list[BatchItem]
    skipped: list[ProtectOutcome]
    progress: Progress


def open_job(ledger: Ledger, job_id: str) -> JobRun:
    """The job's run (:class:`JobRun`). A photo whose tagged copy another run already put in
    its output folder is skipped here, so no engine tags it twice."""
    info = ledger.batch_job(job_id)
    todo = ledger.batch_items(job_id, (ItemState.TODO, ItemState.FAILED))
    todo, skipped = skip_recorded(ledger, job_id, todo)
    return JobRun(BatchOptions.from_json(info.options), todo, skipped,
                  Progress(info.total, info.total - len(todo)))


def recorded_copies(ledger: Ledger) -> dict[str, list[tuple[Path, str]]]:
    """Every tagged copy the ledger records, by original photo: (output file, when made)."""
    copies: dict[str, list[tuple[Path, str]]] = {}
    for row in ledger.history(limit=-1):  # SQLite: no limit
        copies.setdefault(row.original_path, []).append((Path(row.output_path), row.created))
    return copies


def recorded_copy(copies: dict[str, list[tuple[Path, str]]], src: Path,
                  out_dir: Path) -> Path | None:
    """The tagged copy of *src* already in *out_dir*: recorded in the ledger, still on disk,
    and made after *src* last changed (an edited photo is tagged again). None otherwise."""
    try:
        changed = os.stat(src).st_mtime
    except OSError:
        return None
    folder = os.path.abspath(out_dir)
    for output, created in copies.get(display_path(src), ()):
        if os.path.dirname(os.path.abspath(output)) != folder or not output.is_file():
            continue
        try:
            made = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        if made >= changed:
            return output
    return None


def already_done(src: Path, output: Path) -> str:
    """Why a photo of a rerun is skipped: its tagged copy is already there."""
    return (f"{display_path(src)}: already tagged into this output folder as {output.name}; "
            "not tagged again (delete that copy, or choose another output folder, to tag it "
            "again)")


def skip_recorded(ledger: Ledger, job_id: str, todo: list[BatchItem]
                  ) -> tuple[list[BatchItem], list[ProtectOutcome]]:
    """*todo* less the photos whose tagged copy is already in their output folder (an earlier
    run of the same command, or another job into the same folder), which are marked skipped;
    and their outcomes."""
    copies = recorded_copies(ledger)
    left, skipped = [], []
    for item in todo:
        output = recorded_copy(copies, item.src, item.out_dir)
        if output is None:
            left.append(item)
            continue
        why = already_done(item.src, output)
        ledger.set_batch_item(job_id, item.idx, ItemState.SKIPPED, output=output, error=why)
        skipped.append(ProtectOutcome(item.src, error=why, skipped=True,
                                      reason=Reason.COPY_EXISTS))
    return left, skipped


def rerun_of(ledger: Ledger, plan: list[tuple[Path, Path]], out: Path) -> BatchJobInfo | None:
    """The newest unfinished job into *out* over exactly the photos of *plan*: running the same
    command again (the rsync habit) continues it instead of starting a second job."""
    wanted = {(os.path.abspath(p), os.path.abspath(o)) for p, o in plan}
    for job in ledger.batch_jobs(open_only=True):
        if os.path.abspath(job.out_dir) != os.path.abspath(out) or job.total != len(wanted):
            continue
        items = ledger.batch_items(job.id)
        if {(os.path.abspath(i.src), os.path.abspath(i.out_dir)) for i in items} == wanted:
            return job
    return None


def latest_interrupted(ledger: Ledger) -> BatchJobInfo | None:
    """The newest job left with photos to do: what ``--resume`` with no ID continues."""
    jobs = ledger.batch_jobs(open_only=True)
    return jobs[0] if jobs else None


def run_batch(
    pipeline: Pipeline, unlocked: UnlockedIdentity, job_id: str,
    cancel: CancelToken | None = None, roll: Roll | None = None,
) -> Iterator[JobProgress | ProtectOutcome]:
    """The local engine: every photo of the job not yet done, one at a time through the one
    pipeline; yields JobProgress and each photo's ProtectOutcome. The job is closed when no
    photo is left to do (failed ones stay for a resume). With *roll*, a photo the key has too
    few serials left for is tagged with the next key (a certified sub-key) instead."""
    cancel = cancel or CancelToken()
    ledger = pipeline.ledger
    run = open_job(ledger, job_id)
    options, todo, progress = run.options, run.todo, run.progress
    yield progress.tick(None, None)
    yield from run.skipped
    for item in todo:
        if cancel.cancelled:
            break
        yield progress.tick(None, item.src)
        if roll is not None and ledger.serials_left(unlocked.key_id) == 0:
            unlocked = roll(ROLL_MARGIN)
        why = still_same(item)
        if why:
            outcome = ProtectOutcome(item.src, error=why, reason=Reason.CHANGED)
        else:
            outcome = _protect_item(pipeline, unlocked, item, options, job_id, cancel)
            if roll is not None and isinstance(outcome, ProtectOutcome) \
                    and outcome.reason is Reason.OUT_OF_SERIALS:
                # The key ran out within this photo: the next key tags it (nothing was written
                # and the reserved serials were handed back).
                unlocked = roll(ROLL_MARGIN)
                outcome = _protect_item(pipeline, unlocked, item, options, job_id, cancel)
            if not isinstance(outcome, ProtectOutcome):
                break  # cancelled before anything was written
        yield record_outcome(ledger, job_id, item, outcome, options)
        yield progress.tick(outcome, item.src)
    finish_job(ledger, job_id)
    ledger.checkpoint_backup()


def _protect_item(pipeline: Pipeline, unlocked: UnlockedIdentity, item: BatchItem,
                  options: BatchOptions, job_id: str, cancel: CancelToken):
    """One photo of the job through the pipeline: its ProtectOutcome, or the cancel event."""
    include = {item.src: item.faces} if item.faces is not None else None
    return next(e for e in pipeline.protect(
        [item.src], unlocked, options.protect_options(item.out_dir, job_id),
        cancel=cancel, include=include, threshold=options.threshold,
        min_face=options.min_face) if isinstance(e, ProtectOutcome) or (
        isinstance(e, PipelineProgress) and e.stage is Stage.CANCELLED))


def interrupted_jobs(ledger: Ledger) -> list:
    """Jobs stopped with photos never tried (a crash, a kill, a cancel): what a front end offers
    to resume on start. Jobs left with failed photos only are not offered again."""
    return [j for j in ledger.batch_jobs(open_only=True) if j.counts.get(ItemState.TODO.value)]


def discard_job(ledger: Ledger, job_id: str) -> None:
    """The user does not want the rest of the job: it is closed (nothing is undone)."""
    ledger.close_batch(job_id)


def finish_job(ledger: Ledger, job_id: str) -> bool:
    """Close the job when every photo is in a final state; True if it is done."""
    info = ledger.batch_job(job_id)
    if info.finished == info.total:
        ledger.close_batch(job_id)
        return True
    return False


def write_report(ledger: Ledger, job_id: str, path: Path) -> None:
    """The job's report: every photo's state, serials, output and error; JSON or CSV by suffix."""
    items = [i.to_json() for i in ledger.batch_items(job_id)]
    info = ledger.batch_job(job_id)
    if Path(path).suffix.lower() == ".csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["index", "input", "sha256", "state", "output", "serials", "error"])
        for i in items:
            w.writerow([i["index"], i["input"], i["sha256"], i["state"], i["output"] or "",
                        " ".join(map(str, i["serials"])), i["error"] or ""])
        text = buf.getvalue()
    else:
        text = json.dumps({"job": job_id, "done": info.done, "counts": info.counts,
                           "photos": items}, indent=1)
    write_file(Path(path), text.encode("utf-8"), overwrite=True)


__all__ = ["ALREADY_IN_OUTPUT", "FINAL", "BatchOptions", "capacity_problem", "create_job",
           "job_from_protect", "mirror_plan", "record_outcome", "run_batch", "write_report"]
