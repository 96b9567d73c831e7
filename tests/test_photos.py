"""Tests for engine.photos on real files written by real Pillow (no mocks): every image is built
in tmp_path at run time, so no binary fixtures live in the repository. A few tests wrap one real
os call to play another program racing us (a file appearing or vanishing) or a file system
without hard links."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from engine.errors import FakeTaggerError
from engine.photos import (
    SUPPORTED_SUFFIXES,
    Photo,
    PhotoError,
    encode_jpeg_thumbnail,
    iter_photos,
    load_photo,
    save_photo,
    sha256_file,
    unique_output_path,
)

MAKE, MODEL, DATETIME, ORIENTATION = 0x010F, 0x0110, 0x0132, 0x0112
EXIF_IFD, DATETIME_ORIGINAL = 0x8769, 0x9003
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def landscape(w: int = 60, h: int = 40) -> np.ndarray:
    """Smooth gradient (JPEG-friendly) with a white block marking the top-left corner."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 100)], axis=-1).astype(np.uint8)
    a[:10, :10] = 255
    return a


def camera_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE], exif[MODEL], exif[DATETIME] = "Canon", "EOS R5", "2024:05:01 12:00:00"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = "2024:05:01 11:59:58"
    return exif


def write(path: Path, rgb: np.ndarray, **kw) -> Path:
    Image.fromarray(rgb).save(path, **kw)
    return path


def files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------- orientation and metadata


@pytest.mark.parametrize(("orientation", "k"), [(6, -1), (8, 1)])
def test_exif_orientation_applied_and_reset(tmp_path: Path, orientation: int, k: int) -> None:
    src = landscape()
    path = write(tmp_path / "cam.jpg", src, exif=camera_exif(orientation), quality=95,
                 dpi=(300, 200))
    photo = load_photo(path)
    assert photo.rgb.shape == (60, 40, 3) and photo.rgb.dtype == np.uint8
    assert photo.dpi == (200.0, 300.0)  # axes swapped along with the pixels
    upright = np.rot90(src, k=k).astype(int)
    assert np.abs(photo.rgb.astype(int) - upright).mean() < 3
    assert np.abs(photo.rgb.astype(int) - np.rot90(src, k=-k)).mean() > 20  # not the other way

    out = save_photo(photo, photo.rgb, tmp_path / "out.jpg")
    with Image.open(out) as im:
        assert im.size == (40, 60)
        exif = im.getexif()
        assert exif[ORIENTATION] == 1
        assert (exif[MAKE], exif[MODEL], exif[DATETIME]) == ("Canon", "EOS R5",
                                                            "2024:05:01 12:00:00")
        assert exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] == "2024:05:01 11:59:58"
    assert load_photo(out).rgb.shape == (60, 40, 3)  # not rotated a second time


def test_exif_without_rotation_is_kept_byte_exact(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg", landscape(), exif=camera_exif(1))
    with Image.open(path) as im:
        original = im.info["exif"]
    photo = load_photo(path)
    assert photo.exif == original
    out = save_photo(photo, photo.rgb, tmp_path / "b.jpg")
    with Image.open(out) as im:
        assert im.info["exif"] == original


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_metadata_survives_each_output_format(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path / "a.jpg", landscape(), exif=camera_exif(6), icc_profile=SRGB_ICC,
                 dpi=(300, 300))
    photo = load_photo(path)
    out = save_photo(photo, photo.rgb, unique_output_path(tmp_path, path, fmt=fmt), fmt=fmt)
    again = load_photo(out)
    assert again.format == fmt and again.rgb.shape == (60, 40, 3)
    assert again.icc_profile == SRGB_ICC
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif[MAKE] == "Canon" and exif[ORIENTATION] == 1
        if fmt != "WEBP":  # WebP has no resolution field
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
def test_icc_and_dpi_kept(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"a{suffix}", landscape(), icc_profile=SRGB_ICC, dpi=(240, 240))
    photo = load_photo(path)
    assert photo.icc_profile == SRGB_ICC
    assert photo.dpi == pytest.approx((240, 240), abs=0.01)
    out = save_photo(photo, photo.rgb, tmp_path / f"b{suffix}")
    with Image.open(out) as im:
        assert im.info["icc_profile"] == SRGB_ICC
        assert im.info["dpi"] == pytest.approx((240, 240), abs=0.01)


def test_jpeg_quality_respected_and_no_chroma_subsampling(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photo = load_photo(write(tmp_path / "a.png", rng.integers(0, 256, (64, 64, 3), np.uint8)))
    low = save_photo(photo, photo.rgb, tmp_path / "q50.jpg", fmt="JPEG", jpeg_quality=50)
    high = save_photo(photo, photo.rgb, tmp_path / "q95.jpg", fmt="jpg", jpeg_quality=95)
    assert high.stat().st_size > low.stat().st_size * 1.3
    with Image.open(high) as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4


# ---------------------------------------------------------------- colour modes and alpha


def test_png_alpha_round_trip(tmp_path: Path) -> None:
    rgba = np.dstack([landscape(), np.tile(np.arange(60, dtype=np.uint8) * 4, (40, 1))])
    photo = load_photo(write(tmp_path / "a.png", rgba))
    assert photo.has_alpha and np.array_equal(photo.alpha, rgba[..., 3])
    assert np.array_equal(photo.rgb, rgba[..., :3])
    out = save_photo(photo, photo.rgb, tmp_path / "b.png")
    with Image.open(out) as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im), rgba)
    jpg = save_photo(photo, photo.rgb, tmp_path / "b.jpg", fmt="JPEG")  # JPEG: alpha dropped
    with Image.open(jpg) as im:
        assert im.mode == "RGB"


