"""Attribute editing on face crops: local region edits placed by the 68 landmarks.

Attribute GANs (StarGAN, AttGAN, ...) change one property (hair or lip colour, age, glasses,
skin) and re-render the region around it; the rest of the face is kept. Each edit here changes
the pixels of one landmark-located region the way such an edit does: colour shifts in Lab,
edge-preserving smoothing, a high-frequency ageing texture, a drawn glasses occluder, or the
region re-rendered by the project's own face generator (engine.attacks.resynth).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from engine.attacks.geometry import (
    BROWS,
    JAW,
    LEFT_EYE,
    LIPS_INNER,
    MOUTH,
    RIGHT_EYE,
    blend,
    eye_span,
    landmarks,
    polygon_mask,
    soft,
)

Edit = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def _lab_shift(img: np.ndarray, alpha: np.ndarray, d_l: float, d_a: float, d_b: float) -> np.ndarray:
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab += np.array([d_l, d_a, d_b], np.float32)
    shifted = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return blend(img, shifted, alpha)


def skin_mask(crop: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Face hull minus eyes, brows and mouth (dilated): where skin edits apply."""
    shape = crop.shape[:2]
    m = polygon_mask(shape, p)
    k = max(3, int(eye_span(p) * 0.12)) | 1
    for part in (LEFT_EYE, RIGHT_EYE, MOUTH, BROWS[:5], BROWS[5:]):
        m &= ~cv2.dilate(polygon_mask(shape, p[part]), np.ones((k, k), np.uint8))
    return m


