"""The visibility measures tell a grey fine-grained residual from a colour blotch of the same
energy (the difference model v1's 38 dB hid), and the gallery shows each face at 3x."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.bench.gallery import GAIN, PATCH, ZOOM, before_after, panel, write_gallery
from engine.bench.visibility import summarize, visibility


@pytest.fixture()
def face() -> np.ndarray:
    rng = np.random.default_rng(3)
    base = np.full((192, 192, 3), (190, 140, 120), np.float64)  # flat skin tone
    return np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)


def _with(face: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return np.clip(face.astype(np.float64) + delta, 0, 255).round().astype(np.uint8)


def test_a_colour_blotch_scores_worse_than_grey_noise_of_equal_energy(face):
    rng = np.random.default_rng(4)
    grey = np.repeat(rng.choice([-3.0, 3.0], size=(192, 192, 1)), 3, axis=2)  # fine luma noise
    yy, xx = np.mgrid[:192, :192]
    blob = 6.0 * np.exp(-((yy - 96) ** 2 + (xx - 96) ** 2) / (2 * 40.0 ** 2))
    colour = np.stack([-blob, blob, -blob], axis=2)  # a green patch
    colour *= np.sqrt((grey ** 2).mean() / (colour ** 2).mean())  # the same mean energy
    g, c = visibility(face, _with(face, grey)), visibility(face, _with(face, colour))
    assert c.blotch_p99 > 3 * g.blotch_p99
    assert c.psnr_chroma < g.psnr_chroma - 6  # the green patch is chroma...
    assert g.psnr_luma < c.psnr_luma  # ...the grey noise is luma
    assert g.psnr_chroma > 50


def test_identical_squares_and_summary(face):
    v = visibility(face, face)
    assert (v.psnr_luma, v.psnr_chroma, v.ciede_p99, v.blotch_p99) == (99.0, 99.0, 0.0, 0.0)
    s = summarize([{"psnr": 40.0, "blotch_p99": 1.0}, {"psnr": 42.0, "blotch_p99": 3.0}])
    assert s["faces"] == 2
    assert s["psnr"] == {"mean": 41.0, "min": 40.0, "max": 42.0}
    assert s["blotch_p99"]["max"] == 3.0
    with pytest.raises(ValueError):
        visibility(face, face[:-1])


def test_gallery_panels_show_original_tagged_and_amplified_residual(face, tmp_path):
    tagged = face.copy()
    tagged[96, 96] += 2  # a single changed pixel in the central patch
    p = panel(face, tagged)
    side = PATCH * ZOOM
    assert p.shape == (side, 3 * side, 3)
    off = (192 - PATCH) // 2
    y = x = (96 - off) * ZOOM
    assert (p[y, x] == face[96, 96]).all()
    assert (p[y, side + x] == tagged[96, 96]).all()
    assert (p[y, 2 * side + x] == 128 + GAIN * 2).all() and (p[0, 2 * side] == 128).all()
    paths = write_gallery(tmp_path / "g", [(face, tagged), (face, face)])
    assert [q.name for q in paths] == ["face-01.png", "face-02.png"]
    assert np.array_equal(np.asarray(Image.open(paths[0])), p)
    write_gallery(tmp_path / "g", [(face, face)])  # a rerun replaces the old gallery
    assert sorted(q.name for q in (tmp_path / "g").iterdir()) == ["face-01.png"]


def test_before_after_is_the_face_square_at_100_percent(face):
    tagged = 255 - face
    box = (60.0, 60.0, 120.0, 120.0)  # face square 1.5x: 45..135
    img = before_after(face, tagged, box)
    assert img.shape == (90, 90 + 8 + 90, 3)
    assert np.array_equal(img[:, :90], face[45:135, 45:135])
    assert np.array_equal(img[:, 98:], tagged[45:135, 45:135])
