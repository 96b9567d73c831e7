"""Numbers that say how a face differs from the face that was tagged.

Both faces are box crops (the MTCNN box, scale 1.0: what a record's thumbnail holds), brought to
one chip size. On each chip dlib fits 68 landmarks inside a fixed rectangle (no second face
detection) and computes its 128-D descriptor. Then:

- identity: descriptor distance (dlib: same person under ~0.6; a JPEG'd copy ~0.1);
- expression: landmark movement of brows, eyes and mouth after a similarity fit on the rigid
  points (eye corners, nose), in eye distances: a reenactment or expression warp moves them,
  recompression and rescaling do not;
- appearance: colour difference (CIEDE76 on blurred Lab) inside the landmark hull after that
  alignment (refined by ECC where that makes the two more alike) and after matching the copy's
  exposure curve and global colour statistics, both chips first brought to the lower of the two
  resolutions, so a darker, brighter, recompressed or downscaled copy does not count as an edit; its median over the face, and its 90th percentile over brows, eyes,
  nose and mouth (a local edit: lips, eyes, skin);
- regions: how far the mean colour of the lips, the eyes, the skin and the band above the brows
  (forehead and hair) moved, after the same alignment and colour matching. A recolouring
  (lipstick, eye colour, hair dye, a skin filter) shifts one region's mean while recompression
  leaves means alone (JPEG keeps each block's average), so a shift too small for the per-pixel
  measures still stands out here;
- intact: the colour difference in whichever of the face's upper part (brows, eyes, nose
  bridge) and lower part (nose tip, mouth, chin) differs less, each part aligned and colour
  matched on its own. An attribute edit that re-renders the eyes or the mouth can move the
  descriptor as far as another person's face does, but it leaves the other part as tagged; a
  swapped-in face differs in both;
- smoothing: how much fine texture the skin lost (a beauty filter), against the texture of
  brows, eyes and mouth in the same face. Each chip is measured in its own frame, on its own
  landmarks, because the warp that aligns the suspect blurs it alone. Recompression, rescaling
  and screenshots lower the fine texture of the whole face, the skin's and the features' alike;
  a skin filter lowers the skin's only. The colour measures cannot see it: a bilateral filter
  keeps every region's mean and barely moves a blurred pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.change import imgops, models

#: dlib's face chip is 150 px; both faces are compared at that size.
CHIP = 150
#: Where dlib's rectangle sits inside a box crop (geometry.FACE_RECT, moved from the 1.5x square
#: to the 1.0x box).
RECT = (0.05, 0.125, 0.95, 0.98)
RIGID = np.r_[36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35]
EXPRESSIVE = np.r_[17:27, 36:48, 48:68]
#: Blur (px at CHIP) before the colour comparison: above JPEG's 8 px blocks' grain at 150 px.
APPEARANCE_BLUR = 3.0
#: Brows, eyes, nose and mouth (no jaw line): where local edits (lips, eyes, skin) show.
INNER = np.r_[17:68]
LIPS, INNER_LIPS = np.r_[48:60], np.r_[60:68]
LEFT_EYE, RIGHT_EYE, LEFT_BROW, RIGHT_BROW = np.r_[36:42], np.r_[42:48], np.r_[17:22], np.r_[22:27]
#: The regions whose mean colour shift is measured, in the order Measures lists them.
REGIONS = ("lips", "eyes", "skin", "hair")
#: The landmarks each part of the face (measure.part_masks) is aligned on: brows, nose bridge
#: and eyes; jaw, nose tip and mouth.
UPPER_POINTS, LOWER_POINTS = np.r_[17:31, 36:48], np.r_[2:15, 30:36, 48:68]
#: The hair band keeps this far (px) from the chip's top and sides, where the alignment fills
#: in repeated edge pixels (on a dark photo those alone moved the band's mean by up to 19).
HAIR_MARGIN = 8
#: Suspect pixels at or beyond these values (any channel) are left out of the tone-curve fit:
#: they may be clipped, so they say nothing about the curve.
TONE_RANGE = (3, 252)
#: The band (Gaussian sigmas, px at CHIP) whose texture the smoothing measure compares: the
#: finest the chip holds, where a skin filter removes pores and a recompressed copy keeps most.
TEXTURE_BAND = (0.5, 1.0)
#: Added to each texture level (grey levels) before their ratio: a flat, noiseless skin patch
#: must not turn rounding noise into a large ratio.
TEXTURE_FLOOR = 0.05
#: The exposure changes tone matching may undo: gammas tried, and the gain's bounds.
TONE_GAMMAS = tuple(np.round(np.arange(0.6, 1.61, 0.1), 2))
TONE_GAINS = (0.5, 2.0)


@dataclass(frozen=True)
class FaceSample:
    """One face, ready to compare: its chip, landmarks, descriptor and original size."""

    chip: np.ndarray  # (CHIP, CHIP, 3) uint8
    points: np.ndarray  # (68, 2) float32, chip pixels
    descriptor: np.ndarray  # (128,) float32
    source_side: int  # the face's side in its own image, px (how much detail it really has)


@dataclass(frozen=True)
class Measures:
    identity: float
    expression: float
    appearance: float  # median colour difference over the face
    local: float  # its 90th percentile inside brows-eyes-nose-mouth: a local edit
    # Mean colour shift of one region (0.0: not measured, as in bench files made before them).
    lips: float = 0.0
    eyes: float = 0.0
    skin: float = 0.0
    hair: float = 0.0  # the band above the brows: forehead and hair
    #: The less changed of the upper and lower parts (0.0: not measured, as in older files).
    intact: float = 0.0
    #: Fine skin texture lost, log ratio (0.0: none lost, or not measured as in older files).
    smoothing: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {"identity": round(self.identity, 4), "expression": round(self.expression, 4),
                "appearance": round(self.appearance, 3), "local": round(self.local, 3),
                **{r: round(getattr(self, r), 3) for r in REGIONS},
                "intact": round(self.intact, 3), "smoothing": round(self.smoothing, 3)}


def sample(box_crop: np.ndarray) -> FaceSample:
    """Landmarks and descriptor of a face box crop (any size; resized to the chip)."""
    side = int(box_crop.shape[0])
    chip = np.ascontiguousarray(np.asarray(
        Image.fromarray(np.ascontiguousarray(box_crop[..., :3])).resize(
            (CHIP, CHIP), Image.Resampling.LANCZOS)))
    det = models.shape(chip, RECT)
    return FaceSample(chip, models.points(det), models.descriptor(chip, det), side)


def alignment(ref: FaceSample, sus: FaceSample) -> np.ndarray:
    """2x3 similarity taking the suspect chip onto the reference chip (rigid landmarks)."""
    m = imgops.fit_similarity(sus.points[RIGID], ref.points[RIGID])
    if m is None:  # degenerate landmarks: fall back to the boxes' own alignment
        m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return m


def hull(points: np.ndarray, grow: int = 0) -> np.ndarray:
    """bool (CHIP, CHIP): inside the convex hull of *points*, grown (> 0) or eroded (< 0) by a
    square of that side."""
    mask = imgops.fill_hull((CHIP, CHIP), points)
    return imgops.morph(mask, abs(grow), grow > 0) if grow else mask


def face_mask(ref: FaceSample, points: np.ndarray | slice = slice(None), erode: int = 7
              ) -> np.ndarray:
    """bool (CHIP, CHIP): inside the hull of the reference's landmarks, eroded off its edge."""
    return hull(ref.points[points], -erode)


