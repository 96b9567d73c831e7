"""Face detection (real MTCNN) and the crop geometry every stage shares."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.faces import (
    Face,
    FaceDetector,
    crop_square,
    crowd_scale,
    extract_square,
    face_square,
    feather_mask,
    neighbour_boxes,
    paste_residual,
    tag_squares,
)

from .conftest import DATA, SAMPLE


def test_detects_real_faces_left_to_right():
    det = FaceDetector()
    faces = det.detect(np.asarray(Image.open(DATA / "two_faces.jpg").convert("RGB")))
    assert len(faces) == 2
    assert faces[0].box[0] < faces[1].box[0]
    assert all(f.prob >= det.threshold and f.landmarks.shape == (5, 2) for f in faces)


def test_no_faces_in_flat_image():
    assert FaceDetector().detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_small_faces_reported_only_on_request():
    img = Image.open(SAMPLE).convert("RGB")
    small = np.asarray(img.resize((img.width // 3, img.height // 3)))  # face ~30 px
    det = FaceDetector(min_face=40)
    assert det.detect(small) == []
    found = det.detect(small, include_small=True)
    assert len(found) == 1 and found[0].size < 40


def test_face_square_is_centred_and_may_leave_the_image():
    x, y, side = face_square((-10.0, 20.0, 90.0, 100.0), scale=1.5)
    assert side == 150 and x == -35 and y == -15
    # crop_square keeps the same size but shifts inside a large enough image
    assert crop_square((-10.0, 20.0, 90.0, 100.0), 400, 400, scale=1.5) == (0, 0, 150)


def test_a_tag_sits_in_the_face_square_or_first_in_one_fitted_inside_the_photo():
    inside = (100.0, 100.0, 160.0, 160.0)
    assert tag_squares(inside, 400, 300) == [face_square(inside)]
    near_edge = (10.0, 100.0, 70.0, 160.0)  # its 1.5x square starts at x = -5
    fitted, cut = tag_squares(near_edge, 400, 300)
    assert cut == face_square(near_edge) and fitted == (0, 85, 90)  # shifted, same side
    close_up = (-20.0, 10.0, 330.0, 360.0)  # larger than the 300 px high photo
    fitted, cut = tag_squares(close_up, 400, 300, 2.5)
    assert cut == face_square(close_up, 2.5) and fitted == (5, 0, 300)
    x, y, side = fitted
    assert x >= 0 and y >= 0 and x + side <= 400 and y + side <= 300


def test_crowded_faces_get_squares_that_touch_instead_of_overlapping():
    """crowd_scale: two faces 160 px apart (box sides 100 and 60) would overlap at 2.0; both
    shrink to the scale at which their squares just touch, never below the 1.5 floor, and a
    1.5 model (v1, v2) is left alone. tag_squares puts the crowded squares first."""
    a, b = (100.0, 100.0, 200.0, 200.0), (290.0, 120.0, 350.0, 180.0)
    assert crowd_scale(a, [b], 2.0) == pytest.approx(2.0) and crowd_scale(a, [], 2.0) == 2.0
    near = (240.0, 130.0, 280.0, 170.0)  # centre 110 px from a's, side 40: touch at 2 * 110 / 140
    s = crowd_scale(a, [near], 2.0)
    assert s == pytest.approx(220 / 140)
    assert crowd_scale(near, [a], 2.0) == pytest.approx(s)  # both shrink alike
    (ax, _, aside), (nx, _, _) = face_square(a, s), face_square(near, s)
    assert ax + aside <= nx + 1  # they touch, give or take rounding
    assert crowd_scale(a, [(200.0, 100.0, 300.0, 200.0)], 2.0) == 1.5  # the floor
    assert crowd_scale(a, [near], 1.5) == 1.5  # models 1 and 2 unchanged
    assert tag_squares(a, 800, 600, 2.0, [near]) == [face_square(a, s), face_square(a, 2.0)]
    assert tag_squares(a, 800, 600, 1.5, [near]) == [face_square(a, 1.5)]
    assert neighbour_boxes([Face(a, 1.0, np.zeros((5, 2))), Face(near, 1.0, np.zeros((5, 2)))],
                           Face(a, 1.0, np.zeros((5, 2)))) == (a, near)  # by identity, not value


def test_extract_square_pads_with_edge_pixels():
    rgb = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    crop = extract_square(rgb, (-2, -2, 4))
    assert crop.shape == (4, 4, 3)
    assert (crop[0, 0] == rgb[0, 0]).all() and (crop[3, 3] == rgb[1, 1]).all()
    assert extract_square(rgb, (1, 1, 3)).base is not None  # inside: a view, no copy


def test_feather_mask_fades_to_zero_at_the_edge():
    m = feather_mask(100)
    assert m.shape == (100, 100) and m.max() == 1.0
    assert m[0, 0] < 0.01 and m[50, 50] == 1.0 and m[0, 50] < 0.05


def test_paste_residual_writes_only_inside_the_image_and_leaves_no_seam():
    rgb = np.full((60, 60, 3), 100, np.uint8)
    paste_residual(rgb, np.full((40, 40, 3), 8.0, np.float32), (-20, 30, 40))
    changed = np.argwhere((rgb != 100).any(axis=2))
    assert changed[:, 0].min() >= 30 and changed[:, 1].max() < 20
    assert rgb[30:, 20:].max() == 100  # outside the square: untouched
    # the square's top row and right column (inside the image) step by at most 1 level
    assert np.abs(rgb[30, :20].astype(int) - 100).max() <= 1
    assert np.abs(rgb[30:, 19].astype(int) - 100).max() <= 1
    assert rgb[50, 0, 0] == 108  # the square's centre gets the full residual


def test_large_photos_are_searched_downscaled_with_full_size_boxes():
    img = Image.open(DATA / "two_faces.jpg").convert("RGB")
    det = FaceDetector()
    ref = det.detect(np.asarray(img))
    big = img.resize((img.width * 6, img.height * 6), Image.Resampling.BICUBIC)
    assert max(big.size) > 2048
    found = det.detect(np.asarray(big))
    assert len(found) == len(ref) == 2
    for a, b in zip(found, ref, strict=True):
        assert np.allclose(np.array(a.box) / 6, b.box, atol=6)
        assert np.allclose(a.landmarks / 6, b.landmarks, atol=6)
