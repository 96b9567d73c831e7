"""Train one of the re-synthesis face generators (engine.attacks.generators) on the CPU.

    nice -n 15 python -m engine.training.train_generator --name resynth-train --minutes 12

A plain reconstruction autoencoder, as the original DeepFakes model is per identity: train-split
face crops (cache/faces_train.npy, most of each batch) plus natural crops (so the codec is not
tuned to one skin tone), heavily augmented because there are only ~12 distinct faces: flips,
scale/shift/rotation, colour gain/contrast. Loss L1 + 0.5 * (1 - SSIM). Time-boxed, one thread:
it shares two cores with the watermark training. Weights go to assets/attacks/<name>.safetensors
in fp16 with the training facts in the file's metadata (docs/ATTACKS.md quotes them).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.atomic import write_atomic
from engine.attacks.generators import ARCHS, GENERATORS
from engine.paths import assets_dir

ROOT = Path(__file__).resolve().parents[2]


def augment(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) in -1..1 -> (B, 3, size, size): random flip, affine and colour."""
    b = x.shape[0]

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, *shape, generator=g)

    scale, angle = u(0.88, 1.15), u(-0.14, 0.14)
    flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, u(-0.07, 0.07)], -1),
                         torch.stack([sin * flip, cos, u(-0.07, 0.07)], -1)], 1)
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    gain = u(0.8, 1.2, 3, 1, 1)
    mean = y.mean((1, 2, 3), keepdim=True)
    y = (y - mean) * u(0.75, 1.25, 1, 1, 1) + mean + u(-0.15, 0.15, 1, 1, 1)
    return ((y + 1) * gain - 1).clamp(-1, 1)


def ssim(a: torch.Tensor, b: torch.Tensor, k: int = 7) -> torch.Tensor:
    """Mean SSIM with a box window: enough as a structure term for the reconstruction loss."""
    a, b = (a + 1) / 2, (b + 1) / 2
    mu_a, mu_b = F.avg_pool2d(a, k, 1), F.avg_pool2d(b, k, 1)
    va = F.avg_pool2d(a * a, k, 1) - mu_a**2
    vb = F.avg_pool2d(b * b, k, 1) - mu_b**2
    cov = F.avg_pool2d(a * b, k, 1) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return s.mean()


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


def evaluate(model: torch.nn.Module, faces: torch.Tensor) -> dict[str, float]:
    """L1 (0..255 units), PSNR and SSIM of reconstructions of held-out eval faces."""
    with torch.inference_mode():
        x = F.interpolate(faces, size=(model.size,) * 2, mode="area")
        y = model(x)
        mse = ((y - x) ** 2).mean().item() * (127.5**2)
        return {"eval_l1": round((y - x).abs().mean().item() * 127.5, 2),
                "eval_psnr": round(10 * math.log10(255**2 / mse), 2),
                "eval_ssim": round(ssim(y, x).item(), 3)}


def train(name: str, minutes: float, cache: Path, out: Path, batch: int = 16,
          resume: bool = False) -> dict:
    arch, seed = GENERATORS[name]
    torch.manual_seed(seed)
    model = ARCHS[arch]()
    done_steps, done_minutes = 0, 0.0
    path = out / f"{name}.safetensors"
    if resume and path.is_file():  # continue a time-boxed run (the weights file holds its facts)
        from safetensors import safe_open
        from safetensors.torch import load_file

        model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        done_steps, done_minutes = int(meta.get("steps", 0)), float(meta.get("minutes", 0))
    g = torch.Generator().manual_seed(seed + done_steps)
    faces = to_tensor(np.load(cache / "faces_train.npy"))
    natural = to_tensor(np.load(cache / "natural_train.npy"))
    eval_faces = to_tensor(np.load(cache / "faces_eval.npy"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_face = batch * 3 // 4
    start, step, log = time.time(), 0, []
    budget = minutes * 60
    while (elapsed := time.time() - start) < budget:
        peak = 5e-4 if done_steps else 1e-3  # a resumed run is a gentler warm restart
        lr = 1e-4 + 0.5 * (peak - 1e-4) * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        for group in opt.param_groups:
            group["lr"] = lr
        idx_f = torch.randint(len(faces), (n_face,), generator=g)
        idx_n = torch.randint(len(natural), (batch - n_face,), generator=g)
        x = augment(torch.cat([faces[idx_f], natural[idx_n]]), model.size, g)
        y = model(x)
        l1 = (y - x).abs().mean()
        loss = l1 + 0.5 * (1 - ssim(y, x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            log.append({"step": step, "s": round(elapsed), "loss": round(loss.item(), 4),
                        "l1": round(l1.item() * 127.5, 2)})
            print(json.dumps(log[-1]), flush=True)
    model.eval()
    facts = {"name": name, "arch": arch, "size": model.size, "seed": seed,
             "steps": done_steps + step, "batch": batch,
             "minutes": round(done_minutes + (time.time() - start) / 60, 1),
             "final_loss": log[-1]["loss"] if log else None, **evaluate(model, eval_faces),
             "data": "cache/faces_train.npy (+25% natural_train.npy), augmented",
             "loss": "L1 + 0.5 * (1 - SSIM)", "threads": torch.get_num_threads()}
    save(model, facts, path)
    return facts


def save(model: torch.nn.Module, facts: dict, path: Path) -> None:
    from safetensors.torch import save as safetensors_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    # atomic: a training job may be loading the previous weights
    data = safetensors_bytes(state, metadata={k: str(v) for k, v in facts.items()})
    write_atomic(path, data, mode=0o644)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", choices=sorted(GENERATORS), required=True)
    p.add_argument("--minutes", type=float, default=12.0)
    p.add_argument("--cache", type=Path, default=ROOT / "cache")
    p.add_argument("--out", type=Path, default=assets_dir() / "attacks")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--resume", action="store_true", help="continue from the weights in --out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(train(args.name, args.minutes, args.cache, args.out, args.batch,
                           args.resume)))


if __name__ == "__main__":
    main()