def smooth_skin(crop: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Beauty-filter smoothing: a bilateral filter over the skin."""
    u = eye_span(p)
    f = min(1.0, 256 / crop.shape[0])  # large crops are filtered at 256 px: same look, 20x faster
    small = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else crop
    d = max(5, int(u * f * rng.uniform(0.12, 0.25)))
    smoothed = cv2.bilateralFilter(small, d, float(rng.uniform(25, 60)), d * 1.5)
    if f < 1:
        smoothed = cv2.resize(smoothed, crop.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    return blend(crop, smoothed, soft(skin_mask(crop, p), u * 0.06))


def lips_colour(crop: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = eye_span(p)
    m = polygon_mask(crop.shape[:2], p[MOUTH], hull=False)
    m &= ~polygon_mask(crop.shape[:2], p[LIPS_INNER], hull=False)
    a, b = rng.uniform(8, 25) * rng.choice([-1, 1]), rng.uniform(-15, 15)
    return _lab_shift(crop, soft(m, u * 0.03), rng.uniform(-15, 5), a, b)


def eye_colour(crop: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = eye_span(p)
    m = polygon_mask(crop.shape[:2], p[LEFT_EYE]) | polygon_mask(crop.shape[:2], p[RIGHT_EYE])
    a, b = rng.uniform(-25, 25), rng.uniform(-30, 30)
    return _lab_shift(crop, soft(m, u * 0.02), rng.uniform(-10, 10), a, b)


def hair_colour(crop: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Recolour the hair zone: above the brows and around the head, outside the face hull."""
    s = crop.shape[0]
    u = eye_span(p)
    centre = p[np.r_[JAW, BROWS]].mean(0)
    head = np.zeros((s, s), np.uint8)
    axes = (int(u * 1.25), int(u * 1.5))
    cv2.ellipse(head, (int(centre[0]), int(centre[1] - u * 0.35)), axes, 0, 0, 360, 255, -1)
    brow_y = float(p[BROWS, 1].min())
    head[int(max(0, brow_y + u * 0.6)):] = 0  # no hair below the eyes
    head &= ~cv2.dilate(polygon_mask((s, s), p), np.ones((5, 5), np.uint8))
    d_l = rng.uniform(-35, 25)
    a, b = rng.uniform(-20, 25), rng.uniform(-25, 30)
    return _lab_shift(crop, soft(head, u * 0.08), d_l, a, b)


def age(crop: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ageing-like texture: wrinkle lines (anisotropic high-pass noise) darken the skin, which
    also loses some saturation and gains contrast."""
    s = crop.shape[0]
    u = eye_span(p)
    noise = rng.normal(0, 1, (s, s)).astype(np.float32)
    sx, sy = max(1.0, u * 0.25), max(0.6, u * 0.02)
    lines = cv2.GaussianBlur(noise, (0, 0), sigmaX=sx, sigmaY=sy)
    lines = lines - cv2.GaussianBlur(lines, (0, 0), sigmaX=sx * 2, sigmaY=sy * 4)
    lines /= lines.std() + 1e-6
    wrinkles = np.clip(lines, 0, None) * rng.uniform(4, 10)
    alpha = soft(skin_mask(crop, p), u * 0.08)
    img = crop.astype(np.float32)
    grey = img.mean(-1, keepdims=True)
    sat = float(rng.uniform(0.6, 0.9))
    aged = grey + (img - grey) * sat - wrinkles[..., None]
    aged = (aged - 128) * 1.05 + 128
    return blend(crop, np.clip(aged, 0, 255).astype(np.uint8), alpha)


def glasses(crop: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A drawn glasses occluder: tinted lenses, a frame and a bridge over both eyes."""
    u = eye_span(p)
    out = crop.copy()
    lenses = np.zeros(crop.shape[:2], np.uint8)
    frame = crop.copy()
    colour = tuple(int(c) for c in rng.integers(0, 90, 3))
    thick = max(1, int(u * rng.uniform(0.04, 0.08)))
    rx, ry = u * rng.uniform(0.22, 0.3), u * rng.uniform(0.15, 0.22)
    centres = [p[LEFT_EYE].mean(0), p[RIGHT_EYE].mean(0)]
    for c in centres:
        box = ((float(c[0]), float(c[1])), (2 * rx, 2 * ry), 0.0)
        cv2.ellipse(lenses, box, 255, -1)
        cv2.ellipse(frame, box, colour, thick, cv2.LINE_AA)
    cv2.line(frame, tuple(int(v) for v in centres[0] + (rx, 0)),
             tuple(int(v) for v in centres[1] - (rx, 0)), colour, thick, cv2.LINE_AA)
    for c, side in ((centres[0], -1), (centres[1], 1)):  # temples towards the ears
        start = c + (side * rx, 0)
        cv2.line(frame, tuple(int(v) for v in start),
                 tuple(int(v) for v in start + (side * u * 0.4, -u * 0.03)), colour, thick,
                 cv2.LINE_AA)
    tint = np.array(rng.integers(20, 120, 3), np.float32)
    shade = float(rng.uniform(0.15, 0.6))
    out = blend(frame, np.broadcast_to(tint, crop.shape).astype(np.uint8), soft(lenses, 1.0) * shade)
    return out


def region_render(render: Callable[[np.ndarray], np.ndarray]) -> Edit:
    """Edit that re-renders the eyes or the mouth box through a face generator.

    The generator sees the whole crop (it was trained on whole face crops); only the chosen box of
    its output is blended back, so this is a local GAN-style re-rendering, as attribute GANs do.
    """

    def edit(crop: np.ndarray, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = eye_span(p)
        part = np.r_[LEFT_EYE, RIGHT_EYE, BROWS] if rng.random() < 0.5 else MOUTH
        x0, y0 = p[part].min(0) - u * 0.2
        x1, y1 = p[part].max(0) + u * 0.2
        m = np.zeros(crop.shape[:2], np.uint8)
        cv2.rectangle(m, (int(x0), int(y0)), (int(x1), int(y1)), 255, -1)
        return blend(crop, render(crop), soft(m, u * 0.08))

    return edit


EDITS: dict[str, Edit] = {
    "smooth": smooth_skin, "lips": lips_colour, "eyes": eye_colour, "hair": hair_colour,
    "age": age, "glasses": glasses,
}


def attribute(crop: np.ndarray, rng: np.random.Generator, edits: tuple[Edit, ...]) -> np.ndarray:
    """Apply 1-2 of the given edits, chosen by rng, in sequence."""
    p = landmarks(crop)
    k = int(rng.integers(1, min(2, len(edits)) + 1))
    out = crop
    for i in sorted(rng.choice(len(edits), size=k, replace=False)):
        out = edits[i](out, p, rng)
    return out
