"""`python -m engine.attacks.timing`: median time per face op, the table in docs/ATTACKS.md.

Runs every face op on the eval split's face crops (cache/faces_eval.npy) at 128 and 512 px,
after one warm-up call per op (loading the landmark predictor and generators takes ~2 s).
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from engine.attacks import faceops
from engine.attacks.donors import CACHE, donor_pool


def main() -> None:
    faces = np.load(CACHE / "faces_eval.npy")
    donor = donor_pool()[0]
    print("| op | 128 px crop | 512 px crop |\n|---|---|---|")
    for name in faceops.FAMILY:
        cells = []
        for size in (128, 512):
            crops = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA if size < 160
                                else cv2.INTER_CUBIC) for f in faces]
            d = cv2.resize(donor, (size, size))
            faceops.apply(name, crops[0], np.random.default_rng(0), donor=d)  # warm-up
            times = []
            for k, crop in enumerate(crops):
                t0 = time.perf_counter()
                faceops.apply(name, crop, np.random.default_rng(k), donor=d)
                times.append(time.perf_counter() - t0)
            cells.append(f"{1000 * float(np.median(times)):.0f} ms")
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
