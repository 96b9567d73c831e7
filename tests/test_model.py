"""The bundled model: loads without network or pickle, embeds invisibly, reads its own tag."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.model.registry import (
    ModelError,
    Watermarker,
    bundled_versions,
    load_watermarker,
    pick_device,
)
from engine.model.weights import read_metadata, save_weights
from engine.payload import Payload, decode_logits, encode_bits

from .conftest import SAMPLE


def test_bundled_model_is_safetensors_with_config():
    versions = bundled_versions()
    assert 1 in versions
    meta = read_metadata(versions[1])
    assert meta["config"]["bits"] == 120 and meta["config"]["version"] == 1


def test_round_trip_on_a_crop():
    m = load_watermarker(1, "cpu")
    crop = np.asarray(Image.open(SAMPLE).convert("RGB").crop((150, 30, 300, 180)))
    p = Payload.create(b"k" * 32, b"\x01\x02\x03\x04", 42)
    [res] = m.residuals([crop], encode_bits(p)[None])
    assert res.shape == crop.shape
    tagged = np.clip(np.rint(crop + res), 0, 255).astype(np.uint8)
    decoded = decode_logits(m.logits([tagged])[0])
    assert decoded is not None and decoded.payload == p
    assert decode_logits(m.logits([crop])[0]) is None  # the untouched crop carries no tag


def test_pick_device():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") in ("cpu", "cuda")
    with pytest.raises(ModelError):
        pick_device("tpu")


def test_not_a_weights_file_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "faketagger-v9.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad))
    with pytest.raises(ValueError):
        Watermarker(bad)


def test_save_is_atomic_and_half_precision(tmp_path):
    m = load_watermarker(1, "cpu")
    out = tmp_path / "w.safetensors"
    save_weights(m.net, out)
    assert out.exists() and not list(tmp_path.glob("*.part"))
    assert out.stat().st_size < 8_000_000


def test_luma_residual_has_no_colour_and_warm_starts_from_rgb_weights():
    """Model v2's residual is grey by construction (the same offset on R, G and B), at unit RMS,
    and the luma net takes an rgb net's parameters unchanged (v1 warm-starts it)."""
    import torch

    from engine.model.nets import ModelConfig, WatermarkNet

    rgb = WatermarkNet(ModelConfig(version=1, norm="bn")).eval()
    luma = WatermarkNet(ModelConfig(version=2, norm="bn", residual="luma")).eval()
    luma.load_state_dict(rgb.state_dict())
    torch.manual_seed(0)
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    bits = torch.randint(0, 2, (2, 120)).float()
    with torch.no_grad():
        r = luma.encoder(x, bits)
        r_rgb = rgb.encoder(x, bits)
    assert torch.allclose(r[:, 0], r[:, 1]) and torch.allclose(r[:, 1], r[:, 2])
    assert torch.allclose(r.pow(2).mean(dim=(1, 2, 3)), torch.ones(2), atol=1e-4)
    assert not torch.allclose(r_rgb[:, 0], r_rgb[:, 1])  # the rgb net does carry colour


def test_a_candidate_is_served_beside_the_releases_and_never_shadows_one(tmp_path, monkeypatch):
    """`bench --candidate`: unreleased weights are measured through the real pipeline as a new
    version, in this process only; a file claiming a released version is refused."""
    import shutil

    from engine.model import registry
    from engine.model.nets import ModelConfig, WatermarkNet
    from engine.model.weights import save_weights

    monkeypatch.setattr(registry, "_CANDIDATES", {})
    released = registry.bundled_versions()
    copy = tmp_path / "copy.safetensors"
    shutil.copyfile(released[max(released)], copy)
    with pytest.raises(registry.ModelError, match="already released"):
        registry.add_candidate(copy)
    new = max(released) + 1
    cand = tmp_path / "cand.safetensors"
    save_weights(WatermarkNet(ModelConfig(version=new, residual="luma")), cand)
    try:
        assert registry.add_candidate(cand) == new
        assert registry.bundled_versions()[new] == cand
        assert registry.load_watermarker().version == new  # protect's newest
        assert [w.version for w in registry.all_watermarkers()][0] == new
        assert not (registry.ASSETS / cand.name).exists()  # nothing written to assets
    finally:
        registry._CANDIDATES.clear()
        registry.load_watermarker.cache_clear()
    assert new not in registry.bundled_versions()
