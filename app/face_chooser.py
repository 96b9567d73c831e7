"""The Protect tab's face preview: every face found in the selected photo, boxed, with a checkbox
each (click the box or the checkbox) to leave it untagged. Faces too small to tag are shown too.

The indices chosen here are indices into ``Pipeline.detect(include_small=True)`` order, which is
what ``Pipeline.protect(include=...)`` expects; detection is deterministic, so the run finds the
same faces in the same order as the preview did (plans are dropped when the threshold changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.context import AppContext
from app.face_preview import BoxItem, FacePreview, scaled_rgb_qimage
from engine.photos import load_photo

PREVIEW_SIDE = 1600


@dataclass
class FacePlan:
    """A previewed photo: its scaled image, face boxes (detection order) and the user's picks."""

    image: QImage
    scale: float
    boxes: list[list[float]]
    small: list[bool]
    chosen: set[int] = field(default_factory=set)


def find_faces(ctx: AppContext, path: Path) -> FacePlan:
    """Worker side: read the photo and find every face, small ones included (shown as such)."""
    pipeline = ctx.pipeline()
    rgb = load_photo(path).rgb
    faces = pipeline.detect(rgb, include_small=True)
    image, scale = scaled_rgb_qimage(rgb, PREVIEW_SIDE)
    small = [f.size < pipeline.detector.min_face for f in faces]
    return FacePlan(image, scale, [list(f.box) for f in faces], small,
                    {k for k, s in enumerate(small) if not s})


class FaceChooser(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.plans: dict[Path, FacePlan] = {}
        self.path: Path | None = None
        self._pending: set[Path] = set()  # photos whose face search is running
        self.preview = FacePreview(placeholder="Add photos to see their faces here.")
        self.preview.setAccessibleName("Photo preview with faces")
        self.preview.boxClicked.connect(self.toggle)
        self.row = QHBoxLayout()
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.checkboxes: list[QCheckBox] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.preview, 1)
        lay.addLayout(self.row)
        lay.addWidget(self.note)

    def include(self, paths: list[Path]) -> dict[Path, list[int]]:
        """The face choice of every previewed photo among `paths` (others: all faces)."""
        return {p: sorted(plan.chosen) for p, plan in self.plans.items() if p in paths}

    def forget(self) -> None:
        """Drop every plan (detection settings changed) and search the shown photo again."""
        self.plans.clear()
        self.show_photo(self.path)

    def show_photo(self, path: Path | None) -> None:
        self.path = path
        if path is not None and path in self.plans:
            self._render()
            return
        self.preview.placeholder = "Finding faces…" if path else "Add photos to see their faces."
        self.preview.set_image(None)
        self._rebuild(None)
        if path is None or path in self._pending:
            return
        self._pending.add(path)
        self.ctx.submit(lambda report, token: find_faces(self.ctx, path),
                        on_result=lambda plan: self._ready(path, plan),
                        on_error=lambda msg, _d: self._failed(path, msg), name="preview", owner=self)

    def _ready(self, path: Path, plan: FacePlan) -> None:
        self._pending.discard(path)
        self.plans[path] = plan
        if self.path == path:
            self._render()

    def _failed(self, path: Path, message: str) -> None:
        self._pending.discard(path)
        if self.path == path:
            self.preview.placeholder = message
            self.preview.set_image(None)

    def _render(self) -> None:
        plan = self.plans[self.path]
        included = self.palette().color(QPalette.ColorRole.Highlight)
        excluded = self.palette().color(QPalette.ColorRole.PlaceholderText)
        boxes = []
        for k, (box, small) in enumerate(zip(plan.boxes, plan.small, strict=True)):
            on = k in plan.chosen
            label = f"{k + 1} · too small" if small else f"{k + 1}" + (" ✓" if on else " ✗")
            boxes.append(BoxItem([v * plan.scale for v in box], included if on else excluded,
                                 label, dashed=small or not on, faded=small))
        self.preview.set_image(plan.image, boxes)
        self._rebuild(plan)

    def _rebuild(self, plan: FacePlan | None) -> None:
        for cb in self.checkboxes:
            self.row.removeWidget(cb)
            cb.deleteLater()
        self.checkboxes = []
        if plan is None:
            self.note.setText("")
            return
        for k, small in enumerate(plan.small):
            cb = QCheckBox(f"Face {k + 1}" + (" (too small to tag)" if small else ""))
            cb.setAccessibleName(f"Tag face {k + 1}")
            cb.setChecked(k in plan.chosen)
            cb.setEnabled(not small)
            cb.toggled.connect(lambda on, k=k: self._set(k, on))
            self.row.addWidget(cb)
            self.checkboxes.append(cb)
        taggable = plan.small.count(False)
        if not plan.boxes:
            note = "No face found in this photo: it will be skipped."
        else:
            note = (f"{len(plan.chosen)} of {taggable} face(s) will be tagged. "
                    "Click a face or its checkbox to include or exclude it.")
            if taggable < len(plan.boxes):
                note += " Faces marked “too small” cannot carry a tag reliably."
        self.note.setText(note)

    def toggle(self, k: int) -> None:
        if k < len(self.checkboxes) and self.checkboxes[k].isEnabled():
            self.checkboxes[k].toggle()

    def _set(self, k: int, on: bool) -> None:
        if self.path is None or self.path not in self.plans:
            return
        plan = self.plans[self.path]
        (plan.chosen.add if on else plan.chosen.discard)(k)
        self._render()
