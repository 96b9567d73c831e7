"""Reading and writing photo files: the only place that touches image bytes on disk.

Loading hands the pipeline upright 8-bit RGB (EXIF orientation applied) plus everything needed to
write the tagged copy back faithfully (EXIF with Orientation reset, ICC, DPI, alpha). Saving never
touches the original and is atomic, so a crash or a full disk never leaves a half-written photo.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin

from engine.atomic import fill_temp, fsync_dir, is_temp_name, publish, temp_path_for
from engine.errors import FakeTaggerError

# An ICC profile is a compressed PNG chunk, which Pillow caps at 1 MB by default (its text-chunk
# bomb guard); print and camera profiles reach several MB, and refusing those photos as "corrupt"
# helps nobody. 64 MB still bounds the memory a crafted file can claim.
PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, 64 * 2**20)
PngImagePlugin.MAX_TEXT_MEMORY = max(PngImagePlugin.MAX_TEXT_MEMORY, 128 * 2**20)

SUPPORTED_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}
MAX_PIXELS = 100_000_000  # refuse bigger images: decompression-bomb guard and RAM bound

_SUFFIX_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
                  ".tif": "TIFF", ".tiff": "TIFF"}
_FORMAT_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif"}
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "MPO": "JPEG"}  # MPO = multi-picture JPEG
_OPEN_FORMATS = ["JPEG", "PNG", "WEBP", "TIFF"]  # only these decoders see user files (MPO via JPEG)
_ORIENTATION = 0x0112
# Orientation value -> transpose that makes the pixels upright (EXIF 2.32, section 4.6.4).
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
# TIFF tags that describe pixel layout, not the photo: a TIFF's IFD0 doubles as its EXIF, and
# copying these into another file's EXIF (or into a new TIFF) would contradict the real data.
_STRUCTURAL_TAGS = {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320,
                    322, 323, 324, 325, 338, 339, 340, 341, 347, 513, 514, 529, 530, 532,
                    34377, 34675, 37724}  # + Photoshop blocks (can be MBs), ICC (kept apart)


class OutputFormat(StrEnum):
    """What a tagged copy is written as: one vocabulary for the CLI's --format, the GUI's
    settings file ("keep", "jpeg", "png") and the engine (save_photo accepts any case)."""

    KEEP = "keep"  # the source photo's own format
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    TIFF = "tiff"


class PhotoError(FakeTaggerError):
    """A photo cannot be read or written; the message names the file and the reason."""


@dataclass
class Photo:
    """Upright RGB pixels plus the metadata needed to write a faithful tagged copy."""

    rgb: np.ndarray  # H x W x 3 uint8, EXIF orientation already applied
    path: Path
    format: str  # "JPEG", "PNG", "WEBP" or "TIFF": what the bytes are, whatever the suffix says
    exif: bytes | None  # original EXIF, Orientation reset to 1 (the pixels are upright now)
    icc_profile: bytes | None  # only ever an RGB profile: it must describe self.rgb
    dpi: tuple[float, float] | None
    has_alpha: bool
    alpha: np.ndarray | None  # H x W uint8, same orientation as rgb


def _normalize_format(fmt: str) -> str:
    name = fmt.strip().lstrip(".").upper()
    name = _FORMAT_ALIASES.get(name, name)
    if name not in _FORMAT_EXT:
        raise PhotoError(f"unsupported output format {fmt!r} (use JPEG, PNG, WEBP or TIFF)")
    return name


def _exif_without(exif: Image.Exif, tags: set[int]) -> Image.Exif:
    for tag in tags & set(exif):
        del exif[tag]
    return exif


def _read_exif(im: Image.Image, fmt: str) -> tuple[bytes | None, int]:
    """Return (EXIF to write, orientation). Unreadable EXIF is dropped, not fatal: the pixels
    are what matter, and a photo with a broken maker note should still get tagged."""
    try:
        exif = im.getexif()
        orientation = exif.get(_ORIENTATION, 1)
        orientation = orientation if orientation in _TRANSPOSE else 1
        raw = im.info.get("exif")
        if fmt != "TIFF" and isinstance(raw, bytes) and raw and exif.get(_ORIENTATION, 1) == 1:
            # Nothing to change: keep the bytes as they are (maker notes, thumbnail intact).
            return (raw if raw.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + raw), 1
        if not len(exif):
            return None, 1
        if _ORIENTATION in exif:
            exif[_ORIENTATION] = 1
        # Re-serialising drops the IFD1 thumbnail, which would now be the wrong way up anyway.
        return _exif_without(exif, _STRUCTURAL_TAGS).tobytes(), orientation
    except Exception:  # noqa: BLE001 - any parser failure in third-party metadata
        return None, 1


def _to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, Image.Image | None]:
    """Return (8-bit RGB image, alpha or None) for any mode Pillow decodes our formats into."""
    mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            "transparency" in im.info and mode in ("P", "L", "RGB", "1")):
        rgba = im.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    if mode.startswith("I") or mode == "F":  # 16-bit / 32-bit / float greyscale
        a = np.asarray(im).astype(np.float64)
        peak = a.max(initial=0)
        if mode.startswith("I;16") or (mode == "I" and peak > 255):
            scale = 255.0 / 65535.0
        else:  # float data in 0..1, or 32-bit ints that only use the 8-bit range
            scale = 255.0 if mode == "F" and peak <= 1.0 else 1.0
        a = np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB"), None
    if mode == "CMYK" and icc is not None and icc[16:20] == b"CMYK":
        try:  # colour-managed conversion beats Pillow's naive CMYK->RGB formula by far
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            return ImageCms.profileToProfile(im, src, dst, outputMode="RGB"), None
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # unusable profile: fall back to the plain conversion
    return im.convert("RGB"), None


def load_photo(path: Path | str) -> Photo:
    """Decode `path` fully into upright 8-bit RGB; every failure is a one-line PhotoError."""
    path = Path(path)
    if not path.exists():
        raise PhotoError(f"{path}: file not found")
    if path.is_dir():
        raise PhotoError(f"{path}: is a folder, not a photo")
    if not path.is_file():
        raise PhotoError(f"{path}: not a regular file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise PhotoError(f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
                         "supported: JPEG, PNG, WebP, TIFF")
    try:
        with Image.open(path, formats=_OPEN_FORMATS) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise PhotoError(f"{path}: image is {w}x{h} ({w * h / 1e6:.0f} MP), "
                                 f"over the {MAX_PIXELS // 1_000_000} MP limit")
            frames = int(getattr(im, "n_frames", 1) or 1)
            if frames > 1 and im.format != "MPO":  # MPO: a camera's photo + preview; 1st kept
                raise PhotoError(f"{path}: has {frames} frames (an animation or a multi-page "
                                 "file); FakeTagger tags single pictures and would drop the "
                                 "other frames: save the frame you want as its own file")
            im.load()  # force a full decode now so truncation surfaces here, not mid-pipeline
            fmt = _normalize_format(im.format or "")
            exif, orientation = _read_exif(im, fmt)
            icc = im.info.get("icc_profile") or None
            dpi = im.info.get("dpi")
            if orientation != 1:
                im = im.transpose(_TRANSPOSE[orientation])
            rgb_im, alpha_im = _to_rgb(im, icc)
            rgb = np.asarray(rgb_im, dtype=np.uint8).copy()
            alpha = None if alpha_im is None else np.asarray(alpha_im, dtype=np.uint8).copy()
    except PhotoError:
        raise
    except Image.DecompressionBombError:
        raise PhotoError(f"{path}: image is too large (over the "
                         f"{MAX_PIXELS // 1_000_000} MP limit)") from None
    except PermissionError:
        raise PhotoError(f"{path}: cannot read the file (permission denied)") from None
    except Image.UnidentifiedImageError:
        raise PhotoError(f"{path}: not a valid JPEG, PNG, WebP or TIFF image") from None
    except MemoryError:
        raise PhotoError(f"{path}: not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many types on corrupt input
        raise PhotoError(f"{path}: image data is corrupt or truncated ({exc})") from exc
    if not (isinstance(icc, bytes) and len(icc) >= 128 and icc[16:20] == b"RGB "):
        icc = None  # a CMYK/grey profile would mislabel the RGB data we now hold
    try:
        x, y = (float(v) for v in dpi)
        dpi_out = ((y, x) if orientation >= 5 else (x, y)) if x > 0 and y > 0 else None
    except (TypeError, ValueError):  # absent or junk: no DPI is better than a wrong one
        dpi_out = None
    return Photo(rgb=rgb, path=path, format=fmt, exif=exif, icc_profile=icc, dpi=dpi_out,
                 has_alpha=alpha is not None, alpha=alpha)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Shape/dtype errors are bugs in our own pipeline, hence ValueError, not PhotoError."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 \
            or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        got = f"{rgb.shape} {rgb.dtype}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"expected an H x W x 3 uint8 array, got {got}")
    return np.ascontiguousarray(rgb)


def _encode(photo: Photo, rgb: np.ndarray, fmt: str, quality: int) -> tuple[Image.Image, dict]:
    im = Image.fromarray(rgb, "RGB")
    if fmt != "JPEG" and photo.has_alpha and photo.alpha is not None:
        alpha = Image.fromarray(np.ascontiguousarray(photo.alpha), "L")
        if alpha.size != im.size:
            alpha = alpha.resize(im.size, Image.Resampling.BILINEAR)
        im.putalpha(alpha)
    kw: dict = {}
    exif = photo.exif
    if exif and fmt == "TIFF":
        # Descriptive IFD0 tags only: Pillow writes the structure itself, and its libtiff (LZW)
        # writer cannot write the Exif/GPS/Interop sub-IFDs at all ("Error setting from dict").
        ex = Image.Exif()
        ex.load(exif)
        kw["exif"] = _exif_without(ex, _STRUCTURAL_TAGS | {34665, 34853, 40965}).tobytes()
    elif exif:
        kw["exif"] = exif
    if photo.icc_profile:
        kw["icc_profile"] = photo.icc_profile
    if photo.dpi:
        kw["dpi"] = photo.dpi
    if fmt == "JPEG":
        kw.update(quality=quality, subsampling=0)  # 4:4:4: chroma subsampling would eat the tag
    elif fmt == "WEBP":
        kw.update(quality=quality, lossless=False)
    elif fmt == "TIFF":
        kw["compression"] = "tiff_lzw"
    return im, kw


class NameTakenError(PhotoError):
    """The output name was taken by another file between choosing it and publishing."""


def _check_target(photo_path: Path, out_path: Path, fmt: str) -> None:
    """PhotoError (NameTakenError) unless *out_path* is a free name for a *fmt* copy of the
    photo at *photo_path*, in a folder that exists."""
    suffix_fmt = _SUFFIX_FORMAT.get(out_path.suffix.lower())
    if suffix_fmt is not None and suffix_fmt != fmt:
        raise PhotoError(f"{out_path}: suffix {out_path.suffix} does not match format {fmt}")
    if out_path.resolve() == photo_path.resolve() or (
            out_path.exists() and photo_path.exists() and os.path.samefile(out_path, photo_path)):
        raise PhotoError(f"{out_path}: refusing to overwrite the original photo")
    if os.path.lexists(out_path):
        raise NameTakenError(f"{out_path}: already exists; choose another name")
    parent = out_path.parent
    if not parent.is_dir():
        raise PhotoError(f"{parent}: output folder does not exist")


def encode_photo(photo: Photo, rgb: np.ndarray, *, fmt: str | None = None,
                 jpeg_quality: int = 95) -> bytes:
    """The bytes of `rgb` written with `photo`'s metadata: exactly what :func:`write_photo_temp`
    puts in its file (batch workers encode, the driver writes). PhotoError if it cannot be."""
    rgb = _check_rgb(rgb)
    fmt = _normalize_format(fmt or photo.format)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be 1..100, got {jpeg_quality}")
    im, kw = _encode(photo, rgb, fmt, jpeg_quality)
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt, **kw)
    except Exception as exc:  # noqa: BLE001 - Pillow's encoders raise anything
        raise PhotoError(f"{photo.path}: cannot encode {fmt} ({exc})") from exc
    return buf.getvalue()


def write_temp_bytes(data: bytes, photo_path: Path, out_path: Path, tmp: Path, *,
                     fmt: str) -> None:
    """Write encoded photo *data* (:func:`encode_photo`) to the NEW temp file *tmp* (fsynced),
    after the same checks as :func:`write_photo_temp`; the temp is removed on failure."""
    out_path, tmp = Path(out_path), Path(tmp)
    _check_target(Path(photo_path), out_path, _normalize_format(fmt))
    _write_temp(out_path, tmp, fmt, lambda f: f.write(data))


def _write_temp(out_path: Path, tmp: Path, fmt: str, fill) -> None:
    """*fill* the new temp file *tmp* (engine.atomic.fill_temp: created, fsynced, removed on
    failure), every failure told as a one-line PhotoError."""
    opened = False
    try:
        with fill_temp(tmp) as f:
            opened = True
            fill(f)
    except PhotoError:
        raise
    except OSError as exc:
        if not opened:
            raise PhotoError(f"{out_path.parent}: cannot write here ({exc.strerror})") from exc
        if exc.errno == errno.ENOSPC:
            raise PhotoError(f"{out_path}: the disk is full; nothing was written") from None
        raise PhotoError(f"{out_path}: cannot write {fmt} ({exc})") from exc
    except Exception as exc:
        raise PhotoError(f"{out_path}: cannot write {fmt} ({exc})") from exc


def write_photo_temp(photo: Photo, rgb: np.ndarray, out_path: Path, tmp: Path, *,
                     fmt: str | None = None, jpeg_quality: int = 95) -> None:
    """Encode `rgb` with `photo`'s metadata into the NEW temp file `tmp` (fsynced), the first
    half of :func:`save_photo`; :func:`publish_photo` gives it `out_path`. On failure the temp
    file is removed and a one-line PhotoError raised."""
    out_path, tmp = Path(out_path), Path(tmp)
    rgb = _check_rgb(rgb)
    fmt = _normalize_format(fmt or photo.format)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be 1..100, got {jpeg_quality}")
    _check_target(photo.path, out_path, fmt)
    im, kw = _encode(photo, rgb, fmt, jpeg_quality)
    _write_temp(out_path, tmp, fmt, lambda f: im.save(f, format=fmt, **kw))


def publish_photo(tmp: Path, out_path: Path) -> None:
    """Give the finished temp file its name, never over an existing file (NameTakenError then,
    the temp file kept for another try), and make the new name durable."""
    try:
        publish(tmp, out_path, overwrite=False)
    except FileExistsError:
        raise NameTakenError(f"{out_path}: already exists; choose another name") from None
    except OSError as exc:
        raise PhotoError(f"{out_path}: cannot write ({exc.strerror})") from None
    fsync_dir(Path(out_path).parent)


def save_photo(photo: Photo, rgb: np.ndarray, out_path: Path, *, fmt: str | None = None,
               jpeg_quality: int = 95) -> Path:
    """Atomically write `rgb` to the NEW file `out_path` with `photo`'s metadata; return it."""
    out_path = Path(out_path)
    tmp = temp_path_for(out_path)
    write_photo_temp(photo, rgb, out_path, tmp, fmt=fmt, jpeg_quality=jpeg_quality)
    try:
        publish_photo(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def unique_output_path(out_dir: Path, src: Path, *, suffix: str = "-tagged",
                       fmt: str | None = None) -> Path:
    """`<stem><suffix><ext>`, else `-2`, `-3`, ...: never a name in use or being written."""
    out_dir, src = Path(out_dir), Path(src)
    if fmt is None:
        fmt = _SUFFIX_FORMAT.get(src.suffix.lower())
        if fmt is None:
            raise PhotoError(f"{src}: unsupported file type {src.suffix!r}")
    ext = _FORMAT_EXT[_normalize_format(fmt)]
    try:  # casefold: on Windows/macOS "A.jpg" and "a.jpg" are the same file
        names = {n.casefold() for n in os.listdir(out_dir)}
    except OSError:
        names = set()
    temps = [n for n in names if is_temp_name(n)]  # a name being written is not free either
    for n in range(1, 100_000):
        name = f"{src.stem}{suffix}{ext}" if n == 1 else f"{src.stem}{suffix}-{n}{ext}"
        key = name.casefold()
        if key in names or os.path.lexists(out_dir / name):
            continue
        if any(t.startswith(f".{key}.") for t in temps):
            continue
        return out_dir / name
    raise PhotoError(f"{out_dir}: no free output name for {src.name}")


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    """Dot-names everywhere, plus the hidden attribute on Windows. Only Windows needs the stat
    (there it comes cached with the listing); a file that vanished mid-scan is simply not hidden,
    and loading it later reports it like any other missing file."""
    if entry.name.startswith("."):  # also our own temps (engine.atomic.temp_path_for)
        return True
    if os.name != "nt":
        return False
    try:
        attrs = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    except OSError:
        return False
    return bool(attrs & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))


