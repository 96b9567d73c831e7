"""Training code: noise layers behave, and a tiny real run trains, checkpoints and resumes."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from engine.model.weights import load_weights, read_metadata
from engine.training import noise
from engine.training.train import main as train_main


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(4, 3, 16, 16, generator=g)
    return torch.nn.functional.interpolate(base, size=(64, 64), mode="bilinear") * 2 - 1


@pytest.mark.parametrize("kind", ["jpeg_real", "jpeg_diff", "resize", "blur", "noise", "colour",
                                  "jpeg_resize", "none"])
def test_every_distortion_keeps_shape_and_gradient(images, kind):
    x = images.clone().requires_grad_(True)
    rng = random.Random(0)
    for _ in range(50):  # draw until the wanted kind comes up
        y, got = noise.random_distortion(x, 1.0, rng)
        if got == kind:
            break
    assert got == kind and y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_differentiable_jpeg_tracks_real_jpeg(images):
    """The surrogate must stay close to libjpeg (4:4:4), or training optimises the wrong thing."""
    for q in (50, 90):
        diff = noise.diff_jpeg(images, q)
        real = noise.real_jpeg(images, q, subsampling=0)
        mse = ((diff - real) / 2).pow(2).mean().item()
        assert 10 * np.log10(1 / mse) > 30, q
        # and JPEG actually changed the image
        assert (real - images).abs().mean() > 1e-3


def test_real_jpeg_matches_pillow_round_trip(images):
    out = noise.real_jpeg(images[:1], 60, subsampling=2)
    arr = ((images[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=60, subsampling=2)
    ref = np.asarray(Image.open(buf)).astype(np.float32) / 127.5 - 1
    assert np.allclose(out[0].permute(1, 2, 0).numpy(), ref, atol=1e-5)


def test_box_jitter_is_identity_at_level_zero(images):
    assert torch.allclose(noise.box_jitter(images, 0.0), images, atol=1e-5)


def test_pasted_matches_the_apps_paste_and_read_geometry():
    """noise.pasted must be what protect + verify do to a residual: upsample to the face
    square, feather, antialiased downsample (engine.faces, engine.model.registry)."""
    from engine.faces import paste_residual

    g = torch.Generator().manual_seed(1)
    res = torch.randn(1, 3, 128, 128, generator=g) * 0.02
    res = res.mean(1, keepdim=True).expand(1, 3, 128, 128).contiguous()  # grey, as model v2
    rng = random.Random(0)
    side = int(round(128 * 4.0 ** random.Random(0).random()))
    out = noise.pasted(res.clone().requires_grad_(True), rng)
    # The app: residual (0..255 units) upsampled to `side`, feathered paste onto a mid-grey
    # square (no clipping, no rounding loss worth counting), then the decoder's input.
    up = torch.nn.functional.interpolate(res, size=(side, side), mode="bilinear",
                                         align_corners=False)[0].permute(1, 2, 0).numpy()
    canvas = np.full((side, side, 3), 128, np.uint8)
    paste_residual(canvas, up * 127.5, (0, 0, side))
    back = torch.from_numpy(canvas.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    back = torch.nn.functional.interpolate(back, size=(128, 128), mode="bilinear",
                                           align_corners=False, antialias=True) - (128 / 127.5 - 1)
    assert out.shape == res.shape
    # Feathering at 128 px instead of at the square's size, and 8-bit rounding, differ a little.
    assert (out.detach() - back).pow(2).mean() < 0.1 * res.pow(2).mean()
    # It is a real loss: the round trip keeps clearly less energy than the residual had.
    assert out.detach().pow(2).mean() < 0.8 * res.pow(2).mean()
    out.sum().backward()


def test_tiny_training_run_checkpoints_and_resumes(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    rng = np.random.default_rng(0)
    np.save(cache / "faces_train.npy", rng.integers(0, 255, (6, 160, 160, 3), dtype=np.uint8))
    np.save(cache / "faces_eval.npy", rng.integers(0, 255, (2, 160, 160, 3), dtype=np.uint8))
    out = tmp_path / "run"
    args = ["--cache", str(cache), "--out", str(out), "--batch", "4", "--log-every", "1",
            "--device", "cpu", "--grow", "--start-level", "0.5"]
    train_main([*args, "--steps", "2"])
    weights = out / "faketagger-v1.safetensors"
    assert weights.exists() and (out / "checkpoint.pt").exists()
    assert read_metadata(weights)["extra"]["step"] == 2
    net = load_weights(weights)
    assert net.cfg.bits == 120 and not net.training
    train_main([*args, "--steps", "3"])  # resumes from the checkpoint, one more step
    assert read_metadata(weights)["extra"]["step"] == 3
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "loss" in x] == [1, 2, 3]
    assert "eval" in lines[-1] and 0.0 <= lines[-1]["eval"]["clean"] <= 1.0
    # A fresh machine warm-starts from the committed weights: the run continues its count and
    # keeps every earlier start in its history instead of restarting at step 0.
    warm = tmp_path / "warm"
    train_main([*args[:2], "--out", str(warm), *args[4:], "--init", str(weights), "--steps", "4"])
    extra = read_metadata(warm / "faketagger-v1.safetensors")["extra"]
    assert extra["step"] == 4
    assert [h["from_step"] for h in extra["history"]] == [0, 2, 3]


def test_release_records_gain_and_never_replaces_a_shipped_model(tmp_path):
    import pytest

    from engine.model.registry import bundled_versions
    from engine.model.weights import load_weights, read_metadata
    from engine.training.release import release

    src = bundled_versions()[1]
    out = release(src, "test/run", gain=1.2, dest=tmp_path)
    meta = read_metadata(out)
    trained = load_weights(src).cfg.rms
    assert meta["extra"]["run"] == "test/run" and meta["extra"]["deployed_gain"] == 1.2
    assert meta["extra"]["trained_rms"] == trained
    assert abs(load_weights(out).cfg.rms - round(trained * 1.2, 6)) < 1e-9
    with pytest.raises(SystemExit):
        release(src, "again", dest=tmp_path)


def test_edge_cut_is_the_apps_edge_padding_of_a_square_past_the_border():
    """Training's close-up geometry must be exactly what protect and verify cut: a face square
    that reaches past the photo's top and left edges repeats the photo's border pixels."""
    from engine.faces import extract_square

    rng = np.random.default_rng(0)
    square = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
    photo = square[1:, 2:]  # the photo starts 1 row and 2 columns inside the square
    app = extract_square(photo, (-2, -1, 12))
    x = torch.from_numpy(square).permute(2, 0, 1)[None].float()
    got = noise.edge_cut(x, (1, 0, 2, 0))[0].permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.array_equal(got, app)


def test_small_face_path_keeps_a_smooth_tag_and_loses_a_fine_one():
    """noise.shrunk is the app's round trip for a small face (residual scaled down to the face
    square without antialiasing, scaled back up by verify): a pixel-fine pattern does not come
    back, a smooth one does, which is what training through it teaches the encoder."""
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    fine = ((yy + xx) % 2 * 2 - 1)[None, None]
    smooth = torch.sin(xx / 128 * 2 * torch.pi * 3)[None, None]
    centre = (slice(None), slice(None), slice(32, 96), slice(32, 96))  # inside the feather

    def kept(r: torch.Tensor) -> float:
        back = noise.shrunk(r, 70)
        return float((back * r)[centre].sum() / (r * r)[centre].sum())

    assert kept(smooth) > 0.9
    assert abs(kept(fine)) < 0.2
    small, seen = noise.shrunk_cover(torch.rand(2, 3, 128, 128) * 2 - 1, 70)
    assert small.shape[-1] == 70 and seen.shape[-1] == 128


def test_the_curriculum_follows_everyday_chunks_only(tmp_path):
    """A swap proxy reads ~0.75 by design: were its chunks averaged into acc_ema, the level
    would never pass advance_at (both v3 runs sat at 0.91 for thousands of steps). Only the
    everyday chunks move acc_ema."""
    from engine.training.train import DEEPFAKE_KINDS, Trainer, build_parser

    cache = tmp_path / "cache"
    cache.mkdir()
    rng = np.random.default_rng(0)
    np.save(cache / "faces_train.npy", rng.integers(0, 255, (6, 160, 160, 3), dtype=np.uint8))
    args = build_parser().parse_args(["--cache", str(cache), "--out", str(tmp_path / "run"),
                                      "--batch", "8", "--device", "cpu", "--proxy", "1.0",
                                      "--proxies", "swap-target", "--start-level", "0.9"])
    trainer = Trainer(args)
    for _ in range(3):
        before = trainer.acc_ema
        stats = trainer.train_step()
        everyday = [v for kind, vals in stats["kinds"].items()
                    if not kind.startswith(DEEPFAKE_KINDS) for v in vals]
        assert any(k.startswith("px:") for k in stats["kinds"]) and everyday
        # batch 8: chunks of 2, the last one (past the 70% face share) always everyday
        assert trainer.acc_ema == pytest.approx(0.98 * before + 0.02 * float(np.mean(everyday)))


def test_a_shorter_payload_warm_starts_from_a_longer_net():
    """Issue #18's density trial: an 80-bit net cut from a 120-bit one reads its first 80
    positions exactly as the longer net did, and widening is refused."""
    import dataclasses

    from engine.model.nets import ModelConfig, WatermarkNet
    from engine.training.narrow import narrow_payload

    torch.manual_seed(0)
    long = WatermarkNet(ModelConfig(norm="bn", residual="luma")).eval()
    short = WatermarkNet(dataclasses.replace(long.cfg, bits=80)).eval()
    short.load_state_dict(narrow_payload(long.state_dict(), 80))
    img = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        assert torch.equal(short.decoder(img), long.decoder(img)[:, :80])
        res = short.encoder(img, torch.randint(0, 2, (2, 80)).float())
    assert res.shape == img.shape and torch.isfinite(res).all()
    with pytest.raises(ValueError, match="only narrow"):
        narrow_payload(short.state_dict(), 120)


def test_density_measure_reads_real_payloads_and_other_lengths_exactly():
    """engine.training.density: the shipped length goes through the app's RS decoder, another
    length counts all-bits-right reads; both give shares in [0, 1] for every check."""
    from engine.model.nets import ModelConfig, WatermarkNet
    from engine.training.density import measure

    faces = torch.randint(0, 255, (2, 3, 160, 160), dtype=torch.uint8)
    for bits in (120, 80):
        net = WatermarkNet(ModelConfig(bits=bits, norm="bn", residual="luma"))
        res = measure(net, faces, ["clean", "jitter"], 1, None, None)
        assert set(res) == {"clean", "jitter"}
        assert all(0.0 <= r["bit_acc"] <= 1.0 and 0.0 <= r["exact"] <= 1.0 and r["n"] == 2
                   for r in res.values())
        # An untrained net reads about half its bits and no whole tag.
        assert res["clean"]["exact"] == 0.0 and 0.3 < res["clean"]["bit_acc"] < 0.7


def test_a_wider_square_reaches_further_past_a_tight_crops_border():
    """A tight face crop shows the same photo around the face whatever the square: at 1.5 its
    square reaches 0.3 of the side past a border, at 2.5 0.38, and the cuts trained follow."""
    import random

    from engine.training.noise import cut_reach, random_cut

    assert cut_reach(1.5) == 0.3 and cut_reach(2.5) == 0.38
    rng = random.Random(0)
    cuts = [random_cut(128, rng, cut_reach(2.5)) for _ in range(400)]
    assert max(max(c) for c in cuts) > 0.35 * 128 and max(max(c) for c in cuts) <= 0.38 * 128


def test_a_cut_squares_tag_is_capped_inside_the_photo_as_protect_caps_it():
    """noise.capped_inside mirrors registry._capped_inside: louder inside than overall is
    scaled down to the whole square's RMS, quieter inside is left alone."""
    import torch

    from engine.model.registry import _capped_inside
    from engine.training.noise import capped_inside

    r = torch.ones(2, 3, 16, 16)
    r[0, :, :, 8:] = 3.0  # the right half, inside, carries more
    r[1, :, :, 8:] = 0.5  # the right half carries less
    cut = (0, 0, 8, 0)  # the left half is past the border
    out = capped_inside(r, cut)
    rms = lambda t: float(t.pow(2).mean().sqrt())  # noqa: E731
    assert rms(out[0, :, :, 8:]) == pytest.approx(rms(r[0]), rel=1e-5)
    assert torch.equal(out[1], r[1])
    inside = np.zeros((16, 16), bool)
    inside[:, 8:] = True
    np.testing.assert_allclose(_capped_inside(r[0].permute(1, 2, 0).numpy(), inside),
                               out[0].permute(1, 2, 0).numpy(), rtol=1e-5)
