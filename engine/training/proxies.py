"""Differentiable DeepFake proxies: the swap and re-synthesis attacks as pure torch noise layers.

Why they exist next to engine.attacks.faceops: the real face ops (dlib landmarks, Delaunay warp,
cv2.seamlessClone) only reach training as straight-through layers, whose identity gradient tells
the encoder nothing about *where* a DeepFake keeps its pixels. For swap-with-tagged-face-as-source
that is fatal: only the warped face interior survives, in a foreign frame, and a straight-through
layer cannot teach the encoder to put a warp-tolerant tag there (a CPU fine-tune stayed at chance,
MODEL_CARD.md). These proxies model the same edits with masks, warps and the frozen training
generator, so the gradient is real. They need no dlib or OpenCV, so they run on a lent GPU from
the portable cache alone (DEVELOPERS.md, section 3).

Geometry: a crop is the project's face square (MTCNN box = central 1/1.5); the landmark hull of
a centred face covers roughly x 0.22-0.78, y 0.30-0.86 of the side (engine.attacks.geometry's
FACE_RECT), which the random ellipses below follow. Batches from train.sample_batch are zoomed
by up to 1/0.72, so the ellipses are drawn wide enough to cover that spread. A model with a
wider square (ModelConfig.square) sees a smaller face around the same centre: `face` = 1.5 /
square scales the ellipses, and the re-synthesis proxy re-renders the face's own 1.5 square.

All functions take and return (B, 3, S, S) tensors in -1..1; `gen` is a torch.Generator on the
CPU so a seeded run draws the same edits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _u(gen: torch.Generator, b: int, lo: float, hi: float, device) -> torch.Tensor:
    return (lo + (hi - lo) * torch.rand(b, generator=gen)).to(device)


def face_mask(b: int, size: int, gen: torch.Generator, device, *, grow: float = 0.0,
              face: float = 1.0) -> torch.Tensor:
    """(B, 1, S, S) soft ellipse over the inner face (what a landmark hull covers), 0..1.

    `grow` widens it (as a fraction of the side), e.g. to include the forehead as re-synthesis
    masks do. `face`: the face's size in the square relative to the 1.5 geometry (1.5 / the
    model's square): a wider square holds a smaller face around the same centre.
    """
    cx = 0.5 + (_u(gen, b, 0.46, 0.54, device) - 0.5) * face
    cy = 0.5 + (_u(gen, b, 0.54, 0.60, device) - 0.5) * face
    ax = (_u(gen, b, 0.25, 0.31, device) + grow) * face
    ay = (_u(gen, b, 0.27, 0.33, device) + grow) * face
    edge = _u(gen, b, 0.01, 0.04, device) * face
    t = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    yy, xx = t.view(1, -1, 1), t.view(1, 1, -1)
    r = torch.sqrt(((xx - cx.view(-1, 1, 1)) / ax.view(-1, 1, 1)) ** 2
                   + ((yy - cy.view(-1, 1, 1)) / ay.view(-1, 1, 1)) ** 2)
    # distance outside the ellipse in units of the side (approximately), through a soft step
    d = (r - 1) * torch.minimum(ax, ay).view(-1, 1, 1)
    return torch.sigmoid(-d / edge.view(-1, 1, 1))[:, None]


def smooth_warp(x: torch.Tensor, gen: torch.Generator, *, scale: float = 0.10,
                angle_deg: float = 8.0, shift: float = 0.06, wobble: float = 0.03) -> torch.Tensor:
    """A random similarity transform plus a smooth displacement field (a 4x4 grid of random
    offsets, bicubically upsampled): what a landmark-driven piecewise-affine warp does to a face
    interior that is moved onto another face's landmarks."""
    b, _, s, _ = x.shape
    dev = x.device
    sc = 1 + _u(gen, b, -scale, scale, dev)
    ang = _u(gen, b, -1, 1, dev) * math.radians(angle_deg)
    tx, ty = (_u(gen, b, -shift, shift, dev) * 2 for _ in range(2))
    cos, sin = torch.cos(ang) * sc, torch.sin(ang) * sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [b, 3, s, s], align_corners=False)
    field = (torch.rand(b, 2, 4, 4, generator=gen) * 2 - 1).to(dev) * (2 * wobble)
    field = F.interpolate(field, size=(s, s), mode="bicubic", align_corners=True)
    grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _low_freq(b: int, size: int, gen: torch.Generator, device, amp: float) -> torch.Tensor:
    """A smooth per-channel field: the harmonic correction Poisson blending adds inside a mask."""
    f = (torch.rand(b, 3, 3, 3, generator=gen) * 2 - 1).to(device) * amp
    return F.interpolate(f, size=(size, size), mode="bilinear", align_corners=True)