def region_masks(ref: FaceSample) -> dict[str, np.ndarray]:
    """Where each of REGIONS lies on the reference chip: the lips without the mouth's inside,
    the eyes, the skin (the face less eyes, brows and mouth, with a margin), and the band above
    the brows outside the face (forehead and hair: what a hair-colour edit reaches)."""
    p = ref.points
    face = face_mask(ref)
    skin = face.copy()
    for part, grow in ((LIPS, 9), (LEFT_EYE, 9), (RIGHT_EYE, 9), (LEFT_BROW, 7), (RIGHT_BROW, 7)):
        skin &= ~hull(p[part], grow)
    hair = np.zeros((CHIP, CHIP), bool)
    hair[HAIR_MARGIN: max(HAIR_MARGIN + 1, int(p[17:27, 1].min()) - 3),
         HAIR_MARGIN: CHIP - HAIR_MARGIN] = True
    hair &= ~hull(p, 5)
    return {"lips": hull(p[LIPS]) & ~hull(p[INNER_LIPS]),
            "eyes": hull(p[LEFT_EYE], 3) | hull(p[RIGHT_EYE], 3), "skin": skin, "hair": hair}


def _at_resolution(chip: np.ndarray, res: int) -> np.ndarray:
    """*chip* with only the detail a *res*-px face has: a downscaled copy compared with a
    full-size original differs in sharpness, which is not an edit."""
    return imgops.resize(imgops.resize(chip, res, area=True), CHIP, area=False)


