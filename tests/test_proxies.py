"""Differentiable DeepFake proxies: they keep what the real edit keeps, and pass real gradients.

The point of engine.training.proxies is the gradient (a straight-through layer gives the encoder
an identity gradient everywhere); so besides shapes, these tests check *where* the gradient goes:
swap-source must send none to the tagged surround, swap-target none to the tagged interior.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.training import proxies
from engine.training.train import main as train_main

S = 64
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    tagged = torch.rand(3, 3, S, S, generator=g) * 2 - 1
    clean = torch.rand(3, 3, S, S, generator=g) * 2 - 1
    return tagged, clean


def _grad_map(name: str, tagged: torch.Tensor, clean: torch.Tensor, **kw) -> torch.Tensor:
    t = tagged.clone().requires_grad_(True)
    out = proxies.apply(name, t, clean, torch.Generator().manual_seed(1), **kw)
    assert out.shape == tagged.shape and torch.isfinite(out).all()
    out.abs().sum().backward()
    return t.grad.abs().sum(1)[0]  # (S, S) for the first image


def test_face_mask_is_a_centred_soft_ellipse():
    m = proxies.face_mask(8, 128, torch.Generator().manual_seed(0), "cpu")
    assert m.shape == (8, 1, 128, 128) and m.min() >= 0 and m.max() <= 1
    assert (m[:, 0, 70, 64] > 0.99).all()  # face centre (a bit below the crop centre)
    assert (m[:, 0, 2, 2] < 0.01).all() and (m[:, 0, 5, 64] < 0.01).all()  # corner, hair
    area = m.mean(dim=(1, 2, 3))
    assert ((area > 0.15) & (area < 0.4)).all()  # roughly a landmark hull's share of the crop


def test_swap_source_keeps_only_the_tagged_interior(batch):
    tagged, clean = batch
    g = _grad_map("swap-source", tagged, clean)
    centre, corner = g[S // 2 - 4:S // 2 + 4, S // 2 - 4:S // 2 + 4], g[:6, :6]
    assert corner.mean() < 1e-3 * centre.mean()  # the sigmoid edge leaves a trace, no more
    out = proxies.apply("swap-source", tagged, clean, torch.Generator().manual_seed(1))
    # outside the face the result is the other (untagged) head, untouched
    assert torch.allclose(out[:, :, :3, :3], clean.roll(1, 0)[:, :, :3, :3], atol=1e-4)


def test_swap_target_keeps_only_the_tagged_surround(batch):
    tagged, clean = batch
    g = _grad_map("swap-target", tagged, clean)
    assert g[:6, :6].sum() > 0
    assert g[S // 2:S // 2 + 4, S // 2 - 2:S // 2 + 2].max() < 1e-3 * g[:6, :6].max()


def test_resynth_passes_gradients_through_a_frozen_generator(batch):
    tagged, clean = batch
    gen_net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Tanh())
    gen_net.size = 32
    for p in gen_net.parameters():
        p.requires_grad_(False)
    g = _grad_map("resynth", tagged, clean, generator=gen_net)
    assert g[S // 2 - 4:S // 2 + 4, S // 2 - 4:S // 2 + 4].sum() > 0
    with pytest.raises(ValueError):
        proxies.apply("resynth", tagged, clean, torch.Generator())
    with pytest.raises(KeyError):
        proxies.apply("no-such-proxy", tagged, clean, torch.Generator())


def test_same_seed_same_edit(batch):
    tagged, clean = batch
    a = proxies.apply("swap-source", tagged, clean, torch.Generator().manual_seed(5))
    b = proxies.apply("swap-source", tagged, clean, torch.Generator().manual_seed(5))
    c = proxies.apply("swap-source", tagged, clean, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_training_with_proxies_records_them_in_the_weights(tmp_path):
    from engine.model.weights import read_metadata

    cache = tmp_path / "cache"
    cache.mkdir()
    rng = np.random.default_rng(0)
    np.save(cache / "faces_train.npy", rng.integers(0, 255, (6, 160, 160, 3), dtype=np.uint8))
    out = tmp_path / "run"
    train_main(["--cache", str(cache), "--out", str(out), "--batch", "4", "--steps", "2",
                "--device", "cpu", "--start-level", "1", "--proxy", "1",
                "--proxies", "swap-source,swap-target", "--chroma-weight", "0.5"])
    extra = read_metadata(out / "faketagger-v1.safetensors")["extra"]
    assert extra["proxies"] == ["swap-source", "swap-target"] and extra["proxy"] == 1.0
    assert extra["step"] == 2


def test_evaluate_reports_every_requested_check():
    """engine.training.evaluate: the bundled model reads its own clean tags on the eval-sized
    crops, and a proxy check runs without the attacks extra."""
    from engine.model.registry import bundled_versions
    from engine.model.weights import load_weights
    from engine.training import evaluate

    net = load_weights(bundled_versions()[1])
    from PIL import Image

    from engine.faces import FaceDetector, crop_square

    rgb = np.asarray(Image.open(ROOT / "tests" / "data" / "two_faces.jpg").convert("RGB"))
    crops = []
    for face in FaceDetector().detect(rgb):
        x, y, s = crop_square(face.box, rgb.shape[1], rgb.shape[0])
        crops.append(np.asarray(Image.fromarray(rgb[y:y + s, x:x + s]).resize((160, 160))))
    faces = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)
    res = evaluate.evaluate(net, faces, ["clean", "px:swap-source"], repeats=2)
    assert set(res) == {"psnr", "clean", "px:swap-source"}
    assert res["clean"] > 0.95 and 0.3 < res["px:swap-source"] < 1.0 and res["psnr"] > 30
    with pytest.raises(KeyError):
        evaluate.evaluate(net, faces, ["no-such-check"])


def test_a_wider_square_holds_a_smaller_face_around_the_same_centre(batch):
    """ModelConfig.square 2.5: the face is 1.5/2.5 of the 1.5 geometry's size, so the swap
    keeps a wider tagged surround and the re-synthesis leaves everything past the face's own
    1.5 square exactly as tagged."""
    full = proxies.face_mask(8, 128, torch.Generator().manual_seed(0), "cpu")
    small = proxies.face_mask(8, 128, torch.Generator().manual_seed(0), "cpu", face=0.6)
    ratio = small.mean(dim=(1, 2, 3)) / full.mean(dim=(1, 2, 3))
    assert ((ratio > 0.3) & (ratio < 0.42)).all()  # ~0.6 squared
    assert (small[:, 0, 66, 64] > 0.99).all() and (small[:, 0, 64, 108] < 0.01).all()
    tagged, clean = batch
    g = _grad_map("swap-target", tagged, clean, face=0.6)
    assert g[S // 2 + 1, S // 2 - 1:S // 2 + 1].max() < 1e-3 * g[:6, :6].max()
    assert g[S // 2, int(S * 0.85)] > 0  # beside a 0.6-size face: the surround now
    gen_net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Tanh())
    gen_net.size = 32
    out = proxies.apply("resynth", tagged, clean, torch.Generator().manual_seed(1), gen_net,
                        face=0.6)
    c = round(S * 0.6)
    o = (S - c) // 2
    inside = torch.zeros(S, S, dtype=torch.bool)
    inside[o:o + c, o:o + c] = True
    assert torch.equal(out[..., ~inside], tagged[..., ~inside])
    assert not torch.equal(out[..., inside], tagged[..., inside])


def test_a_run_refuses_a_cache_built_for_another_square(tmp_path):
    import json

    cache = tmp_path / "cache"
    cache.mkdir()
    rng = np.random.default_rng(0)
    np.save(cache / "faces_train.npy", rng.integers(0, 255, (6, 160, 160, 3), dtype=np.uint8))
    (cache / "manifest.json").write_text(json.dumps({"square": 1.5}))
    args = ["--cache", str(cache), "--out", str(tmp_path / "run"), "--batch", "4", "--steps",
            "1", "--device", "cpu", "--start-level", "1"]
    with pytest.raises(SystemExit, match="built for a tag square of 1.5"):
        train_main([*args, "--square", "2.5"])
    (cache / "manifest.json").write_text(json.dumps({"square": 2.5}))
    train_main([*args, "--square", "2.5", "--small", "1", "--edge", "1", "--rms-inside"])
    from engine.model.weights import load_weights

    cfg = load_weights(tmp_path / "run" / "faketagger-v1.safetensors").cfg
    assert cfg.square == 2.5 and cfg.rms_inside
