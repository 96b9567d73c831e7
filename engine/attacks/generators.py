"""The project's own face generators for re-synthesis attacks (no pretrained GAN can be had here).

Two small autoencoders in the style of the original DeepFakes model (shared encoder -> bottleneck
-> decoder, trained to reconstruct faces): whatever goes through them is re-rendered from a
compact code, so fine detail, and with it most of a watermark's high-frequency signal, is gone.
They differ in size, bottleneck and upsampling, and are trained with different seeds, so that
one ("resynth-train") can be used as a training noise layer while the other ("resynth-heldout")
only appears in the bench and shows whether robustness generalises to an unseen generator.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from engine.paths import assets_dir

ASSETS = assets_dir() / "attacks"


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.1))


def _up_nearest(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(cin, cout, 3, 1, 1), nn.LeakyReLU(0.1))


def _up_shuffle(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout * 4, 3, 1, 1), nn.PixelShuffle(2), nn.LeakyReLU(0.1))


class DenseAE(nn.Module):
    """64 px, four strided convs to 4x4x96, a dense 256-d code, nearest-upsample decoder."""

    size = 64

    def __init__(self, code: int = 256) -> None:
        super().__init__()
        self.enc = nn.Sequential(_down(3, 32), _down(32, 64), _down(64, 128), _down(128, 96),
                                 nn.Flatten(), nn.Linear(96 * 16, code))
        self.fc = nn.Linear(code, 96 * 16)
        self.dec = nn.Sequential(_up_nearest(96, 128), _up_nearest(128, 64), _up_nearest(64, 32),
                                 _up_nearest(32, 16), nn.Conv2d(16, 3, 3, 1, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc(self.enc(x)).view(-1, 96, 4, 4)
        return self.dec(z)


class ConvAE(nn.Module):
    """128 px, four strided convs to 8x8, a 1x1-conv bottleneck of 8x8x32, pixel-shuffle decoder."""

    size = 128

    def __init__(self, code_ch: int = 32) -> None:
        super().__init__()
        self.enc = nn.Sequential(_down(3, 16), _down(16, 32), _down(32, 64), _down(64, 128),
                                 nn.Conv2d(128, code_ch, 1))
        self.dec = nn.Sequential(nn.Conv2d(code_ch, 128, 1), nn.LeakyReLU(0.1),
                                 _up_shuffle(128, 64), _up_shuffle(64, 32), _up_shuffle(32, 16),
                                 _up_shuffle(16, 16), nn.Conv2d(16, 3, 3, 1, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


ARCHS: dict[str, type[nn.Module]] = {"dense64": DenseAE, "conv128": ConvAE}
#: generator name -> (architecture, training seed)
GENERATORS: dict[str, tuple[str, int]] = {
    "resynth-train": ("dense64", 1),
    "resynth-heldout": ("conv128", 2),
}


def weights_path(name: str) -> Path:
    return ASSETS / f"{name}.safetensors"


def available(name: str) -> bool:
    return weights_path(name).is_file()


@lru_cache(maxsize=4)
def load_generator(name: str) -> tuple[nn.Module, dict]:
    """The frozen generator (float32, CPU, eval mode) and its training facts.

    Kept free of OpenCV and dlib so that training can use the generator as a differentiable
    noise layer on a machine that has only torch (engine.training.proxies).
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: train it with "
                                f"`python -m engine.training.train_generator --name {name}`")
    with safe_open(str(path), "pt") as f:
        facts = f.metadata() or {}
    model = ARCHS[facts.get("arch", GENERATORS[name][0])]()
    model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, facts
