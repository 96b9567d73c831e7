"""engine.change.imgops against OpenCV, its oracle: face change's thresholds were calibrated with
OpenCV's operations, and the desktop build now runs these instead (without OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.change import imgops
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def chip() -> np.ndarray:
    rgb = np.asarray(Image.open(SAMPLE).convert("RGB"))
    return np.ascontiguousarray(cv2.resize(rgb[:300, :300], (150, 150),
                                           interpolation=cv2.INTER_AREA))


def _close(a: np.ndarray, b: np.ndarray, most: float, mean: float) -> None:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    assert d.max() <= most and d.mean() <= mean, (d.max(), d.mean())


def test_colour_conversions_match_opencv(chip):
    _close(imgops.rgb_to_grey(chip), cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY), 1, 0.05)
    _close(imgops.rgb_to_lab(chip), cv2.cvtColor(chip, cv2.COLOR_RGB2LAB), 2, 0.3)


@pytest.mark.parametrize("sigma", [1.0, 1.5, 3.0])
def test_gaussian_blur_matches_opencv(chip, sigma):
    _close(imgops.gaussian_blur(chip, sigma), cv2.GaussianBlur(chip, (0, 0), sigma), 1, 0.1)
    grey = chip[..., 0].astype(np.float32)
    _close(imgops.gaussian_blur(grey, sigma), cv2.GaussianBlur(grey, (0, 0), sigma), 1e-3, 1e-4)


@pytest.mark.parametrize("side", [37, 100, 149])
def test_resizing_matches_opencv(chip, side):
    small = imgops.resize(chip, side, area=True)
    assert small.shape == (side, side, 3)
    _close(small, cv2.resize(chip, (side, side), interpolation=cv2.INTER_AREA), 1, 0.01)
    _close(imgops.resize(small, 150, area=False),
           cv2.resize(small, (150, 150), interpolation=cv2.INTER_LINEAR), 1, 0.5)


def test_masks_match_opencv():
    rng = np.random.default_rng(1)
    points = rng.uniform(20, 130, (17, 2))
    ref = np.zeros((150, 150), np.uint8)
    cv2.fillConvexPoly(ref, cv2.convexHull(points.astype(np.int32)), 1)
    ours = imgops.fill_hull((150, 150), points)
    assert (ours != ref.astype(bool)).sum() <= 0.02 * ref.sum()
    for size in (3, 5, 7, 9):
        kernel = np.ones((size, size), np.uint8)
        assert np.array_equal(imgops.morph(ref.astype(bool), size, True),
                              cv2.dilate(ref, kernel).astype(bool))
        assert np.array_equal(imgops.morph(ref.astype(bool), size, False),
                              cv2.erode(ref, kernel).astype(bool))


def test_affine_warp_matches_opencv(chip):
    m = np.array([[0.97, -0.08, 6.3], [0.07, 1.02, -4.1]])
    _close(imgops.warp_affine(chip, m),
           cv2.warpAffine(chip, m, (150, 150), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE), 2, 0.1)
    _close(imgops.warp_affine(chip, m, inverse=True, border="constant"),
           cv2.warpAffine(chip, m, (150, 150), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT), 2, 0.1)


def test_similarity_fit_is_robust_like_lmeds():
    rng = np.random.default_rng(2)
    src = rng.uniform(40, 110, (11, 2))
    truth = np.array([[0.9, -0.2, 7.0], [0.2, 0.9, -3.0]])
    dst = src @ truth[:, :2].T + truth[:, 2] + rng.normal(0, 0.3, src.shape)
    dst[3] += (25.0, -18.0)  # one landmark badly off
    ours = imgops.fit_similarity(src, dst)
    theirs, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    assert np.abs(ours - theirs).max() < 0.01  # the bad landmark left out by both
    inliers = np.arange(11) != 3
    moved = src @ ours[:, :2].T + ours[:, 2]
    assert np.abs(moved - (src @ truth[:, :2].T + truth[:, 2]))[inliers].max() < 1.0
    assert imgops.fit_similarity(np.ones((4, 2)), np.ones((4, 2))) is None


def test_ecc_recovers_a_shift_like_opencv(chip):
    grey = imgops.gaussian_blur(imgops.rgb_to_grey(chip), 1.5).astype(np.float32)
    true = np.array([[1.0, 0.0, 2.4], [0.0, 1.0, -1.7]])
    moved = cv2.warpAffine(grey, true, (150, 150), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((150, 150), bool)
    mask[25:125, 25:125] = True
    ours = imgops.ecc_affine(grey, moved, mask)
    _, theirs = cv2.findTransformECC(grey, moved, np.eye(2, 3, dtype=np.float32),
                                     cv2.MOTION_AFFINE, (3, 50, 1e-4), mask.astype(np.uint8), 5)
    assert np.abs(ours - theirs).max() < 0.01
    centre = np.array([75.0, 75.0, 1.0])  # the image's centre lands where the shift says
    assert np.abs(ours @ centre - (centre[:2] - true[:, 2])).max() < 0.3
    with pytest.raises(imgops.NoConvergence):
        imgops.ecc_affine(grey, np.zeros_like(grey), mask)
