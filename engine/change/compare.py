"""The face-change check verify runs on each face whose tag leads to a signed record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine.change.measure import FaceSample, Measures, aligned, difference_map, measure, sample
from engine.change.reference import Reference, ReferenceKind, box_crop
from engine.change.verdict import (
    CUT_MARGIN,
    EDITED_LOCAL,
    MIN_FACE,
    MIN_REFERENCE,
    ChangeKind,
    ChangeReason,
    FaceChange,
    classify,
    unknown,
)

#: Box scales of verify's second look at a face that reads as changed (the detector's box on a
#: copy never quite matches the one the record was made from).
SECOND_LOOK = (0.95, 1.05)
_RANK = {ChangeKind.NONE: 0, ChangeKind.EDITED: 1, ChangeKind.REPLACED: 2}


def _rank(m: Measures) -> tuple[int, float]:
    change = classify(m, "")
    return _RANK[change.kind], change.score or 0.0


def settled_measures(suspect_rgb: np.ndarray, box, ref: FaceSample) -> tuple[Measures, tuple]:
    """(measures, framing): the measures of the face at *box*, looked at again in two nearby
    framings when the first reads as changed; the framing that reads least changed is kept and
    returned with them (what the Verify tab's comparison shows). dlib's landmarks and
    descriptor move with the framing on some faces (a turned face behind glasses read as edited
    after a double JPEG or a 0.5x copy, when each part alone still matched), while an edit or
    another person's face reads as changed in every framing. Tag reading does the same with its
    jittered crops."""
    best, framing = measure(ref, sample(box_crop(suspect_rgb, box))), tuple(box)
    if _rank(best)[0] == 0:
        return best, framing
    x1, y1, x2, y2 = box
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) / 2
    for scale in SECOND_LOOK:
        h = half * scale
        nearby = (cx - h, cy - h, cx + h, cy + h)
        try:
            other = measure(ref, sample(box_crop(suspect_rgb, nearby)))
        except Exception:  # noqa: BLE001 - dlib fits no shape in this framing: keep the first
            continue
        if _rank(other) < _rank(best):
            best, framing = other, nearby
    return best, framing


def face_change(suspect_rgb: np.ndarray, box, reference: Reference | None) -> FaceChange:
    """How the face at *box* in the suspect image differs from the face as tagged."""
    if reference is None:
        return unknown(ChangeReason.NO_REFERENCE)
    kind = reference.kind.value
    side = int(max(box[2] - box[0], box[3] - box[1]))
    if side < MIN_FACE:
        return unknown(ChangeReason.SMALL_FACE, f"{side} px; needs {MIN_FACE}", kind)
    if reference.kind is ReferenceKind.THUMBNAIL and reference.side < MIN_REFERENCE:
        return unknown(ChangeReason.SMALL_REFERENCE,
                       f"{reference.side} px; needs {MIN_REFERENCE}", kind)
    h, w = suspect_rgb.shape[:2]
    if box[0] < CUT_MARGIN or box[1] < CUT_MARGIN or box[2] > w - CUT_MARGIN \
            or box[3] > h - CUT_MARGIN:
        # A close-up cropped through the face: the box crop would repeat or miss part of the
        # face, which reads as an edit (a crop to 90% measured a colour difference of ~17).
        return unknown(ChangeReason.CUT_FACE, "", kind)
    measures, framing = settled_measures(suspect_rgb, box, sample(reference.crop))
    return dataclasses.replace(classify(measures, kind), framing=framing)


@dataclass(frozen=True)
class Comparison:
    """What the Verify tab shows beside the verdict: the face as tagged, the suspect face
    aligned onto it, and where they differ (a heat map of the colour difference)."""

    reference: np.ndarray  # (CHIP, CHIP, 3) uint8
    suspect: np.ndarray  # (CHIP, CHIP, 3) uint8, warped onto the reference
    heat: np.ndarray  # (CHIP, CHIP, 3) uint8: black = same, bright = different


#: Colour difference that maps to the top of the heat map's scale: twice the local threshold, so
#: a change the verdict counts is clearly bright and everyday noise stays dark.
HEAT_TOP = 2 * EDITED_LOCAL


#: The "inferno" colour map (black, purple, red, orange, pale yellow) at nine even steps, as
#: OpenCV's COLORMAP_INFERNO has it; the heat map interpolates between them.
INFERNO = np.array([(0, 0, 4), (33, 12, 74), (87, 16, 110), (138, 34, 106), (188, 55, 84),
                    (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164)], np.float64)
_HEAT_LUT = np.stack([np.interp(np.arange(256), np.linspace(0, 255, len(INFERNO)), INFERNO[:, c])
                      for c in range(3)], -1).round().astype(np.uint8)


def comparison(suspect_rgb: np.ndarray, box, reference: Reference) -> Comparison:
    ref, sus = sample(reference.crop), sample(box_crop(suspect_rgb, box))
    chips = aligned(ref, sus)
    diff = np.clip(difference_map(ref, chips) / HEAT_TOP * 255.0, 0, 255).astype(np.uint8)
    return Comparison(*chips, _HEAT_LUT[diff])
