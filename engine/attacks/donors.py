"""Donor faces for the identity-swap attacks: someone else's face to swap in or out.

With the data cache present the donors are the train split's face crops (other photos than the
eval split the bench tags). A fresh clone has no cache, so three licence-clean public-domain /
CC0 faces ship in assets/attacks/donors.npz (see docs/ATTACKS.md); `python -m
engine.attacks.gallery --build-donors` rebuilds that file from the repository's own sample photos.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from engine.paths import assets_dir

ROOT = Path(__file__).resolve().parents[2]
DONORS_ASSET = assets_dir() / "attacks" / "donors.npz"
CACHE = ROOT / "cache"
#: Licence-clean photos in the repository (tests/data/LICENSES.md, assets/SAMPLE_LICENSE.md).
DONOR_SOURCES = ("tests/data/grace_hopper.jpg", "assets/sample.jpg", "tests/data/camera.jpg")
DONOR_SIZE = 160


@lru_cache(maxsize=1)
def donor_pool() -> np.ndarray:
    """(N, 160, 160, 3) uint8 donor faces: the train split's centred 1.5x crops if the data cache
    is there (other people than the eval photos), else the bundled assets/attacks/donors.npz."""
    faces, meta = CACHE / "faces_train.npy", CACHE / "faces_train_meta.json"
    if faces.is_file() and meta.is_file():
        arr = np.load(faces)
        keep = [i for i, m in enumerate(json.loads(meta.read_text())) if _centred(m)]
        if keep:
            return arr[keep]
    with np.load(DONORS_ASSET) as z:
        return z["faces"]


def donor_source() -> str:
    """Which pool the swaps draw from, for the bench's report: the swap rows of a run from a
    checkout with the data cache and of one without it (CI, a git worktree) differ."""
    pool = donor_pool()
    if (CACHE / "faces_train.npy").is_file():
        return f"{len(pool)} train-split faces of the data cache ({CACHE})"
    return f"{len(pool)} bundled faces ({DONORS_ASSET.name})"


def _centred(m: dict) -> bool:
    """A 1.5x crop whose square was not shifted at the image border (face box in the middle)."""
    if abs(m.get("scale", 0) - 1.5) > 1e-6:
        return False
    x1, y1, x2, y2 = m["box"]
    x, y, s = m["square"]
    return abs(x + s / 2 - (x1 + x2) / 2) < 0.04 * s and abs(y + s / 2 - (y1 + y2) / 2) < 0.04 * s


def _thumb(img: np.ndarray) -> np.ndarray:
    t = cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), (24, 24), interpolation=cv2.INTER_AREA)
    t = t.astype(np.float32).ravel()
    return (t - t.mean()) / (t.std() + 1e-6)


def pick_donor(crop: np.ndarray, rng: np.random.Generator,
               pool: np.ndarray | None = None) -> np.ndarray:
    """A donor face drawn with rng, skipping ones that look like the crop itself (the same photo
    or person in the pool would make the swap a no-op)."""
    pool = donor_pool() if pool is None else pool
    me = _thumb(crop)
    order = rng.permutation(len(pool))
    for i in order:
        if float(np.mean(me * _thumb(pool[i]))) < 0.9:
            return pool[i]
    return pool[order[0]]


def build_asset(path: Path = DONORS_ASSET) -> np.ndarray:
    """Cut the 1.5x face square of each DONOR_SOURCES photo (app detector), 160 px, save npz."""
    from PIL import Image

    from engine.faces import FaceDetector, extract_square, face_square

    detector = FaceDetector()
    faces = []
    for rel in DONOR_SOURCES:
        rgb = np.asarray(Image.open(ROOT / rel).convert("RGB"))
        face = max(detector.detect(rgb), key=lambda f: f.size)
        crop = np.ascontiguousarray(extract_square(rgb, face_square(face.box)))
        faces.append(cv2.resize(crop, (DONOR_SIZE, DONOR_SIZE), interpolation=cv2.INTER_AREA))
    arr = np.stack(faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, faces=arr, sources=np.array(DONOR_SOURCES))
    return arr
