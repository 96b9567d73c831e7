"""Would a minimum tag square help small faces? (issue #18, a design question, not the app)

Today a face's tag fills a square 1.5 times its MTCNN box, so a 50 px face carries its 120 bits
in 75 px, and a JPEG 75 copy at 0.75x leaves the decoder 56 px of them. Here the square is made
at least ``--min`` px: each face gets the smallest ratio of RATIOS (box side times ratio) that
reaches it. The ratio is kept by any rescaling of the photo, but verify cannot know it, so the
reader tries every ratio (blind decoding, the app's jittered crops and two attempts per ratio)
and stops at the first payload that decodes. Tags are embedded at one strength with no
read-back boost, for faces of 40-110 px; ``--min 0`` is today's geometry read the same way.
``--ratio R`` instead tags and reads every face at R times its box (the wider square of
ModelConfig.square), and ``--faces`` widens the face sizes measured.

    python -m engine.bench.min_square cache/eval_small --min 128 --attacks clean,jpeg75+resize0.75,social1080
    python -m engine.bench.min_square cache/eval_photos --ratio 2.5 --faces 40:100000 \
        --attacks clean,jpeg75+resize0.75,swap-target

Prints one JSON object: exact blind reads / detected / faces per attack and per box-side band,
wrong payloads read, and the PSNR inside the tag squares.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine.bench.metrics import match_faces
from engine.faces import (
    CROP_SCALE,
    Face,
    extract_square,
    face_square,
    paste_residual,
    square_region,
)

RATIOS = (CROP_SCALE, 2.0, 2.5, 3.0, 3.5)
BANDS = ((40, 64), (64, 80), (80, 111), (111, 100_000))


def ratio_for(side: float, minimum: int) -> float:
    """The smallest ratio whose square reaches *minimum* px (the largest when none does)."""
    return next((r for r in RATIOS if r * side >= minimum), RATIOS[-1])


def band(side: float) -> str:
    return next(f"{lo}-{hi - 1}" for lo, hi in BANDS if lo <= side < hi)


def read_any_ratio(rgb: np.ndarray, face: Face, model, ratios: tuple[float, ...]):
    """The first blind read over *ratios* (None when none decodes)."""
    from engine.model.reading import jittered_crops, read_blind

    for r in ratios:
        res = read_blind(model.logits(jittered_crops(rgb, face_square(face.box, r))), model.version)
        if res is not None:
            return res
    return None


def run(folders: list[Path], minimum: int, attacks: list[str], strength: float, seed: int,
        version: int, ratio: float | None = None, faces_px: tuple[int, int] = (40, 110)) -> dict:
    from engine.attacks import SUITE
    from engine.faces import FaceDetector
    from engine.model.registry import load_watermarker
    from engine.payload import Payload, encode_bits
    from engine.photos import iter_photos, load_photo

    model = load_watermarker(version)
    det = FaceDetector(device="cpu")
    rng = np.random.default_rng(seed)
    ratios = (ratio,) if ratio else RATIOS if minimum else (CROP_SCALE,)
    tally = {a: {"exact": 0, "wrong": 0, "detected": 0, "faces": 0} for a in attacks}
    bands = {f"{a}@{band(lo)}": [0, 0] for a in attacks for lo, _ in BANDS}
    psnrs = []
    for path in iter_photos(folders):
        rgb = load_photo(path).rgb
        faces = [f for f in det.detect(rgb, include_small=True)
                 if faces_px[0] <= f.size <= faces_px[1]]
        if not faces:
            continue
        payloads = [Payload(model.version, rng.integers(0, 256, 4, dtype=np.uint8).tobytes(),
                            int(rng.integers(0, 65536)), int(rng.integers(0, 256)))
                    for _ in faces]
        squares = [face_square(f.box, ratio or ratio_for(f.size, minimum)) for f in faces]
        residuals = model.residuals([extract_square(rgb, s) for s in squares],
                                    np.stack([encode_bits(p) for p in payloads]), strength)
        tagged = rgb.copy()
        for s, r in zip(squares, residuals, strict=True):
            paste_residual(tagged, r, s)
        for square in squares:
            inside = square_region(square, rgb.shape)
            err = ((rgb[inside].astype(float) - tagged[inside]) ** 2).mean()
            psnrs.append(10 * np.log10(255 ** 2 / max(err, 1e-9)))
        for name in attacks:
            out = SUITE[name].fn(tagged, rng)
            found = det.detect(out, include_small=True)
            match = match_faces([f.box for f in faces], rgb.shape, [g.box for g in found],
                                out.shape)
            for face, payload, j in zip(faces, payloads, match, strict=True):
                row, key = tally[name], f"{name}@{band(face.size)}"
                row["faces"] += 1
                bands[key][1] += 1
                if j is None:
                    continue
                row["detected"] += 1
                res = read_any_ratio(out, found[j], model, ratios)
                if res is not None:
                    ok = res.payload == payload
                    row["exact" if ok else "wrong"] += 1
                    bands[key][0] += int(ok)
    return {"min": None if ratio else minimum, "ratios": list(ratios), "strength": strength, "seed": seed,
            "model_version": version, "attacks": tally,
            "bands": {k: {"exact": v[0], "faces": v[1]} for k, v in bands.items() if v[1]},
            "psnr_mean": round(float(np.mean(psnrs)), 2) if psnrs else None,
            "psnr_worst": round(float(np.min(psnrs)), 2) if psnrs else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--min", type=int, default=128, help="smallest tag square, px (0: today's)")
    p.add_argument("--attacks", default="clean,jpeg75+resize0.75,social1080")
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--model-version", type=int, default=2)
    p.add_argument("--ratio", type=float, help="tag and read every face at this ratio instead")
    p.add_argument("--faces", default="40:110", help="box sides measured, px: LO:HI")
    args = p.parse_args(argv)
    lo, hi = (int(v) for v in args.faces.split(":"))
    print(json.dumps(run(args.folders, args.min, args.attacks.split(","), args.strength,
                         args.seed, args.model_version, args.ratio, (lo, hi)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
