"""What a viewer sees of a tag: colour-difference measures next to PSNR.

PSNR averages the error over the whole face square, so model v1 met 38 dB while showing
green/magenta patches on skin (DESIGN.md, "invisibility is judged by eye"). These measures are
the ones the model issue is judged by, for our tag and every peer on the same squares:
- PSNR of luma and of chroma separately (BT.601 YCbCr, as JPEG codes them): where the energy is.
- CIEDE2000 mean and p99: perceptual colour difference per pixel.
- blotch p99: p99 of CIEDE2000 after both squares are low-passed with a Gaussian of
  sigma = side/64, i.e. colour shifts at the scale a viewer notices them; fine noise hidden in
  texture does not count.
scikit-image provides CIEDE2000 and the Gaussian (the `bench` extra installs it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Per-face measures the bench summarises; "lower is better" ones report their worst as max.
LOWER_IS_BETTER = ("ciede_mean", "ciede_p99", "blotch_p99")

_YCC = np.array([[0.299, 0.587, 0.114],
                 [-0.168736, -0.331264, 0.5],
                 [0.5, -0.418688, -0.081312]])


def _psnr(mse: float) -> float:
    """As engine.protect.region_psnr: 99 dB stands for "identical"."""
    return 99.0 if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


@dataclass(frozen=True)
class Visibility:
    psnr_luma: float
    psnr_chroma: float
    ciede_mean: float
    ciede_p99: float
    blotch_p99: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def visibility(original: np.ndarray, tagged: np.ndarray) -> Visibility:
    """Measures of two uint8 (H, W, 3) squares of the same shape (the face square)."""
    from skimage.color import deltaE_ciede2000, rgb2lab
    from skimage.filters import gaussian

    if original.shape != tagged.shape:
        raise ValueError(f"visibility needs equal shapes, got {original.shape} and {tagged.shape}")
    diff = (original.astype(np.float64) - tagged.astype(np.float64)) @ _YCC.T
    de = deltaE_ciede2000(rgb2lab(original), rgb2lab(tagged))
    sigma = max(1.0, original.shape[1] / 64)
    blot = deltaE_ciede2000(rgb2lab(gaussian(original, sigma=sigma, channel_axis=-1)),
                            rgb2lab(gaussian(tagged, sigma=sigma, channel_axis=-1)))
    return Visibility(
        psnr_luma=_psnr(float(np.mean(diff[..., 0] ** 2))),
        psnr_chroma=_psnr(float(np.mean(diff[..., 1:] ** 2))),
        ciede_mean=float(de.mean()),
        ciede_p99=float(np.percentile(de, 99)),
        blotch_p99=float(np.percentile(blot, 99)),
    )


def summarize(faces: Sequence[dict[str, float]]) -> dict:
    """Mean and worst face of every measure: {"faces": n, name: {"mean", "min", "max"}}."""
    out: dict = {"faces": len(faces)}
    for key in faces[0] if faces else ():
        v = np.array([f[key] for f in faces], dtype=np.float64)
        out[key] = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    return out
