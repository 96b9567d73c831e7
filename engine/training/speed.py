"""How fast the trainer steps on this machine, per configuration: `python -m engine.training.speed`.

Builds the real Trainer (engine.training.train) on the real data cache for each variant and
times its real train_step (data sampling, augmentation with real libjpeg round trips, encoder and
decoder forward/backward, Adam), median over the timed steps after warm-up; then the data and
augmentation part alone. Run it with OMP_NUM_THREADS=1, as training runs (one thread per run),
on a machine doing nothing else but what it will do while training; DEVELOPERS.md has the table.

Variants that change no arithmetic (channels_last, torch.compile, the bf16 flag where oneDNN
ignores it) must also train alike: the table shows each one's mean loss over the timed steps,
from the same seed and the same batches.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from engine.training import noise
from engine.training.train import Trainer, build_parser, sample_batch

VARIANTS: dict[str, list[str]] = {
    "fp32, NCHW": ["--no-channels-last"],
    "bf16 inner precision, NCHW": ["--no-channels-last", "--bf16"],
    "channels_last": [],
    "channels_last + bf16": ["--bf16"],
    "channels_last + torch.compile": ["--compile"],
    "96 px, channels_last": ["--size", "96"],
}


def time_variant(base: list[str], extra: list[str], warmup: int, steps: int) -> dict:
    """One variant in this process; the global oneDNN precision flags are put back after it."""
    saved = (torch.backends.mkldnn.conv.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision)
    try:
        return _time_variant(base, extra, warmup, steps)
    finally:
        torch.backends.mkldnn.conv.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision = saved


def _time_variant(base: list[str], extra: list[str], warmup: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="ft-speed-") as out:
        args = build_parser().parse_args([*base, "--out", out, "--steps", "1", *extra])
        t0 = time.perf_counter()
        trainer = Trainer(args)
        for _ in range(warmup):
            trainer.train_step()
        setup = time.perf_counter() - t0
        times, losses = [], []
        for _ in range(steps):
            t = time.perf_counter()
            losses.append(trainer.train_step()["loss"])
            times.append(time.perf_counter() - t)
    return {"s_per_step": statistics.median(times), "setup_s": setup,
            "mean_loss": statistics.fmean(losses)}


def time_data(cache: str, batch: int, size: int, steps: int) -> float:
    """Median seconds per batch of sampling + one everyday distortion per chunk (as a step)."""
    from engine.training.train import load_cache

    data = load_cache(Path(cache), torch.device("cpu"))
    gen, rng = torch.Generator().manual_seed(0), random.Random(0)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        x = sample_batch(data, batch, size, gen, 0.2)
        for part in x.split(max(1, batch // 4)):
            noise.random_distortion(part, 1.0, rng)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default="cache")
    p.add_argument("--init", default="assets/model/faketagger-v2.safetensors")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--only", help="comma list of variant names")
    p.add_argument("--json", help="also write the numbers here")
    a = p.parse_args(argv)
    # The v3 fine-tune's own settings (DEVELOPERS.md), minus its init for the 96 px variant.
    base = ["--cache", a.cache, "--version", "3", "--residual", "luma", "--norm", "bn",
            "--batch", "16", "--lr", "1e-4", "--start-level", "0.91", "--paste", "0.7",
            "--dark", "0.2", "--proxy", "0.5", "--seed", "5"]
    rows = {}
    names = a.only.split(",") if a.only else list(VARIANTS)
    for name in names:
        extra = VARIANTS[name]
        init = [] if "--size" in extra else ["--init", a.init]
        rows[name] = time_variant(base + init, extra, a.warmup, a.steps)
        print(json.dumps({name: rows[name]}), flush=True)
    rows["data + augmentation only"] = {"s_per_step": time_data(a.cache, 16, 128, a.steps)}
    ref = rows.get("fp32, NCHW", {}).get("s_per_step")
    print("\n| variant (batch 16, one thread) | s/step | vs fp32 NCHW | mean loss over the timed "
          "steps |\n|---|---|---|---|")
    for name, r in rows.items():
        speedup = f"{ref / r['s_per_step']:.2f}x" if ref and "setup_s" in r else "-"
        loss = f"{r['mean_loss']:.4f}" if "mean_loss" in r else "-"
        print(f"| {name} | {r['s_per_step']:.2f} | {speedup} | {loss} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": torch.get_num_threads(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
