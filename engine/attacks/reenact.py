"""Reenactment / expression edits: landmark-driven smooth warps of one face crop.

Face reenactment models (Face2Face, first-order-motion, ...) move the same face into a new
expression or pose; pixel for pixel, what reaches the tag is a smooth geometric displacement of
the face interior plus resampling. This op makes such a displacement from the 68 landmarks: each
motion moves some landmarks, the crop border stays put, and a thin-plate spline through all of
them gives the dense field that cv2.remap applies.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.attacks.geometry import (
    BROWS,
    JAW,
    LEFT_EYE,
    MOUTH,
    NOSE,
    RIGHT_EYE,
    border_anchors,
    eye_span,
    landmarks,
    remap,
    tps_map,
)

Motion = Callable[[np.ndarray, float, float], np.ndarray]
LOWER_LIP = np.array([55, 56, 57, 58, 59, 64, 65, 66, 67])
CHIN = JAW[4:13]


def mouth_open(p: np.ndarray, u: float, a: float) -> np.ndarray:
    """Drop the lower lip and the chin (jaw opening); a in 0..1."""
    q = p.copy()
    q[LOWER_LIP, 1] += 0.5 * a * u
    q[CHIN, 1] += 0.35 * a * u * np.sin(np.linspace(0.3, np.pi - 0.3, len(CHIN)))
    return q


def smile(p: np.ndarray, u: float, a: float) -> np.ndarray:
    """Pull the mouth corners out and up; lift the cheeks a little."""
    q = p.copy()
    q[48] += (-0.45 * a * u, -0.35 * a * u)
    q[54] += (0.45 * a * u, -0.35 * a * u)
    q[[49, 59, 60]] += (-0.2 * a * u, -0.15 * a * u)
    q[[53, 55, 64]] += (0.2 * a * u, -0.15 * a * u)
    return q


def eyes_close(p: np.ndarray, u: float, a: float) -> np.ndarray:
    """Lower the upper lids towards the lower lids (a blink at a = 1)."""
    q = p.copy()
    for upper, lower in (((37, 38), (41, 40)), ((43, 44), (47, 46))):
        gap = p[list(lower), 1] - p[list(upper), 1]
        q[list(upper), 1] += 0.8 * a * gap
    return q


def brow_raise(p: np.ndarray, u: float, a: float) -> np.ndarray:
    q = p.copy()
    q[BROWS, 1] -= 0.35 * a * u
    return q


def head_turn(p: np.ndarray, u: float, a: float) -> np.ndarray:
    """Small yaw (inner face slides sideways, nose most) plus roll about the face centre."""
    q = p.copy()
    yaw = a * u * 0.35
    depth = np.zeros(len(p))
    depth[NOSE] = 1.0
    depth[np.r_[LEFT_EYE, RIGHT_EYE, MOUTH, BROWS]] = 0.6
    depth[JAW] = 0.15
    q[:, 0] += yaw * depth
    centre = p[np.r_[LEFT_EYE, RIGHT_EYE, MOUTH]].mean(0)
    roll = np.deg2rad(7.0 * a) * np.sign(u)
    c, s = np.cos(roll), np.sin(roll)
    d = q - centre
    return centre + d @ np.array([[c, s], [-s, c]], np.float32)


MOTIONS: dict[str, Motion] = {
    "mouth": mouth_open, "smile": smile, "eyes": eyes_close, "brows": brow_raise,
    "pose": head_turn,
}


def reenact(crop: np.ndarray, rng: np.random.Generator, motions: tuple[str, ...] = ()) -> np.ndarray:
    """Warp the face into a new expression: 1-3 random motions (or the named ones), each with a
    random strength, composed into one smooth displacement field."""
    s = crop.shape[0]
    p = landmarks(crop)
    unit = eye_span(p)
    names = list(motions) or list(rng.choice(sorted(MOTIONS), size=int(rng.integers(1, 4)),
                                             replace=False))
    q = p.copy()
    for name in names:
        sign = rng.choice([-1.0, 1.0]) if name == "pose" else 1.0
        q = MOTIONS[name](q, sign * unit * 0.5, float(rng.uniform(0.4, 1.0)))
    anchors = border_anchors(s)
    src = np.vstack([p, anchors])
    dst = np.vstack([q, anchors])
    return remap(crop, tps_map(src, dst, s))
