"""Tagging the faces of one photo: payload per face, residual, paste-back, atomic write, records.

Each record holds the SHA-256 of the tagged file, so the file is written (to a hidden temp name)
and hashed before its records are signed; the records are staged as pending, the file published,
then the records committed (engine.store.tagging). A failure or a kill at any point leaves either
the tagged file with its records or neither, and no serial is used up by a photo never written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.credentials.write import BoundFace, sign_into
from engine.errors import LedgerError, SerialsExhaustedError
from engine.faces import Face, crop_square, face_square
from engine.files import display_path
from engine.identity import UnlockedIdentity
from engine.limits import DEFAULT_STRENGTH  # protect's callers import it from here
from engine.model.registry import Watermarker
from engine.payload import Payload, encode_bits
from engine.photos import (
    NameTakenError,
    OutputFormat,
    Photo,
    PhotoError,
    encode_jpeg_thumbnail,
    encode_photo,
    publish_photo,
    sha256_file,
    temp_path_for,
    unique_output_path,
    write_photo_temp,
)
from engine.readback import BOOSTS, CHECK_QUALITY, CHECK_SCALE, ReadBack, embed_checked
from engine.spec import SMALL_THUMB_SIDE as SMALL_THUMB_SIDE  # kept where callers import it
from engine.spec import TAGGED_SUFFIX, THUMB_SIDE, JobSpec
from engine.store.ledger import Ledger, TagJob
from engine.store.records import MAX_THUMB_BYTES, sign_record

#: How often protect picks a new output name when another program takes the chosen one first.
_NAME_TRIES = 20


class Outcome(StrEnum):
    """What happened to one photo of a protect run (:attr:`ProtectOutcome.status`)."""

    TAGGED = "tagged"  # a tagged copy was written
    NO_FACE = "no_face"  # no face big enough to tag; nothing written
    SKIPPED = "skipped"  # not tagged on purpose (engine.jobs: already in its output folder)
    FAILED = "failed"  # an error; `error` says why


@dataclass
class TaggedFace:
    box: list[int]
    serial: int
    payload_hex: str
    psnr: float
    readback: ReadBack | None = None  # None: tagged before read-back existed (not stored)

    def to_json(self) -> dict:
        doc = {"box": self.box, "serial": self.serial}
        if self.readback is not None:
            doc["boost"], doc["read_back"] = self.readback.boost, self.readback.passed
        return doc


class Reason(StrEnum):
    """Why a photo was skipped or failed, for code to act on (:attr:`ProtectOutcome.reason`);
    the words for people stay in :attr:`ProtectOutcome.error`."""

    IN_OUTPUT = "in_output"  # the photo lies inside its own output folder
    COPY_EXISTS = "copy_exists"  # its tagged copy is already recorded in the output folder
    HAS_TAG = "has_tag"  # a face already carries a tag (not --retag)
    CHANGED = "changed"  # changed since its batch job started, or gone
    OUT_OF_SERIALS = "out_of_serials"  # the key ran out of serials within the photo
    ERROR = "error"  # anything else: unreadable, unwritable, a bug


@dataclass
class ProtectOutcome:
    input: Path
    output: Path | None = None
    faces: list[TaggedFace] = field(default_factory=list)
    small_faces: list[list[int]] = field(default_factory=list)
    error: str | None = None  # why the photo failed or was skipped, in words
    skipped: bool = False  # not tagged on purpose; `error` holds the reason
    c2pa: bool = False  # the tagged copy carries a signed Content Credentials manifest
    reason: Reason | None = None  # `error` for code: set with every error (ERROR by default)

    def __post_init__(self) -> None:
        if self.error and self.reason is None:
            self.reason = Reason.ERROR

    @classmethod
    def failed(cls, path: Path, err: BaseException | str) -> ProtectOutcome:
        """A photo's failure, its reason taken from the exception's type (not its words)."""
        reason = Reason.OUT_OF_SERIALS if isinstance(err, SerialsExhaustedError) else Reason.ERROR
        return cls(Path(path), error=str(err), reason=reason)

    @property
    def status(self) -> Outcome:
        if self.skipped:
            return Outcome.SKIPPED
        if self.error:
            return Outcome.FAILED
        return Outcome.TAGGED if self.output else Outcome.NO_FACE

    def to_json(self) -> dict:
        return {"input": str(self.input), "output": str(self.output) if self.output else None,
                "faces": [f.to_json() for f in self.faces], "c2pa": self.c2pa}

    def readback_note(self, short: bool = False) -> str | None:
        """What the user should know when a tag did not read back (engine.readback), or None;
        *short* for a status line."""
        weak = [f for f in self.faces if f.readback is not None and not f.readback.passed]
        if not weak:
            return None
        if short:
            return f"{len(weak)} tag(s) may not survive re-compression"
        return (f"{len(weak)} of {len(self.faces)} face tag(s) did not read back with room to "
                f"spare after a test re-encode (JPEG {CHECK_QUALITY} at {CHECK_SCALE:g}x), even "
                f"at {BOOSTS[-1]:g}x strength: they may not survive heavy re-compression")


def region_psnr(before: np.ndarray, after: np.ndarray) -> float:
    mse = float(np.mean((before.astype(np.float32) - after.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


class Embedded(NamedTuple):
    """A tagged copy of a photo's pixels, and per face the PSNR of its crop and how its
    protect-time read-back went (engine.readback)."""

    tagged: np.ndarray
    psnrs: list[float]
    checks: list[ReadBack]


def embed_faces(
    rgb: np.ndarray, faces: list[Face], payloads: list[Payload], model: Watermarker,
    strength: float = DEFAULT_STRENGTH,
) -> Embedded:
    """A tagged copy of rgb (the input array is not modified), each tag read back and made
    louder where it would not survive a re-encode (engine.readback)."""
    bits = np.stack([encode_bits(p) for p in payloads]) if payloads else None
    return embed_bits(rgb, faces, bits, model, strength)


def embed_bits(
    rgb: np.ndarray, faces: list[Face], bits: np.ndarray | None, model: Watermarker,
    strength: float = DEFAULT_STRENGTH,
) -> Embedded:
    """:func:`embed_faces` from the coded payload bits (one row per face): what a batch worker
    gets, as it never sees the identity's keys."""
    squares = [face_square(f.box) for f in faces]
    if faces:
        out, checks = embed_checked(rgb, faces, squares, np.asarray(bits), model, strength)
    else:
        out, checks = rgb.copy(), []
    inside = [(slice(max(y, 0), y + s), slice(max(x, 0), x + s)) for x, y, s in squares]
    return Embedded(out, [region_psnr(rgb[r], out[r]) for r in inside], checks)


