"""The quick bench runs end to end on the test photos and reports honest, checkable numbers."""

from __future__ import annotations

import json

from engine.bench import main as bench_main

from .conftest import DATA


def test_quick_bench(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FAKETAGGER_HOME", raising=False)
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    code = bench_main(["--quick", "--images", str(DATA), "--random-crops", "200",
                       "--device", "cpu", "--json", str(out_json), "--markdown", str(out_md)])
    assert code == 0
    r = json.loads(out_json.read_text())
    assert r["images"] >= 1 and r["faces"] >= 1
    assert r["psnr"]["min"] >= 36.0
    assert r["attacks"]["clean"]["exact_recovery"] == 1.0
    assert r["false_tags"]["tagged_verdicts"] == 0
    assert r["random_crops"] == {"crops": 200, "decoded": r["random_crops"]["decoded"],
                                 "rate": r["random_crops"]["decoded"] / 200}
    assert r["random_crops"]["decoded"] == 0
    assert r["timing"]["protect_s"] > 0 and r["timing"]["verify_s"] > 0
    md = out_md.read_text()
    assert "| clean |" in md and "faketagger bench --quick" in md