def _common(ref: FaceSample, sus: FaceSample) -> tuple[np.ndarray, np.ndarray]:
    """Both chips with only the detail the smaller of the two faces has."""
    res = int(max(8, min(ref.source_side, sus.source_side, CHIP)))
    return _at_resolution(ref.chip, res), _at_resolution(sus.chip, res)


def _refined(ref: FaceSample, a: np.ndarray, b: np.ndarray, mask: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """(image, warp): *b*, already on *a* by a landmark fit, refined by ECC inside *mask* (warp:
    the ECC matrix, destination to source), or kept as it is (warp None)
    where that does not make the two look more alike: where ECC does not converge (a face
    replaced by a very different one), or where it locks onto something else. On a turned face
    with glasses, recompressed copies drew ECC 23-27 px off the landmark fit into a zoom that read
    as a colour difference of 22-33, while on the same face in another framing ECC moved as far
    and was right: the difference each alignment leaves decides, not the distance."""
    grey = [imgops.gaussian_blur(imgops.rgb_to_grey(x), 1.5).astype(np.float32) for x in (a, b)]
    try:
        warp = imgops.ecc_affine(grey[0], grey[1], mask)
    except imgops.NoConvergence:
        return b, None
    refined = imgops.warp_affine(b, warp, inverse=True)
    if _median_difference(a, refined, mask) <= _median_difference(a, b, mask):
        return refined, warp
    return b, None


def _median_difference(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Median colour difference of two aligned RGB chips over *mask*, matched there."""
    la, lb = matched((a, b), mask)
    return float(np.median(np.sqrt(((la - lb) ** 2).sum(-1))[mask]))


def aligned(ref: FaceSample, sus: FaceSample, fit: np.ndarray | None = None,
            common: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(reference, suspect) chips at their common resolution, the suspect warped onto the
    reference: a similarity on the rigid landmarks, then an intensity-based (ECC) affine
    refinement inside the face. Landmark fits jitter by a few pixels on turned or blurred
    faces; unrefined, that jitter alone reads as a colour difference of 5-10 on unchanged faces
    (an independent photo set), refined it stays under ~2.3. *fit* and *common* (the
    :func:`_common` chips): when the caller has them already."""
    a, b, _ = _aligned(ref, sus, fit, common)
    return a, b


def _aligned(ref: FaceSample, sus: FaceSample, fit: np.ndarray | None = None,
             common: tuple[np.ndarray, np.ndarray] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`aligned`, and where the warped suspect chip holds its own pixels (bool): where
    the alignment reaches past the chip's edge the warp repeats edge pixels, which are no part
    of the face (a 0.75x copy of a turned face moved its hair band's mean by 25 that way)."""
    a, b0 = _common(ref, sus) if common is None else common
    fit = alignment(ref, sus) if fit is None else fit
    b = imgops.warp_affine(b0, fit)
    cover = imgops.warp_affine(np.ones(b0.shape[:2], np.float32), fit, border="constant")
    b, warp = _refined(ref, a, b, face_mask(ref))
    if warp is not None:
        cover = imgops.warp_affine(cover, warp, inverse=True, border="constant")
    return a, b, cover > 0.999


def blurred_lab(chips: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The (reference, suspect) *chips* as blurred Lab float32."""
    a, b = (imgops.rgb_to_lab(imgops.gaussian_blur(x, APPEARANCE_BLUR)).astype(np.float32)
            for x in chips)
    return a, b


def colour_matched(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Lab *b* with each channel's mean and spread over *mask* matched to *a*'s there."""
    b = b.copy()
    for c in range(3):
        ma, sa = a[..., c][mask].mean(), a[..., c][mask].std() + 1e-3
        mb, sb = b[..., c][mask].mean(), b[..., c][mask].std() + 1e-3
        b[..., c] = (b[..., c] - mb) / sb * sa + ma
    return b


def tone_matched(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 RGB *a* through :func:`tone_curve` (*a*, *b*, *mask*)."""
    return _through(tone_curve(a, b, mask), a)


def _through(lut: np.ndarray, img: np.ndarray) -> np.ndarray:
    out = np.empty_like(img)
    for c in range(3):
        out[..., c] = lut[c][img[..., c]]
    return out


def tone_curve(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(3, 256) uint8: per channel, the curve showing *a* as *b*'s tones would: the exposure change
    ``y = gain * 255 * (x / 255) ** gamma + offset`` fitted over *mask* where *b* is not clipped
    (gamma from TONE_GAMMAS, gain kept within TONE_GAINS), applied and clipped at 0 and 255 as
    *b* is. A brighter, darker or gamma-changed copy is not an edit, and where it flattens an
    overexposed face's highlights to white the reference is flattened alike: matching means
    and spreads alone left a gain of 1.1 on such a face reading as a colour difference of 3.7.
    The curve stays an exposure change, so no fit can turn a face into a flat patch that
    matches anything."""
    luts = np.empty((3, 256), np.uint8)
    levels = np.arange(256.0) / 255.0
    for c in range(3):
        x, y = a[..., c][mask].astype(np.float64) / 255.0, b[..., c][mask].astype(np.float64)
        fit = (y > TONE_RANGE[0]) & (y < TONE_RANGE[1])
        if fit.sum() >= 50:
            x, y = x[fit], y[fit]
        best = None
        for gamma in TONE_GAMMAS:
            xg = 255.0 * x ** gamma
            var = xg.var()
            gain = float(np.clip(((xg - xg.mean()) * (y - y.mean())).mean() / var, *TONE_GAINS)
                         ) if var > 1e-6 else 1.0
            offset = float((y - gain * xg).mean())
            err = float(((gain * xg + offset - y) ** 2).mean())
            if best is None or err < best[0]:
                best = (err, gamma, gain, offset)
        _, gamma, gain, offset = best
        luts[c] = np.clip(np.rint(gain * 255.0 * levels ** gamma + offset), 0, 255)
    return luts


def matched(chips: tuple[np.ndarray, np.ndarray], mask: np.ndarray,
            tones: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two aligned RGB chips as blurred Lab float32, their colours matched over *mask*: the
    reference's tones mapped onto the suspect's (:func:`tone_curve`; *tones* when the caller
    has it already), then the suspect's Lab mean and spread onto the reference's (what a white
    balance or saturation change leaves). A global colour or exposure change is not an edit of
    the face."""
    if tones is None:
        tones = tone_curve(chips[0], chips[1], mask)
    a, b = blurred_lab((_through(tones, chips[0]), chips[1]))
    return a, colour_matched(a, b, mask)


def matched_lab(ref: FaceSample, chips: tuple[np.ndarray, np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray]:
    """The :func:`aligned` (reference, suspect) *chips* matched over the face."""
    return matched(chips, face_mask(ref))


def part_masks(ref: FaceSample) -> tuple[np.ndarray, np.ndarray]:
    """bool (CHIP, CHIP) x2: the face above the mouth and below the eyes, each kept 0.3 eye
    spans off the other part's features. A region re-rendered around the eyes or the mouth
    (its box 0.2 spans past the features, blended in over another ~0.1) stays out of one."""
    p = ref.points
    span = float(np.linalg.norm(p[45] - p[36]))
    rows = np.arange(CHIP)[:, None]
    face = face_mask(ref)
    upper = face & (rows < p[48:68, 1].min() - 0.3 * span)
    lower = face & (rows > p[36:48, 1].max() + 0.3 * span)
    return upper, lower


def intact_part(ref: FaceSample, sus: FaceSample,
                common: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Median colour difference of the less changed of the two :func:`part_masks`, each aligned
    on its own landmarks and refined inside it, and matched in colour on its own (0.0 where a
    part is under 100 px of the chip). Each part has its own fit because an edit of the other
    part moves that part's landmarks (glasses: the eyes') and pulls a whole-face alignment."""
    a, b0 = _common(ref, sus) if common is None else common
    found = []
    for mask, points in zip(part_masks(ref), (UPPER_POINTS, LOWER_POINTS), strict=True):
        if mask.sum() < 100:
            continue
        fit = imgops.fit_similarity(sus.points[points], ref.points[points])
        b = b0 if fit is None else _refined(ref, a, imgops.warp_affine(b0, fit), mask)[0]
        found.append(_median_difference(a, b, mask))
    return min(found) if found else 0.0


def _difference(face: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = np.sqrt(((a - b) ** 2).sum(-1))
    diff[~face] = 0.0
    return diff


def difference_map(ref: FaceSample, chips: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """float32 (CHIP, CHIP) colour difference per pixel between the :func:`aligned` *chips*
    (0 outside the face): what the appearance measures summarise, and what the GUI's heat map
    shows."""
    return _difference(face_mask(ref), *matched_lab(ref, chips))


def region_shifts(ref: FaceSample, a: np.ndarray, b: np.ndarray,
                  covered: np.ndarray | None = None) -> dict[str, float]:
    """Distance between the two faces' mean Lab colour in each region, over the pixels the
    suspect chip *covered* after alignment (0.0 where the region is too small to average: under
    20 px of the chip)."""
    masks = region_masks(ref)
    if covered is not None:
        masks = {name: m & covered for name, m in masks.items()}
    return {name: float(np.linalg.norm(a[m].mean(0) - b[m].mean(0))) if m.sum() >= 20 else 0.0
            for name, m in masks.items()}


def _texture(chip: np.ndarray, face: FaceSample, tones: np.ndarray | None = None
             ) -> tuple[float, float]:
    """(skin, features): median fine-texture level of the skin and of the brows, eyes, nose and
    mouth (the rest of the face), each located by *face*'s own landmarks on *chip*, where the
    chip (seen through *tones*, when given) is not clipped: a flat white highlight has no
    texture to lose."""
    grey = imgops.rgb_to_grey(chip).astype(np.float32)
    fine = np.abs(imgops.gaussian_blur(grey, TEXTURE_BAND[0])
                  - imgops.gaussian_blur(grey, TEXTURE_BAND[1]))
    seen = chip if tones is None else _through(tones, chip)
    clipped = ((seen <= TONE_RANGE[0]) | (seen >= TONE_RANGE[1])).any(-1)
    usable = ~imgops.morph(clipped, 5, True) if clipped.any() else np.ones(clipped.shape, bool)
    skin = region_masks(face)["skin"] & usable
    features = hull(face.points) & ~region_masks(face)["skin"] & usable
    if skin.sum() < 100 or features.sum() < 100:
        return 0.0, 0.0
    return float(np.median(fine[skin])), float(np.median(fine[features]))


def smoothing(ref: FaceSample, sus: FaceSample,
              common: tuple[np.ndarray, np.ndarray] | None = None,
              tones: np.ndarray | None = None) -> float:
    """How much fine texture the suspect's skin lost, as a log ratio, at least 0: the smaller
    of the skin's loss and its loss relative to the face's features (a screenshot softens the
    whole face, so the skin's own loss alone false-alarms on it; a colour change makes the
    features busier, so the relative loss alone does). Both chips at their common resolution
    (:func:`_common`). Pixels clipped in the suspect, or in the reference seen through *tones*
    (:func:`tone_curve` of the aligned pair), are left out of both: a brighter copy clips an
    overexposed face's highlights to flat white. The texture itself is measured on the
    reference as it is, because the curve's gain would absorb part of a filter's loss."""
    a, b = _common(ref, sus) if common is None else common
    (skin_a, feat_a), (skin_b, feat_b) = _texture(a, ref, tones), _texture(b, sus)
    if not (skin_a and feat_a and skin_b and feat_b):
        return 0.0
    f = TEXTURE_FLOOR
    skin = np.log((skin_a + f) / (skin_b + f))
    relative = skin - np.log((feat_a + f) / (feat_b + f))
    return float(max(0.0, min(skin, relative)))


def measure(ref: FaceSample, sus: FaceSample) -> Measures:
    identity = float(np.linalg.norm(ref.descriptor - sus.descriptor))
    m = alignment(ref, sus)
    moved = sus.points @ m[:, :2].T + m[:, 2]
    eyes = float(np.linalg.norm(ref.points[36:42].mean(0) - ref.points[42:48].mean(0)))
    step = np.linalg.norm(moved - ref.points, axis=1) / max(eyes, 1.0)
    expression = float(step[EXPRESSIVE].mean())
    common = _common(ref, sus)  # both chips at the lower resolution, made once
    face = face_mask(ref)
    a_rgb, b_rgb, covered = _aligned(ref, sus, m, common)
    tones = tone_curve(a_rgb, b_rgb, face)
    a, b = matched((a_rgb, b_rgb), face, tones)
    diff = _difference(face, a, b)
    appearance = float(np.median(diff[face]))
    local = float(np.percentile(diff[face_mask(ref, INNER, 5)], 90))
    return Measures(identity, expression, appearance, local, **region_shifts(ref, a, b, covered),
                    intact=intact_part(ref, sus, common),
                    smoothing=smoothing(ref, sus, common, tones))
