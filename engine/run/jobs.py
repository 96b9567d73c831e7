"""Jobs: every protect is a job recorded in the ledger, resumable after any crash.

``faketagger protect``, ``faketagger batch`` and the GUI's Protect tab all make one with
:func:`create_job` (a JobSpec and every photo with its SHA-256 and output folder; ``batch``
mirrors the input tree, the others plan with :func:`protect_job`). Both runners (engine.run.local,
engine.run.ray_runner) share the opening, skip rules, item bookkeeping and report here. A kill
at any point is recovered on the next open of the ledger; the resumed job starts with the
photos not yet done.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from engine.atomic import atomic_writer
from engine.errors import FakeTaggerError
from engine.files import display_path, write_file
from engine.identity import UnlockedIdentity
from engine.photos import PhotoError, iter_photos, sha256_file
from engine.pipeline import Progress, Stage
from engine.protect import ProtectOutcome, Reason
from engine.protect.spec import JobSpec
from engine.store.batches import BatchItem, BatchJobInfo, ItemState
from engine.store.ledger import Ledger
from engine.store.records import MAX_SERIAL

CHANGED = "changed since the batch job started (its SHA-256 differs); not tagged"
ALREADY_IN_OUTPUT = "already in the output folder; not tagged again"


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
               out: Path, spec: JobSpec, inside: list[tuple[Path, Path]] = ()) -> str:
    """Record a protect run as a job: the one way every front end starts one. Every photo of
    *plan* (photo, output folder) is hashed, so a photo changed before its turn is refused;
    the photos of *inside* lie in their own output folder and are recorded as skipped."""
    items = []
    for photo, out_dir in [*plan, *inside]:
        try:
            digest = sha256_file(photo)
        except PhotoError:
            digest = ""  # unreadable: the run reports it as that photo's error
        items.append((photo, out_dir, digest, spec.chosen(photo)))
    job_id = ledger.create_batch(key_id, out, spec.to_json(), items)
    for k, (photo, _out_dir) in enumerate(inside, start=len(plan)):
        ledger.set_batch_item(job_id, k, ItemState.SKIPPED, error=in_output(photo).error)
    return job_id


def in_output(path: Path) -> ProtectOutcome:
    """A photo inside its own output folder: skipped, so a run over a folder that holds its
    tagged copies never tags them again."""
    return ProtectOutcome(path, error=ALREADY_IN_OUTPUT, reason=Reason.IN_OUTPUT)


def protect_job(ledger: Ledger, key_id: bytes | str, paths: list[Path], spec: JobSpec) -> str:
    """``faketagger protect`` and the GUI's Protect tab as a job: each photo to the spec's output
    folder (or a "tagged" folder beside it), grouped by folder; the spec's face choices and
    detection settings are stored with it, so a resume (by the GUI or by ``faketagger batch
    --resume``) finds the same faces."""
    groups, inside = spec.plan(paths)
    plan = [(p, out) for out, group in groups.items() for p in group]
    return create_job(ledger, key_id, plan, spec.out_dir or Path("."), spec,
                      [(p, spec.out_dir_for(p)) for p in inside])


def copy_through(item: BatchItem) -> Path:
    """Copy a photo without faces unchanged into its output folder (engine.atomic: temp,
    fsync, never over a file that is there)."""
    out_dir = Path(item.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / item.src.name
    if target.exists():
        if sha256_file(target) == item.sha256:
            return target  # copied before a crash: done
        raise PhotoError(f"{display_path(target)}: already exists; not copied over")
    try:
        with open(item.src, "rb") as fin, atomic_writer(target, overwrite=False) as fout:
            shutil.copyfileobj(fin, fout)
    except FileExistsError:
        raise PhotoError(f"{display_path(target)}: already exists; not copied over") from None
    except OSError as exc:
        raise PhotoError(f"{display_path(target)}: cannot copy ({exc.strerror})") from None
    return target


def record_outcome(ledger: Ledger, job_id: str, item: BatchItem, outcome: ProtectOutcome,
                   spec: JobSpec) -> ProtectOutcome:
    """Store a photo's end state (tagged items are already marked by the ledger), copying a
    photo with no face through first when the spec asks."""
    if outcome.state is ItemState.NO_FACE and spec.copy_no_face:
        try:
            outcome.output = copy_through(item)
        except FakeTaggerError as err:
            outcome.error, outcome.reason = str(err), Reason.ERROR
    if outcome.state is not ItemState.TAGGED:
        ledger.set_batch_item(job_id, item.idx, outcome.state, output=outcome.output,
                              error=outcome.error)
    return outcome


def still_same(item: BatchItem) -> str | None:
    """Why *item*'s photo must not be tagged now (gone, changed), or None."""
    try:
        digest = sha256_file(item.src)
    except PhotoError as err:
        return str(err)
    return None if digest == item.sha256 else f"{display_path(item.src)}: {CHANGED}"


class Tally:
    """A job run's counts as :class:`Progress` events (a resumed job's finished photos done)."""

    def __init__(self, total: int, before: int) -> None:
        self.total, self.done, self.before, self.faces = total, before, before, 0
        self.start = time.monotonic()

    def tick(self, outcome: ProtectOutcome | None, path: Path | None) -> Progress:
        """Working on *path* (no outcome yet), or done with it."""
        if outcome is not None:
            self.done += 1
            self.faces += len(outcome.faces)
        return Progress(self.done, self.total, path, Stage.EMBED if outcome is None
                        else Stage.DONE, self.faces, time.monotonic() - self.start, self.before)


#: Serials the next key must have when a job rolls over (more than any photo's faces, so the
#: new key is not spent again within a photo or a Ray chunk of photos).
ROLL_MARGIN = 1024

#: ``roll(serials)``: the next key to tag with, with at least *serials* left (a sub-key of the
#: job's owner, created when needed: :meth:`Ledger.tagging_key`).
Roll = Callable[[int], UnlockedIdentity]


@dataclass(frozen=True)
class JobRun:
    """A job run's start: its spec, the photos not yet done (failed ones retried), those skipped
    now for a tagged copy already in their output folder, and the progress counter."""

    spec: JobSpec
    todo: list[BatchItem]
    skipped: list[ProtectOutcome]
    progress: Tally


def open_job(ledger: Ledger, job_id: str) -> JobRun:
    """The job's run; a photo whose tagged copy is already in its output folder is skipped here
    (unless ``tag_again``), so no runner tags it twice."""
    info = ledger.batch_job(job_id)
    spec = JobSpec.from_json(info.options)
    todo = ledger.batch_items(job_id, (ItemState.TODO, ItemState.FAILED))
    todo, skipped = (todo, []) if spec.tag_again else skip_recorded(ledger, job_id, todo)
    return JobRun(spec, todo, skipped, Tally(info.total, info.total - len(todo)))


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
        if made >= int(changed):  # records keep whole seconds: same second counts as after
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
        skipped.append(ProtectOutcome(item.src, error=why, reason=Reason.COPY_EXISTS))
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
