"""Tagging the faces of one photo: payload per face, residual, paste-back, atomic write, records.

The tagged copy is written (atomically) before its records are signed, because each record holds
the SHA-256 of that exact file. If storing the records fails, the new file is removed again, so
the ledger and the disk never disagree.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from engine.faces import Face, crop_square, extract_square, face_square, paste_residual
from engine.identity import UnlockedIdentity
from engine.model.registry import Watermarker
from engine.payload import Payload, encode_bits
from engine.photos import (
    OutputFormat,
    Photo,
    encode_jpeg_thumbnail,
    save_photo,
    sha256_file,
    unique_output_path,
)
from engine.store.ledger import Ledger
from engine.store.records import sign_record

#: The default operating point of the tag-strength knob (x the model's deployed residual RMS).
#: Every front end and the bench start from it. 0.88 puts model v1 at 38.35 dB mean face PSNR
#: (37.46 worst) with every everyday target still met (bench, MODEL_CARD.md "Default strength").
DEFAULT_STRENGTH = 0.88


class Outcome(StrEnum):
    """What happened to one photo of a protect run (:attr:`ProtectOutcome.status`)."""

    TAGGED = "tagged"  # a tagged copy was written
    NO_FACE = "no_face"  # no face big enough to tag; nothing written
    SKIPPED = "skipped"  # not tagged on purpose (engine.jobs: already in its output folder)
    FAILED = "failed"  # an error; `error` says why


@dataclass(frozen=True)
class ProtectOptions:
    out_dir: Path
    fmt: OutputFormat = OutputFormat.KEEP
    jpeg_quality: int = 95
    strength: float = DEFAULT_STRENGTH
    suffix: str = "-tagged"

    def __post_init__(self) -> None:
        # Any spelling ("PNG", "png", None for keep) becomes the one vocabulary.
        object.__setattr__(self, "fmt", OutputFormat(str(self.fmt or "keep").lower()))


@dataclass
class TaggedFace:
    box: list[int]
    serial: int
    payload_hex: str
    psnr: float

    def to_json(self) -> dict:
        return {"box": self.box, "serial": self.serial}


@dataclass
class ProtectOutcome:
    input: Path
    output: Path | None = None
    faces: list[TaggedFace] = field(default_factory=list)
    small_faces: list[list[int]] = field(default_factory=list)
    error: str | None = None  # why the photo failed or was skipped
    skipped: bool = False  # not tagged on purpose; `error` holds the reason

    @property
    def status(self) -> Outcome:
        if self.skipped:
            return Outcome.SKIPPED
        if self.error:
            return Outcome.FAILED
        return Outcome.TAGGED if self.output else Outcome.NO_FACE

    def to_json(self) -> dict:
        return {"input": str(self.input), "output": str(self.output) if self.output else None,
                "faces": [f.to_json() for f in self.faces]}


def region_psnr(before: np.ndarray, after: np.ndarray) -> float:
    mse = float(np.mean((before.astype(np.float32) - after.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def embed_faces(
    rgb: np.ndarray, faces: list[Face], payloads: list[Payload], model: Watermarker,
    strength: float = DEFAULT_STRENGTH,
) -> tuple[np.ndarray, list[float]]:
    """A tagged copy of rgb and the PSNR of each face's crop; the input array is not modified."""
    out = rgb.copy()
    squares = [face_square(f.box) for f in faces]
    crops = [extract_square(rgb, sq) for sq in squares]
    bits = np.stack([encode_bits(p) for p in payloads]) if payloads else None
    for sq, res in zip(squares, model.residuals(crops, bits, strength), strict=True):
        paste_residual(out, res, sq)
    inside = [(slice(max(y, 0), y + s), slice(max(x, 0), x + s)) for x, y, s in squares]
    return out, [region_psnr(rgb[r], out[r]) for r in inside]


def protect_photo(
    photo: Photo, faces: list[Face], identity: UnlockedIdentity, ledger: Ledger,
    model: Watermarker, opts: ProtectOptions,
) -> ProtectOutcome:
    outcome = ProtectOutcome(photo.path)
    if not faces:
        return outcome
    serials = ledger.allocate_serials(identity.key_id, len(faces))
    payloads = [Payload.create(identity.mac_key, identity.key_id, s, model.version)
                for s in serials]
    tagged, psnrs = embed_faces(photo.rgb, faces, payloads, model, opts.strength)
    fmt = photo.format if opts.fmt is OutputFormat.KEEP else opts.fmt.value
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    out_path = unique_output_path(opts.out_dir, photo.path, suffix=opts.suffix, fmt=fmt)
    save_photo(photo, tagged, out_path, fmt=fmt, jpeg_quality=opts.jpeg_quality)
    try:
        digest = sha256_file(out_path)
        h, w = tagged.shape[:2]
        records = []
        for face, payload, psnr in zip(faces, payloads, psnrs, strict=True):
            x, y, s = crop_square(face.box, w, h, scale=1.0)
            records.append(sign_record(
                identity, serial=payload.serial, payload_hex=payload.to_hex(),
                file_sha256=digest, face_box=face.int_box(),
                face_thumb_jpeg=encode_jpeg_thumbnail(tagged[y:y + s, x:x + s])))
            outcome.faces.append(TaggedFace(face.int_box(), payload.serial, payload.to_hex(), psnr))
        ledger.add_records(records, original_path=str(photo.path), output_path=str(out_path))
    except BaseException:
        with contextlib.suppress(OSError):
            out_path.unlink()
        raise
    outcome.output = out_path
    return outcome
