"""Original and tagged photo in one view, split by a slider: the tag should be invisible.

"Zoom to faces" shows the tagged region at full resolution: scaled to fit a window, any photo
looks unchanged, so the honest check is up close.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

Pair = tuple[QImage, QImage]


def face_region(boxes: list[list[int]], width: int, height: int,
                margin: float = 0.5) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) around all tagged face boxes plus a margin; the whole photo if none."""
    if not boxes:
        return 0, height, 0, width
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return (max(0, int(y0 - my)), min(height, int(y1 + my)),
            max(0, int(x0 - mx)), min(width, int(x1 + mx)))


class _Split(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.split = 0.5

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        if self.before is None or self.after is None:
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       "Run Protect, then compare the original with the tagged copy here.")
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        iw, ih = self.before.width(), self.before.height()
        s = min(self.width() / iw, self.height() / ih)
        target = QRectF((self.width() - iw * s) / 2, (self.height() - ih * s) / 2, iw * s, ih * s)
        cut = target.left() + target.width() * self.split
        p.save()
        p.setClipRect(QRectF(target.left(), target.top(), cut - target.left(), target.height()))
        p.drawImage(target, self.before)
        p.restore()
        p.save()
        p.setClipRect(QRectF(cut, target.top(), target.right() - cut, target.height()))
        p.drawImage(target, self.after)
        p.restore()
        p.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 2))
        p.drawLine(round(cut), round(target.top()), round(cut), round(target.bottom()))


class BeforeAfterView(QWidget):
    """Left of the line: the original. Right: the tagged copy. Drag the slider to compare."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.view = _Split()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 1000)
        self.slider.setValue(500)
        self.slider.setAccessibleName("Before and after split")
        self.slider.valueChanged.connect(self._moved)
        self.caption = QLabel("◀ original   ·   tagged ▶")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.zoom = QCheckBox("Zoom to faces (full resolution)")
        self.zoom.setAccessibleName("Zoom to faces")
        self.zoom.toggled.connect(self._show)
        self._whole: Pair | None = None
        self._zoomed: Pair | None = None
        lay.addWidget(self.view, 1)
        lay.addWidget(self.slider)
        row = QHBoxLayout()
        row.addWidget(self.zoom)
        row.addWidget(self.caption, 1)
        lay.addLayout(row)

    def _moved(self, value: int) -> None:
        self.view.split = value / 1000
        self.view.update()

    def set_images(self, before: QImage | None, after: QImage | None,
                   zoomed: Pair | None = None) -> None:
        self._whole = (before, after) if before is not None and after is not None else None
        self._zoomed = zoomed
        self._show()

    def _show(self) -> None:
        pair = self._zoomed if self.zoom.isChecked() and self._zoomed else self._whole
        self.view.before, self.view.after = pair if pair else (None, None)
        self.view.update()

    def has_images(self) -> bool:
        return self.view.before is not None and self.view.after is not None
