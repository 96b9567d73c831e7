"""Example strip of every face attack: `python -m engine.attacks.gallery docs/attacks.png`.

One row per licence-clean test face (Grace Hopper, the NASA sample photo), one column per crop
op (original first), labelled, so docs/ATTACKS.md can show what each attack does. Also rebuilds
the bundled donor faces: `python -m engine.attacks.gallery --build-donors`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from engine.attacks import faceops
from engine.attacks.donors import DONORS_ASSET, ROOT, build_asset
from engine.attacks.photo import detect
from engine.faces import extract_square, face_square

FACES = ("tests/data/grace_hopper.jpg", "assets/sample.jpg")
TILE = 128


def face_crop(path: Path, size: int = TILE) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    face = max(detect(rgb), key=lambda f: f.size)
    sq = np.ascontiguousarray(extract_square(rgb, face_square(face.box)))
    return cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA)


def strip(seed: int = 0) -> Image.Image:
    names = list(faceops.FACEOPS)
    label_h = 18
    sheet = Image.new("RGB", ((len(names) + 1) * TILE, len(FACES) * TILE + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    for col, name in enumerate(["original", *names]):
        tag = name + ("" if col == 0 or name in faceops.TRAIN_FACEOPS else " *")
        draw.text((col * TILE + 4, 3), tag, fill="black")
    for row, rel in enumerate(FACES):
        crop = face_crop(ROOT / rel)
        tiles = [crop] + [faceops.apply(n, crop, np.random.default_rng(seed)) for n in names]
        for col, tile in enumerate(tiles):
            sheet.paste(Image.fromarray(tile), (col * TILE, label_h + row * TILE))
    return sheet


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", type=Path, default=ROOT / "docs" / "attacks.png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--build-donors", action="store_true", help=f"rewrite {DONORS_ASSET.name}")
    args = p.parse_args(argv)
    if args.build_donors:
        print("donors:", build_asset().shape, "->", DONORS_ASSET)
        return
    strip(args.seed).save(args.out, optimize=True)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