def test_alpha_follows_orientation(tmp_path: Path) -> None:
    alpha = np.zeros((40, 60), np.uint8)
    alpha[:10, :10] = 255
    rgba = np.dstack([landscape(), alpha])
    photo = load_photo(write(tmp_path / "a.png", rgba, exif=camera_exif(6)))
    assert np.array_equal(photo.rgb, np.rot90(rgba[..., :3], k=-1))
    assert np.array_equal(photo.alpha, np.rot90(alpha, k=-1))


def test_cmyk_jpeg_loads_as_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(path)  # pure red in CMYK
    photo = load_photo(path)
    assert photo.rgb.shape == (20, 30, 3) and photo.rgb.dtype == np.uint8
    r, g, b = photo.rgb.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 50 and b < 50


def test_cmyk_with_unusable_profile_drops_it(tmp_path: Path) -> None:
    fake_cmyk_icc = bytes(16) + b"CMYK" + bytes(108)  # header says CMYK, body is junk
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (30, 20), (0, 0, 0, 0)).save(path, icc_profile=fake_cmyk_icc)
    photo = load_photo(path)
    assert photo.icc_profile is None  # a CMYK profile must never label RGB data
    assert photo.rgb.min() > 240  # white paper stays white


def test_sixteen_bit_palette_and_grey_become_rgb8(tmp_path: Path) -> None:
    grey16 = (np.arange(40 * 60).reshape(40, 60) * 27).astype(np.uint16)
    photo = load_photo(write(tmp_path / "g16.png", grey16))
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (40, 60, 3)
    assert abs(int(photo.rgb[-1, -1, 0]) - round(int(grey16[-1, -1]) / 257)) <= 1
    pal = Image.fromarray(landscape()).convert("P")
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    assert load_photo(tmp_path / "p.png").has_alpha
    assert load_photo(write(tmp_path / "l.webp", landscape()[..., 0])).rgb.shape == (40, 60, 3)


@pytest.mark.parametrize("name", ["anim.png", "anim.webp", "pages.tif"])
def test_animated_and_multi_page_files_are_refused(tmp_path: Path, name: str) -> None:
    """Issue 11: tagging only the first frame would silently drop the others."""
    first, second = Image.fromarray(landscape()), Image.fromarray(255 - landscape())
    first.save(tmp_path / name, save_all=True, append_images=[second])
    with pytest.raises(PhotoError, match="has 2 frames"):
        load_photo(tmp_path / name)


