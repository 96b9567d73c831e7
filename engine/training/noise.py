"""Training-time distortions ("noise layers") between encoder and decoder.

All take and return (B, 3, H, W) tensors in -1..1 and keep gradients flowing: either they are
differentiable, or they are real operations wrapped as straight-through estimators,
``x + (real(x) - x).detach()`` (SepMark / MBRS: mixing real and simulated JPEG per mini-batch
beats either alone). ``level`` in 0..1 scales every distortion's strength so the curriculum can
ramp them in once the message is learned.
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

_LUMA_Q = torch.tensor([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=torch.float32).view(8, 8)
_CHROMA_Q = torch.full((8, 8), 99.0)
_CHROMA_Q[:4, :4] = torch.tensor([
    17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 99, 47, 66, 99, 99,
], dtype=torch.float32).view(4, 4)


def _dct_matrix(n: int = 8) -> torch.Tensor:
    m = torch.zeros(n, n)
    for k in range(n):
        for i in range(n):
            a = math.sqrt(1 / n) if k == 0 else math.sqrt(2 / n)
            m[k, i] = a * math.cos(math.pi * (2 * i + 1) * k / (2 * n))
    return m


_DCT = _dct_matrix()


def _quality_scale(quality: float) -> float:
    quality = min(max(quality, 1.0), 100.0)
    return (5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality) / 100.0


def _rgb_to_ycc(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return torch.stack([y, cb, cr], 1)


def _ycc_to_rgb(x: torch.Tensor) -> torch.Tensor:
    y, cb, cr = x[:, 0], x[:, 1] - 128, x[:, 2] - 128
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.stack([r, g, b], 1)


def diff_jpeg(x: torch.Tensor, quality: float) -> torch.Tensor:
    """Differentiable JPEG (4:4:4): blockwise DCT, quantisation with a cubic rounding surrogate."""
    b, c, h, w = x.shape
    ph, pw = (-h) % 8, (-w) % 8
    img = (x.clamp(-1, 1) + 1) * 127.5
    img = F.pad(img, (0, pw, 0, ph), mode="replicate")
    ycc = _rgb_to_ycc(img) - 128
    hh, ww = ycc.shape[2], ycc.shape[3]
    blocks = ycc.view(b, 3, hh // 8, 8, ww // 8, 8).permute(0, 1, 2, 4, 3, 5)
    d = _DCT.to(x.device)
    coef = d @ blocks @ d.T
    s = _quality_scale(quality)
    q = torch.stack([_LUMA_Q, _CHROMA_Q, _CHROMA_Q]).to(x.device)
    q = torch.clamp(torch.floor(q * s + 0.5), min=1.0).view(1, 3, 1, 1, 8, 8)
    z = coef / q
    zr = torch.round(z)
    z = zr + (z - zr) ** 3
    rec = d.T @ (z * q) @ d
    rec = rec.permute(0, 1, 2, 4, 3, 5).reshape(b, 3, hh, ww) + 128
    out = _ycc_to_rgb(rec)[:, :, :h, :w]
    return out / 127.5 - 1


def real_jpeg(x: torch.Tensor, quality: int, subsampling: int = 2) -> torch.Tensor:
    """Real libjpeg round trip through Pillow, as a straight-through estimator."""
    arr = ((x.detach().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    outs = []
    for a in arr:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=int(quality), subsampling=subsampling)
        outs.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    y = torch.from_numpy(np.stack(outs)).to(x.device).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x + (y - x).detach()


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    h, w = x.shape[2:]
    sh, sw = max(8, int(round(h * scale))), max(8, int(round(w * scale)))
    small = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)


def noise(x: torch.Tensor, std: float) -> torch.Tensor:
    return x + torch.randn_like(x) * std


def colour(x: torch.Tensor, level: float) -> torch.Tensor:
    """Brightness, contrast, saturation and gamma changes, per image."""
    b = x.shape[0]

    def u(span: float) -> torch.Tensor:
        return (torch.rand(b, 1, 1, 1, device=x.device) * 2 - 1) * span * level

    y = (x + 1) / 2
    y = y * (1 + u(0.25)) + u(0.1)
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * (1 + u(0.3)) + mean
    grey = y.mean(dim=1, keepdim=True)
    y = (y - grey) * (1 + u(0.5)) + grey
    y = y.clamp(1e-4, 1) ** torch.exp(u(0.3))
    return y * 2 - 1


def dim(x: torch.Tensor, p: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image, a dim-light cover: exposure x0.3-0.8 and gamma 1.2-2.2.

    Applied to the cover before embedding, so the encoder learns to tag faces in bar and party
    snapshots (mean face luma 20-80 of 255), where v2's read-back failed most (evidence/README):
    a residual pushed below 0 in the shadows is clipped away, so the net must learn where it
    can still put energy."""
    if p <= 0:
        return x
    b = x.shape[0]

    def r(lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(b, 1, 1, 1, generator=gen)).to(x.device)

    pick = (torch.rand(b, 1, 1, 1, generator=gen) < p).to(x.device)
    y = ((x + 1) / 2).clamp(1e-4, 1) ** r(1.2, 2.2) * r(0.3, 0.8)
    return torch.where(pick, y * 2 - 1, x)


def pasted(residual: torch.Tensor, rng: random.Random, max_factor: float = 4.0) -> torch.Tensor:
    """The residual as the app delivers it to the decoder: protect upsamples it bilinearly to
    the face square's own size and feathers its border (engine.faces.paste_residual); verify
    scales the square back down with an antialiasing filter (engine.model.registry). Measured on
    the eval faces with the v2 work-in-progress net, that round trip alone turned 1-10 raw bit
    errors at 128 px into 2-20 on the large faces; training through it teaches the encoder to
    put its energy where it survives. Differentiable; one square size per batch."""
    from engine.faces import feather_mask

    size = residual.shape[-1]
    side = int(round(size * max_factor ** rng.random()))
    up = F.interpolate(residual, size=(side, side), mode="bilinear", align_corners=False)
    back = F.interpolate(up, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)
    return back * torch.from_numpy(feather_mask(size)).to(residual)


