"""The Protect tab's background job: one engine protect run per output folder, with progress
counted over the whole batch. Plain Python (no Qt), so it runs on a pool thread as is."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.identity import UnlockedIdentity
from engine.pipeline import CancelToken, Pipeline, Progress
from engine.protect import ProtectOptions, ProtectOutcome

FORMATS = {"keep": None, "jpeg": "JPEG", "png": "PNG"}
DEFAULT_SUBFOLDER = "tagged"


@dataclass(frozen=True)
class BatchProgress:
    done: int  # photos finished in the whole batch
    total: int
    faces_done: int
    path: Path | None  # the photo being worked on
    elapsed: float  # seconds since the batch started

    def seconds_left(self) -> float | None:
        """Linear estimate from the photos finished so far; None before the first one."""
        if self.done <= 0 or self.done >= self.total:
            return None
        return self.elapsed / self.done * (self.total - self.done)


@dataclass(frozen=True)
class BatchSpec:
    paths: list[Path]
    output_dir: str  # "" = a "tagged" folder next to each photo
    output_format: str  # "keep" | "jpeg" | "png"
    jpeg_quality: int
    strength: float
    include: dict[Path, list[int]]  # per photo: face indices to tag (absent = all)

    def out_dir_for(self, path: Path) -> Path:
        return Path(self.output_dir) if self.output_dir else path.parent / DEFAULT_SUBFOLDER


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"about {seconds} s left" if seconds < 90 else f"about {seconds // 60} min left"


def run_batch(pipeline: Pipeline, unlocked: UnlockedIdentity, spec: BatchSpec,
              report: Callable[[object], None], token: CancelToken) -> list[ProtectOutcome]:
    """Tag every photo of `spec`; reports BatchProgress and each ProtectOutcome as they happen.
    Photos are grouped by output folder (order kept within a group); a photo that lies inside its
    own output folder is not tagged again."""
    start = time.monotonic()
    groups: dict[Path, list[Path]] = {}
    outcomes: list[ProtectOutcome] = []
    for path in spec.paths:
        out = spec.out_dir_for(path).resolve()
        if path.resolve().is_relative_to(out):
            outcomes.append(ProtectOutcome(path, error="already in the output folder; "
                                                       "not tagged again"))
            report(outcomes[-1])
            continue
        groups.setdefault(out, []).append(path)
    total, offset, faces = len(spec.paths), len(outcomes), 0
    report(BatchProgress(offset, total, 0, None, 0.0))
    for out, group in groups.items():
        opts = ProtectOptions(out_dir=out, fmt=FORMATS.get(spec.output_format),
                              jpeg_quality=spec.jpeg_quality, strength=spec.strength)
        group_faces = 0
        for event in pipeline.protect(group, unlocked, opts, cancel=token, include=spec.include):
            if isinstance(event, Progress):
                group_faces = event.faces_done
                report(BatchProgress(offset + event.done, total, faces + group_faces,
                                     event.path, time.monotonic() - start))
            else:
                outcomes.append(event)
                report(event)
        offset += len(group)
        faces += group_faces
        if token.cancelled:
            break
    return outcomes
