"""Re-synthesis: the whole face re-rendered by one of the project's own generators, blended back.

This is what a face-swap or face-generation pipeline does to every pixel of the face it outputs:
crop -> generator at its working size -> upsample -> paste over the face with a soft mask. The
generators (engine.attacks.generators) are trained by engine.training.train_generator and
shipped as small fp16 safetensors in assets/attacks/.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import cv2
import numpy as np
import torch

from engine.attacks.generators import available, load_generator
from engine.attacks.geometry import (
    BROWS,
    blend,
    colour_transfer,
    eye_span,
    landmarks,
    polygon_mask,
    soft,
)

__all__ = ["available", "load_generator", "render", "renderer", "resynth"]

_LOCK = threading.Lock()


def render(crop: np.ndarray, name: str) -> np.ndarray:
    """The whole crop through the generator, back at the crop's size (uint8)."""
    model, _ = load_generator(name)
    s = crop.shape[0]
    small = cv2.resize(crop, (model.size, model.size), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(small).permute(2, 0, 1)[None].float() / 127.5 - 1
    with _LOCK, torch.inference_mode():
        # One image through a small net: one thread is fastest, and on a busy CPU the default
        # pool spin-waits (measured 20 ms with 1 thread vs 550 ms with 2 under load).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            y = model(x)[0]
        finally:
            torch.set_num_threads(threads)
    out = ((y.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).round().astype(np.uint8)
    return cv2.resize(out, (s, s), interpolation=cv2.INTER_CUBIC)


def face_mask(crop: np.ndarray, p: np.ndarray, lift: float) -> np.ndarray:
    """0/255 mask of the face: landmark hull with the brows lifted to cover the forehead."""
    q = p.copy()
    u = eye_span(p)
    q[BROWS, 1] -= lift * u
    return polygon_mask(crop.shape[:2], q)


def resynth(crop: np.ndarray, rng: np.random.Generator, name: str) -> np.ndarray:
    """Re-render the face with generator `name`, colour-match it and blend it back softly."""
    p = landmarks(crop)
    u = eye_span(p)
    mask = face_mask(crop, p, float(rng.uniform(0.3, 0.6)))
    fake = colour_transfer(render(crop, name), crop, mask)
    return blend(crop, fake, soft(mask, u * float(rng.uniform(0.05, 0.12))))


def renderer(name: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda crop: render(crop, name)
