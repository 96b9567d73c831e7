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

#: target id -> the exact reason it is missed (model v2 against issue #9's targets,
#: docs/BENCHMARKS.md of 2026-12-01).
KNOWN_MISSES: dict[str, str] = {
    "deepfake-bit-accuracy": "v2 never saw DeepFake edits in training: 80.1% (swap 67.3, "
                             "reenact 90.4, attribute 93.8, resynth 68.8)",
    "exact-swap-source": "0% of 42: the warped inner face carries no readable tag",
    "exact-resynth": "45.2% of 84: blurry self-trained generators; many faces not found",
}
#: Met only narrowly in that run (one face-trial moves a 42-trial row by 2.4 points, and each run
#: tags with a fresh random identity): psnr-mean +0.38 dB, psnr-min +0.33 dB, everyday-exact +0.2
#: points (crop0.9, 40 of 42), exact-swap-target +1.0 point (34 of 42). A failure there is worth
#: a second run before a model is blamed.


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
