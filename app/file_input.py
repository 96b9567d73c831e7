"""Getting images in: dropped or pasted file URLs, and pasted raw images (screenshots, a browser's
"copy image"), which are saved to a file first because every engine job works on files."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMimeData
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage

from engine import paths
from engine.atomic import write_atomic
from engine.photos import SUPPORTED_SUFFIXES

PHOTO_FILTER = "Photos (" + " ".join(f"*{s}" for s in sorted(SUPPORTED_SUFFIXES)) + ");;All (*)"


def local_paths(mime: QMimeData) -> list[Path]:
    """Local files and folders named in a drop or a clipboard (non-local URLs are ignored)."""
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def accepts(mime: QMimeData) -> bool:
    return bool(local_paths(mime)) or mime.hasImage()


def pasted_folder() -> Path:
    folder = paths.data_dir() / "pasted"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_pasted_image(mime: QMimeData) -> Path | None:
    """Write a clipboard image to <data dir>/pasted/pasted-<time>.png (lossless), or None."""
    if not mime.hasImage():
        return None
    image = mime.imageData()
    if not isinstance(image, QImage) or image.isNull():
        return None
    png = QByteArray()
    buffer = QBuffer(png)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.convertToFormat(QImage.Format.Format_RGB888).save(buffer, "PNG"):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = pasted_folder()
    for n in range(1, 1000):
        path = folder / (f"pasted-{stamp}.png" if n == 1 else f"pasted-{stamp}-{n}.png")
        try:  # engine.atomic: complete or absent, and never over a paste of the same second
            write_atomic(path, bytes(png.data()), overwrite=False)
        except FileExistsError:
            continue
        except OSError:  # as when Qt itself could not write it: nothing pasted
            return None
        return path
    return None


def paths_from_mime(mime: QMimeData) -> list[Path]:
    """What a drop or paste brings: its files and folders, else a pasted image saved to a file."""
    found = local_paths(mime)
    if found:
        return found
    pasted = save_pasted_image(mime)
    return [pasted] if pasted else []


class TakesPhotos:
    """Mixin for a tab (listed before QWidget in its bases) that takes photos by drag-and-drop
    and by paste: both end in ``take_paths``, so the two tabs accept exactly the same things."""

    def take_paths(self, paths: list[Path]) -> None:
        raise NotImplementedError

    def paste(self) -> None:
        self.take_paths(paths_from_mime(QGuiApplication.clipboard().mimeData()))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if accepts(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.take_paths(paths_from_mime(event.mimeData()))
        event.acceptProposedAction()
