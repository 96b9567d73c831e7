"""The Protect tab's list of photos: thumbnails (read on a worker), a status line per photo."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

from app.context import AppContext

THUMB = 72
PATH_ROLE = Qt.ItemDataRole.UserRole
STATUS_ROLE = Qt.ItemDataRole.UserRole + 1


def read_thumbnail(path: Path, size: int = THUMB) -> QImage:
    """A small upright thumbnail, decoded at reduced size where the format allows (JPEG)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)  # EXIF orientation, like engine.photos.load_photo
    full = reader.size()
    if full.isValid() and max(full.width(), full.height()) > size:
        reader.setScaledSize(full.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    return reader.read()


class PhotoList(QListWidget):
    currentPathChanged = Signal(object)  # Path | None

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAccessibleName("Photos to protect")
        self.setIconSize(QSize(THUMB, THUMB))
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self._items: dict[Path, QListWidgetItem] = {}
        self.currentItemChanged.connect(
            lambda cur, _prev: self.currentPathChanged.emit(cur.data(PATH_ROLE) if cur else None))

    def paths(self) -> list[Path]:
        return [self.item(k).data(PATH_ROLE) for k in range(self.count())]

    def add_paths(self, paths: list[Path]) -> int:
        """Add photos not listed yet; returns how many were added. Thumbnails follow."""
        new = []
        for path in paths:
            key = path.resolve()
            if key in self._items:
                continue
            item = QListWidgetItem(path.name)
            item.setData(PATH_ROLE, key)
            item.setToolTip(str(key))
            self.addItem(item)
            self._items[key] = item
            new.append(key)
        if new:
            self.ctx.submit(lambda report, token: [report((p, read_thumbnail(p))) for p in new
                                                   if not token.cancelled],
                            on_progress=self._thumbnail, name="thumbnails", owner=self)
            if self.currentItem() is None:
                self.setCurrentRow(0)
        return len(new)

    def _thumbnail(self, pair: tuple[Path, QImage]) -> None:
        path, image = pair
        item = self._items.get(path)
        if item is not None and not image.isNull():
            item.setIcon(QIcon(QPixmap.fromImage(image)))

    def set_status(self, path: Path, text: str, ok: bool | None = None) -> None:
        """Second line under the file name, e.g. "2 faces tagged · PSNR 41.3 dB"."""
        item = self._items.get(path.resolve())
        if item is None:
            return
        item.setData(STATUS_ROLE, text)
        mark = {True: "✓ ", False: "✗ ", None: ""}[ok]
        item.setText(f"{path.name}\n{mark}{text}" if text else path.name)

    def status(self, path: Path) -> str:
        item = self._items.get(path.resolve())
        return (item.data(STATUS_ROLE) or "") if item is not None else ""

    def remove_selected(self) -> None:
        for item in self.selectedItems():
            self._items.pop(item.data(PATH_ROLE), None)
            self.takeItem(self.row(item))

    def clear_all(self) -> None:
        self._items.clear()
        self.clear()
