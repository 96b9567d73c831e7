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
#: repeat). The old 14-face split met the invisibility and everyday targets; this one does not.
KNOWN_MISSES: dict[str, str] = {
    "psnr-mean": "39.25 dB: the read-back boosts the faces v2 cannot read to 1.2x",
    "psnr-min": "34.04 dB on the worst (boosted) face",
    "deepfake-bit-accuracy": "v2 never saw DeepFake edits in training: 76.4% (swap 66.0, "
                             "reenact 85.5, attribute 88.6, resynth 65.4)",
    "everyday-exact": "clean 86.4%: v2 reads 6 of the 12 large faces and close-ups (face square "
                      "past the photo's border) not even clean; resize0.5 54.5%",
    "exact-swap-target": "75.0% of 44",
    "exact-swap-source": "0% of 44: the warped inner face carries no readable tag",
    "exact-reenact": "84.1% of 44",
    "exact-attribute": "83.3% of 132",
    "exact-resynth": "31.8% of 88: blurry self-trained generators; many faces not found",
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