def _recolour(x: torch.Tensor, gen: torch.Generator, span: float) -> torch.Tensor:
    """Per-channel gain and offset: Reinhard colour transfer to the other face's skin."""
    b = x.shape[0]
    gain = 1 + (torch.rand(b, 3, 1, 1, generator=gen) * 2 - 1).to(x.device) * span
    off = (torch.rand(b, 3, 1, 1, generator=gen) * 2 - 1).to(x.device) * span
    return x * gain + off


def swap_source(tagged: torch.Tensor, other: torch.Tensor, gen: torch.Generator,
                face: float = 1.0) -> torch.Tensor:
    """The tagged face interior, warped and recoloured, blended into `other` (an untagged head)."""
    b, _, s, _ = tagged.shape
    inner = _recolour(smooth_warp(tagged, gen), gen, 0.08)
    inner = inner + _low_freq(b, s, gen, tagged.device, 0.06)
    m = face_mask(b, s, gen, tagged.device, face=face)
    return m * inner + (1 - m) * other


def swap_target(tagged: torch.Tensor, other: torch.Tensor, gen: torch.Generator,
                face: float = 1.0) -> torch.Tensor:
    """Another face's interior blended over the tagged head: only the tagged surround survives."""
    b, _, s, _ = tagged.shape
    inner = _recolour(smooth_warp(other, gen), gen, 0.08)
    m = face_mask(b, s, gen, tagged.device, grow=0.02, face=face)
    return m * inner + (1 - m) * tagged


def resynth(tagged: torch.Tensor, generator: torch.nn.Module, gen: torch.Generator,
            face: float = 1.0) -> torch.Tensor:
    """The face re-rendered by a frozen generator (gradients flow through it to the encoder),
    colour-matched to the original inside the mask and blended back softly. With `face` < 1
    (a wider square) the generator re-renders the face's own 1.5 square in the middle, as it
    would a face cut out of a photo, and the rest is left as it was."""
    b, _, s, _ = tagged.shape
    if face < 1.0:
        c = int(round(s * face))
        o = (s - c) // 2
        inner = tagged[..., o:o + c, o:o + c]
        change = resynth(inner, generator, gen) - inner
        return tagged + F.pad(change, (o, s - c - o, o, s - c - o))
    size = getattr(generator, "size", s)
    small = F.interpolate(tagged, size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
    fake = F.interpolate(generator(small), size=(s, s), mode="bicubic", align_corners=False)
    m = face_mask(b, s, gen, tagged.device, grow=0.05)
    w = m / m.sum(dim=(2, 3), keepdim=True).clamp_min(1)

    def stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = (t * w).sum(dim=(2, 3), keepdim=True)
        sd = (((t - mu) ** 2) * w).sum(dim=(2, 3), keepdim=True).add(1e-6).sqrt()
        return mu, sd

    mf, sf = stats(fake)
    mt, st = stats(tagged.detach())
    fake = (fake - mf) / sf * st + mt
    return m * fake + (1 - m) * tagged


PROXIES = ("swap-source", "swap-target", "resynth")


def apply(name: str, tagged: torch.Tensor, clean: torch.Tensor, gen: torch.Generator,
          generator: torch.nn.Module | None = None, face: float = 1.0) -> torch.Tensor:
    """Proxy `name` on a tagged batch; `clean` holds the untagged crops, of which another face
    (the batch rolled by one) plays the other person in a swap. `face`: see face_mask."""
    other = clean.roll(1, 0).detach()
    if name == "swap-source":
        return swap_source(tagged, other, gen, face)
    if name == "swap-target":
        return swap_target(tagged, other, gen, face)
    if name == "resynth":
        if generator is None:
            raise ValueError("the resynth proxy needs the frozen training generator")
        return resynth(tagged, generator, gen, face)
    raise KeyError(f"unknown proxy {name!r}; known: {', '.join(PROXIES)}")
