"""Encoder and decoder networks of the face watermark.

Design (DESIGN.md, "Watermark model"):
- Strided U-Net encoder (StegaStamp-like): cheap on a CPU, and the message enters at the INPUT as
  a small dense map upsampled to full size (probes here showed bottleneck-only injection never
  left chance level), and once more at the bottleneck.
- The encoder's raw output is rescaled to a fixed RMS (`strength`), so invisibility is a knob, not
  something an image loss has to fight the bit loss for (a strong image loss early collapses the
  residual to zero). The image loss then only shapes *where* the energy goes.
- The decoder is a strided conv stack with a dense head, which tolerates the detector-box jitter
  it is trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the nets; stored in the weights file's metadata."""

    version: int = 1
    bits: int = 120
    size: int = 128
    width: int = 32
    msg_grid: int = 16
    #: RMS of the residual in 0..1 units at strength 1.0 (0.0126 = PSNR 38 dB before feathering).
    rms: float = 0.0110
    #: "bn" puts BatchNorm after every conv (HiDDeN does; it speeds up the first learning).
    norm: str = "none"
    #: "rgb" (v1): the encoder's three channels as they come; v1 put ~93% of its energy in
    #: low-frequency colour, seen as green/magenta blotches on skin. "luma" (v2): the channels
    #: averaged into one grey residual added to R, G and B alike, so the tag has no colour at all
    #: by construction (a viewer is far less sensitive to it, and JPEG keeps luma at full
    #: resolution where it halves chroma). Same parameters, so v1 weights warm-start it.
    residual: str = "rgb"
    #: The tag square's side over the face box's side: where protect writes this model's tag
    #: and verify reads it (engine.faces.CROP_SCALE, 1.5, for v1 and v2). A wider square keeps
    #: more of the tag outside the face's landmark hull, which a swap replaces: v2, trained at
    #: 1.5, read 13 of 44 eval faces blind after swap-target at 2.5 against 1 at 1.5
    #: (MODEL_CARD.md, "Wider tag square").
    square: float = 1.5
    #: Whether protect caps each face's residual so that its RMS over the part of the square
    #: inside the photo is at most the target. The encoder normalises the RMS over the whole
    #: square, and the part past the border is never written, so on a tight crop the pixels
    #: inside got up to 2.3x the energy (2.5 square; MODEL_CARD.md, "Wider tag square").
    #: False for v1 and v2, whose released behaviour it would change.
    rms_inside: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _conv(cin: int, cout: int, stride: int = 1, norm: str = "none") -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride, 1)]
    if norm == "bn":
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """(image in -1..1, bits 0/1) -> residual with unit RMS per image (caller scales it)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w, g = cfg.width, cfg.msg_grid
        self.cfg = cfg
        conv = partial(_conv, norm=cfg.norm)
        self.msg_in = nn.Linear(cfg.bits, 3 * g * g)
        self.msg_mid = nn.Linear(cfg.bits, 4 * w)
        self.d0 = conv(6, w)  # 128
        self.d1 = conv(w, w, 2)  # 64
        self.d2 = conv(w, 2 * w, 2)  # 32
        self.d3 = conv(2 * w, 4 * w, 2)  # 16
        self.d4 = conv(4 * w, 8 * w, 2)  # 8
        self.mid = conv(8 * w + 4 * w, 8 * w)
        self.u3 = conv(8 * w + 4 * w, 4 * w)
        self.u2 = conv(4 * w + 2 * w, 2 * w)
        self.u1 = conv(2 * w + w, w)
        self.u0 = conv(w + w + 6, w)
        self.out = nn.Conv2d(w, 3, 1)

    def forward(self, image: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        g = self.cfg.msg_grid
        m = 2.0 * bits.float() - 1.0
        mmap = self.msg_in(m).view(b, 3, g, g)
        mmap = F.interpolate(mmap, size=(h, w), mode="nearest")
        x0 = torch.cat([image, mmap], 1)
        e0 = self.d0(x0)
        e1 = self.d1(e0)
        e2 = self.d2(e1)
        e3 = self.d3(e2)
        e4 = self.d4(e3)
        mid = self.msg_mid(m).view(b, -1, 1, 1).expand(-1, -1, e4.shape[2], e4.shape[3])
        y = self.mid(torch.cat([e4, mid], 1))
        y = self.u3(torch.cat([F.interpolate(y, size=e3.shape[2:]), e3], 1))
        y = self.u2(torch.cat([F.interpolate(y, size=e2.shape[2:]), e2], 1))
        y = self.u1(torch.cat([F.interpolate(y, size=e1.shape[2:]), e1], 1))
        y = self.u0(torch.cat([F.interpolate(y, size=e0.shape[2:]), e0, x0], 1))
        r = self.out(y)
        if self.cfg.residual == "luma":
            r = r.mean(1, keepdim=True).expand(-1, 3, -1, -1)
        rms = r.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        return r / rms


class Decoder(nn.Module):
    """Image in -1..1 -> one logit per raw payload bit (> 0 means 1)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        conv = partial(_conv, norm=cfg.norm)
        self.body = nn.Sequential(
            conv(3, w, 2),  # 64
            conv(w, w),
            conv(w, 2 * w, 2),  # 32
            conv(2 * w, 2 * w),
            conv(2 * w, 4 * w, 2),  # 16
            conv(4 * w, 4 * w),
            conv(4 * w, 4 * w, 2),  # 8
            nn.Conv2d(4 * w, 32, 1),
        )
        side = cfg.size // 16
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * side * side, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, cfg.bits),
        )
        self.size = cfg.size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] != self.size or image.shape[-2] != self.size:
            image = F.interpolate(image, size=(self.size, self.size), mode="bilinear",
                                  align_corners=False, antialias=True)
        return self.head(self.body(image))


class WatermarkNet(nn.Module):
    """Encoder + decoder pair, saved and loaded together."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def embed(self, image: torch.Tensor, bits: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """Residual in -1..1 image units (2 * RMS in 0..1 units per unit strength)."""
        return self.encoder(image, bits) * (2.0 * self.cfg.rms * strength)
