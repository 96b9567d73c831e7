"""Bundled watermark models, one per payload/model version, and the device they run on.

Every released decoder stays bundled: a tag made with model version N is read back with model N,
so upgrading the app never orphans an earlier tag. Verify tries each bundled version.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import FakeTaggerError
from engine.model.weights import load_weights, read_metadata
from engine.paths import assets_dir

ASSETS = assets_dir() / "model"
_NAME = re.compile(r"^faketagger-v(\d+)\.safetensors$")


class ModelError(FakeTaggerError):
    pass


def pick_device(preference: str = "auto") -> str:
    """'auto' takes CUDA when a usable GPU is present, else the CPU; 'cuda' without one fails."""
    pref = preference.lower()
    if pref == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if pref == "cuda" and not torch.cuda.is_available():
        raise ModelError("CUDA was requested but no usable GPU was found")
    if pref not in ("cpu", "cuda"):
        raise ModelError(f"unknown device {preference!r} (use auto, cpu or cuda)")
    return pref


def gpu_name() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def available_devices() -> list[tuple[str, str]]:
    """(device, label) pairs a front end can offer, in pick_device's vocabulary: "auto" (saying
    what it resolves to), "cpu", and "cuda" (labelled with the GPU's name) only when one is usable,
    so the settings screen never offers a choice that pick_device would refuse."""
    gpu = gpu_name()
    auto = f"Auto (GPU: {gpu})" if gpu else "Auto (CPU, no usable GPU found)"
    devices = [("auto", auto), ("cpu", "CPU")]
    if gpu:
        devices.append(("cuda", f"CUDA: {gpu}"))
    return devices


#: Unreleased weights a developer measures before releasing them (`faketagger bench
#: --candidate`): served as if bundled, in this process only; nothing is written to assets/.
_CANDIDATES: dict[int, Path] = {}


def bundled_versions(folder: Path = ASSETS) -> dict[int, Path]:
    found = {}
    for path in sorted(folder.glob("faketagger-v*.safetensors")):
        m = _NAME.match(path.name)
        if m:
            found[int(m.group(1))] = path
    if folder == ASSETS:
        found.update(_CANDIDATES)
    return found


def add_candidate(path: Path) -> int:
    """Serve an unreleased weights file as its model version in this process; the version.

    A candidate must carry a version no release has: a bundled decoder is never shadowed, so
    every earlier tag is still read by the model that made it."""
    from engine.model.weights import read_metadata

    try:
        version = int(read_metadata(path)["config"]["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: not a FakeTagger weights file ({exc})") from exc
    released = bundled_versions()
    if version in released and released[version] != path:
        raise ModelError(f"{path}: model version {version} is already released; a candidate "
                         "needs a new version")
    _CANDIDATES[version] = path
    load_watermarker.cache_clear()
    return version


class Watermarker:
    """One model version on one device: batched embed/decode of square face crops (uint8 RGB)."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        self.path = path
        self.device = device
        self.net = load_weights(path, device)
        self.cfg = self.net.cfg
        self.meta = read_metadata(path)
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        return self.cfg.version

    @property
    def square(self) -> float:
        """Tag square side over face box side: where this model's tags are written and read."""
        return self.cfg.square

    def _to_input(self, crops: list[np.ndarray]) -> torch.Tensor:
        size = self.cfg.size
        batch = []
        for crop in crops:
            t = torch.from_numpy(np.array(crop, dtype=np.uint8)).to(self.device)  # a copy: views can be read-only
            t = t.permute(2, 0, 1)[None].float() / 127.5 - 1
            if t.shape[-1] != size or t.shape[-2] != size:
                t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=True)
            batch.append(t)
        return torch.cat(batch)

    def residuals(
        self, crops: list[np.ndarray], bits: np.ndarray, strength: float = 1.0,
        inside: list[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """Per crop, a float32 residual in 0..255 units at the crop's own size.

        The encoder works at its fixed size; its residual is upsampled to the crop's native size
        (TrustMark), so cost per face does not grow with the photo's resolution. *inside*: per
        crop, where its square lies inside the photo (faces.inside_mask); a model whose config
        says ``rms_inside`` scales a residual down until its RMS there is at most its RMS over
        the whole square.
        """
        if not crops:
            return []
        with self._lock, torch.inference_mode():
            x = self._to_input(crops)
            b = torch.from_numpy(np.asarray(bits, dtype=np.float32)).to(self.device)
            res = self.net.embed(x, b, strength) * 127.5
            out = []
            for crop, r in zip(crops, res, strict=True):
                h, w = crop.shape[:2]
                if (h, w) != tuple(r.shape[-2:]):
                    r = F.interpolate(r[None], size=(h, w), mode="bilinear",
                                      align_corners=False)[0]
                out.append(r.permute(1, 2, 0).float().cpu().numpy())
        if self.cfg.rms_inside and inside is not None:
            out = [_capped_inside(r, m) for r, m in zip(out, inside, strict=True)]
        return out

    def logits(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, bits) decoder logits; > 0 means bit 1, magnitude is reliability."""
        if not crops:
            return np.zeros((0, self.cfg.bits), np.float32)
        with self._lock, torch.inference_mode():
            return self.net.decoder(self._to_input(crops)).float().cpu().numpy()


def _capped_inside(residual: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """*residual* scaled down so that its RMS over *inside* is at most its RMS overall."""
    if inside.all() or not inside.any():
        return residual
    whole = float(np.sqrt(np.mean(residual ** 2)))
    there = float(np.sqrt(np.mean(residual[inside] ** 2)))
    return residual * (whole / there) if there > whole else residual


@lru_cache(maxsize=8)
def load_watermarker(version: int | None = None, device: str = "cpu") -> Watermarker:
    """Cached per (version, device): every front end shares one loaded copy."""
    versions = bundled_versions()
    if not versions:
        raise ModelError(f"no bundled watermark model found in {ASSETS}")
    if version is None:
        version = max(versions)
    if version not in versions:
        raise ModelError(f"model version {version} is not bundled (have {sorted(versions)})")
    return Watermarker(versions[version], device)


def all_watermarkers(device: str = "cpu") -> list[Watermarker]:
    """Newest first, so the common case (a recent tag) decodes on the first try."""
    return [load_watermarker(v, device) for v in sorted(bundled_versions(), reverse=True)]
