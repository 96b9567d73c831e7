"""The attack library on real faces: real dlib landmarks, real OpenCV warps and blending, real
MTCNN for the photo-level attacks, the bundled generators. Each check asserts what the attack is
meant to do to the pixels, not just that it runs."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from engine.attacks import DEEPFAKE_FAMILIES, QUICK, SUITE, external_attack, faceops
from engine.attacks.donors import DONORS_ASSET, donor_pool
from engine.attacks.geometry import (
    LEFT_EYE,
    MOUTH,
    delaunay,
    landmarks,
    piecewise_affine_map,
    polygon_mask,
    remap,
)
from engine.attacks.photo import detect
from engine.faces import extract_square, face_square

from .conftest import DATA


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """MTCNN on small photos is fastest single-threaded on this shared 2-core machine (the
    default pool spin-waits under load); restored afterwards for the other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    return np.asarray(Image.open(DATA / "grace_hopper.jpg").convert("RGB"))


@pytest.fixture(scope="module")
def crop(hopper) -> np.ndarray:
    """Grace Hopper's face square as protect cuts it, at the training size (128 px)."""
    (face,) = detect(hopper)
    sq = np.ascontiguousarray(extract_square(hopper, face_square(face.box)))
    return cv2.resize(sq, (128, 128), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def donor() -> np.ndarray:
    return cv2.resize(donor_pool()[1], (128, 128), interpolation=cv2.INTER_AREA)


def _inner(s: int) -> tuple[slice, slice]:
    a, b = int(s * 0.3), int(s * 0.75)
    return slice(a, b), slice(int(s * 0.3), int(s * 0.7))


def test_landmarks_land_on_the_face(crop):
    p = landmarks(crop)
    assert p.shape == (68, 2)
    assert ((p > 0) & (p < 128)).all()
    assert p[LEFT_EYE, 1].mean() < p[MOUTH, 1].mean() - 15  # eyes well above the mouth
    assert abs(p[:, 0].mean() - 64) < 12  # centred in the face square


@pytest.mark.parametrize("name", list(faceops.FACEOPS))
def test_every_face_op_edits_the_face_and_keeps_the_format(name, crop):
    out = faceops.apply(name, crop, np.random.default_rng(3))
    assert out.shape == crop.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(np.int16) - crop)
    assert diff[_inner(128)].mean() > 1.0, f"{name} left the face untouched"
    again = faceops.apply(name, crop, np.random.default_rng(3))
    assert np.array_equal(out, again), f"{name} is not deterministic for a fixed seed"


def test_random_ops_depend_on_the_seed(crop):
    a = faceops.apply("reenact", crop, np.random.default_rng(1))
    b = faceops.apply("reenact", crop, np.random.default_rng(2))
    assert not np.array_equal(a, b)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_swap_target_replaces_the_inner_face_keeps_the_rest(crop, donor):
    out = faceops.apply("swap-target", crop, np.random.default_rng(0), donor)
    p, pd = landmarks(crop), landmarks(donor)
    mapping, _ = piecewise_affine_map(pd, p, delaunay(p, 128), (128, 128))
    warped_donor = remap(donor, mapping)
    inner = cv2.erode(polygon_mask((128, 128), p), np.ones((15, 15), np.uint8)) > 0

    def hp(img):  # structure, not colour: the blend matches the donor to the target's skin
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return (g - cv2.GaussianBlur(g, (0, 0), 3))[inner]

    assert _corr(hp(out), hp(warped_donor)) > _corr(hp(out), hp(crop)) + 0.2
    assert np.array_equal(out[:12], crop[:12])  # hair/background rows above the face untouched


def test_swap_source_puts_the_tagged_face_on_the_donor_head(crop, donor):
    out = faceops.apply("swap-source", crop, np.random.default_rng(0), donor)
    assert np.array_equal(out[:12], donor[:12])  # the frame is the donor's
    assert np.abs(out[_inner(128)].astype(np.int16) - donor[_inner(128)]).mean() > 5


def test_swap_picks_a_donor_that_is_not_the_face_itself(crop):
    pool = np.stack([crop, crop, donor_pool()[0][16:144, 16:144]])
    for seed in range(4):
        picked = faceops.pick_donor(crop, np.random.default_rng(seed), pool)
        assert not np.array_equal(picked, crop)


def test_face_ops_work_on_large_crops(hopper):
    (face,) = detect(hopper)
    big = np.ascontiguousarray(extract_square(hopper, face_square(face.box)))
    assert big.shape[0] > 300
    for name in ("swap-target", "reenact", "attribute", "resynth"):
        out = faceops.apply(name, big, np.random.default_rng(0))
        assert out.shape == big.shape and not np.array_equal(out, big)


