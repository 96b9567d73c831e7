"""Protect jobs: a list of photos, where their tagged copies go, and one run over all of them.

The rules every front end must share live here, once: where a photo's tagged copy goes (one
folder for the batch, or a "tagged" folder next to each photo), which format it is written in,
and that a photo already inside its own output folder is never tagged again (re-running a job
over a folder that holds its outputs must not tag the tagged copies). The CLI, the GUI's Protect
tab and batch jobs all run :func:`run_protect`; progress is counted over the whole job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.identity import UnlockedIdentity
from engine.photos import OutputFormat
from engine.pipeline import CancelToken, Pipeline, Progress
from engine.protect import DEFAULT_STRENGTH, ProtectOptions, ProtectOutcome, Reason

#: Where tagged copies go when a job names no output folder: this folder next to each photo.
DEFAULT_SUBFOLDER = "tagged"
ALREADY_IN_OUTPUT = "already in the output folder; not tagged again"


@dataclass(frozen=True)
class JobProgress:
    done: int  # photos finished in the whole job
    total: int
    faces_done: int
    path: Path | None  # the photo being worked on
    elapsed: float  # seconds since the job (or this run of a resumed job) started
    before: int = 0  # photos a resumed job had finished before this run

    def rate(self) -> float | None:
        """Photos per second in this run; None before the first one."""
        ran = self.done - self.before
        return ran / self.elapsed if ran > 0 and self.elapsed > 0 else None

    def seconds_left(self) -> float | None:
        """Linear estimate from the photos finished so far; None before the first one."""
        rate = self.rate()
        if rate is None or self.done >= self.total:
            return None
        return (self.total - self.done) / rate


@dataclass(frozen=True)
class ProtectJob:
    paths: list[Path]
    output_dir: Path | None = None  # None: a DEFAULT_SUBFOLDER folder next to each photo
    output_format: OutputFormat = OutputFormat.KEEP
    jpeg_quality: int = 95
    strength: float = DEFAULT_STRENGTH
    include: dict[Path, list[int]] | None = None  # per photo: face indices to tag (absent = all)
    retag: bool = False  # tag photos whose faces already carry a tag (else they are skipped)
    c2pa: bool = False  # sign Content Credentials into each copy (ProtectOptions.c2pa)
    small_thumbnails: bool = False  # 48 px record thumbnails (ProtectOptions.small_thumbnails)

    def __post_init__(self) -> None:
        # Checked when the job is made, before any detection, embedding or serial: a bad value
        # costs nothing (engine.limits owns the ranges).
        self.options(Path("."))

    def out_dir_for(self, path: Path) -> Path:
        return self.output_dir if self.output_dir is not None else path.parent / DEFAULT_SUBFOLDER

    def plan(self) -> tuple[dict[Path, list[Path]], list[Path]]:
        """The photos grouped by resolved output folder (order kept within a group), and the
        photos that lie inside their own output folder (not to be tagged again)."""
        groups: dict[Path, list[Path]] = {}
        inside: list[Path] = []
        for path in self.paths:
            out = self.out_dir_for(path).resolve()
            if Path(path).resolve().is_relative_to(out):
                inside.append(path)
            else:
                groups.setdefault(out, []).append(path)
        return groups, inside

    def options(self, out_dir: Path) -> ProtectOptions:
        return ProtectOptions(out_dir=out_dir, fmt=self.output_format,
                              jpeg_quality=self.jpeg_quality, strength=self.strength,
                              retag=self.retag, c2pa=self.c2pa,
                              small_thumbnails=self.small_thumbnails)


def run_protect(
    pipeline: Pipeline, unlocked: UnlockedIdentity, job: ProtectJob,
    cancel: CancelToken | None = None,
) -> Iterator[JobProgress | ProtectOutcome]:
    """Tag every photo of `job`, one pipeline run per output folder; yields JobProgress and each
    photo's ProtectOutcome as they happen (skipped photos first, with status SKIPPED)."""
    cancel = cancel or CancelToken()
    start = time.monotonic()
    groups, inside = job.plan()
    for path in inside:
        yield ProtectOutcome(path, error=ALREADY_IN_OUTPUT, skipped=True,
                             reason=Reason.IN_OUTPUT)
    total, offset, faces = len(job.paths), len(inside), 0
    yield JobProgress(offset, total, 0, None, 0.0)
    for out, group in groups.items():
        group_faces = 0
        for event in pipeline.protect(group, unlocked, job.options(out), cancel=cancel,
                                      include=job.include):
            if isinstance(event, Progress):
                group_faces = event.faces_done
                yield JobProgress(offset + event.done, total, faces + group_faces, event.path,
                                  time.monotonic() - start)
            else:
                yield event
        offset += len(group)
        faces += group_faces
        if cancel.cancelled:
            break
    pipeline.ledger.checkpoint_backup()  # the GUI keeps its ledger open: back up per job