def payloads_for(identity: UnlockedIdentity, serials: list[int], version: int) -> list[Payload]:
    """The payload of each reserved serial (needs the identity's MAC key: driver side only)."""
    return [Payload.create(identity.mac_key, identity.key_id, s, version) for s in serials]


def payload_bits(payloads: list[Payload]) -> np.ndarray:
    """The coded bits to embed, one row per payload: all a batch worker is given."""
    return np.stack([encode_bits(p) for p in payloads])


def face_thumbs(tagged: np.ndarray, boxes: list[list[int]], side: int = THUMB_SIDE) -> list[bytes]:
    """The records' face thumbnails, cut from the tagged pixels. The quality steps down only
    where a busy face would not fit the record's size limit (FORMAT.md: 8 KB)."""
    h, w = tagged.shape[:2]
    thumbs = []
    for box in boxes:
        x, y, s = crop_square(box, w, h, scale=1.0)
        for quality in (85, 75, 60, 45):
            thumb = encode_jpeg_thumbnail(tagged[y:y + s, x:x + s], size=side, quality=quality)
            if len(thumb) <= MAX_THUMB_BYTES:
                break
        thumbs.append(thumb)
    return thumbs


@dataclass
class FaceMarks:
    """Per tagged face, what its record and the outcome need: box, thumbnail cut from the
    tagged pixels, PSNR and read-back."""

    boxes: list[list[int]]
    thumbs: list[bytes]
    psnrs: list[float]
    checks: list[ReadBack]

    @classmethod
    def of(cls, faces: list[Face], embedded: Embedded, thumb_side: int = THUMB_SIDE) -> FaceMarks:
        boxes = [f.int_box() for f in faces]
        return cls(boxes, face_thumbs(embedded.tagged, boxes, thumb_side), embedded.psnrs,
                   embedded.checks)


@dataclass
class Rendered:
    """A tagged photo as a pure worker makes it (engine.batch_ray): the output file's bytes and
    what its records need. No key was used to make it, so it may be made anywhere."""

    data: bytes
    marks: FaceMarks


def render_tagged(photo: Photo, faces: list[Face], bits: np.ndarray, model: Watermarker,
                  strength: float, fmt: str, jpeg_quality: int,
                  thumb_side: int = THUMB_SIDE) -> Rendered:
    """Embed *bits* into *faces* and encode the file: everything but the ledger and the keys."""
    embedded = embed_bits(photo.rgb, faces, bits, model, strength)
    data = encode_photo(photo, embedded.tagged, fmt=fmt, jpeg_quality=jpeg_quality)
    return Rendered(data, FaceMarks.of(faces, embedded, thumb_side))


def output_target(src: Path, src_format: str, spec: JobSpec,
                  out_dir: Path) -> tuple[str, Path, Path]:
    """(format, output path, temp path) of a tagged copy of *src* in *out_dir* (made)."""
    fmt = src_format if spec.fmt is OutputFormat.KEEP else spec.fmt.value
    ensure_output_dir(out_dir)
    out_path = unique_output_path(out_dir, src, suffix=TAGGED_SUFFIX, fmt=fmt)
    return fmt, out_path, temp_path_for(out_path)