def shrunk_cover(x: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the small face square, what the encoder sees): a face square of `side` px (< the working
    size) is scaled up to the working size for the encoder (registry._to_input), so the cover the
    encoder sees is blurred by that round trip. Small faces in group shots were where v2 failed
    after re-posting (the small rows of docs/BENCHMARKS.md)."""
    size = x.shape[-1]
    small = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False,
                          antialias=True)
    return small, F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)


def shrunk(residual: torch.Tensor, side: int) -> torch.Tensor:
    """The residual as the app delivers a small face's tag to the decoder: scaled down to the
    face square's `side` px without antialiasing (registry.residuals), feathered there
    (faces.paste_residual), and scaled back up by verify. Differentiable."""
    from engine.faces import feather_mask

    size = residual.shape[-1]
    down = F.interpolate(residual, size=(side, side), mode="bilinear", align_corners=False)
    down = down * torch.from_numpy(feather_mask(side)).to(residual)
    return F.interpolate(down, size=(size, size), mode="bilinear", align_corners=False)


def cut_reach(square: float) -> float:
    """The most of a face square's side that lies past one border of a tight face crop: at the
    app's 1.5 square 0.3 (the crop shows ~0.6 box widths of the photo around the face), at a
    wider square as much more as that square is wider (2.5: 0.38)."""
    return round((1.0 - 0.6 / square) / 2.0, 4)


def random_cut(size: int, rng: random.Random, most: float = 0.3) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixels of a face square that lie past the photo's border: each
    side with probability 1/2, up to `most` of the side (a tight celebrity crop's 1.5x square
    reaches ~0.29 past each edge, a portrait that fills the frame ~0.17)."""
    def side() -> int:
        return int(rng.uniform(0.02, most) * size) if rng.random() < 0.5 else 0

    cut = (side(), side(), side(), side())
    return cut if any(cut) else (int(most * size / 2), 0, 0, 0)


def edge_cut(x: torch.Tensor, cut: tuple[int, int, int, int]) -> torch.Tensor:
    """The square as the app sees it when part of it is past the image border: those rows and
    columns repeat the last pixels inside (engine.faces.extract_square). Applied to the cover
    before embedding and to the tagged square after it, because a residual written past the
    border is never stored: v2 read only half the close-ups clean (docs/BENCHMARKS.md)."""
    top, bottom, left, right = cut
    h, w = x.shape[-2:]
    ys = torch.arange(h, device=x.device).clamp(top, h - 1 - bottom)
    xs = torch.arange(w, device=x.device).clamp(left, w - 1 - right)
    return x[..., ys, :][..., :, xs]


def capped_inside(residual: torch.Tensor, cut: tuple[int, int, int, int]) -> torch.Tensor:
    """*residual* scaled down, per image, until its RMS over the part of the square inside the
    photo (not *cut*) is at most its RMS over the whole square: what protect does for a model
    whose config says ``rms_inside`` (engine.model.registry). The scale is a constant to the
    gradient, as the app computes it after the net."""
    top, bottom, left, right = cut
    h, w = residual.shape[-2:]
    inner = residual[..., top:h - bottom, left:w - right]
    whole = residual.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
    there = inner.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(1e-12).sqrt()
    return residual * (whole / there).clamp(max=1.0).detach()


def box_jitter(x: torch.Tensor, level: float) -> torch.Tensor:
    """Shift, scale and rotate as a re-detected face box would (detector jitter on verify)."""
    b = x.shape[0]
    dev = x.device
    shift = (torch.rand(b, 2, device=dev) * 2 - 1) * 0.08 * level
    scale = 1 + (torch.rand(b, device=dev) * 2 - 1) * 0.12 * level
    ang = (torch.rand(b, device=dev) * 2 - 1) * math.radians(6) * level
    cos, sin = torch.cos(ang) * scale, torch.sin(ang) * scale
    theta = torch.stack([
        torch.stack([cos, -sin, shift[:, 0]], 1),
        torch.stack([sin, cos, shift[:, 1]], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_distortion(x: torch.Tensor, level: float, rng: random.Random) -> tuple[torch.Tensor, str]:
    """One randomly chosen everyday distortion at the curriculum level; returns its name."""
    if level <= 0:
        return x, "none"
    kind = rng.choice(["none", "jpeg_real", "jpeg_diff", "resize", "blur", "noise", "colour",
                       "jpeg_resize"])
    q_low = 95 - 50 * level  # quality down to 45 at full level
    if kind == "jpeg_real":
        x = real_jpeg(x, int(rng.uniform(q_low, 95)), subsampling=rng.choice([0, 2]))
    elif kind == "jpeg_diff":
        x = diff_jpeg(x, rng.uniform(q_low, 95))
    elif kind == "resize":
        x = resize(x, rng.uniform(1 - 0.6 * level, 1.0))
    elif kind == "blur":
        x = blur(x, rng.uniform(0.3, 0.3 + 1.2 * level))
    elif kind == "noise":
        x = noise(x, rng.uniform(0, 0.04 * level))
    elif kind == "colour":
        x = colour(x, level)
    elif kind == "jpeg_resize":
        x = resize(x, rng.uniform(1 - 0.5 * level, 1.0))
        x = real_jpeg(x, int(rng.uniform(q_low + 10 * level, 95)))
    return x, kind
