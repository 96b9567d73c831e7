"""On-demand check (`pytest -m slow`): the full bench on the eval split, exactly as
docs/BENCHMARKS.md is made, against every target of issue #3, one test per target.

A target the bundled model is known to miss goes into KNOWN_MISSES with the measured reason
(strict xfail: the entry must be removed once the model meets it). Needs the data cache
(`python -m engine.training.data --cache cache`); takes tens of minutes on 2 CPU cores.
"""

from __future__ import annotations

import json

import pytest

from engine.attacks import SUITE
from engine.bench.report import TARGET_IDS
from engine.bench.runner import DEFAULT_IMAGES
from engine.bench.runner import main as bench_main

pytestmark = pytest.mark.slow

#: target id -> the exact reason it is missed: model v3 on the person-split eval of issue #17
#: (44 faces of 42 people, dark, close-up and small faces), from the release bench of 2026-12-08
#: (docs/bench.json, one repeat). Met there, so not listed: the PSNR mean (40.15 dB, +0.15: on
#: the line), the reenact family (90.9%, +0.9: on the line) and the attribute family (96.2%).
KNOWN_MISSES: dict[str, str] = {
    "deepfake-bit-accuracy": "84.4% (swap 73.0, reenact 92.2, attribute 95.7, resynth 76.8)",
    "everyday-exact": "jpeg50 86.4%, jpeg75+resize0.75 77.3%: small faces after re-compression; "
                      "resize0.75 75.0% and resize0.5 68.2%: faces the detector no longer finds",
    "exact-swap-target": "79.5% of 44 (86.4% in a second run the same day): on the line",
    "exact-swap-source": "2.3% of 44: the warped inner face carries no readable tag",
    "exact-resynth": "63.6% of 88: blurry self-trained generators; many faces not found",
    "readback-pass": "28 of 44 (63.6%): most small faces fail the JPEG 75 at 0.75x check even "
                     "at 1.2x",
}
#: Speed: v2 met the targets on 2026-12-01 (protect 0.48 s, verify 0.29 s, idle machine); on
#: 2026-12-08, idle, v3 measured 2.07 / 1.58 s and v2 1.86 / 1.52 s (MODEL_CARD.md): a miss to
#: profile. Run this check on an idle machine.
KNOWN_MISSES["speed-protect"] = "2.07 s on an idle machine (2026-12-08), v2 1.86 s the same hour"
KNOWN_MISSES["speed-verify"] = "1.58 s on an idle machine (2026-12-08), v2 1.52 s the same hour"


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    if not DEFAULT_IMAGES.exists():
        pytest.skip("no data cache: run python -m engine.training.data")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    assert bench_main(["--device", "cpu", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_full_bench_covers_the_whole_suite(full):
    assert list(full["attacks"]) == list(SUITE)
    assert full["repeats"] == 3 and full["random_crops"]["crops"] >= 10000
    assert set(full["families"]["groups"]) == {"swap", "reenact", "attribute", "resynth"}


@pytest.mark.parametrize("target", [
    pytest.param(t, marks=pytest.mark.xfail(reason=KNOWN_MISSES[t], strict=True))
    if t in KNOWN_MISSES else t for t in TARGET_IDS])
def test_full_bench_meets_target(full, target):
    row = {t["id"]: t for t in full["targets"]}[target]
    assert row["met"] is True, (f"{row['target']}: required {row['required']}, measured "
                                f"{row['measured']} (margin {row['margin']})")
