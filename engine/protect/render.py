"""Rendering a tagged copy: payload bits into the faces' pixels, the file's bytes, the records'
thumbnails. Pure (no ledger, no keys): the same code runs in this process and on Ray workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from engine.faces import Face, crop_square, neighbour_boxes, square_region, tag_squares
from engine.limits import DEFAULT_STRENGTH
from engine.model.readback import ReadBack, embed_checked
from engine.model.registry import Watermarker
from engine.payload import Payload, encode_bits
from engine.photos import Photo, encode_jpeg_thumbnail, encode_photo
from engine.protect.spec import THUMB_SIDE, JobSpec
from engine.store.records import MAX_THUMB_BYTES


def region_psnr(before: np.ndarray, after: np.ndarray) -> float:
    mse = float(np.mean((before.astype(np.float32) - after.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


class Embedded(NamedTuple):
    """A tagged copy of a photo's pixels, and per face the PSNR of its crop and how its
    protect-time read-back went (engine.model.readback)."""

    tagged: np.ndarray
    psnrs: list[float]
    checks: list[ReadBack]


def embed_faces(
    rgb: np.ndarray, faces: list[Face], payloads: list[Payload], model: Watermarker,
    strength: float = DEFAULT_STRENGTH,
) -> Embedded:
    """A tagged copy of rgb (the input array is not modified), each tag read back and made
    louder where it would not survive a re-encode (engine.model.readback)."""
    bits = np.stack([encode_bits(p) for p in payloads]) if payloads else None
    return embed_bits(rgb, faces, bits, model, strength)


def embed_bits(
    rgb: np.ndarray, faces: list[Face], bits: np.ndarray | None, model: Watermarker,
    strength: float = DEFAULT_STRENGTH,
) -> Embedded:
    """:func:`embed_faces` from the coded payload bits (one row per face): what a batch worker
    gets, as it never sees the identity's keys."""
    h, w = rgb.shape[:2]
    framings = [tag_squares(f.box, w, h, model.square, neighbour_boxes(faces, f))
                for f in faces]
    if faces:
        out, checks = embed_checked(rgb, framings, np.asarray(bits), model, strength)
    else:
        out, checks = rgb.copy(), []
    inside = [square_region(c.square, rgb.shape) for c in checks]
    return Embedded(out, [region_psnr(rgb[r], out[r]) for r in inside], checks)


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
    """A tagged photo as the render step makes it (engine.protect.sequence): the output file's
    bytes and what its records need. No key was used to make it, so a Ray worker may make it."""

    data: bytes
    marks: FaceMarks


def render_tagged(photo: Photo, faces: list[Face], bits: np.ndarray, model: Watermarker,
                  spec: JobSpec, fmt: str) -> Rendered:
    """The render step (engine.protect.sequence): embed *bits* into *faces* as strong as the
    spec says, encode the file in *fmt*, cut the thumbnails; everything but the ledger and keys."""
    embedded = embed_bits(photo.rgb, faces, bits, model, spec.strength)
    data = encode_photo(photo, embedded.tagged, fmt=fmt, jpeg_quality=spec.jpeg_quality)
    return Rendered(data, FaceMarks.of(faces, embedded, spec.thumb_side))
