"""Bench measurements on their own: SSIM against scikit-image, face matching across rescaled
and cropped photos, the everyday-target rule, the Markdown block rewrite."""

from __future__ import annotations

import numpy as np
import pytest

from engine.bench.metrics import face_region, match_faces, region_quality, ssim
from engine.bench.report import END, START, everyday_target_applies, write_markdown
from engine.photos import load_photo

from .conftest import DATA


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_photo(DATA / "grace_hopper.jpg").rgb


def test_ssim_matches_scikit_image(photo):
    from skimage import metrics  # in the dev extra: CI always runs this comparison
    rng = np.random.default_rng(0)
    noisy = np.clip(photo + rng.normal(0, 6, photo.shape), 0, 255).astype(np.uint8)
    ref = metrics.structural_similarity(photo, noisy, channel_axis=2, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False, data_range=255)
    assert ssim(photo, noisy) == pytest.approx(ref, abs=1e-6)


def test_ssim_and_psnr_of_a_region(photo):
    assert ssim(photo, photo) == pytest.approx(1.0)
    changed = photo.copy()
    changed[100:200, 100:200] ^= 8
    box = (120.0, 120.0, 180.0, 180.0)  # face square 1.5x: 105..195, inside the change
    q = region_quality(photo, changed, face_region(box, photo.shape))
    assert q["psnr"] < 40 and q["ssim"] < 1.0 and q["ciede_p99"] > 0
    same = region_quality(photo, changed, face_region((400.0, 400.0, 450.0, 450.0), photo.shape))
    assert (same["psnr"], same["ssim"], same["psnr_luma"], same["blotch_p99"]) == pytest.approx(
        (99.0, 1.0, 99.0, 0.0))
    with pytest.raises(ValueError):
        ssim(photo, photo[:-1])


def test_match_faces_follows_rescale_and_crop():
    tagged = [(100, 100, 200, 220), (400, 120, 480, 210)]
    shape = (600, 800, 3)
    half = [(b[0] / 2 + 1, b[1] / 2, b[2] / 2, b[3] / 2 - 2) for b in tagged][::-1]
    assert match_faces(tagged, shape, half, (300, 400, 3)) == [1, 0]
    shifted = [(x1 - 60, y1 - 40, x2 - 60, y2 - 40) for x1, y1, x2, y2 in tagged]  # crop 0.9
    assert match_faces(tagged, shape, shifted, (540, 720, 3)) == [0, 1]
    assert match_faces(tagged, shape, [shifted[1]], (540, 720, 3)) == [None, 0]


def test_match_faces_never_pairs_distant_or_odd_sized_faces():
    tagged = [(100, 100, 200, 200)]
    assert match_faces(tagged, (600, 800, 3), [(500, 400, 600, 500)], (600, 800, 3)) == [None]
    assert match_faces(tagged, (600, 800, 3), [(120, 120, 150, 150)], (600, 800, 3)) == [None]
    assert match_faces(tagged, (600, 800, 3), [], (600, 800, 3)) == [None]
    # A pair known from its payload stays, even where geometry alone would not choose it.
    two = [(100, 100, 200, 200), (300, 100, 400, 200)]
    found = [(302, 100, 402, 200), (100, 100, 200, 200)]
    assert match_faces(two, (600, 800, 3), found, (600, 800, 3), fixed={0: 1}) == [1, 0]


@pytest.mark.parametrize(("name", "applies"), [
    ("clean", True), ("jpeg50", True), ("jpeg30", False), ("resize0.5", True),
    ("resize0.3", False), ("jpeg75+resize0.75", True), ("social1080", True),
    ("double-jpeg", True), ("crop0.9", True)])
def test_everyday_target_covers_jpeg_50_and_resize_half_and_up(name, applies):
    assert everyday_target_applies(name) is applies


def test_write_markdown_replaces_only_the_generated_block(tmp_path):
    doc = tmp_path / "B.md"
    write_markdown(doc, "first\n")  # no markers yet: appended
    doc.write_text("intro\n\n" + doc.read_text() + "\noutro\n")
    write_markdown(doc, "second\n")
    assert doc.read_text() == f"intro\n\n{START}\nsecond\n{END}\noutro\n"


def test_trained_on_follows_what_the_model_saw():
    from engine.attacks import SUITE
    from engine.bench.runner import model_trained_on

    v1 = model_trained_on({})  # model v1's metadata has no faceops: everyday training only
    assert v1(SUITE["jpeg75"]) and not v1(SUITE["jpeg30"])
    assert not any(v1(s) for s in SUITE.values() if s.family != "everyday")
    later = model_trained_on({"faceops": ["swap-target", "reenact"]})
    assert later(SUITE["swap-target"]) and later(SUITE["reenact"])
    assert not later(SUITE["swap-source"]) and not later(SUITE["resynth-heldout"])
