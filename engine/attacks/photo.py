"""Photo-level DeepFake attacks: find every face, run a crop-level face op on it, paste it back.

The bench hands whole tagged photos to an attack, as a DeepFake tool would get them. Each face
is found with the app's own detector, cut as the same square protect uses (engine.faces
.face_square, native resolution), edited by engine.attacks.faceops and written back with a thin
feathered edge (so a swap-source head, which replaces the whole square, leaves no hard seam).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from engine.attacks import faceops
from engine.faces import Face, FaceDetector, extract_square, face_square, feather_mask

_DETECTOR: FaceDetector | None = None
_FACES: OrderedDict[bytes, list[Face]] = OrderedDict()
_LOCK = threading.Lock()


def detect(rgb: np.ndarray) -> list[Face]:
    """Faces of a photo with the default detector, memoised on the pixels: the bench runs many
    attacks on the same tagged photo, and detection costs more than most edits."""
    global _DETECTOR
    key = hashlib.sha1(np.ascontiguousarray(rgb).data).digest() + str(rgb.shape).encode()
    with _LOCK:
        if key in _FACES:
            _FACES.move_to_end(key)
            return _FACES[key]
        if _DETECTOR is None:
            _DETECTOR = FaceDetector()
    faces = _DETECTOR.detect(rgb)
    with _LOCK:
        _FACES[key] = faces
        while len(_FACES) > 32:
            _FACES.popitem(last=False)
    return faces


def paste(rgb: np.ndarray, crop: np.ndarray, square: tuple[int, int, int]) -> None:
    """Write crop into rgb (in place) at square, clipped to the image, with a 4% feathered edge."""
    x, y, side = square
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x0 >= x1 or y0 >= y1:
        return
    alpha = feather_mask(side, 0.04)[y0 - y:y1 - y, x0 - x:x1 - x, None]
    new = crop[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)
    old = rgb[y0:y1, x0:x1].astype(np.float32)
    rgb[y0:y1, x0:x1] = np.clip(np.rint(old + alpha * (new - old)), 0, 255).astype(np.uint8)


def per_face(name: str) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    """Whole-photo attack applying face op `name` to every detected face (left to right)."""

    def attack(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = rgb.copy()
        for face in detect(rgb):
            square = face_square(face.box)
            crop = np.ascontiguousarray(extract_square(out, square))
            paste(out, faceops.apply(name, crop, rng), square)
        return out

    attack.__name__ = f"per_face_{name}"
    return attack
