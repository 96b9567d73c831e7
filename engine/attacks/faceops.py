"""Crop-level DeepFake operations: one registry used by the bench (per face) and by training.

    apply(name, crop, rng, donor=None) -> crop'

`crop` is a uint8 (S, S, 3) face square in the project's geometry (engine.faces: the MTCNN box is
the central 1/1.5), any S from ~100 to ~1000. Every op is deterministic given rng (and donor).
Swaps need a second face: pass `donor`, or one is drawn from donor_pool() with rng.

Training uses the same ops as straight-through noise layers (SepMark): straight_through() runs
the real edit on detached uint8 copies and returns x + (fake - x).detach(), so the decoder learns
from the real manipulation and the encoder gets an identity gradient through it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.attacks import attribute, reenact, resynth, swap
from engine.attacks.donors import pick_donor

FaceOp = Callable[[np.ndarray, np.random.Generator, "np.ndarray | None"], np.ndarray]

#: Edits the "attribute" op draws from (training and bench); glasses and the held-out generator's
#: region re-rendering are separate, held-out ops.
ATTRIBUTE_EDITS = ("smooth", "lips", "eyes", "hair", "age")


def _attribute_mix(crop: np.ndarray, rng: np.random.Generator, donor=None) -> np.ndarray:
    edits = [attribute.EDITS[e] for e in ATTRIBUTE_EDITS]
    if resynth.available("resynth-train"):
        edits.append(attribute.region_render(resynth.renderer("resynth-train")))
    return attribute.attribute(crop, rng, tuple(edits))


def _glasses(crop: np.ndarray, rng: np.random.Generator, donor=None) -> np.ndarray:
    return attribute.attribute(crop, rng, (attribute.glasses,))


def _region_gan(crop: np.ndarray, rng: np.random.Generator, donor=None) -> np.ndarray:
    return attribute.attribute(crop, rng, (attribute.region_render(
        resynth.renderer("resynth-heldout")),))


def _with_donor(op: Callable[[np.ndarray, np.random.Generator, np.ndarray], np.ndarray]) -> FaceOp:
    def run(crop: np.ndarray, rng: np.random.Generator, donor=None) -> np.ndarray:
        return op(crop, rng, donor if donor is not None else pick_donor(crop, rng))

    return run


FACEOPS: dict[str, FaceOp] = {
    "swap-target": _with_donor(swap.swap_target),
    "swap-source": _with_donor(swap.swap_source),
    "reenact": lambda crop, rng, donor=None: reenact.reenact(crop, rng),
    "attribute": _attribute_mix,
    "attribute-glasses": _glasses,
    "attribute-region-gan": _region_gan,
    "resynth": lambda crop, rng, donor=None: resynth.resynth(crop, rng, "resynth-train"),
    "resynth-heldout": lambda crop, rng, donor=None: resynth.resynth(crop, rng, "resynth-heldout"),
}
#: Family of each op (Contract A's families).
FAMILY = {
    "swap-target": "swap-target", "swap-source": "swap-source", "reenact": "reenact",
    "attribute": "attribute", "attribute-glasses": "attribute", "attribute-region-gan": "attribute",
    "resynth": "resynth", "resynth-heldout": "resynth",
}
#: Ops meant as training noise. The others are held out so that the bench shows generalisation:
#: an unseen occluder (glasses) and a generator never seen in training (resynth-heldout, also
#: used for the local region re-rendering of attribute-region-gan).
TRAIN_FACEOPS: tuple[str, ...] = ("swap-target", "swap-source", "reenact", "attribute", "resynth")
HELD_OUT_FACEOPS: tuple[str, ...] = tuple(n for n in FACEOPS if n not in TRAIN_FACEOPS)


def apply(name: str, crop: np.ndarray, rng: np.random.Generator,
          donor: np.ndarray | None = None) -> np.ndarray:
    """Run face op `name` on a uint8 (S, S, 3) crop; returns a new array of the same shape."""
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[0] != crop.shape[1]:
        raise ValueError(f"need a uint8 (S, S, 3) crop, got {crop.dtype} {crop.shape}")
    try:
        op = FACEOPS[name]
    except KeyError:
        raise KeyError(f"unknown face op {name!r}; known: {', '.join(FACEOPS)}") from None
    out = op(np.ascontiguousarray(crop[..., :3]), rng, donor)
    assert out.shape == crop.shape[:2] + (3,) and out.dtype == np.uint8
    return out


def straight_through(x, names: list[str], rng: np.random.Generator, donors: np.ndarray):
    """Straight-through face ops on a batch: x + (fake(x) - x).detach().

    x: (B, 3, H, W) float tensor in -1..1 (H == W, the face crop geometry); names: one op name
    for the whole batch or one per item; donors: (N, S, S, 3) uint8 swap donors. The edit runs
    on detached uint8 copies on the CPU; the result has x's device and dtype, and its gradient
    with respect to x is the identity.
    """
    import torch

    b = x.shape[0]
    if len(names) not in (1, b):
        raise ValueError(f"names must have 1 or {b} entries, got {len(names)}")
    imgs = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte()
    imgs = imgs.permute(0, 2, 3, 1).cpu().numpy()
    fakes = np.empty_like(imgs)
    for i in range(b):
        name = names[0] if len(names) == 1 else names[i]
        donor = pick_donor(imgs[i], rng, donors) if name.startswith("swap") else None
        fakes[i] = apply(name, imgs[i], rng, donor)
    fake = torch.from_numpy(fakes).permute(0, 3, 1, 2).to(x.device, x.dtype) / 127.5 - 1
    return x + (fake - x).detach()
