"""The dozen image operations face change needs, in numpy and Pillow.

They follow OpenCV's definitions (its 8-bit Lab and grey, Gaussian kernels and borders, the
enhanced-correlation (ECC) alignment of Evangelidis and Psarakis as ``cv2.findTransformECC``
runs it, a least-median similarity fit like ``estimateAffinePartial2D``), so the thresholds
calibrated with OpenCV still hold; but OpenCV is not needed to run them. OpenCV, with its own
OpenBLAS and FFmpeg codecs, was 172 MB of the desktop bundle for these calls alone (docs/INSTALL.md,
round D). The attacks and the training code, which are not in the bundle, still use OpenCV.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np
from PIL import Image, ImageDraw


class NoConvergence(ArithmeticError):
    """The ECC alignment would minimise the correlation: the images do not match."""


# --- colour -----------------------------------------------------------------------------------


def rgb_to_grey(rgb: np.ndarray) -> np.ndarray:
    """uint8 luma, OpenCV's fixed-point RGB2GRAY (0.299, 0.587, 0.114)."""
    c = rgb.astype(np.int32)
    return ((c[..., 0] * 4899 + c[..., 1] * 9617 + c[..., 2] * 1868 + 8192) >> 14).astype(np.uint8)


_SRGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
_WHITE = np.array([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 Lab with OpenCV's 8-bit scaling (L * 255 / 100, a + 128, b + 128), D65."""
    v = rgb.astype(np.float64) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _SRGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    y = xyz[..., 1]
    lum = np.where(y > 0.008856, 116.0 * np.cbrt(y) - 16.0, 903.3 * y)
    lab = np.stack([lum * 255.0 / 100.0, 500.0 * (f[..., 0] - f[..., 1]) + 128.0,
                    200.0 * (f[..., 1] - f[..., 2]) + 128.0], -1)
    return np.clip(np.rint(lab), 0, 255).astype(np.uint8)


# --- filtering and resizing -------------------------------------------------------------------


_SMALL_KERNELS = {3: [0.25, 0.5, 0.25], 5: [0.0625, 0.25, 0.375, 0.25, 0.0625]}


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """OpenCV's getGaussianKernel: its fixed binomial tables for small sizes and no sigma."""
    if sigma <= 0 and size in _SMALL_KERNELS:
        return np.array(_SMALL_KERNELS[size])
    if sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = np.arange(size) - (size - 1) / 2.0
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return k / k.sum()


def _convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable *kernel* along both axes, borders reflected without repeating the edge
    (OpenCV's BORDER_REFLECT_101), in float64: one matrix product per axis (a banded matrix
    that holds the kernel and the border), about ten times faster than shifting and adding."""
    taps = tuple(float(w) for w in kernel)
    return _separable(img, _band(img.shape[0], taps), _band(img.shape[1], taps))


def _separable(img: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """float64 *img* (h, w[, c]) with *rows* (m, h) applied down its columns and *cols* (k, w)
    along its rows: (m, k[, c]). Blurring and resizing are both this."""
    out = np.tensordot(rows, img.astype(np.float64), axes=(1, 0))  # (m, w[, c])
    return np.ascontiguousarray(np.moveaxis(np.tensordot(out, cols, axes=(1, 1)), -1, 1))


@lru_cache(maxsize=32)
def _band(n: int, taps: tuple[float, ...]) -> np.ndarray:
    """(n, n): row i holds the kernel's weights on the source pixels of output pixel i, the
    ones past an edge folded back BORDER_REFLECT_101's way (-1 -> 1, n -> n - 2)."""
    r = len(taps) // 2
    band = np.zeros((n, n))
    for i in range(n):
        for k, w in enumerate(taps):
            j = i + k - r
            j = -j if j < 0 else (2 * (n - 1) - j if j >= n else j)
            band[i, j] += w
    return band


def gaussian_blur(img: np.ndarray, sigma: float = 0.0, size: int | None = None) -> np.ndarray:
    """OpenCV's GaussianBlur: the kernel spans 3 sigma each side on uint8 images, 4 on float
    ones; uint8 in, uint8 out (rounded)."""
    if size is None:
        size = int(round(sigma * (3 if img.dtype == np.uint8 else 4) * 2 + 1)) | 1
    out = _convolve(img, gaussian_kernel(size, sigma))
    if img.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(img.dtype)


def _area_weights(n: int, m: int) -> np.ndarray:
    """(m, n): how much of each source pixel falls in each of m output pixels, averaged
    (OpenCV's INTER_AREA when shrinking)."""
    scale = n / m
    lo = np.arange(m)[:, None] * scale
    j = np.arange(n)[None, :]
    return np.clip(np.minimum(j + 1, lo + scale) - np.maximum(j, lo), 0, None) / scale


def _linear_weights(n: int, m: int) -> np.ndarray:
    """(m, n): bilinear weights with pixel centres aligned (OpenCV's INTER_LINEAR)."""
    x = np.clip((np.arange(m) + 0.5) * (n / m) - 0.5, 0, n - 1)
    x0 = np.minimum(np.floor(x).astype(int), n - 1)
    x1 = np.minimum(x0 + 1, n - 1)
    w = np.zeros((m, n))
    w[np.arange(m), x0] += 1.0 - (x - x0)
    w[np.arange(m), x1] += x - x0
    return w


def resize(img: np.ndarray, side: int, area: bool) -> np.ndarray:
    """Square uint8 image to *side* px: area averaging (shrinking) or bilinear (enlarging)."""
    n = img.shape[0]
    w = (_area_weights if area and side < n else _linear_weights)(n, side)
    return np.clip(np.rint(_separable(img, w, w)), 0, 255).astype(np.uint8)


# --- masks ------------------------------------------------------------------------------------


def convex_hull(points: np.ndarray) -> np.ndarray:
    """(k, 2) hull of integer points, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted({(int(x), int(y)) for x, y in points})
    if len(pts) < 3:
        return np.array(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def fill_hull(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """bool mask: the convex hull of *points* (rounded down to pixels, as OpenCV's int32
    points are), filled with its outline."""
    img = Image.new("1", (shape[1], shape[0]), 0)
    hull = convex_hull(np.asarray(points).astype(np.int32))
    if len(hull) >= 3:
        ImageDraw.Draw(img).polygon([tuple(p) for p in hull], fill=1, outline=1)
    elif len(hull):
        ImageDraw.Draw(img).line([tuple(p) for p in hull], fill=1)
    return np.asarray(img, dtype=bool)


def morph(mask: np.ndarray, size: int, grow: bool) -> np.ndarray:
    """Dilate (*grow*) or erode a bool mask by a size x size square; the image border neither
    grows nor eats the mask (OpenCV's default border for both)."""
    lo, hi = size // 2, size - 1 - size // 2
    out = mask
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (lo, hi)
        padded = np.pad(out, pad, constant_values=not grow)
        n = out.shape[axis]
        views = [padded[i:i + n] if axis == 0 else padded[:, i:i + n] for i in range(size)]
        out = np.logical_or.reduce(views) if grow else np.logical_and.reduce(views)
    return out


# --- geometry ---------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs


def warp_affine(img: np.ndarray, m: np.ndarray, inverse: bool = False,
                border: str = "replicate") -> np.ndarray:
    """Bilinear affine warp to the same size. *m* (2x3) maps source to destination, or with
    *inverse* destination to source (OpenCV's WARP_INVERSE_MAP). Outside the source:
    the nearest edge pixel (``replicate``) or 0 (``constant``). The sampling is torch's
    grid_sample (torch is loaded for the tag anyway): ECC warps a few dozen times per face."""
    import torch
    import torch.nn.functional as F

    h, w = img.shape[:2]
    if not inverse:
        m = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
    ys, xs = _grid(h, w)
    sx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    sy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    grid = np.stack([sx * (2.0 / max(w - 1, 1)) - 1.0, sy * (2.0 / max(h - 1, 1)) - 1.0], -1)
    src = torch.from_numpy(np.ascontiguousarray(img, np.float32).reshape(h, w, -1))
    out = F.grid_sample(src.permute(2, 0, 1)[None], torch.from_numpy(grid[None].astype(np.float32)),
                        mode="bilinear", align_corners=True,
                        padding_mode="border" if border == "replicate" else "zeros")
    out = out[0].permute(1, 2, 0).numpy().reshape(img.shape)
    if img.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(img.dtype)


def _matrix(z: complex, t: complex) -> np.ndarray:
    """2x3 matrix of the similarity p -> z * p + t on points as complex numbers."""
    return np.array([[z.real, -z.imag, t.real], [z.imag, z.real, t.imag]])


def _least_squares(s: np.ndarray, d: np.ndarray) -> tuple[complex, complex]:
    """The similarity (z, t) taking complex points s onto d with the least squared error."""
    sc, dc = s - s.mean(), d - d.mean()
    z = (np.conj(sc) @ dc) / max(float((np.abs(sc) ** 2).sum()), 1e-12)
    return complex(z), complex(d.mean() - z * s.mean())


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-median-of-squares similarity taking *src* points onto *dst* (every pair of points
    tried, as estimateAffinePartial2D's LMEDS samples them), refined by least squares on its
    inliers; None for degenerate points."""
    s = np.asarray(src, np.float64) @ [1, 1j]
    d = np.asarray(dst, np.float64) @ [1, 1j]
    i, j = np.array(list(combinations(range(len(s)), 2))).T
    ok = np.abs(s[j] - s[i]) > 1e-6
    if not ok.any():
        return None
    i, j = i[ok], j[ok]
    z = (d[j] - d[i]) / (s[j] - s[i])
    t = d[i] - z * s[i]
    err = np.abs(z[:, None] * s[None] + t[:, None] - d[None]) ** 2  # (pairs, points)
    med = np.median(err, axis=1)
    k = int(np.argmin(med))
    sigma = 2.5 * 1.4826 * (1 + 5.0 / max(1, len(s) - 2)) * np.sqrt(med[k])
    inliers = err[k] <= max(sigma * sigma, 1e-12)
    if inliers.sum() < 2:
        return _matrix(complex(z[k]), complex(t[k]))
    return _matrix(*_least_squares(s[inliers], d[inliers]))


def ecc_affine(template: np.ndarray, image: np.ndarray, mask: np.ndarray,
               iterations: int = 50, eps: float = 1e-4) -> np.ndarray:
    """2x3 affine W maximising the enhanced correlation coefficient between *template* and
    *image* warped by W (image(W x) ~ template(x)); *mask* marks the image pixels to use.
    Both images float, pre-smoothed with the 5-tap binomial kernel as OpenCV does. Raises
    NoConvergence where the images do not correlate."""
    h, w = template.shape
    k5 = gaussian_kernel(5, 0)
    tmpl = _convolve(template, k5)
    img = _convolve(image, k5)
    soft = _convolve(mask.astype(np.float64), k5) * (0.5 / 0.95)
    pre = np.rint(soft).astype(np.float64)  # 1 where the blurred mask is >= 0.95
    gx = np.zeros_like(img)
    gy = np.zeros_like(img)
    gx[:, 1:-1] = 0.5 * (img[:, 2:] - img[:, :-2])
    gy[1:-1] = 0.5 * (img[2:] - img[:-2])
    # (at the edges the reflected neighbours are equal: the gradient is 0 there, as in OpenCV)
    gx *= pre
    gy *= pre
    stack = np.stack([img, gx, gy, pre], -1)
    ys, xs = _grid(h, w)
    warp = np.eye(2, 3)
    rho, last = -1.0, -eps
    for _ in range(iterations):
        if abs(rho - last) < eps:
            break
        warped = warp_affine(stack, warp, inverse=True, border="constant")
        iw, gxw, gyw = warped[..., 0], warped[..., 1], warped[..., 2]
        sel = warped[..., 3] >= 0.5
        count = int(sel.sum())
        if count < 6:
            raise NoConvergence("no overlap left")
        imean, istd = iw[sel].mean(), iw[sel].std()
        tmean, tstd = tmpl[sel].mean(), tmpl[sel].std()
        izm = np.where(sel, iw - imean, iw)
        tzm = np.where(sel, tmpl - tmean, 0.0)
        tnorm, inorm = np.sqrt(count) * tstd, np.sqrt(count) * istd
        jac = np.stack([gxw * xs, gyw * xs, gxw * ys, gyw * ys, gxw, gyw]).reshape(6, -1)
        try:
            hess_inv = np.linalg.inv(jac @ jac.T)
        except np.linalg.LinAlgError:
            raise NoConvergence("a flat image: no gradient to align on") from None
        corr = float((tzm * izm).sum())
        last, rho = rho, corr / (inorm * tnorm)
        if not np.isfinite(rho):
            raise NoConvergence("NaN encountered")
        iproj, tproj = jac @ izm.reshape(-1), jac @ tzm.reshape(-1)
        iproj_h = hess_inv @ iproj
        lam_n = inorm * inorm - iproj @ iproj_h
        lam_d = corr - tproj @ iproj_h
        if lam_d <= 0.0:
            raise NoConvergence("the correlation would be minimised")
        error = (lam_n / lam_d) * tzm - izm
        dp = hess_inv @ (jac @ error.reshape(-1))
        warp[0, 0] += dp[0]
        warp[1, 0] += dp[1]
        warp[0, 1] += dp[2]
        warp[1, 1] += dp[3]
        warp[0, 2] += dp[4]
        warp[1, 2] += dp[5]
    return warp
