"""Turn a training run's weights into a bundled model file: the one step between `train` and
`assets/model/`, written down so a release is reproducible and its metadata complete.

    python -m engine.training.release runs/v2/faketagger-v2.safetensors --run cpu/v2-deepfake

The deployed strength (`--gain`) multiplies the residual RMS the net was trained at; the file
records both, plus the run's step count, so the model card and the bench can say exactly what
ships. An existing bundled file of the same version is never overwritten without --force: a
released decoder must stay as it was, or earlier tags could be orphaned.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from engine.model.registry import ASSETS
from engine.model.weights import load_weights, read_metadata, save_weights


def release(src: Path, run: str, gain: float = 1.0, dest: Path = ASSETS,
            force: bool = False) -> Path:
    meta = read_metadata(src)
    net = load_weights(src)
    trained_rms = net.cfg.rms
    net.cfg = dataclasses.replace(net.cfg, rms=round(trained_rms * gain, 6))
    out = dest / f"faketagger-v{net.cfg.version}.safetensors"
    if out.exists() and not force:
        raise SystemExit(f"{out} exists: a released model is never replaced (use --force only "
                         "for a version that was never shipped)")
    extra = dict(meta.get("extra", {}))
    extra.update({"run": run, "trained_rms": trained_rms, "deployed_gain": gain})
    dest.mkdir(parents=True, exist_ok=True)  # a candidate's --dest is usually a fresh folder
    save_weights(net, out, extra=extra)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", type=Path, help="a training run's faketagger-vN.safetensors")
    p.add_argument("--run", required=True, help="where it came from, for the metadata")
    p.add_argument("--gain", type=float, default=1.0, help="deployed RMS / trained RMS")
    p.add_argument("--dest", type=Path, default=ASSETS)
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    print(release(args.weights, args.run, args.gain, args.dest, args.force))


if __name__ == "__main__":
    main()
