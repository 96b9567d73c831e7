"""Measurements the bench makes: SSIM/PSNR and the visibility measures of a tagged face region, and the matching of faces
found in an attacked photo to the faces that were tagged.

SSIM is implemented here (torch, already a dependency) rather than taken from scikit-image,
which is only in the `train` extra; it follows scikit-image's `structural_similarity` with
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, averaged over the
RGB channels (tests/test_bench_metrics.py checks the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.bench.visibility import visibility
from engine.faces import CROP_SCALE, face_square, square_region
from engine.protect import region_psnr

Box = Sequence[float]  # x1, y1, x2, y2


def _gaussian_kernel(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 (H, W, 3) images of the same shape, in [-1, 1]."""
    import torch
    import torch.nn.functional as F

    if a.shape != b.shape:
        raise ValueError(f"ssim needs equal shapes, got {a.shape} and {b.shape}")
    k1 = torch.from_numpy(_gaussian_kernel())
    n = k1.numel()
    if min(a.shape[:2]) < n:
        raise ValueError(f"ssim needs images of at least {n}x{n} pixels")
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).permute(2, 0, 1)[:, None]
    y = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64)).permute(2, 0, 1)[:, None]

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable, 'valid': the border is cropped anyway
        t = F.conv2d(t, k1.view(1, 1, 1, n))
        return F.conv2d(t, k1.view(1, 1, n, 1))

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def face_region(box: Box, shape: tuple[int, ...], square: float = CROP_SCALE
                ) -> tuple[slice, slice]:
    """The face square of *box* (*square* times the box) clipped to the image."""
    return square_region(face_square(tuple(box), square), shape)


def region_quality(before: np.ndarray, after: np.ndarray, region: tuple[slice, slice]
                   ) -> dict[str, float]:
    """PSNR (dB), SSIM and what a viewer sees (engine.bench.visibility) of one face's tagged
    area (*region*: face_region or engine.faces.square_region)."""
    a, b = before[region], after[region]
    return {"psnr": region_psnr(a, b), "ssim": ssim(a, b), **visibility(a, b).to_dict()}


def _centre_size(box: Box) -> tuple[float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)


#: A found face matches a tagged one when, after mapping, its centre is within this fraction of
#: the face size and its size within this ratio: loose enough for detector jitter and warps,
#: tight enough that a neighbouring face never matches.
MAX_CENTRE_DIST = 0.4
MAX_SIZE_RATIO = 1.5
#: Largest translation tried between the two photos (a random crop moves the content by up to
#: its cut border), as a fraction of the attacked photo's width/height.
MAX_SHIFT = 0.15


def match_faces(
    tagged: list[Box], orig_shape: tuple[int, ...], found: list[Box], new_shape: tuple[int, ...],
    fixed: dict[int, int] | None = None,
) -> list[int | None]:
    """For each tagged face, the index of the found face that is the same face, or None (missed).

    Attacks may rescale or crop the photo, so coordinates are first scaled by the size ratio of
    the two photos, then the translation that lines up the most faces is chosen among zero and
    the offsets each (tagged, found) pair proposes (a tiny RANSAC over at most n*m hypotheses).
    `fixed` pairs (tagged -> found) are known already, e.g. because the found face decoded to
    exactly that tagged face's payload; they also propose their translation.
    """
    fixed = dict(fixed or {})
    sx, sy = new_shape[1] / orig_shape[1], new_shape[0] / orig_shape[0]
    t = [(cx * sx, cy * sy, s * (sx + sy) / 2) for cx, cy, s in map(_centre_size, tagged)]
    f = [_centre_size(b) for b in found]
    hyps = {(0.0, 0.0)}
    for i, (tcx, tcy, _) in enumerate(t):
        for j, (fcx, fcy, _) in enumerate(f):
            dx, dy = fcx - tcx, fcy - tcy
            if (fixed.get(i) == j or
                    (abs(dx) <= MAX_SHIFT * new_shape[1] and abs(dy) <= MAX_SHIFT * new_shape[0])):
                hyps.add((dx, dy))

    def assign(dx: float, dy: float) -> tuple[list[int | None], float]:
        out: list[int | None] = [fixed.get(i) for i in range(len(t))]
        used = set(fixed.values())
        pairs = []
        for i, (tcx, tcy, ts) in enumerate(t):
            if out[i] is not None:
                continue
            for j, (fcx, fcy, fs) in enumerate(f):
                d = np.hypot(fcx - tcx - dx, fcy - tcy - dy) / max(ts, 1.0)
                if j not in used and d <= MAX_CENTRE_DIST and max(fs, ts) <= MAX_SIZE_RATIO * min(
                        fs, ts):
                    pairs.append((d, i, j))
        cost = 0.0
        for d, i, j in sorted(pairs):
            if out[i] is None and j not in used:
                out[i], cost = j, cost + d
                used.add(j)
        return out, cost

    best: tuple[int, float, list[int | None]] | None = None
    for dx, dy in sorted(hyps, key=lambda h: np.hypot(*h)):  # ties: the smallest shift wins
        out, cost = assign(dx, dy)
        score = sum(o is not None for o in out)
        if best is None or score > best[0] or (score == best[0] and cost < best[1] - 1e-9):
            best = (score, cost, out)
    return best[2] if best else [None] * len(tagged)
