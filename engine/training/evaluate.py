"""Bit accuracy of watermark weights on the held-out eval faces, per distortion: a quick model
comparison at 128 px that takes a minute, where the full bench (protect -> attack -> MTCNN ->
verify on whole photos) takes twenty.

    python -m engine.training.evaluate assets/model/faketagger-v1.safetensors runs/x/faketagger-v2.safetensors \
        --repeats 3 [--rms 0.0128] [--checks clean,jpeg75_resize75,df:swap-source,px:resynth]

Checks: `clean`, `jpeg75_resize75`, `jitter` (detector-box jitter at full level), `df:NAME` for
every face op of engine.attacks.faceops (the real edit; needs the `attacks` extra) and `px:NAME`
for the differentiable training proxies. The training loop calls the same function at the end of
a run. The weights are evaluated as given (eval mode: BatchNorm's stored statistics), at their
own RMS unless --rms overrides it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.faces import CROP_SCALE
from engine.model.nets import WatermarkNet
from engine.model.weights import load_weights
from engine.training import noise, proxies

BASIC = ("clean", "jpeg75_resize75", "jitter")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) / 2).pow(2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def _check(name: str, clean: torch.Tensor, rng: np.random.Generator, gen: torch.Generator,
           donors: np.ndarray | None, generator, face: float = 1.0
           ) -> Callable[[torch.Tensor], torch.Tensor]:
    if name == "clean":
        return lambda t: t
    if name == "jpeg75_resize75":
        return lambda t: noise.real_jpeg(noise.resize(t, 0.75), 75)
    if name == "jitter":
        return lambda t: noise.box_jitter(t, 1.0)
    if name.startswith("df:"):
        from engine.attacks import faceops  # dlib + OpenCV: the `attacks` extra

        return lambda t: faceops.straight_through(t, [name[3:]], rng, donors)
    if name.startswith("px:"):
        return lambda t: proxies.apply(name[3:], t, clean, gen, generator, face)
    raise KeyError(f"unknown check {name!r}")


@torch.no_grad()
def evaluate(net: WatermarkNet, faces: torch.Tensor, checks: list[str], repeats: int = 1,
             donors: np.ndarray | None = None, generator=None) -> dict[str, float]:
    """Mean bit accuracy per check over `repeats` draws of payloads and edit randomness, plus the
    PSNR of the tagged 128 px crops. `faces`: (N, 3, H, W) uint8 tensor."""
    was_training = net.training
    net.eval()
    try:
        dev = next(net.parameters()).device
        size = net.cfg.size
        src = faces.to(dev).float() / 127.5 - 1
        x = F.interpolate(src, size=(size, size), mode="bilinear", antialias=True)
        sums: dict[str, float] = {"psnr": 0.0}
        for rep in range(repeats):
            g = torch.Generator().manual_seed(123 + rep)
            bits = torch.randint(0, 2, (x.shape[0], net.cfg.bits), generator=g).float().to(dev)
            tagged = (x + net.embed(x, bits)).clamp(-1, 1)
            tagged = ((tagged + 1) * 127.5).round() / 127.5 - 1
            sums["psnr"] += psnr(tagged, x)
            for name in checks:
                fn = _check(name, x, np.random.default_rng(7 + rep),
                            torch.Generator().manual_seed(7 + rep), donors, generator,
                            CROP_SCALE / net.cfg.square)
                logits = net.decoder(fn(tagged).clamp(-1, 1))
                acc = ((logits > 0).float() == bits).float().mean().item()
                sums[name] = sums.get(name, 0.0) + acc
        return {k: v / repeats for k, v in sums.items()}
    finally:
        net.train(was_training)


def swap_donors(size: int) -> np.ndarray:
    """The swap attacks' donor faces at the net's working size, (N, S, S, 3) uint8, for the
    straight-through face ops (needs the `attacks` extra)."""
    from engine.attacks.donors import donor_pool

    d = torch.from_numpy(donor_pool()).permute(0, 3, 1, 2).float()
    d = F.interpolate(d, size=(size, size), mode="bilinear", antialias=True)
    return d.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def default_checks(with_faceops: bool = True) -> list[str]:
    names = list(BASIC)
    if with_faceops:
        from engine.attacks import faceops

        names += [f"df:{n}" for n in faceops.FACEOPS]
    return names + [f"px:{n}" for n in proxies.PROXIES]


def eval_inputs(cache: Path, checks: list[str]) -> tuple[torch.Tensor, np.ndarray | None, object]:
    """The eval faces (N, 3, H, W) uint8 and what *checks* need beside them: the swap donors
    and the frozen re-synthesis generator (None where no check uses them). Seeds torch, so
    every measuring command starts alike."""
    torch.manual_seed(0)
    faces = torch.from_numpy(np.load(cache / "faces_eval.npy")).permute(0, 3, 1, 2)
    donors = swap_donors(128) if any(c.startswith("df:swap") for c in checks) else None
    generator = None
    if "px:resynth" in checks:
        from engine.attacks.generators import load_generator

        generator = load_generator("resynth-train")[0]
    return faces, donors, generator


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", type=Path)
    p.add_argument("--cache", type=Path, default=Path("cache"))
    p.add_argument("--rms", type=float, help="evaluate at this residual RMS instead")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--checks", default="", help="comma list (default: all)")
    args = p.parse_args(argv)
    checks = args.checks.split(",") if args.checks else default_checks()
    faces, donors, generator = eval_inputs(args.cache, checks)
    cols = ["psnr", *checks]
    print("| weights | " + " | ".join(c.replace("jpeg75_resize75", "jpeg75+rs0.75") for c in cols)
          + " |")
    print("|---" * (len(cols) + 1) + "|")
    for path in args.weights:
        net = load_weights(path)
        if args.rms:
            net.cfg = dataclasses.replace(net.cfg, rms=args.rms)
        res = evaluate(net, faces, checks, args.repeats, donors, generator)
        cells = [f"{res['psnr']:.2f}"] + [f"{100 * res[c]:.1f}" for c in checks]
        print(f"| {path} (RMS {net.cfg.rms:g}) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