def protect_photo(
    photo: Photo, faces: list[Face], identity: UnlockedIdentity, ledger: Ledger,
    model: Watermarker, spec: JobSpec, out_dir: Path | None = None, batch_job: str | None = None,
) -> ProtectOutcome:
    """Tag *faces* of *photo* into a new file in *out_dir* (the spec's), crash-safe
    (engine.store.tagging): serials reserved, temp file written and hashed, records signed and
    staged, file published, records committed. Any failure before the file is published undoes
    everything and frees the serials; nothing half-done is ever left for the user."""
    if not faces:
        return ProtectOutcome(photo.path)
    out_dir = spec.out_dir_for(photo.path) if out_dir is None else out_dir
    fmt, out_path, tmp = output_target(photo.path, photo.format, spec, out_dir)
    job = ledger.begin_tag(identity.key_id, len(faces), original_path=display_path(photo.path),
                           output_path=out_path, tmp_path=tmp, batch_job=batch_job,
                           source=photo.path)

    def write() -> tuple[list[Payload], FaceMarks]:
        payloads = payloads_for(identity, job.serials, model.version)
        embedded = embed_faces(photo.rgb, faces, payloads, model, spec.strength)
        write_photo_temp(photo, embedded.tagged, out_path, tmp, fmt=fmt,
                         jpeg_quality=spec.jpeg_quality)
        return payloads, FaceMarks.of(faces, embedded, spec.thumb_side)

    return commit_tag(ledger, identity, job, write, photo.path, spec, fmt)


def commit_tag(
    ledger: Ledger, identity: UnlockedIdentity, job: TagJob,
    write: Callable[[], tuple[list[Payload], FaceMarks]],
    src: Path, spec: JobSpec, fmt: str,
) -> ProtectOutcome:
    """Steps 2-5 of a reserved tag *job* (engine.store.tagging): `write` fills the temp file and
    returns the payloads and each face's marks; then the file is hashed, its records signed
    and staged, the file published (a new name if another program took it) and the records
    committed. A failure before the publish aborts the job: serials freed, temp removed. The
    local engine's `write` embeds and encodes; the Ray engine's writes a worker's bytes."""
    outcome = ProtectOutcome(src)
    out_path, tmp = job.output_path, job.tmp_path
    published = False
    try:
        payloads, marks = write()
        if spec.c2pa:  # before the hash: the record's file_sha256 covers the manifest too
            add_credentials(ledger, identity, tmp, fmt, src, out_path.name, payloads, marks)
            outcome.c2pa = True
        digest = sha256_file(tmp)
        records = []
        for payload, box, thumb, psnr, check in zip(payloads, marks.boxes, marks.thumbs,
                                                    marks.psnrs, marks.checks, strict=True):
            records.append(sign_record(
                identity, serial=payload.serial, payload_hex=payload.to_hex(),
                file_sha256=digest, face_box=box, face_thumb_jpeg=thumb))
            outcome.faces.append(TaggedFace(box, payload.serial, payload.to_hex(), psnr, check))
        ledger.stage_tag(job, records)
        for attempt in range(_NAME_TRIES):
            try:
                publish_photo(tmp, out_path)
                published = True
                break
            except NameTakenError:  # another program took the name meanwhile: pick the next
                if attempt == _NAME_TRIES - 1:
                    raise
                out_path = unique_output_path(out_path.parent, src, suffix=TAGGED_SUFFIX,
                                              fmt=fmt)
                ledger.move_tag(job, out_path)
    except BaseException:
        if not published:
            with contextlib.suppress(Exception):  # if this fails too, the next open recovers it
                ledger.abort_tag(job)
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    try:
        ledger.finish_tag(job)
    except LedgerError as err:  # the file is out: its staged records are finished on next open
        raise LedgerError(f"{display_path(out_path)} was written, but the ledger could not "
                          f"commit its records yet ({err}); FakeTagger finishes them the next "
                          "time it opens the ledger") from None
    outcome.output = out_path
    return outcome


def add_credentials(ledger: Ledger, identity: UnlockedIdentity, tmp: Path, fmt: str, src: Path,
                    title: str, payloads: list[Payload], marks: FaceMarks) -> None:
    """Sign a C2PA manifest into the finished temp file (engine.credentials.write): the original
    as ingredient, a soft binding per face with its payload, the identity's chain."""
    chain, _ = ledger.credentials.chain_for(identity)
    faces = [BoundFace(box, p.to_hex()) for p, box in zip(payloads, marks.boxes, strict=True)]
    sign_into(tmp, fmt, src, identity, chain, faces, payloads[0].version, title)


def check_output_dir(folder: Path) -> None:
    """PhotoError now, before any work, if *folder* cannot be (made into) a writable folder:
    it is a file, or it or the nearest folder above it that exists is not writable."""
    folder = Path(folder).absolute()
    probe = folder
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise PhotoError(f"{folder}: cannot create the output folder ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "output folder" if probe == folder else f"output folder (in {probe})"
        raise PhotoError(f"{folder}: cannot write the {what}: permission denied or read-only")


def ensure_output_dir(folder: Path) -> None:
    """Create the output folder (and parents); one-line PhotoError when it cannot be."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PhotoError(f"{folder}: the output folder is a file, not a folder") from None
    except OSError as exc:
        raise PhotoError(f"{folder}: cannot create the output folder ({exc.strerror})") from None
    if not Path(folder).is_dir():
        raise PhotoError(f"{folder}: the output folder is not a folder")
