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

#: target id -> the exact reason it is missed: model v2 on the person-split eval of issue #17
#: (44 faces of 42 people, dark, close-up and small faces; docs/baseline/v2.md of 2026-12-03, one
#: repeat), updated from the runs of 2026-12-07 after close-ups moved into the fitted square
#: (docs/baseline/fitted-v2.md, deepfake-fitted-v2.md, crop-fitted-v2.md). The old 14-face split
#: met the invisibility and everyday targets; this one does not. Met since the fitted square:
#: the worst face's PSNR (34.04 dB before; 38.96, 38.35 and 38.95 dB in those three runs) and
#: the attribute family (83.3% before, 94.7% of 132 against 90%).
KNOWN_MISSES: dict[str, str] = {
    "psnr-mean": "39.93 dB: the read-back boosts the faces v2 cannot read to 1.2x",
    "deepfake-bit-accuracy": "v2 never saw DeepFake edits in training: ~78% (swap 66.2, "
                             "reenact 86.0, attribute 92.2, resynth 69.0)",
    "everyday-exact": "jpeg75+resize0.75 70.5%, jpeg50 72.7%: small faces after re-compression; "
                      "resize0.5 54.5% (before the fitted square)",
    "exact-swap-target": "75.0% of 44",
    "exact-swap-source": "0% of 44: the warped inner face carries no readable tag",
    "exact-reenact": "86.4% of 44",
    "exact-resynth": "45.5% of 88: blurry self-trained generators; many faces not found",
    "readback-pass": "26 of 44 (59%, protect alone over the eval photos, 2026-12-07): most "
                     "small faces fail the JPEG 75 at 0.75x check even at 1.2x",
}
#: The speed targets were met on an idle machine (protect 0.48 s, verify 0.29 s with v2); the
#: baseline run above shared the CPU with two training runs and measured 1.62 / 0.84 s. Run this
#: check on an idle machine.


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
