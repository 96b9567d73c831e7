"""The one pipeline every front end drives: CLI, GUI workers, bench and batch jobs.

`protect` and `verify` are generators: they yield `Progress` events and per-photo outcomes, and
check a `CancelToken` between steps, so a front end can show progress, stay responsive and stop a
batch without any half-written file (writes are atomic, and a cancelled photo is never written).
Errors in one photo become that photo's outcome; the batch goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from engine.change.compare import face_change
from engine.change.reference import Reference, reference_for
from engine.credentials.read import Credentials, FaceTag, read_credentials
from engine.errors import FakeTaggerError
from engine.faces import (
    CANDIDATE_THRESHOLD,
    DEFAULT_MIN_FACE,
    DEFAULT_THRESHOLD,
    Face,
    FaceDetector,
    box_iou,
    neighbour_boxes,
)
from engine.identity import UnlockedIdentity
from engine.limits import MIN_FACE, THRESHOLD
from engine.model.reading import decode_face
from engine.model.registry import Watermarker, all_watermarkers, load_watermarker, pick_device
from engine.photos import load_photo, sha256_file
from engine.protect import ProtectOutcome
from engine.protect.outcome import unexpected
from engine.protect.sequence import Tools, protect_one
from engine.protect.spec import JobSpec
from engine.store.ledger import Ledger
from engine.verify import FaceVerdict, Verdict, judge


class CancelToken:
    """Set from any thread (the GUI's cancel button); checked by the pipeline between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Stage(StrEnum):
    """Where a run is, as reported in :class:`Progress`."""

    EMBED = "embed"  # protect: working on `path`
    DECODE = "decode"  # verify: working on `path`
    DONE = "done"  # `path` finished; `done` counts it
    CANCELLED = "cancelled"  # the run stopped; nothing more follows


@dataclass(frozen=True)
class Progress:
    """The one progress event, from the pipeline and the job runners alike (counted over the
    whole job, so a resumed job's bar starts where the last run stopped)."""

    done: int  # photos finished
    total: int
    path: Path | None = None  # the photo being worked on (or just finished)
    stage: Stage = Stage.EMBED
    faces_done: int = 0
    elapsed: float = 0.0  # seconds since this run started
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


@dataclass
class VerifyOutcome:
    file: Path
    faces: list[FaceVerdict] = field(default_factory=list)
    error: str | None = None
    c2pa: Credentials | None = None  # the file's Content Credentials (None: not read)

    def to_json(self) -> dict:
        out: dict = {"file": str(self.file), "faces": [f.to_json() for f in self.faces]}
        if self.c2pa is not None:
            out["c2pa"] = self.c2pa.to_json()
        if self.error:
            out["error"] = self.error
        return out


class Pipeline:
    """Holds the detector, the models and the ledger; loads models lazily, once."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        device: str = "auto",
        threshold: float = DEFAULT_THRESHOLD,
        min_face: int = DEFAULT_MIN_FACE,
    ) -> None:
        threshold, min_face = THRESHOLD.check(threshold), MIN_FACE.check(min_face)
        self.ledger = ledger
        self.device = pick_device(device)
        self.detector = FaceDetector(threshold=threshold, min_face=min_face, device=self.device)

    # -- building blocks shared by the GUI preview and the bench ---------------------------------

    def warm_up(self) -> None:
        """Load MTCNN and every bundled model now (the GUI does this on a worker at start)."""
        self.detector.detect(np.zeros((64, 64, 3), np.uint8))
        all_watermarkers(self.device)

    @property
    def tools(self) -> Tools:
        """The detector and the bundled models, newest first: what protect's steps need."""
        return Tools(self.detector, all_watermarkers(self.device))

    @property
    def model(self) -> Watermarker:
        """The newest bundled model: what new tags are made with."""
        return load_watermarker(None, self.device)

    def detect(self, rgb: np.ndarray, include_small: bool = False) -> list[Face]:
        return self.detector.detect(rgb, include_small=include_small)

    def verify_rgb(self, rgb: np.ndarray, file_sha256: str | None = None) -> list[FaceVerdict]:
        """A verdict per face. Besides the faces protect would see, verify takes a second look
        at MTCNN's weaker candidates (CANDIDATE_THRESHOLD): an edited or re-synthesised face often
        scores under the normal threshold. A candidate is reported only when a tag is read from
        it, so non-faces never show up as "no tag" faces."""
        models = all_watermarkers(self.device)
        known = self.ledger.known_payloads()
        found = self.detector.detect(rgb, min_prob=CANDIDATE_THRESHOLD)
        sure = [f for f in found if f.prob >= self.detector.threshold]
        verdicts = []
        originals: dict[str, np.ndarray | None] = {}  # one load per original photo
        looked = [f for f in found if f.prob >= self.detector.threshold
                  or not any(box_iou(f.box, s.box) > 0.3 for s in sure)]
        for face in looked:
            second_look = face.prob < self.detector.threshold
            # Protect shrank crowded tag squares among the faces it saw (engine.faces.
            # crowd_scale); an edited neighbour may now be only a weak candidate, so the
            # squares among every face looked at are read too, where they differ.
            neighbours = (neighbour_boxes(sure, face), neighbour_boxes(looked, face))
            res, version = decode_face(rgb, face, models, known, neighbours)
            if second_look and res is None:
                continue
            verdict = judge(face.int_box(), res, self.ledger, file_sha256)
            verdict.model_version = version
            if second_look:
                verdict.second_look = True
                verdict.reason += (f" (face found on a second look: detector confidence "
                                   f"{face.prob:.2f}, as is common for edited faces)")
            if verdict.verdict is Verdict.VERIFIED:
                verdict.change_reference = self._reference(verdict, originals)
                verdict.change = face_change(rgb, verdict.box, verdict.change_reference)
            verdicts.append(verdict)
        return verdicts

    def _reference(self, verdict: FaceVerdict,
                  originals: dict[str, np.ndarray | None]) -> Reference | None:
        """The face as tagged, for the face-change check: for own tags the original photo the
        ledger remembers (when it is still there and still shows that face), else the signed
        record's thumbnail."""
        rec = verdict.record
        if rec is None:
            return None
        original = None
        if verdict.own:
            path = self.ledger.original_path(rec.key_id, rec.serial, rec.file_sha256)
            if path and path not in originals:
                try:
                    originals[path] = load_photo(Path(path)).rgb
                except (FakeTaggerError, OSError):
                    originals[path] = None  # moved or unreadable: the thumbnail still tells
            original = originals.get(path) if path else None
        return reference_for(rec.face_thumb_jpeg, rec.face_box, original)

    def credentials(self, path: Path, faces: list[FaceVerdict]) -> Credentials:
        """The Content Credentials of *path*, judged against the user's trust anchors and the
        tags just read from its faces (engine.credentials.read)."""
        tags = [FaceTag(v.box, v.payload.to_hex() if v.payload else None) for v in faces]
        return read_credentials(path, self.ledger.credentials.anchors(), tags)

    # -- batch generators ---------------------------------------------------------------------

    def _batch(
        self,
        paths: list[Path],
        cancel: CancelToken | None,
        stage: Stage,
        work: Callable[[Path, CancelToken], ProtectOutcome | VerifyOutcome | None],
        failed: Callable[[Path, FakeTaggerError | str], ProtectOutcome | VerifyOutcome],
    ) -> Iterator:
        """The loop both batch jobs share: progress before and after each photo, cancellation
        between photos (and wherever `work` returns None), one photo's error as its outcome."""
        cancel = cancel or CancelToken()
        total, faces_done, start = len(paths), 0, time.monotonic()

        def progress(i: int, path: Path | None, now: Stage) -> Progress:
            return Progress(i, total, path, now, faces_done, time.monotonic() - start)

        for i, path in enumerate(paths):
            if cancel.cancelled:
                yield progress(i, None, Stage.CANCELLED)
                return
            yield progress(i, path, stage)
            try:
                outcome = work(path, cancel)
            except FakeTaggerError as err:  # stays typed: the outcome's reason comes from it
                outcome = failed(Path(path), err)
            except Exception as err:  # noqa: BLE001 - one photo's bug must not end the batch
                outcome = failed(Path(path), unexpected(Path(path), err))
            if outcome is None:
                yield progress(i, None, Stage.CANCELLED)
                return
            faces_done += len(outcome.faces)
            yield outcome
            yield progress(i + 1, path, Stage.DONE)

    def protect(
        self, paths: list[Path], identity: UnlockedIdentity, spec: JobSpec, *,
        cancel: CancelToken | None = None,
    ) -> Iterator[Progress | ProtectOutcome]:
        """Tag every photo as *spec* says (engine.protect.sequence, the steps every runner
        takes), without recording a job: the bench, the demo and tests drive protect this way;
        front ends record a job (engine.run.jobs)."""
        tools = self.tools

        def work(path: Path, token: CancelToken) -> ProtectOutcome | None:
            return protect_one(tools, self.ledger, identity, path, spec.out_dir_for(path), spec,
                               chosen=spec.chosen(path), cancelled=lambda: token.cancelled)

        return self._batch(paths, cancel, Stage.EMBED, work, ProtectOutcome.failed)

    def verify(
        self, paths: list[Path], *, cancel: CancelToken | None = None
    ) -> Iterator[Progress | VerifyOutcome]:
        def work(path: Path, token: CancelToken) -> VerifyOutcome:
            photo = load_photo(path)
            faces = self.verify_rgb(photo.rgb, sha256_file(path))
            return VerifyOutcome(Path(path), faces, c2pa=self.credentials(Path(path), faces))

        return self._batch(paths, cancel, Stage.DECODE, work, lambda p, e: VerifyOutcome(p, error=str(e)))


def run_all(events: Iterator) -> list:
    """Drain a pipeline generator, keeping only the outcomes (for tests and scripts)."""
    return [e for e in events if not isinstance(e, Progress)]
