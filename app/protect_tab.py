"""Protect: collect photos, check which faces get a tag, run the batch in the background."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import prompts
from app.before_after import BeforeAfterView, face_region
from app.context import AppContext
from app.errors_ui import show_error, show_info
from app.face_chooser import PREVIEW_SIDE, FaceChooser
from app.face_preview import scaled_rgb_qimage
from app.file_input import PHOTO_FILTER, TakesPhotos
from app.icons import icon
from app.photo_list import PhotoList
from app.workers import Task
from engine.display import format_seconds
from engine.errors import FakeTaggerError
from engine.limits import JPEG_QUALITY
from engine.photos import OutputFormat, iter_photos, load_photo
from engine.pipeline import Progress
from engine.protect import ProtectOutcome
from engine.protect.spec import JobSpec
from engine.run.jobs import protect_job
from engine.run.local import run_batch
from engine.store.batches import ItemState


class ProtectTab(TakesPhotos, QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self.outputs: dict[Path, Path] = {}
        self.tagged_boxes: dict[Path, list[list[int]]] = {}
        self.task: Task | None = None
        self.outcomes: list[ProtectOutcome] = []
        self.last_out_dir: Path | None = None
        self._preview_for: Path | None = None
        self._plan_key = self._detection_key()

        self.photos = PhotoList(ctx)
        self.photos.currentPathChanged.connect(self._show_photo)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        for text, name, slot, tip in (
            ("Add photos…", "add", self.open_files, "Add photo files (Ctrl+O)"),
            ("Add folder…", "folder", self.add_folder, "Add every photo in a folder"),
            ("Remove", "clear", self.photos.remove_selected, "Remove the selected photos"),
        ):
            b = QPushButton(icon(name), text)
            b.setToolTip(tip)
            b.setAccessibleName(text.rstrip("…"))
            b.clicked.connect(slot)
            bar.addWidget(b)
        lv.addLayout(bar)
        hint = QLabel("Drop photos or folders here, or paste (Ctrl+V).")
        hint.setWordWrap(True)
        lv.addWidget(hint)
        lv.addWidget(self.photos, 1)

        self.faces = FaceChooser(ctx)
        self.before_after = BeforeAfterView()
        self.views = QTabWidget()
        self.views.addTab(self.faces, "Faces")
        self.views.addTab(self.before_after, "Before / after")
        self.views.setAccessibleName("Preview")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.views)
        split.setStretchFactor(1, 3)
        split.setSizes([320, 760])

        root = QVBoxLayout(self)
        root.addWidget(split, 1)
        root.addLayout(self._options_row())
        root.addLayout(self._run_row())
        ctx.settingsChanged.connect(self._load_settings)
        self._load_settings()

    # -- layout pieces --------------------------------------------------------------------------

    def _options_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("a “tagged” folder next to each photo")
        self.out_edit.setAccessibleName("Output folder")
        choose = QPushButton(icon("folder"), "Choose…")
        choose.setAccessibleName("Choose output folder")
        choose.clicked.connect(self._choose_out)
        self.format_combo = QComboBox()
        self.format_combo.setAccessibleName("Output format")
        for text, key in (("Keep format", OutputFormat.KEEP), ("JPEG", OutputFormat.JPEG),
                          ("PNG (lossless)", OutputFormat.PNG)):
            self.format_combo.addItem(text, key.value)
        self.quality = QSpinBox()
        self.quality.setRange(int(JPEG_QUALITY.lo), int(JPEG_QUALITY.hi))  # engine.limits
        self.quality.setSuffix(" %")
        self.quality.setAccessibleName("JPEG quality")
        self.quality.setToolTip("JPEG quality (used for JPEG output)")
        self.format_combo.currentIndexChanged.connect(
            lambda _k: self.quality.setEnabled(self.format_combo.currentData() != OutputFormat.PNG))
        row.addWidget(QLabel("Output:"))
        row.addWidget(self.out_edit, 1)
        row.addWidget(choose)
        row.addWidget(QLabel("Format:"))
        row.addWidget(self.format_combo)
        row.addWidget(QLabel("Quality:"))
        row.addWidget(self.quality)
        self.retag = QCheckBox("Retag tagged photos")
        self.retag.setAccessibleName("Retag photos that already carry a tag")
        self.retag.setToolTip("Photos whose faces already carry a FakeTagger tag are skipped, as a "
                              "second tag would garble the first; tick to tag them anyway.")
        row.addWidget(self.retag)
        # Settings' Content Credentials switch, said where it takes effect: it puts a name in
        # every copy, so it must never be on without the user seeing it.
        self.c2pa_note = QLabel("Content Credentials on: your name goes into every copy")
        self.c2pa_note.setAccessibleName("Content Credentials are on")
        self.c2pa_note.setToolTip("A signed C2PA manifest with your identity's name and key ID is "
                                  "written into each tagged copy (Settings to turn it off).")
        row.addWidget(self.c2pa_note)
        return row

    def _run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.run_button = QPushButton(icon("run"), "Protect photos")
        self.run_button.setAccessibleName("Protect photos")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.setAccessibleName("Cancel protecting")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_work)
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Progress")
        self.progress.setFormat("%v of %m photos")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.status = QLabel("")
        self.status.setAccessibleName("Protect status")
        self.open_out = QPushButton(icon("folder"), "Open output folder")
        self.open_out.setEnabled(False)
        self.open_out.clicked.connect(self.open_output_folder)
        for w in (self.run_button, self.cancel_button, self.progress):
            row.addWidget(w)
        row.addWidget(self.status, 1)
        row.addWidget(self.open_out)
        return row

    def _detection_key(self) -> tuple[str, float]:
        return self.ctx.settings.device, self.ctx.settings.threshold

    def _load_settings(self) -> None:
        if self._detection_key() != self._plan_key:  # another threshold finds other faces
            self._plan_key = self._detection_key()
            self.faces.forget()
        if self.task is not None:
            return
        s = self.ctx.settings
        self.out_edit.setText(s.output_dir)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(s.output_format)))
        self.quality.setValue(s.jpeg_quality)
        self.c2pa_note.setVisible(s.c2pa)

    # -- adding photos --------------------------------------------------------------------------

    def add_paths(self, items: list[Path]) -> int:
        """Add files and folders (expanded to their photos); unsupported ones are reported."""
        found: list[Path] = []
        problems: list[str] = []
        for item in items:
            try:
                found += iter_photos([item])
            except FakeTaggerError as err:
                problems.append(str(err))
        added = self.photos.add_paths(found)
        if problems:
            show_error(self, "Some items were not added", "\n".join(problems[:10]))
        return added

    def take_paths(self, paths: list[Path]) -> None:
        """Dropped or pasted files and folders (TakesPhotos)."""
        self.add_paths(paths)

    def _choose_out(self) -> None:
        folder = prompts.choose_dir(self, "Output folder", self.out_edit.text())
        if folder is not None:
            self.out_edit.setText(str(folder))

    def open_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Photos to protect", "", PHOTO_FILTER)
        self.add_paths([Path(n) for n in names])

    def add_folder(self) -> None:
        folder = prompts.choose_dir(self, "Folder of photos")
        if folder is not None:
            self.add_paths([folder])

    # -- preview and face choice ------------------------------------------------------------------

    def _show_photo(self, path: Path | None) -> None:
        self._preview_for = path
        self.faces.show_photo(path)
        self._show_before_after(path)

    def _show_before_after(self, path: Path | None) -> None:
        out = self.outputs.get(path) if path else None
        self.views.setTabEnabled(1, out is not None)
        if out is None:
            self.before_after.set_images(None, None)
            return

        boxes = self.tagged_boxes.get(path, [])

        def load(report, token):
            before, after = load_photo(path).rgb, load_photo(out).rgb
            whole = (scaled_rgb_qimage(before, PREVIEW_SIDE)[0],
                     scaled_rgb_qimage(after, PREVIEW_SIDE)[0])
            y0, y1, x0, x1 = face_region(boxes, before.shape[1], before.shape[0])
            zoom = (scaled_rgb_qimage(before[y0:y1, x0:x1], PREVIEW_SIDE)[0],
                    scaled_rgb_qimage(after[y0:y1, x0:x1], PREVIEW_SIDE)[0])
            return whole, zoom

        self.ctx.submit(load, on_result=lambda pairs: self._before_after_ready(path, pairs),
                        name="before-after", owner=self)

    def _before_after_ready(self, path: Path, pairs) -> None:
        if self._preview_for == path:
            self.before_after.set_images(*pairs[0], zoomed=pairs[1])

    # -- running ----------------------------------------------------------------------------------

    def spec(self) -> JobSpec:
        """The run the form describes, over the settings' preferences (AppSettings.job_spec)."""
        out = self.out_edit.text().strip()
        return self.ctx.settings.job_spec(
            out_dir=Path(out) if out else None,
            fmt=OutputFormat(self.format_combo.currentData()),
            jpeg_quality=self.quality.value(), retag=self.retag.isChecked(),
            faces=self.faces.include(self.photos.paths()))

    def run(self) -> None:
        paths = self.photos.paths()
        if not paths:
            show_info(self, "Nothing to protect", "Add some photos first.")
            return
        if self.task is not None:
            return
        unlocked = self.ctx.ask_passphrase(
            self, f"Enter your passphrase to sign the tags for {len(paths)} photo(s).")
        if unlocked is None:
            return
        self._start(unlocked, (paths, self.spec()), None)

    def resume(self, job_id: str) -> None:
        """Continue an interrupted job (offered by the main window on start)."""
        if self.task is not None:
            return
        items = self.ctx.ledger.batch_items(job_id)
        self.add_paths([i.src for i in items if i.src.exists()])
        unlocked = self.ctx.ask_passphrase(
            self, f"Enter your passphrase to finish the interrupted job ({len(items)} photos).")
        if unlocked is None:
            return
        self._start(unlocked, None, job_id)

    def _start(self, unlocked, new: tuple[list[Path], JobSpec] | None,
               job_id: str | None) -> None:
        self.outcomes = []
        total = len(new[0]) if new is not None else len(self.ctx.ledger.batch_items(job_id))
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.status.setText("Starting…")
        self._set_running(True)
        pipeline = self.ctx.pipeline()
        self.task = self.ctx.submit(
            lambda report, token: _run_job(pipeline, unlocked, new, job_id, report, token),
            on_progress=self._event, on_result=self._finished, on_error=self._failed,
            name="protect", owner=self)

    def _set_running(self, on: bool) -> None:
        self.run_button.setEnabled(not on)
        self.cancel_button.setEnabled(on)

    def _event(self, event: object) -> None:
        if isinstance(event, Progress):
            self.progress.setValue(event.done)
            cancelling = self.task is not None and self.task.cancelled
            parts = [f"Photo {min(event.done + 1, event.total)} of {event.total}",
                     f"{event.faces_done} face(s) tagged", format_seconds(event.seconds_left())]
            if cancelling:
                parts = ["Cancelling after the current photo…"]
            self.status.setText(" · ".join(p for p in parts if p))
        elif isinstance(event, ProtectOutcome):
            self._record(event)

    def _record(self, o: ProtectOutcome) -> None:
        self.outcomes.append(o)
        if o.state is ItemState.SKIPPED:
            self.photos.set_status(o.input, o.error or "skipped", ok=None)
        elif o.error:
            self.photos.set_status(o.input, o.error, ok=False)
        elif not o.faces:
            small = f" ({len(o.small_faces)} too small)" if o.small_faces else ""
            self.photos.set_status(o.input, f"no face to tag{small}; nothing written", ok=None)
        else:
            psnr = min(f.psnr for f in o.faces)
            note = o.readback_note(short=True)
            self.photos.set_status(
                o.input, f"{len(o.faces)} face(s) tagged · PSNR {psnr:.1f} dB"
                + (f" · {note}" if note else ""), ok=True)
            self.outputs[o.input.resolve()] = o.output
            self.tagged_boxes[o.input.resolve()] = [f.box for f in o.faces]
            self.last_out_dir = o.output.parent
            self.open_out.setEnabled(True)
            if self._preview_for == o.input.resolve():
                self._show_before_after(self._preview_for)

    def _finished(self, outcomes: list[ProtectOutcome]) -> None:
        cancelled = self.task is not None and self.task.cancelled
        self.task = None
        self._set_running(False)
        tagged = [o for o in outcomes if o.output]
        faces = sum(len(o.faces) for o in tagged)
        errors = sum(1 for o in outcomes if o.state is ItemState.FAILED)
        skipped = sum(1 for o in outcomes if o.state is ItemState.SKIPPED)
        text = f"Tagged {faces} face(s) in {len(tagged)} photo(s)"
        if errors:
            text += f", {errors} failed"
        if skipped:
            text += f", {skipped} skipped"
        if cancelled:
            text = f"Cancelled. {text}; the other photos were not touched"
        self.status.setText(text + ".")
        if tagged:
            self.ctx.ledgerChanged.emit()

    def _failed(self, message: str, details: str) -> None:
        self.task = None
        self._set_running(False)
        self.status.setText("Stopped by an error.")
        show_error(self, "Protect failed", message, details)

    def cancel_work(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.status.setText("Cancelling after the current photo…")

    def open_output_folder(self) -> None:
        if self.last_out_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_out_dir)))


def _run_job(pipeline, unlocked, new: tuple[list[Path], JobSpec] | None, job_id: str | None,
             report, token) -> list[ProtectOutcome]:
    """Worker: record the protect job in the ledger (so it can be resumed after a crash) or
    take the interrupted one, run it, and relay every event to the GUI thread."""
    if job_id is None:
        job_id = protect_job(pipeline.ledger, unlocked.key_id, *new)
    outcomes = []
    for event in run_batch(pipeline, unlocked, job_id, token):
        report(event)
        if isinstance(event, ProtectOutcome):
            outcomes.append(event)
    return outcomes
