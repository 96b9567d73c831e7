"""Everyday processing attacks on whole photos (uint8 RGB in and out).

These are the real operations (libjpeg through Pillow, Pillow resampling), not the training
surrogates in engine.training.noise: a bench number means what happens to a real file.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

Attack = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def jpeg(rgb: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    """Downscale and keep the smaller size: a re-posted copy is usually smaller, not restored."""
    im = Image.fromarray(rgb)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return np.asarray(im.resize(size, Image.Resampling.BICUBIC))


def blur(rgb: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius)))


def noise(rgb: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rgb + rng.normal(0, std, rgb.shape), 0, 255).astype(np.uint8)


def crop(rgb: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
    """Cut a random border, keeping `keep` of each side (faces stay in the frame mostly)."""
    h, w = rgb.shape[:2]
    nh, nw = int(h * keep), int(w * keep)
    y, x = rng.integers(0, h - nh + 1), rng.integers(0, w - nw + 1)
    return rgb[y:y + nh, x:x + nw].copy()


def social(rgb: np.ndarray, quality: int = 80) -> np.ndarray:
    """Social-media style: long side 1080 (never upscaled), mild sharpen, JPEG."""
    im = Image.fromarray(rgb)
    scale = min(1.0, 1080 / max(im.size))
    if scale < 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)),
                       Image.Resampling.LANCZOS)
    im = im.filter(ImageFilter.UnsharpMask(radius=1, percent=40, threshold=2))
    return jpeg(np.asarray(im), quality)


def screenshot(rgb: np.ndarray, scale: float = 0.63) -> np.ndarray:
    """Screenshot-like copy: shown at a non-integer zoom, grabbed, scaled back to the original
    size (bilinear both ways, as browsers and screen grabbers do)."""
    im = Image.fromarray(rgb)
    small = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                      Image.Resampling.BILINEAR)
    return np.asarray(small.resize(im.size, Image.Resampling.BILINEAR))


def colour(rgb: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    x = (rgb.astype(np.float32) / 255.0 * gain).clip(0, 1) ** gamma
    return (x * 255 + 0.5).astype(np.uint8)


EVERYDAY: dict[str, Attack] = {
    "clean": lambda x, r: x,
    "jpeg95": lambda x, r: jpeg(x, 95),
    "jpeg75": lambda x, r: jpeg(x, 75),
    "jpeg50": lambda x, r: jpeg(x, 50),
    "jpeg30": lambda x, r: jpeg(x, 30),
    "resize0.75": lambda x, r: resize(x, 0.75),
    "resize0.5": lambda x, r: resize(x, 0.5),
    "resize0.3": lambda x, r: resize(x, 0.3),
    "screenshot": lambda x, r: screenshot(x),
    "jpeg75+resize0.75": lambda x, r: jpeg(resize(x, 0.75), 75),
    "blur1": lambda x, r: blur(x, 1.0),
    "noise4": lambda x, r: noise(x, 4.0, r),
    "crop0.9": lambda x, r: crop(x, 0.9, r),
    "colour": lambda x, r: colour(x, 1.1, 0.9),
    "social1080": lambda x, r: social(x, 80),
    "double-jpeg": lambda x, r: jpeg(jpeg(x, 85), 70),
}
