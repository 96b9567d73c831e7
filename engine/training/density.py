"""Payload density, measured (issue #18): does a net carrying fewer raw bits read more tags blind?

    python -m engine.training.density runs/v3a/faketagger-v3.safetensors \
        runs/v3c/faketagger-v3.safetensors --rms 0.0121 --repeats 3

Fewer raw bits in the same 128 px square give each bit more energy, so the raw bit error rate
falls; but the data word stays 60 bits (version, key ID, serial, MAC: DESIGN.md's minimums), so a
shorter codeword has less parity, and a blind read must also keep false tags rare. What counts
is the share of faces whose tag a fact-checker reads exactly, with no records:

- 120 raw bits (the shipped payload, RS(24, 12) over GF(2^5)): real payloads are embedded and
  read back with the app's own blind rule, :func:`engine.payload.decode_logits`.
- any other length L: L - 60 parity bits. With 80 bits that is RS(16, 12), 4 parity symbols; a
  random (untagged) read lands within one symbol of some codeword with probability
  (1 + 16 * 31) / 32^4 = 4.7e-4 per attempt, far over the 1e-5 a blind read may have, so the
  only acceptable blind rule is an exact codeword: every one of the L raw bits right. That is
  what is counted for such nets (an upper bound of what any decoder could accept safely).

Each net is measured on the eval faces at 128 px (the training eval's geometry: no MTCNN, no
paste), at the RMS given, with the checks of :mod:`engine.training.evaluate`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.faces import CROP_SCALE
from engine.identity import KEY_ID_BYTES
from engine.model.nets import WatermarkNet
from engine.model.weights import load_weights
from engine.payload import FORMAT_VERSION, PAYLOAD_BITS, Payload, decode_logits, encode_bits
from engine.training import evaluate

CHECKS = ("clean", "jpeg75_resize75", "jitter", "df:swap-target", "df:reenact", "df:attribute",
          "df:resynth", "px:swap-target", "px:resynth")


def _payload_bits(n: int, bits: int, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """(n, bits) raw bits and the payloads they carry (real payloads for the shipped length)."""
    if bits != PAYLOAD_BITS:
        return rng.integers(0, 2, (n, bits)).astype(np.float32), [None] * n
    payloads = [Payload(FORMAT_VERSION, rng.integers(0, 256, KEY_ID_BYTES, np.uint8).tobytes(),
                        int(rng.integers(0, 65536)), int(rng.integers(0, 256))) for _ in range(n)]
    return np.stack([encode_bits(p) for p in payloads]).astype(np.float32), payloads


@torch.no_grad()
def measure(net: WatermarkNet, faces: torch.Tensor, checks: list[str], repeats: int,
            donors: np.ndarray | None, generator) -> dict[str, dict[str, float]]:
    """Per check: mean bit accuracy and the share of faces read exactly, blind."""
    net.eval()
    size, bits = net.cfg.size, net.cfg.bits
    x = F.interpolate(faces.float() / 127.5 - 1, size=(size, size), mode="bilinear",
                      antialias=True)
    acc: dict[str, list[float]] = {c: [] for c in checks}
    exact: dict[str, list[bool]] = {c: [] for c in checks}
    for rep in range(repeats):
        raw, payloads = _payload_bits(x.shape[0], bits, np.random.default_rng(500 + rep))
        target = torch.from_numpy(raw)
        tagged = (x + net.embed(x, target)).clamp(-1, 1)
        tagged = ((tagged + 1) * 127.5).round() / 127.5 - 1
        for name in checks:
            fn = evaluate._check(name, x, np.random.default_rng(7 + rep),
                                 torch.Generator().manual_seed(7 + rep), donors, generator,
                                 CROP_SCALE / net.cfg.square)
            logits = net.decoder(fn(tagged).clamp(-1, 1))
            right = (logits > 0).float() == target
            acc[name].extend(right.float().mean(1).tolist())
            for k, p in enumerate(payloads):
                if p is None:
                    exact[name].append(bool(right[k].all()))
                else:
                    res = decode_logits(logits[k].numpy())
                    exact[name].append(res is not None and res.payload == p)
    return {c: {"bit_acc": float(np.mean(acc[c])), "exact": float(np.mean(exact[c])),
                "n": len(exact[c])} for c in checks}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", type=Path)
    p.add_argument("--cache", type=Path, default=Path("cache"))
    p.add_argument("--rms", type=float, help="measure every net at this residual RMS")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--checks", default=",".join(CHECKS))
    args = p.parse_args(argv)
    checks = args.checks.split(",")
    faces, donors, generator = evaluate.eval_inputs(args.cache, checks)
    print("| weights | raw bits | PSNR | " + " | ".join(checks) + " |")
    print("|---" * (len(checks) + 3) + "|")
    for path in args.weights:
        net = load_weights(path)
        if args.rms:
            net.cfg = dataclasses.replace(net.cfg, rms=args.rms)
        psnr = evaluate.evaluate(net, faces, ["clean"], 1)["psnr"]
        res = measure(net, faces, checks, args.repeats, donors, generator)
        cells = [f"{100 * res[c]['bit_acc']:.1f} / **{100 * res[c]['exact']:.0f}**"
                 for c in checks]
        print(f"| {path} | {net.cfg.bits} | {psnr:.2f} | " + " | ".join(cells) + " |",
              flush=True)
    print(f"\nCells: bit accuracy % / blind exact reads % ({faces.shape[0]} eval faces x "
          f"{args.repeats} payloads; 120 bits: the app's RS decoder; other lengths: all bits "
          "right).")


if __name__ == "__main__":
    main()
