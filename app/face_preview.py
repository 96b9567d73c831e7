"""A photo with outlined faces: the Protect tab's include/exclude preview and the Verify tab's
verdict view. Pure drawing; what the boxes mean is decided by the tab that fills them in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """Deep copy of an HxWx3 uint8 array as a QImage (safe to build on a worker thread)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def scaled_rgb_qimage(rgb: np.ndarray, max_side: int) -> tuple[QImage, float]:
    """The photo as a QImage no larger than max_side, and the scale applied (boxes x scale)."""
    img = rgb_to_qimage(rgb)
    scale = min(1.0, max_side / max(img.width(), img.height()))
    if scale < 1.0:
        img = img.scaled(round(img.width() * scale), round(img.height() * scale),
                         Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
    return img, scale


@dataclass
class BoxItem:
    box: list[float]  # x1, y1, x2, y2 in the shown image's pixels
    colour: QColor
    label: str
    dashed: bool = False
    faded: bool = False


class FacePreview(QWidget):
    """Shows one image scaled to fit, with labelled boxes; a click on a box emits its index."""

    boxClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None, placeholder: str = "") -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.image: QImage | None = None
        self.boxes: list[BoxItem] = []
        self.placeholder = placeholder

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    def set_image(self, image: QImage | None, boxes: list[BoxItem] | None = None) -> None:
        self.image = image
        self.boxes = boxes or []
        self.update()

    def _geometry(self) -> tuple[float, QPointF]:
        """Scale from image pixels to widget pixels, and the image's top-left corner."""
        assert self.image is not None
        iw, ih = self.image.width(), self.image.height()
        s = min(self.width() / iw, self.height() / ih) if iw and ih else 1.0
        return s, QPointF((self.width() - iw * s) / 2, (self.height() - ih * s) / 2)

    def box_rect(self, k: int) -> QRectF:
        """Where box k is drawn, in widget coordinates (tests click there)."""
        s, o = self._geometry()
        x1, y1, x2, y2 = self.boxes[k].box
        return QRectF(o.x() + x1 * s, o.y() + y1 * s, (x2 - x1) * s, (y2 - y1) * s)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self.image is None or self.image.isNull():
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.placeholder)
            return
        s, o = self._geometry()
        p.drawImage(QRectF(o.x(), o.y(), self.image.width() * s, self.image.height() * s),
                    self.image)
        metrics = p.fontMetrics()
        for k, item in enumerate(self.boxes):
            r = self.box_rect(k)
            colour = QColor(item.colour)
            if item.faded:
                colour.setAlpha(150)
            pen = QPen(colour, 3 if not item.faded else 2)
            pen.setStyle(Qt.PenStyle.DashLine if item.dashed else Qt.PenStyle.SolidLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r)
            if item.label:
                tw, th = metrics.horizontalAdvance(item.label) + 8, metrics.height() + 2
                top = r.top() - th if r.top() - th >= o.y() else r.top()
                tag = QRectF(r.left(), top, tw, th)
                p.fillRect(tag, colour)
                p.setPen(QColor("white") if colour.lightness() < 160 else QColor("black"))
                p.drawText(tag, Qt.AlignmentFlag.AlignCenter, item.label)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.image is None or event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        # The smallest box under the cursor wins (nested boxes: the inner one is meant).
        hits = [k for k in range(len(self.boxes)) if self.box_rect(k).contains(event.position())]
        if hits:
            k = min(hits, key=lambda i: self.box_rect(i).width())
            self.boxClicked.emit(k)
        return None
