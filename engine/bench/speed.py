"""Bench measurements outside the per-attack loop: the machine, the speed photo, GPU
throughput, peer speed ratios and the random-crop false-tag probe."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from engine.faces import crop_square, extract_square, face_square
from engine.model.reading import decode_face
from engine.model.registry import Watermarker, all_watermarkers
from engine.payload import Payload, data_bits, decode_logits
from engine.photos import Photo, save_photo
from engine.pipeline import Pipeline, run_all
from engine.protect import embed_faces
from engine.protect.spec import JobSpec


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.system()} {cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"


def _timing_photo(photos: list, rng: np.random.Generator) -> np.ndarray:
    """A 1920x1280 canvas with 3 real faces (eval crops, upscaled), for the speed targets."""
    canvas = np.empty((1280, 1920, 3), np.uint8)
    canvas[:] = rng.integers(60, 200, 3, dtype=np.uint8)
    slots = [(120, 200), (760, 260), (1400, 180)]
    tiles = []
    for photo, faces, *_ in photos:
        for face in faces:
            x, y, s = crop_square(face.box, photo.rgb.shape[1], photo.rgb.shape[0], scale=2.2)
            tiles.append(Image.fromarray(photo.rgb[y:y + s, x:x + s]).resize((420, 420)))
    for k, (sx, sy) in enumerate(slots):
        canvas[sy:sy + 420, sx:sx + 420] = np.asarray(tiles[k % len(tiles)])
    return canvas


def timing(pipe: Pipeline, unlocked, photos: list, load_s: float, tmp: Path,
           runs: int = 3) -> dict:
    """Protect and verify of the speed photo through the app's file pipeline, median of runs."""
    canvas = _timing_photo(photos, np.random.default_rng(0))
    src = tmp / "timing-1920x1280.jpg"
    save_photo(Photo(canvas, tmp / "x.jpg", "JPEG", None, None, None, False, None), canvas, src)
    opts = JobSpec(out_dir=tmp / "timing-out")
    prot, ver, faces, verdicts = [], [], 0, []
    for _ in range(runs):
        t0 = time.perf_counter()
        [res] = run_all(pipe.protect([src], unlocked, opts))
        prot.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        [v] = run_all(pipe.verify([res.output]))
        ver.append(time.perf_counter() - t0)
        faces, verdicts = len(res.faces), [f.verdict for f in v.faces]
    return {"photo": f"1920x1280, {faces} faces", "load_s": load_s, "runs": runs,
            "protect_s": float(np.median(prot)), "verify_s": float(np.median(ver)),
            "verdicts": verdicts}


def _face_crops(photos: list, n: int) -> list[np.ndarray]:
    crops = [extract_square(p.rgb, face_square(f.box)) for p, faces, *_ in photos for f in faces]
    return [crops[k % len(crops)] for k in range(n)]


def gpu_throughput(model: Watermarker, photos: list, batch: int = 64) -> dict | None:
    """Faces per second through the model alone (embed, decode) in batches on the GPU; None
    without CUDA. Detection and file I/O are excluded: this is the batch-tagging ceiling."""
    if model.device != "cuda":
        return None
    import torch

    crops = _face_crops(photos, batch)
    bits = np.random.default_rng(0).integers(0, 2, (batch, model.cfg.bits))
    rates = {}
    for name, fn in (("embed", lambda: model.residuals(crops, bits)),
                     ("decode", lambda: model.logits(crops))):
        fn()  # warm-up (cuDNN autotune, allocations)
        torch.cuda.synchronize()
        t0, reps = time.perf_counter(), 5
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        rates[f"{name}_faces_per_s"] = batch * reps / (time.perf_counter() - t0)
    return {"device": torch.cuda.get_device_name(0), "batch": batch, **rates}


def compare_peers(model: Watermarker, peers: list, photos: list, n_faces: int = 6) -> dict:
    """Per-face embed and decode time of ours and each peer on the same faces, in this run
    (detection excluded for all): the speed ratio the issue asks for."""
    sample = [(p.rgb, f) for p, faces, *_ in photos for f in faces][:n_faces]
    payload = Payload(1, b"\x01\x02\x03\x04", 7, 9)
    bits = data_bits(payload)

    def per_face(embed, decode) -> tuple[float, float]:
        e, d = [], []
        for rgb, face in sample:
            t0 = time.perf_counter()
            tagged = embed(rgb, face)
            t1 = time.perf_counter()
            decode(tagged, face)
            d.append(time.perf_counter() - t1)
            e.append(t1 - t0)
        return float(np.median(e)), float(np.median(d))

    e0, d0 = per_face(lambda rgb, f: embed_faces(rgb, [f], [payload], model).tagged,
                      lambda img, f: decode_face(img, f, [model]))
    out = {"faces": len(sample), "FakeTagger": {"embed_s": e0, "decode_s": d0}}
    for peer in peers:
        e, d = per_face(lambda rgb, f, peer=peer: peer.embed(rgb, [f], [bits]), peer.decode)
        out[peer.name] = {"embed_s": e, "decode_s": d, "embed_ratio": e / e0,
                          "decode_ratio": d / d0}
    return out


def random_crops(pipe: Pipeline, photos: list[Photo], n: int, rng: np.random.Generator) -> dict:
    """Decode n random square crops of untagged images: every decoded payload is a false tag.
    Each crop gets what verify gives a face: a blind RS decode, then (where verify has it) a
    match against the payloads of every record in the bench ledger."""
    models = all_watermarkers(pipe.device)
    known = pipe.ledger.known_payloads() if hasattr(pipe.ledger, "known_payloads") else ()
    pool = [p.rgb for p in photos]
    decoded, done = 0, 0
    bar = tqdm(total=n, desc="random crops", file=sys.stderr, disable=not sys.stderr.isatty())
    while done < n:
        batch = []
        for _ in range(min(256, n - done)):
            img = pool[rng.integers(len(pool))]
            h, w = img.shape[:2]
            s = int(rng.integers(32, min(h, w) + 1))
            y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            batch.append(img[y:y + s, x:x + s])
        for m in models:
            for row in m.logits(batch):
                decoded += _decodes(row, m.version, known)
        done += len(batch)
        bar.update(len(batch))
    bar.close()
    return {"crops": n, "decoded": decoded, "rate": decoded / max(1, n),
            "known_records": len(known)}


def _decodes(logits: np.ndarray, version: int, known: tuple[str, ...]) -> bool:
    if decode_logits(logits, known_versions=frozenset({version})) is not None:
        return True
    if not known:
        return False
    from engine.model.match import match_logits

    return match_logits(logits, known, version) is not None