def test_photo_attack_keeps_size_and_only_touches_the_face(hopper):
    (face,) = detect(hopper)
    x, y, s = face_square(face.box)
    for name in ("swap-target", "reenact", "attribute-glasses"):
        out = SUITE[name].fn(hopper, np.random.default_rng(0))
        assert out.shape == hopper.shape and out.dtype == np.uint8
        changed = np.abs(out.astype(np.int16) - hopper).sum(-1) > 0
        assert changed.any()
        outside = changed.copy()
        outside[max(y, 0):y + s, max(x, 0):x + s] = False
        assert not outside.any(), f"{name} changed pixels away from the face"


def test_photo_attack_clips_a_face_square_at_the_border(hopper):
    edge = np.ascontiguousarray(hopper[:, 120:])  # the face square now reaches past the left edge
    (face,) = detect(edge)
    assert face_square(face.box)[0] < 0
    out = SUITE["reenact"].fn(edge, np.random.default_rng(0))
    assert out.shape == edge.shape and not np.array_equal(out, edge)


def test_photo_attack_without_faces_is_identity():
    blank = np.full((200, 300, 3), 120, np.uint8)
    assert np.array_equal(SUITE["swap-target"].fn(blank, np.random.default_rng(0)), blank)


def test_straight_through_is_the_real_edit_with_identity_gradient(crop, donor):
    x = torch.from_numpy(np.stack([crop, crop[:, ::-1].copy()])).permute(0, 3, 1, 2)
    x = (x.float() / 127.5 - 1).requires_grad_(True)
    y = faceops.straight_through(x, ["swap-target"], np.random.default_rng(0), donor[None])
    assert y.shape == x.shape and not torch.allclose(y, x)
    direct = faceops.apply("swap-target", crop, np.random.default_rng(0), donor)
    assert torch.allclose((y[0].detach().permute(1, 2, 0) + 1) * 127.5,
                          torch.from_numpy(direct).float(), atol=1e-3)
    upstream = torch.randn_like(y)
    y.backward(upstream)
    assert torch.equal(x.grad, upstream)


def test_suite_follows_the_contract():
    assert set(DEEPFAKE_FAMILIES) <= {s.family for s in SUITE.values()}
    assert set(QUICK) <= set(SUITE)
    assert {SUITE[n].family for n in QUICK} >= set(DEEPFAKE_FAMILIES) | {"everyday"}
    for name, spec in SUITE.items():
        assert spec.name == name and spec.description
    held_out = {n for n, s in SUITE.items() if not s.trained_on and s.family != "everyday"}
    assert {"resynth-heldout", "attribute-glasses", "attribute-region-gan"} <= held_out
    assert not held_out & set(faceops.TRAIN_FACEOPS)
    assert all(SUITE[n].trained_on for n in faceops.TRAIN_FACEOPS)


def test_everyday_additions(hopper):
    rng = np.random.default_rng(0)
    shot = SUITE["screenshot"].fn(hopper, rng)
    assert shot.shape == hopper.shape and not np.array_equal(shot, hopper)
    assert SUITE["resize0.3"].fn(hopper, rng).shape[0] == round(hopper.shape[0] * 0.3)
    j30 = SUITE["jpeg30"].fn(hopper, rng).astype(np.float32)
    j95 = SUITE["jpeg95"].fn(hopper, rng).astype(np.float32)
    assert np.abs(j30 - hopper).mean() > np.abs(j95 - hopper).mean()


def test_external_attack_runs_a_real_command(hopper):
    flip = ("from PIL import Image,ImageOps;import sys;"
            "ImageOps.mirror(Image.open(sys.argv[1])).save(sys.argv[2])")
    spec = external_attack(f"{sys.executable} -c '{flip}' {{in}} {{out}}")
    assert spec.family == "external" and not spec.trained_on
    assert np.array_equal(spec.fn(hopper, np.random.default_rng(0)), hopper[:, ::-1])
    with pytest.raises(RuntimeError, match="failed"):
        external_attack(f"{sys.executable} -c 'import sys; sys.exit(3)' {{in}} {{out}}").fn(
            hopper, np.random.default_rng(0))
    with pytest.raises(ValueError):
        external_attack("tool {in}")


def test_bundled_donors_work_without_the_cache(tmp_path, monkeypatch, crop):
    import engine.attacks.donors as donors

    monkeypatch.setattr(donors, "CACHE", tmp_path)  # a fresh clone: no data cache
    donors.donor_pool.cache_clear()
    try:
        pool = donors.donor_pool()
        assert pool.shape == (3, 160, 160, 3) and pool.dtype == np.uint8
        with np.load(DONORS_ASSET) as z:
            assert np.array_equal(pool, z["faces"])
        out = faceops.apply("swap-target", crop, np.random.default_rng(0))
        assert not np.array_equal(out, crop)
    finally:
        donors.donor_pool.cache_clear()
