"""Identity swap on face crops: the classic landmark face swap (Delaunay warp + Poisson blend).

One implementation serves both directions of the issue's attack list: with the tagged face as
TARGET (someone else's inner face is pasted onto the tagged head, so only hair, ears, forehead
and background of the tagged crop survive) and as SOURCE (the tagged inner face is pasted onto
someone else's head, so only the tagged face interior survives, in a foreign frame).
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.attacks.geometry import (
    colour_transfer,
    delaunay,
    landmarks,
    piecewise_affine_map,
    polygon_mask,
    remap,
)


def paste_face(face: np.ndarray, onto: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`onto` with the inner face of `face` (convex hull of its 68 landmarks) swapped in.

    The face is warped triangle by triangle onto onto's landmarks, colour-matched to onto's skin
    (Reinhard transfer in Lab inside the hull) and Poisson-blended with cv2.seamlessClone, as in
    the open-source face-swap scripts that DeepFake pipelines grew from. The random part: how far
    the blend boundary is pulled inside the hull (1-3% of the crop side).
    """
    s = onto.shape[0]
    if face.shape[:2] != onto.shape[:2]:
        interp = cv2.INTER_AREA if face.shape[0] > s else cv2.INTER_LINEAR
        face = cv2.resize(face, (s, s), interpolation=interp)
    lf, lo = landmarks(face), landmarks(onto)
    mapping, inside = piecewise_affine_map(lf, lo, delaunay(lo, s), (s, s))
    warped = remap(face, mapping)
    mask = polygon_mask((s, s), lo)
    shrink = max(1, int(round(s * rng.uniform(0.01, 0.03))))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1,) * 2))
    mask[~inside] = 0
    if mask.sum() < 255 * 64:  # degenerate landmarks (no face found in one crop): leave as is
        return onto.copy()
    warped = colour_transfer(warped, onto, mask)
    return poisson_blend(warped, onto, mask)


def poisson_blend(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """cv2.seamlessClone (NORMAL_CLONE) of src into dst where mask is set, same coordinates.

    seamlessClone needs the mask's bounding box strictly inside the image, so both images are
    padded first and cropped back after.
    """
    p = 4
    src_p = cv2.copyMakeBorder(src, p, p, p, p, cv2.BORDER_REFLECT101)
    dst_p = cv2.copyMakeBorder(dst, p, p, p, p, cv2.BORDER_REFLECT101)
    mask_p = cv2.copyMakeBorder(mask, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(mask_p)
    centre = (x + w // 2, y + h // 2)
    out = cv2.seamlessClone(src_p, dst_p, mask_p, centre, cv2.NORMAL_CLONE)
    return np.ascontiguousarray(out[p:-p, p:-p])


def swap_target(crop: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> np.ndarray:
    """The tagged face is the TARGET: donor's inner face replaces the tagged inner face."""
    return paste_face(donor, crop, rng)


def swap_source(crop: np.ndarray, rng: np.random.Generator, donor: np.ndarray) -> np.ndarray:
    """The tagged face is the SOURCE: its inner face is pasted onto the donor's head.

    The result is the donor crop (resized to the crop's size) carrying the tagged interior.
    """
    s = crop.shape[0]
    if donor.shape[:2] != crop.shape[:2]:
        donor = cv2.resize(donor, (s, s), interpolation=cv2.INTER_LINEAR)
    return paste_face(crop, donor, rng)
