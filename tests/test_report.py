"""Verification reports (engine/verify/report.py) and `faketagger verify --report`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli.main import main
from engine.verify import FaceVerdict, Verdict
from engine.verify.report import (
    ImageReport,
    ReportError,
    build_report,
    image_report,
    report_html,
    write_report,
)

from .conftest import DATA


def test_cli_verify_writes_html_and_json_reports(home, capsys, tmp_path):
    assert main(["identity", "create", "--name", "Alice"]) == 0
    capsys.readouterr()
    out_dir = tmp_path / "tagged"
    assert main(["protect", str(DATA / "grace_hopper.jpg"), "--out", str(out_dir), "--json",
                 "--device", "cpu"]) == 0
    [tagged] = [o["output"] for o in json.loads(capsys.readouterr().out)["outputs"]]
    untagged = DATA / "camera.jpg"
    assert main(["verify", tagged, str(untagged), "--device", "cpu",
                 "--report", str(tmp_path / "r.json")]) == 0
    assert main(["verify", tagged, "--device", "cpu", "--report", str(tmp_path / "r.html")]) == 0
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    first, second = doc["images"]
    assert first["file"] == tagged and first["summary"] == {"verified": 1}
    face = first["faces"][0]
    assert face["owner_name"] == "Alice" and face["own_tag"] and face["exact_file"]
    assert face["signature"].startswith("valid") and face["record"]["serial"] == face["serial"]
    assert second["summary"] == {"no_tag": len(second["faces"])} and len(second["faces"]) >= 1
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1
    assert face["owner_key_id"] in page and "<script" not in page
    # Verify's face-change check, in both reports: the tagged copy against the own original.
    assert face["face_change"]["kind"] == "none" and face["face_change"]["reference"] == "original"
    assert "Face change" in page and "Unchanged" in page and "compared with the original" in page
    assert not list(tmp_path.glob(".*.part"))


def test_report_of_unreadable_and_faceless_images(tmp_path):
    missing = image_report(tmp_path / "gone.jpg", [])
    assert missing.rgb is None and "not found" in missing.error
    blank = ImageReport(tmp_path / "blank.png", np.zeros((40, 60, 3), np.uint8),
                        [FaceVerdict([1, 2, 30, 35], Verdict.NO_TAG, "no tag")], "ab" * 32)
    doc = build_report([missing, blank])
    assert doc["images"][0]["error"] and doc["images"][1]["width"] == 60
    assert doc["images"][1]["faces"][0]["signature"] == "not applicable"
    page = report_html([missing, blank])
    assert "Could not check this image" in page and 'width="29"' in page
    with pytest.raises(ReportError):
        write_report(tmp_path / "no-such-dir" / "r.html", [blank])
