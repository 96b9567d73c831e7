"""The face-change rule and the measure's guards on their own, with made-up numbers and chips:
what the lines decide, independent of dlib (tests/test_face_change.py runs the real models)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.change import measure
from engine.change.measure import CHIP, FaceSample, Measures
from engine.change.verdict import (
    INTACT_PART,
    REPLACED_IDENTITY,
    ChangeKind,
    ChangeReason,
    classify,
)


def _measures(**kw) -> Measures:
    base = {"identity": 0.2, "expression": 0.02, "appearance": 1.0, "local": 2.0}
    return Measures(**{**base, **kw})


def test_a_face_with_one_part_as_tagged_is_edited_though_its_identity_moved():
    """An eyes or mouth re-render moves dlib's descriptor past the line for another person;
    the other part of the face, still the tagged one, keeps it `edited`."""
    rerendered = classify(_measures(identity=0.62, local=30.0, intact=INTACT_PART * 0.5),
                          "original")
    assert rerendered.kind is ChangeKind.EDITED
    assert rerendered.reason is ChangeReason.PART_RERENDERED
    assert "the rest of the face is the tagged one" in rerendered.text
    assert f"under {INTACT_PART:.1f}" in rerendered.text


@pytest.mark.parametrize("intact", [INTACT_PART, INTACT_PART * 3, 0.0])
def test_another_identity_with_no_part_as_tagged_is_replaced(intact):
    """Both parts differ (a swap), or the part measure is missing (0.0: a bench file made
    before it): another person's face is `replaced`, never softened."""
    change = classify(_measures(identity=REPLACED_IDENTITY, intact=intact), "original")
    assert (change.kind, change.reason) == (ChangeKind.REPLACED, ChangeReason.OTHER_PERSON)


def test_an_intact_part_alone_never_makes_a_change():
    """The part measure only softens `replaced` to `edited`: below the identity line it decides
    nothing, so an unchanged face stays `none` whatever its value."""
    assert classify(_measures(intact=0.5), "original").kind is ChangeKind.NONE
    assert classify(_measures(intact=50.0), "original").kind is ChangeKind.NONE


def test_intact_is_in_the_json_and_old_files_load():
    m = _measures(identity=0.6, intact=1.234)
    assert m.to_json()["intact"] == 1.234
    old = {k: v for k, v in m.to_json().items() if k != "intact"}
    assert Measures(**old).intact == 0.0


def test_skin_texture_lost_past_the_line_is_smoothed_and_old_files_load():
    from engine.change.verdict import EDITED_SMOOTHING

    at = classify(_measures(smoothing=EDITED_SMOOTHING), "original")
    assert (at.kind, at.reason) == (ChangeKind.EDITED, ChangeReason.SMOOTHED)
    assert "kept 74% of its fine texture" in at.text
    assert classify(_measures(smoothing=EDITED_SMOOTHING * 0.99), "original").kind \
        is ChangeKind.NONE
    m = _measures(smoothing=0.3333)
    assert m.to_json()["smoothing"] == 0.333
    old = {k: v for k, v in m.to_json().items() if k != "smoothing"}
    assert Measures(**old).smoothing == 0.0


