"""The Verify tab's face-change panel: the face as tagged, the suspect face aligned onto it, and
a heat map of where they differ, so the verdict can be checked by eye, not only taken."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from app.face_preview import rgb_to_qimage
from engine.change.compare import Comparison
from engine.change.reference import ReferenceKind

SIDE = 100  # px per image: three fit the tab's right-hand panel side by side
CAPTIONS = {ReferenceKind.ORIGINAL: "Your original", ReferenceKind.THUMBNAIL: "As tagged (record)"}


def comparison_images(c: Comparison) -> tuple[QImage, QImage, QImage]:
    """QImages (made on the worker: no pixmaps off the GUI thread) of a comparison."""
    return tuple(rgb_to_qimage(np.ascontiguousarray(x)).copy()  # type: ignore[return-value]
                 for x in (c.reference, c.suspect, c.heat))


class ChangeView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.captions = [QLabel(t) for t in ("Your original", "Here, aligned", "Difference")]
        self.images = [QLabel() for _ in range(3)]
        names = ("Tagged face", "Suspect face aligned", "Difference heat map")
        for col, (cap, img, name) in enumerate(zip(self.captions, self.images, names,
                                                   strict=True)):
            img.setAccessibleName(name)
            img.setFixedSize(SIDE, SIDE)
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(cap, 0, col)
            grid.addWidget(img, 1, col)
        self.setAccessibleName("Face change comparison")
        self.setVisible(False)

    def show_comparison(self, images: tuple[QImage, QImage, QImage] | None,
                        reference: str | None) -> None:
        if images is None:
            self.setVisible(False)
            return
        self.captions[0].setText(CAPTIONS.get(ReferenceKind(reference or "thumbnail")))
        for label, image in zip(self.images, images, strict=True):
            label.setPixmap(QPixmap.fromImage(image.scaled(
                SIDE, SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)))
        self.setVisible(True)