def _walk(folder: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: (e.name.casefold(), e.name))
    except OSError as exc:
        raise PhotoError(f"{folder}: cannot list folder ({exc.strerror})") from exc
    found: list[Path] = []
    for entry in entries:
        if _is_hidden(entry):
            continue
        if entry.is_dir(follow_symlinks=False):  # no symlinked folders: no loops
            found += _walk(Path(entry.path))
        elif entry.is_file() and Path(entry.name).suffix.lower() in SUPPORTED_SUFFIXES:
            found.append(Path(entry.path))
    return found


def iter_photos(inputs: list[Path]) -> list[Path]:
    """Expand files and folders (recursively) into photo paths, de-duplicated, order kept."""
    out: list[Path] = []
    seen: set[object] = set()
    for item in map(Path, inputs):
        if item.is_dir():
            candidates = _walk(item)
        elif not item.exists():
            raise PhotoError(f"{item}: file not found")
        elif item.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise PhotoError(f"{item}: unsupported file type {item.suffix or '(no suffix)'!r}; "
                             "supported: JPEG, PNG, WebP, TIFF")
        else:
            candidates = [item]
        for p in candidates:
            key = _file_key(p)
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def _file_key(path: Path) -> object:
    """What makes two paths the same file: (device, inode), so "A.jpg" and "a.jpg" on a
    case-insensitive disk, hard links and symlinks count once, which resolve() does not catch.
    Falls back to the resolved path where there is no inode number or the file just vanished."""
    try:
        st = path.stat()
    except OSError:
        return path.resolve()
    return (st.st_dev, st.st_ino) if st.st_ino else path.resolve()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed so big TIFFs do not need to fit in memory twice."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise PhotoError(f"{path}: cannot read the file ({exc.strerror})") from exc


def encode_jpeg_thumbnail(rgb: np.ndarray, size: int = 48, quality: int = 80) -> bytes:
    """A tiny JPEG (longest side <= `size`) small enough to embed in ledger records."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    im = Image.fromarray(_check_rgb(rgb), "RGB")
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
