"""Train the face watermark encoder/decoder from the offline data cache.

    python -m engine.training.train --cache cache --out runs/v1 --minutes 30

Resumable (checkpoint in --out every --ckpt-seconds), seeded, and logs bit accuracy per
distortion as JSON lines from the first minute. Runs on CUDA when present, else the CPU.

Curriculum (DESIGN.md, "known training traps"): the message is learned first with no distortions
and a loud residual; a single ``level`` in 0..1 then ramps in distortion strength, lowers the
residual to its final RMS and raises the image-shaping loss, but only while the running bit
accuracy under the current level stays above a threshold. So the run adapts to whatever hardware
and step budget it gets instead of following a fixed schedule that may outrun the decoder.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.faces import CROP_SCALE
from engine.model.nets import ModelConfig, WatermarkNet
from engine.model.weights import load_weights, read_metadata, save_weights
from engine.training import evaluate, noise, proxies
from engine.training.narrow import narrow_payload

#: The smallest face box (px) `--small` trains for: the detector's minimum. Its square is this
#: times the model's square (60 px at the app's 1.5 framing).
SMALL_BOX = 40
DEEPFAKE_KINDS = ("px:", "df:")  # proxy and face-op chunks, as tagged in train_step


def load_cache(cache: Path, device: torch.device, square: float = CROP_SCALE
               ) -> dict[str, torch.Tensor]:
    """The uint8 crop arrays built by engine.training.data, moved to the device once. The
    cache's crops must frame the faces as the model's square does (a 1.5 cache would teach a
    2.5 model a face twice as large as protect will show it)."""
    manifest = cache / "manifest.json"
    if manifest.exists():
        built = float(json.loads(manifest.read_text()).get("square", CROP_SCALE))
        if abs(built - square) > 1e-6:
            raise SystemExit(f"{cache} was built for a tag square of {built}, this run trains "
                             f"{square}: python -m engine.training.data --square {square}")
    out = {}
    for name in ("faces_train", "natural_train", "faces_eval"):
        path = cache / f"{name}.npy"
        if path.exists():
            arr = np.load(path)
            out[name] = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().to(device)
    if "faces_train" not in out:
        raise SystemExit(f"no faces_train.npy in {cache}: run python -m engine.training.data")
    return out


def sample_batch(
    data: dict[str, torch.Tensor], batch: int, size: int, gen: torch.Generator, dark: float = 0.0
) -> torch.Tensor:
    """Random square crops (70% faces, 30% natural texture), flips and light colour, in -1..1;
    a share `dark` of them dimmed (noise.dim)."""
    dev = data["faces_train"].device
    n_nat = int(batch * 0.3) if "natural_train" in data else 0
    parts = []
    for name, n in (("faces_train", batch - n_nat), ("natural_train", n_nat)):
        if n == 0:
            continue
        src = data[name]
        idx = torch.randint(0, src.shape[0], (n,), generator=gen, device="cpu").to(dev)
        parts.append(src[idx])
    x = torch.cat(parts).float() / 127.5 - 1
    b, _, h, _ = x.shape
    scale = 0.72 + 0.28 * torch.rand(b, device=dev)
    shift = (torch.rand(b, 2, device=dev) * 2 - 1) * (1 - scale)[:, None]
    flip = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0)
    zero = torch.zeros(b, device=dev)
    theta = torch.stack([
        torch.stack([scale * flip, zero, shift[:, 0]], 1),
        torch.stack([zero, scale, shift[:, 1]], 1),
    ], 1)
    grid = F.affine_grid(theta, [b, 3, size, size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return noise.dim(noise.colour(x, 0.5).clamp(-1, 1), dark, gen)


def _cache_id(cache: Path) -> str:
    """SHA-256 prefix of the cache manifest: which data a run trained on."""
    import hashlib

    manifest = cache / "manifest.json"
    return hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.exists() else ""


def _tuples(x):
    """random.setstate wants tuples; a checkpoint round trip may give lists."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def smoothness_weight(x: torch.Tensor) -> torch.Tensor:
    """High where the image is flat: a residual there is visible, in texture it is masked."""
    grey = x.mean(1, keepdim=True)
    mu = F.avg_pool2d(grey, 5, 1, 2, count_include_pad=False)
    var = F.avg_pool2d((grey - mu) ** 2, 5, 1, 2, count_include_pad=False)
    w = 1.0 / (var.sqrt() + 0.03)
    return w / w.mean(dim=(1, 2, 3), keepdim=True)


