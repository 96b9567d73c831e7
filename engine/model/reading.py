"""Reading a tag back from a face: the one decoding rule verify, the bench and protect's
read-back (engine.model.readback) share.

Decoding soft-combines the decoder's logits over a few jittered crops (the face box found in a
suspect image never matches the one used when tagging), then lets the Reed-Solomon decoder use
the least reliable symbols as erasures. Every extra decode attempt is another chance of a false
tag, so there are exactly two per model and tag square (engine.faces.tag_squares: one, two
where the photo's edge cuts the face square, and twice that for a face crowded by neighbours):
the combined logits, then the plain crop.
"""

from __future__ import annotations

import numpy as np

from engine.faces import CROP_SCALE, Face, extract_square, tag_squares
from engine.model.match import match_logits
from engine.model.registry import Watermarker
from engine.payload import DecodeResult, decode_logits

#: (scale relative to the standard crop, dx, dy as a fraction of the crop side)
#: Nine crops: measured on the eval split, soft-combining nine instead of five recovered one more
#: face in 45 after JPEG 75 + resize 0.75, at the same number of decode attempts.
JITTERS = ((1.0, 0.0, 0.0), (0.94, 0.0, 0.0), (1.06, 0.0, 0.0), (1.0, 0.03, 0.03),
           (1.0, -0.03, -0.03), (0.97, 0.015, -0.015), (1.03, -0.015, 0.015),
           (1.0, 0.03, -0.03), (1.0, -0.03, 0.03))


def jittered_crops(rgb: np.ndarray, square: tuple[int, int, int]) -> list[np.ndarray]:
    """The tag *square* (x, y, side) first, then a few rescaled and shifted ones (edge-padded)."""
    x, y, side = square
    crops = []
    for scale, dx, dy in JITTERS:
        s = max(8, int(round(side * scale)))
        cx, cy = x + side / 2 + dx * side, y + side / 2 + dy * side
        sq = (int(round(cx - s / 2)), int(round(cy - s / 2)), s)
        crops.append(extract_square(rgb, sq))
    return crops


#: One neighbour set: the boxes of a photo's other faces (engine.faces.crowd_scale).
Neighbours = tuple[tuple[float, float, float, float], ...]


def face_framings(rgb: np.ndarray, face: Face, scale: float = CROP_SCALE,
                  neighbours: tuple[Neighbours, ...] = ((),)) -> list[tuple[int, int, int]]:
    """Where a tag written at *scale* may sit around *face* in *rgb*, for each way of telling
    which other faces protect saw (engine.faces.tag_squares), without repeats."""
    h, w = rgb.shape[:2]
    return list(dict.fromkeys(sq for others in neighbours
                              for sq in tag_squares(face.box, w, h, scale, others)))


def read_blind(logits: np.ndarray, version: int) -> DecodeResult | None:
    """Blind decode of one model's logits over the jittered crops (first row: the plain
    crop): the soft-combined mean first, then the plain crop alone."""
    for attempt in (logits.mean(axis=0), logits[0]):
        res = decode_logits(attempt, known_versions=frozenset({version}))
        if res is not None:
            return res
    return None


def decode_face(
    rgb: np.ndarray, face: Face, models: list[Watermarker], known: tuple[str, ...] = (),
    neighbours: tuple[Neighbours, ...] = ((),),
) -> tuple[DecodeResult | None, int | None]:
    """The first decode over the bundled model versions, and the version that read it.
    Blind RS decoding first (any owner); only if no model reads the face blind, a match
    against the ``known`` payloads of stored records (engine.model.match). Each model reads
    the squares it writes (ModelConfig.square; a face the photo's edge cuts has two, a face
    crowded by *neighbours* two more: engine.faces.tag_squares), so each extra square costs
    one more decoder batch and two more decode attempts per model."""
    crops: dict[tuple[int, int, int], list[np.ndarray]] = {}
    combined = []
    for model in models:
        for square in face_framings(rgb, face, model.square, neighbours):
            if square not in crops:
                crops[square] = jittered_crops(rgb, square)
            logits = model.logits(crops[square])
            combined.append((model.version, np.vstack([logits.mean(axis=0)[None], logits])))
            res = read_blind(logits, model.version)
            if res is not None:
                return res, model.version
    for version, logits in combined if known else ():
        res = match_logits(logits, known, version)
        if res is not None:
            return res, version
    return None, None