def test_big_icc_profile_is_kept(tmp_path: Path) -> None:
    """Issue 11: a 5 MB ICC profile (print profiles are that big) is not "corrupt"."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    icc += bytes(range(256)) * (5 * 2**20 // 256)
    icc = len(icc).to_bytes(4, "big") + icc[4:]
    Image.fromarray(landscape()).save(tmp_path / "big.png", icc_profile=icc)
    photo = load_photo(tmp_path / "big.png")
    assert photo.icc_profile == icc
    out = save_photo(photo, photo.rgb, tmp_path / "out.jpg", fmt="JPEG")
    assert Image.open(out).info["icc_profile"] == icc


# ---------------------------------------------------------------- load errors


def test_load_errors_are_photo_errors(tmp_path: Path) -> None:
    good = write(tmp_path / "good.jpg", landscape()).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "notes.jpg").write_text("not a picture")
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "anim.gif").write_bytes(b"GIF89a")
    cases = {"cut.jpg": "truncated", "notes.jpg": "not a valid", "missing.jpg": "not found",
             "folder.jpg": "folder", "anim.gif": "unsupported"}
    for name, words in cases.items():
        with pytest.raises(PhotoError, match=words) as info:
            load_photo(tmp_path / name)
        assert isinstance(info.value, FakeTaggerError) and "\n" not in str(info.value)


def lying_png(path: Path, w: int, h: int) -> Path:
    """A tiny PNG whose header claims w x h pixels: a decompression bomb without the RAM bill."""
    data = bytearray(write(path, np.zeros((2, 2, 3), np.uint8)).read_bytes())
    ihdr = bytes(data[12:16]) + struct.pack(">II", w, h) + bytes(data[24:29])
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("w", "h"), [(12_000, 9_000), (20_000, 20_000)])
def test_huge_image_refused(tmp_path: Path, w: int, h: int) -> None:
    with pytest.raises(PhotoError, match="100 MP limit"):
        load_photo(lying_png(tmp_path / "bomb.png", w, h))


# ---------------------------------------------------------------- safe writing


def test_original_untouched_and_overwrite_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg", landscape(), exif=camera_exif(6))
    before = sha256_file(path)
    photo = load_photo(path)
    save_photo(photo, 255 - photo.rgb, tmp_path / "a-tagged.jpg")
    for target in (path, tmp_path / "sub" / ".." / "a.jpg", tmp_path / "a-tagged.jpg"):
        with pytest.raises(PhotoError, match="original|exists"):
            save_photo(photo, photo.rgb, target)
    assert sha256_file(path) == before
    assert files_in(tmp_path) == ["a-tagged.jpg", "a.jpg"]


def test_failed_encode_leaves_nothing_behind(tmp_path: Path) -> None:
    photo = load_photo(write(tmp_path / "a.jpg", landscape()))
    too_wide = np.zeros((1, 70_000, 3), np.uint8)  # libjpeg fails after the file is opened
    with pytest.raises(PhotoError, match="cannot write JPEG"):
        save_photo(photo, too_wide, tmp_path / "out.jpg")
    with pytest.raises(ValueError, match="uint8"):  # our own bug: caught before any write
        save_photo(photo, photo.rgb.astype(np.float32), tmp_path / "out.jpg")
    with pytest.raises(PhotoError, match="does not match"):
        save_photo(photo, photo.rgb, tmp_path / "out.png")  # JPEG bytes behind .png
    assert files_in(tmp_path) == ["a.jpg"]  # no out.jpg and no .part temp


def test_saved_file_gets_normal_permissions(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permission bits")
    umask = os.umask(0)
    os.umask(umask)
    photo = load_photo(write(tmp_path / "a.png", landscape()))
    out = save_photo(photo, photo.rgb, tmp_path / "b.png")
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_any_size_resizes_alpha(tmp_path: Path) -> None:
    rgba = np.dstack([landscape(), np.full((40, 60), 128, np.uint8)])
    photo = load_photo(write(tmp_path / "a.png", rgba))
    out = save_photo(photo, np.zeros((20, 30, 3), np.uint8), tmp_path / "small.png")
    with Image.open(out) as im:
        assert im.size == (30, 20) and np.asarray(im)[..., 3].min() == 128


# ---------------------------------------------------------------- naming and discovery


def test_unique_output_path(tmp_path: Path) -> None:
    src = tmp_path / "in" / "IMG_1.jpeg"
    out = tmp_path / "out"
    out.mkdir()
    assert unique_output_path(out, src) == out / "IMG_1-tagged.jpg"
    (out / "IMG_1-tagged.jpg").touch()
    assert unique_output_path(out, src) == out / "IMG_1-tagged-2.jpg"
    (out / ".IMG_1-tagged-2.jpg.0123abcd.part").touch()  # another writer is on -2
    assert unique_output_path(out, src) == out / "IMG_1-tagged-3.jpg"
    assert unique_output_path(out, src, fmt="PNG") == out / "IMG_1-tagged.png"
    assert unique_output_path(out, tmp_path / "x.TIFF", suffix="") == out / "x.tif"
    assert unique_output_path(out, src, fmt="webp").name == "IMG_1-tagged.webp"
    with pytest.raises(PhotoError):
        unique_output_path(out, src, fmt="GIF")


def test_iter_photos_nested(tmp_path: Path) -> None:
    root = tmp_path / "album"
    for rel in ["b.PNG", "a.jpg", "sub/c.webp", "sub/deeper/d.tif", "Z.jpeg", ".hidden.jpg",
                ".cache/e.jpg", "notes.txt", "sub/f.gif", "sub/.c-tagged.jpg.00ff.part"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()
    expected = [root / p for p in ["a.jpg", "b.PNG", "sub/c.webp", "sub/deeper/d.tif", "Z.jpeg"]]
    assert iter_photos([root]) == expected
    single = root / "sub" / "c.webp"
    dedup = iter_photos([single, root, root / "sub" / ".." / "a.jpg"])
    assert dedup == [single, root / "a.jpg", root / "b.PNG", root / "sub/deeper/d.tif",
                     root / "Z.jpeg"]
    with pytest.raises(PhotoError, match="unsupported"):
        iter_photos([root / "notes.txt"])
    with pytest.raises(PhotoError, match="not found"):
        iter_photos([root / "nope.jpg"])
    assert {".jpg", ".png"} <= SUPPORTED_SUFFIXES


def test_iter_photos_counts_one_file_once(tmp_path: Path) -> None:
    """Same file under two names (hard link here; "A.jpg"/"a.jpg" on a case-insensitive disk is
    the same (device, inode) case) is listed once; resolve() alone did not see that."""
    root = tmp_path / "album"
    root.mkdir()
    write(root / "a.jpg", landscape())
    try:
        os.link(root / "a.jpg", root / "b.jpg")
    except OSError:
        pytest.skip("no hard links on this file system")
    assert iter_photos([root]) == [root / "a.jpg"]
    assert iter_photos([root / "b.jpg", root / "a.jpg"]) == [root / "b.jpg"]


def test_iter_photos_survives_a_file_vanishing_mid_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program deleting a photo while we list the folder must not raise a bare OSError;
    the file is listed and later loading reports it as missing, like any other bad input."""
    root = tmp_path / "album"
    root.mkdir()
    for name in ("a.jpg", "b.jpg"):
        write(root / name, landscape())
    real_scandir = os.scandir

    def scandir_then_delete(path):  # type: ignore[no-untyped-def]
        entries = list(real_scandir(path))
        (root / "a.jpg").unlink(missing_ok=True)  # gone after listing, before we look closer
        return entries

    monkeypatch.setattr(os, "scandir", scandir_then_delete)
    found = iter_photos([root])
    monkeypatch.undo()
    assert root / "b.jpg" in found
    with pytest.raises(PhotoError, match="not found"):
        load_photo(root / "a.jpg")


