"""Peer watermarkers (the optional `bench` extra): each really embeds into our face square and
reads its bits back, offline; the bench runs them side by side with ours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

for _mod in ("imwatermark", "blind_watermark", "onnxruntime", "pywt", "cv2"):
    pytest.importorskip(_mod, reason="the bench extra is not installed (make bench-deps)")

from engine.bench.metrics import face_region, region_quality  # noqa: E402
from engine.bench.peers import PEER_NAMES, PeerUnavailable, load_peers  # noqa: E402
from engine.bench.runner import main as bench_main  # noqa: E402
from engine.faces import FaceDetector, face_square  # noqa: E402
from engine.photos import load_photo  # noqa: E402

from .conftest import DATA  # noqa: E402

#: Clean read-back at the tagging-time face square. dwtDct is the weakest of the four: with 60
#: bits in a 256 px square it gets about 9 in 10 bits right even untouched (measured).
MIN_CLEAN_ACC = {"dwtDct": 0.8, "dwtDctSvd": 0.97, "rivaGan": 0.97, "blind-watermark": 0.97}


@pytest.fixture(scope="module")
def face_photo():
    rgb = load_photo(DATA / "grace_hopper.jpg").rgb
    return rgb, FaceDetector().detect(rgb)


def test_rivagan_models_ship_in_the_package():
    import imwatermark

    folder = Path(imwatermark.__file__).parent
    assert (folder / "rivagan_encoder.onnx").stat().st_size > 100_000
    assert (folder / "rivagan_decoder.onnx").stat().st_size > 100_000


@pytest.mark.parametrize("name", PEER_NAMES)
def test_peer_embeds_in_the_face_square_and_reads_its_bits(face_photo, name):
    rgb, faces = face_photo
    [peer] = load_peers((name,))
    assert peer.bits == (32 if name == "rivaGan" else 60)
    bits = np.random.default_rng(3).integers(0, 2, 60).astype(np.uint8)
    tagged = peer.embed(rgb, faces, [bits])
    q = region_quality(rgb, tagged, face_region(faces[0].box, rgb.shape))
    assert 30.0 < q["psnr"] < 99.0 and q["ssim"] > 0.95 and 0.0 < q["blotch_p99"] < 30.0
    changed = np.any(tagged != rgb, axis=2)
    x, y, side = face_square(faces[0].box)
    outside = np.ones(rgb.shape[:2], bool)
    outside[max(y, 0):y + side, max(x, 0):x + side] = False
    assert changed.any() and not changed[outside].any()  # only the face square is touched
    got = peer.decode(tagged, faces[0])
    assert got.shape == (peer.bits,)
    assert np.mean(got == bits[: peer.bits]) >= MIN_CLEAN_ACC[name]


def test_unknown_peer_is_refused():
    with pytest.raises(PeerUnavailable, match="unknown peer"):
        load_peers(("nope",))


def test_bench_runs_peers_side_by_side(tmp_path):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    chart = tmp_path / "bench.png"
    args = ["--attacks", "clean,jpeg75", "--images", str(DATA / "grace_hopper.jpg"), "--peers",
            "--repeats", "1", "--device", "cpu", "--random-crops", "0", "--no-speed", "--json", str(out),
            "--markdown", str(md), "--chart", str(chart)]
    assert bench_main(args) == 0
    r = json.loads(out.read_text())
    assert list(r["peers"]) == list(PEER_NAMES)
    for name, p in r["peers"].items():
        assert list(p["attacks"]) == ["clean", "jpeg75"], name
        assert p["attacks"]["clean"]["faces"] == r["attacks"]["clean"]["faces"] == 1
        assert 0.0 <= p["attacks"]["clean"]["bit_accuracy"] <= 1.0
        assert p["invisibility"]["psnr"]["min"] > 30.0
        s = r["peer_speed"][name]
        assert s["embed_s"] > 0 and s["embed_ratio"] == pytest.approx(
            s["embed_s"] / r["peer_speed"]["FakeTagger"]["embed_s"])
    assert r["attacks"]["clean"]["exact_recovery"] == 1.0
    text = md.read_text()
    assert "#### Peers (same faces, same attacks, same run)" in text
    assert "rivaGan | 32 (fixed at 32 bits by the library)" in text
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
