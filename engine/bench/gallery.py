"""The bench's gallery: what a viewer sees of each tagged face, so invisibility is judged by eye
and not only by numbers (DESIGN.md). One PNG per eval face: original | tagged | residual x10,
a central patch of the face square at 3x with nearest-neighbour pixels (nothing smoothed away).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: Native pixels per panel side: the central patch of the face square (cheeks, eyes, nose),
#: where a colour blotch on skin shows first; 3x of it keeps a gallery PNG under ~0.5 MB.
PATCH = 96
ZOOM = 3
GAIN = 10


def panel(original: np.ndarray, tagged: np.ndarray) -> np.ndarray:
    """original | tagged | 128 + 10 x (tagged - original), central patch, at 3x (uint8 RGB)."""
    h, w = original.shape[:2]
    s = min(PATCH, h, w)
    y, x = (h - s) // 2, (w - s) // 2
    a = original[y:y + s, x:x + s].astype(np.int16)
    b = tagged[y:y + s, x:x + s].astype(np.int16)
    res = np.clip(128 + GAIN * (b - a), 0, 255)
    row = np.concatenate([a, b, res], 1).astype(np.uint8)
    return row.repeat(ZOOM, 0).repeat(ZOOM, 1)


def write_gallery(folder: Path, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[Path]:
    """One PNG per (original square, tagged square) pair; old gallery files are replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("face-*.png"):
        old.unlink()
    out = []
    for i, (a, b) in enumerate(pairs, 1):
        path = folder / f"face-{i:02d}.png"
        Image.fromarray(panel(a, b)).save(path, optimize=True)
        out.append(path)
    return out


def before_after(before: np.ndarray, after: np.ndarray, box) -> np.ndarray:
    """The face square of one face, original left and tagged right, at 100% (no zoom): how the
    tag looks at the size a viewer meets it."""
    from engine.bench.metrics import face_region

    r = face_region(box, before.shape)
    gap = np.full((before[r].shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([before[r], gap, after[r]], 1)


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.bench.gallery ORIGINAL TAGGED OUT.png`: the README's before/after."""
    import argparse

    from engine.faces import FaceDetector
    from engine.photos import load_photo

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("original")
    p.add_argument("tagged")
    p.add_argument("out")
    p.add_argument("--face", type=int, default=0, help="which face, left to right (default 0)")
    a = p.parse_args(argv)
    before, after = load_photo(Path(a.original)).rgb, load_photo(Path(a.tagged)).rgb
    faces = FaceDetector().detect(before)
    if not faces or before.shape != after.shape:
        raise SystemExit("need a photo with a face and its tagged copy of the same size")
    Image.fromarray(before_after(before, after, faces[a.face].box)).save(a.out, optimize=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