def test_save_never_replaces_a_file_that_appears_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program may create the output name after our exists-check, while the temp file
    is being synced; publishing must then refuse instead of replacing that file."""
    photo = load_photo(write(tmp_path / "a.png", landscape()))
    real_fsync = os.fsync

    def fsync_while_another_program_writes(fd: int) -> None:
        if not (tmp_path / "b.png").exists():
            (tmp_path / "b.png").write_bytes(b"theirs")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_while_another_program_writes)
    with pytest.raises(PhotoError, match="exists"):
        save_photo(photo, photo.rgb, tmp_path / "b.png")
    monkeypatch.undo()
    assert (tmp_path / "b.png").read_bytes() == b"theirs"
    assert files_in(tmp_path) == ["a.png", "b.png"]  # no temp left behind


def test_save_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where links are unsupported (FAT, some shares) the fallback still writes the photo."""

    def no_link(*_args: object) -> None:
        raise OSError(1, "Operation not permitted")

    photo = load_photo(write(tmp_path / "a.png", landscape()))
    monkeypatch.setattr(os, "link", no_link)
    out = save_photo(photo, photo.rgb, tmp_path / "b.png")
    assert np.array_equal(load_photo(out).rgb, photo.rgb)
    assert files_in(tmp_path) == ["a.png", "b.png"]


def test_sha256_and_thumbnail(tmp_path: Path) -> None:
    path = write(tmp_path / "a.png", landscape(200, 100))
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(PhotoError):
        sha256_file(tmp_path / "missing.png")
    thumb = encode_jpeg_thumbnail(load_photo(path).rgb)
    assert thumb[:2] == b"\xff\xd8" and len(thumb) < 4000
    with Image.open(io.BytesIO(thumb)) as im:
        assert im.format == "JPEG" and im.size == (48, 24)
    assert isinstance(load_photo(path), Photo)