class Trainer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        self.device = torch.device(
            args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        torch.manual_seed(args.seed)
        self.rng = random.Random(args.seed)
        self.gen = torch.Generator().manual_seed(args.seed)
        self.cfg = ModelConfig(version=args.version, bits=args.bits, rms=args.rms, norm=args.norm,
                               residual=args.residual, size=args.size, square=args.square,
                               rms_inside=args.rms_inside)
        #: The face's size in the training crops relative to the 1.5 geometry (proxies.face_mask).
        self.face = CROP_SCALE / args.square
        if args.bf16:  # oneDNN bf16 inner precision (measured: no gain on this CPU, DEVELOPERS.md)
            torch.backends.mkldnn.conv.fp32_precision = "bf16"
            torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        self.net = WatermarkNet(self.cfg).to(self.device)
        # channels_last: 1.2x per step on this CPU's oneDNN kernels, same numbers (DEVELOPERS.md).
        self.memory_format = (torch.channels_last if args.channels_last
                              else torch.contiguous_format)
        self.net = self.net.to(memory_format=self.memory_format)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=args.lr)
        if args.compile:  # the modules are compiled in place; state_dict keys are unchanged
            self.net.encoder.compile()
            self.net.decoder.compile()
        self.step = 0
        #: Every (re)start's full command-line configuration, with the step it began at: stored
        #: in the checkpoint and in each weights file's metadata, so a released model says
        #: exactly how it was made even when a run was resumed with other settings.
        self.history: list[dict] = []
        self.level = args.start_level
        self.acc_ema = 0.5
        # Payload growth (DESIGN.md trap (c)): start with few distinct bits, each repeated over
        # the 120 positions, and double them whenever the decoder keeps up.
        self.distinct = args.start_bits if args.grow else args.bits
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ckpt = self.out / "checkpoint.pt"
        if self.ckpt.exists() and not args.fresh:
            self._resume()
        elif args.init:
            self._warm_start(Path(args.init))
        self.history.append({"from_step": self.step, "args": vars(args),
                             "cache": _cache_id(Path(args.cache))})
        self.data = load_cache(Path(args.cache), self.device, args.square)
        self.np_rng = np.random.default_rng(args.seed)
        self.faceops: list[str] = []
        self.donors: np.ndarray | None = None
        if args.deepfake > 0:
            from engine.attacks import faceops  # needs the `attacks` extra (dlib, OpenCV)

            self.faceops = args.faceops.split(",") if args.faceops else list(faceops.TRAIN_FACEOPS)
            self.donors = evaluate.swap_donors(self.cfg.size)

        self.proxies: list[str] = []
        self.generator = None
        if args.proxy > 0:
            self.proxies = args.proxies.split(",") if args.proxies else list(proxies.PROXIES)
            if "resynth" in self.proxies:
                from engine.attacks.generators import load_generator  # torch only, no OpenCV

                self.generator = load_generator("resynth-train")[0].to(self.device)
        self.proxy_gen = torch.Generator().manual_seed(args.seed + 1000)

    def _warm_start(self, path: Path) -> None:
        """Weights from a committed warm start, and the run's count and curriculum with them:
        a fresh machine continues the run (step, level, every earlier start in `history`)
        rather than starting a new one at step 0 (only Adam's moments are re-learned)."""
        state = load_weights(path).state_dict()
        if state["decoder.head.3.bias"].shape[0] != self.cfg.bits:
            state = narrow_payload(state, self.cfg.bits)  # a shorter payload from a longer net
        self.net.load_state_dict(state)
        extra = read_metadata(path).get("extra", {})
        self.step = int(extra.get("step", 0))
        self.level = max(self.level, float(extra.get("level", self.level)))
        self.distinct = min(self.cfg.bits, int(extra.get("distinct", self.distinct)))
        self.history = list(extra.get("history", []))
        print(f"warm start at step {self.step}, level {self.level:.3f}")

    def _resume(self) -> None:
        state = torch.load(self.ckpt, map_location=self.device, weights_only=True)
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.level, self.acc_ema = state["step"], state["level"], state["acc_ema"]
        self.distinct = state.get("distinct", self.cfg.bits)
        self.history = list(state.get("history", []))
        if "rng" in state:
            torch.set_rng_state(state["rng"]["torch"])
            self.gen.set_state(state["rng"]["gen"])
            self.rng.setstate(_tuples(state["rng"]["py"]))
        print(f"resumed at step {self.step}, level {self.level:.3f}")

    def save(self) -> None:
        tmp = self.ckpt.with_suffix(".tmp")
        torch.save({"model": self.net.state_dict(), "opt": self.opt.state_dict(),
                    "step": self.step, "level": self.level, "acc_ema": self.acc_ema,
                    "distinct": self.distinct, "history": self.history,
                    "rng": {"torch": torch.get_rng_state(), "gen": self.gen.get_state(),
                            "py": self.rng.getstate()}}, tmp)
        tmp.replace(self.ckpt)
        name = f"faketagger-v{self.cfg.version}.safetensors"
        extra = {"step": self.step, "level": round(self.level, 4), "distinct": self.distinct,
                 "faceops": self.faceops, "deepfake": self.args.deepfake,
                 "proxies": self.proxies, "proxy": self.args.proxy, "history": self.history}
        save_weights(self.net, self.out / name, extra=extra)
        if self.args.export:
            # A small copy (weights + log, no optimizer state) for a device run's $OUT.
            export = Path(self.args.export)
            export.mkdir(parents=True, exist_ok=True)
            save_weights(self.net, export / name, extra=extra)
            (export / "log.jsonl").write_bytes((self.out / "log.jsonl").read_bytes())

    def train_step(self) -> dict:
        a, cfg = self.args, self.cfg
        x = sample_batch(self.data, a.batch, cfg.size, self.gen, a.dark).contiguous(
            memory_format=self.memory_format)
        base = torch.randint(0, 2, (a.batch, self.distinct), device=self.device).float()
        bits = base[:, torch.arange(cfg.bits, device=self.device) % self.distinct]
        lvl = self.level
        rms_scale = a.start_rms_factor - (a.start_rms_factor - 1.0) * lvl
        cut = (noise.random_cut(cfg.size, self.rng, noise.cut_reach(cfg.square))
               if self.rng.random() < a.edge else None)
        if cut:  # a close-up: part of the face square is past the photo's border
            x = noise.edge_cut(x, cut)
        smallest = min(cfg.size - 1, round(SMALL_BOX * cfg.square))
        side = self.rng.randint(smallest, cfg.size - 1) if self.rng.random() < a.small else 0
        if side:  # a small face: its square is scaled up for the encoder, the tag back down
            x = noise.shrunk_cover(x, side)[1]
        unit = self.net.encoder(x, bits)
        residual = unit * (2 * cfg.rms * rms_scale)
        if side:
            residual = noise.shrunk(residual, side)
        elif a.paste and self.rng.random() < a.paste:
            residual = noise.pasted(residual, self.rng)
        if cut and cfg.rms_inside:  # protect's cap on what lands inside the photo
            residual = noise.capped_inside(residual, cut)
        tagged = (x + residual).clamp(-1, 1)
        if cut:
            tagged = noise.edge_cut(tagged, cut)
        y = tagged
        if lvl > 0:
            y = noise.box_jitter(y, lvl)
        chunks, kinds = [], []
        n_faces = a.batch - int(a.batch * 0.3)
        start = 0
        for part in y.split(max(1, a.batch // 4)):
            clean = x[start:start + part.shape[0]]
            start += part.shape[0]
            face_chunk = start <= n_faces
            if self.proxies and face_chunk and self.rng.random() < a.proxy:
                dist, kind = self.proxy(part, clean)
            elif self.faceops and face_chunk and self.rng.random() < a.deepfake:
                dist, kind = self.deepfake(part)
            else:
                dist, kind = noise.random_distortion(part, lvl, self.rng)
            chunks.append(dist)
            kinds.append((kind, part.shape[0]))
        logits = self.net.decoder(torch.cat(chunks).clamp(-1, 1))
        bit_loss = F.binary_cross_entropy_with_logits(logits, bits)
        vis = (unit.pow(2) * smoothness_weight(x)).mean()
        # Colour speckle is what a viewer notices first at ~37 dB; a residual carried by
        # luminance is less visible at the same RMS and survives JPEG's chroma subsampling.
        chroma = (unit - unit.mean(1, keepdim=True)).pow(2).mean()
        loss = bit_loss + a.img_weight * lvl * vis + a.chroma_weight * lvl * chroma
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        correct = ((logits > 0).float() == bits).float().mean(1)
        acc = correct.mean().item()
        per_kind, everyday, i = {}, [], 0
        for kind, n in kinds:
            per_kind.setdefault(kind, []).append(correct[i:i + n].mean().item())
            if not kind.startswith(DEEPFAKE_KINDS):
                everyday.append(correct[i:i + n])
            i += n
        if everyday:  # a swap proxy reads ~0.75 by design; it must not hold the curriculum
            self.acc_ema = 0.98 * self.acc_ema + 0.02 * torch.cat(everyday).mean().item()
        return {"loss": bit_loss.item(), "vis": vis.item(), "chroma": chroma.item(),
                "acc": acc, "kinds": per_kind,
                "psnr": evaluate.psnr(tagged, x)}

    def deepfake(self, part: torch.Tensor) -> tuple[torch.Tensor, str]:
        """A DeepFake proxy from engine.attacks as a straight-through noise layer (SepMark):
        the real, non-differentiable edit is applied and the gradient passes as identity. Half
        the time an everyday distortion follows, as a re-posted DeepFake is re-compressed."""
        from engine.attacks import faceops

        name = self.rng.choice(self.faceops)
        out = faceops.straight_through(part, [name], self.np_rng, self.donors)
        if self.rng.random() < 0.5:
            out, _ = noise.random_distortion(out, self.level * 0.6, self.rng)
        return out, f"df:{name}"

    def proxy(self, part: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, str]:
        """A differentiable DeepFake proxy (engine.training.proxies), then half the time an
        everyday distortion, as a re-posted DeepFake is re-compressed."""
        name = self.rng.choice(self.proxies)
        out = proxies.apply(name, part, clean, self.proxy_gen, self.generator, self.face)
        if self.rng.random() < 0.5:
            out, _ = noise.random_distortion(out, self.level * 0.6, self.rng)
        return out, f"px:{name}"

    def maybe_advance(self) -> None:
        """Raise the level a notch while the decoder keeps up on everyday distortions (the
        DeepFake kinds are left out of ``acc_ema``); this is the whole curriculum."""
        if self.step % 20 or self.acc_ema <= self.args.advance_at:
            return
        if self.distinct < self.cfg.bits:
            self.distinct = min(self.cfg.bits, self.distinct * 2)
            self.acc_ema = 0.75  # must be earned again with the larger payload
            print(f"step {self.step}: payload grows to {self.distinct} distinct bits", flush=True)
        elif self.level < 1.0:
            self.level = min(1.0, self.level + self.args.level_step)

    def evaluate(self) -> dict:
        """Bit accuracy on the held-out faces (engine.training.evaluate): clean, JPEG 75 + resize
        0.75, box jitter, and the face ops and proxies this run trains with."""
        if "faces_eval" not in self.data:
            return {}
        checks = [*evaluate.BASIC, *(f"df:{n}" for n in self.faceops),
                  *(f"px:{n}" for n in self.proxies)]
        return evaluate.evaluate(self.net, self.data["faces_eval"], checks,
                                 donors=self.donors, generator=self.generator)

    def run(self) -> None:
        a = self.args
        log = (self.out / "log.jsonl").open("a")
        t0 = time.time()
        last_ckpt = t0
        agg: dict[str, list[float]] = {}
        while True:
            elapsed = time.time() - t0
            if (a.minutes and elapsed > a.minutes * 60) or (a.steps and self.step >= a.steps):
                break
            stats = self.train_step()
            self.step += 1
            self.maybe_advance()
            for k, v in stats["kinds"].items():
                agg.setdefault(k, []).extend(v)
            if self.step % a.log_every == 0:
                rec = {"step": self.step, "t": round(elapsed, 1), "level": round(self.level, 3),
                       "distinct": self.distinct,
                       "loss": round(stats["loss"], 4), "acc_ema": round(self.acc_ema, 4),
                       "psnr": round(stats["psnr"], 2), "vis": round(stats["vis"], 3),
                       "chroma": round(stats["chroma"], 3),
                       "acc_by_kind": {k: round(float(np.mean(v)), 4) for k, v in agg.items()}}
                agg = {}
                print(json.dumps(rec), flush=True)
                log.write(json.dumps(rec) + "\n")
                log.flush()
            if time.time() - last_ckpt > a.ckpt_seconds:
                self.save()
                last_ckpt = time.time()
        self.save()
        ev = {"step": self.step, "level": self.level, "eval": self.evaluate()}
        print(json.dumps(ev), flush=True)
        log.write(json.dumps(ev) + "\n")
        log.close()
        if self.args.export:
            (Path(self.args.export) / "log.jsonl").write_bytes((self.out / "log.jsonl").read_bytes())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default="cache")
    p.add_argument("--out", default="runs/v1")
    p.add_argument("--device", default="auto")
    p.add_argument("--minutes", type=float, default=0)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--bits", type=int, default=120)
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--rms", type=float, default=ModelConfig.rms)
    p.add_argument("--img-weight", type=float, default=0.3)
    p.add_argument("--advance-at", type=float, default=0.93)
    p.add_argument("--level-step", type=float, default=0.01)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--ckpt-seconds", type=float, default=120)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--norm", default="none", choices=["none", "bn"])
    p.add_argument("--residual", default="rgb", choices=["rgb", "luma"],
                   help="luma: a grey residual by construction (model v2), see ModelConfig")
    p.add_argument("--grow", action="store_true", help="grow the payload from --start-bits")
    p.add_argument("--start-bits", type=int, default=15)
    p.add_argument("--start-level", type=float, default=0.0)
    p.add_argument("--start-rms-factor", type=float, default=3.0)
    p.add_argument("--export", help="also copy weights + log here at each checkpoint")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--init", help="start from this checkpoint's weights (warm start)")
    p.add_argument("--deepfake", type=float, default=0.0,
                   help="chance per face chunk of a DeepFake proxy (engine.attacks.faceops)")
    p.add_argument("--faceops", default="", help="comma list; default faceops.TRAIN_FACEOPS")
    p.add_argument("--proxy", type=float, default=0.0,
                   help="chance per face chunk of a differentiable proxy (engine.training.proxies)")
    p.add_argument("--proxies", default="", help="comma list; default proxies.PROXIES")
    p.add_argument("--paste", type=float, default=0.0,
                   help="chance per batch that the residual goes through the app's paste "
                        "geometry (upsample to the face's size, feather, antialiased downsample)")
    p.add_argument("--size", type=int, default=ModelConfig.size,
                   help="working size in px (96 trains ~2x faster; a new decoder head, no warm "
                        "start from a 128 px model)")
    p.add_argument("--bf16", action="store_true", help="oneDNN bf16 inner precision")
    p.add_argument("--compile", action="store_true", help="torch.compile the encoder/decoder")
    p.add_argument("--edge", type=float, default=0.0,
                   help="chance per batch that part of the face square lies past the photo's "
                        "border (close-ups; noise.edge_cut)")
    p.add_argument("--square", type=float, default=ModelConfig.square,
                   help="tag square side over the face box side (ModelConfig.square); the cache "
                        "must be built for it (engine.training.data --square)")
    p.add_argument("--rms-inside", action="store_true",
                   help="train with protect's cap on a cut square's residual inside the photo "
                        "(ModelConfig.rms_inside)")
    p.add_argument("--small", type=float, default=0.0,
                   help="chance per batch of a small face: a 60-127 px face square, through the "
                        "app's up- and down-scaling (noise.shrunk)")
    p.add_argument("--dark", type=float, default=0.0,
                   help="share of training covers dimmed to bar/party light (noise.dim)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC tensors (faster oneDNN convolutions on the CPU; same results)")
    p.add_argument("--chroma-weight", type=float, default=0.0,
                   help="penalty on the residual's colour (non-grey) part, ramped with the level")
    return p


def main(argv: list[str] | None = None) -> None:
    p = build_parser()
    args = p.parse_args(argv)
    if not args.minutes and not args.steps:
        p.error("give --minutes or --steps")
    Trainer(args).run()


if __name__ == "__main__":
    main()