def test_smoothing_compares_the_skin_with_the_features_of_the_same_face():
    """Texture lost on the skin alone counts; lost on the whole face (a softer copy) does not,
    and texture gained (a busier copy) never reads as smoothing."""
    rng = np.random.default_rng(0)
    base = np.clip(128 + rng.normal(0, 12, (CHIP, CHIP, 3)), 0, 255).astype(np.uint8)
    points = _sample().points
    ref = FaceSample(base, points, np.zeros(128, np.float32), CHIP)
    skin = measure.region_masks(ref)["skin"]

    def blurred(where: np.ndarray) -> np.ndarray:
        soft = measure.imgops.gaussian_blur(base, 1.5).astype(np.uint8)
        out = base.copy()
        out[where] = soft[where]
        return out

    def smoothing(chip: np.ndarray) -> float:
        return measure.smoothing(ref, FaceSample(chip, points, ref.descriptor, CHIP))

    assert smoothing(base) == 0.0
    assert smoothing(blurred(skin)) > 1.0
    assert smoothing(blurred(np.ones(skin.shape, bool))) < 0.1
    busier = np.clip(base.astype(int) + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    assert smoothing(busier) == 0.0


def test_the_ecc_refinement_is_kept_only_where_it_makes_the_faces_more_alike():
    """ECC refines a landmark fit; where it moves the suspect off (a zoom onto glasses frames
    measured 22-33 of colour difference on an unchanged face), the landmark fit is kept."""
    from PIL import Image

    from .conftest import SAMPLE

    with Image.open(SAMPLE) as im:
        rgb = np.asarray(im.convert("RGB").resize((CHIP, CHIP)))
    ref = _sample()
    mask = measure.face_mask(ref)
    off = np.roll(rgb, (2, -3), axis=(0, 1))  # a landmark fit a few pixels off
    refined, warp = measure._refined(ref, rgb, off, mask)
    before = measure._median_difference(rgb, off, mask)
    assert measure._median_difference(rgb, refined, mask) < 0.5 * before and warp is not None
    flat = np.full_like(rgb, 128)  # nothing to lock onto: ECC fails, the fit is kept as it is
    kept, warp = measure._refined(ref, rgb, flat, mask)
    assert (kept == flat).all() and warp is None


def test_region_means_leave_out_what_the_alignment_filled_in():
    """Where aligning moves the suspect chip past its own edge, the warp repeats edge pixels:
    those are not part of the face, and a region's mean is taken without them."""
    ref = _sample()
    shift = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 12.0]])  # the suspect moved 12 px down
    flat = np.full((CHIP, CHIP, 3), 128, np.uint8)  # ECC cannot refine it: the fit stays
    a, b, covered = measure._aligned(ref, ref, shift, (flat, flat))
    assert not covered[:12].any() and covered[13:].all()
    lab_a = np.zeros((CHIP, CHIP, 3), np.float32)
    lab_b = lab_a.copy()
    lab_b[:12] = 50.0  # what was filled in differs wildly
    masks = measure.region_masks(ref)
    top = {n for n, m in masks.items() if m[:12].any() and m.sum() >= 20}
    assert top, "some region reaches into the top rows"
    raw = measure.region_shifts(ref, lab_a, lab_b)
    fair = measure.region_shifts(ref, lab_a, lab_b, covered)
    assert all(raw[n] > 0 for n in top) and all(fair[n] == 0.0 for n in masks)


def _sample() -> FaceSample:
    """A face-like landmark layout: a ring of jaw and brow points around the chip's middle."""
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts = np.stack([75 + 55 * np.cos(t), 75 + 60 * np.sin(t)], -1).astype(np.float32)
    return FaceSample(np.zeros((CHIP, CHIP, 3), np.uint8), pts, np.zeros(128, np.float32), CHIP)


def test_a_brighter_copy_that_clips_matches_its_reference_after_tone_matching():
    """A gain and gamma change of the whole photo is not an edit, also where it clips an
    overexposed face's highlights to white: the reference is mapped onto the copy's tones,
    clipped alike. A recoloured patch still stands out."""
    from engine.attacks.everyday import colour

    rng = np.random.default_rng(0)
    ref_rgb = np.clip(rng.normal(200, 30, (CHIP, CHIP, 3)), 0, 255).astype(np.uint8)
    mask = np.ones((CHIP, CHIP), bool)
    copy = colour(ref_rgb, 1.15, 0.9)
    assert (copy == 255).mean() > 0.2  # a fifth of the values are clipped
    mapped = measure.tone_matched(ref_rgb, copy, mask)
    assert np.abs(mapped.astype(int) - copy).mean() < 1.0
    assert np.abs(ref_rgb.astype(int) - copy).mean() > 10.0
    edited = copy.copy()
    edited[40:70, 40:70, 0] //= 2  # a patch recoloured after the copy
    la, lb = measure.matched((ref_rgb, edited), mask)
    diff = np.sqrt(((la - lb) ** 2).sum(-1))
    assert diff[45:65, 45:65].mean() > 5 * np.median(diff)


def test_tone_matching_cannot_flatten_a_face_into_a_match():
    """A suspect that is one flat colour (a warp that left the face) must not be matched by a
    curve that flattens the reference too: tone matching undoes exposure changes, nothing more."""
    rng = np.random.default_rng(1)
    ref_rgb = np.clip(rng.normal(128, 40, (CHIP, CHIP, 3)), 0, 255).astype(np.uint8)
    flat = np.full_like(ref_rgb, 90)
    mapped = measure.tone_matched(ref_rgb, flat, np.ones((CHIP, CHIP), bool))
    assert mapped.std() > 0.4 * ref_rgb.std()
