"""Verify: read the tags in a suspect image, show a verdict per face, export a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import card_import, prompts
from app.change_view import ChangeView, comparison_images
from app.context import AppContext
from app.errors_ui import show_error
from app.face_preview import BoxItem, FacePreview, scaled_rgb_qimage
from app.file_input import PHOTO_FILTER, TakesPhotos
from app.icons import icon
from app.photo_list import read_thumbnail
from app.verdict_view import Legend, chip, face_details_html, face_title, verdict_colour
from app.workers import Task
from engine.change.compare import comparison
from engine.files import read_file
from engine.photos import load_photo, sha256_file
from engine.verify import FaceVerdict, Verdict
from engine.verify.report import ImageReport, credentials_html, write_report

PREVIEW_SIDE = 1600
REPORT_FILTER = "Report page (*.html);;Report data (*.json)"


@dataclass
class VerifyResult:
    """Everything the tab shows about one checked image (built on a worker)."""

    path: Path
    report: ImageReport
    image: QImage
    scale: float
    originals: dict[int, tuple[str, QImage | None]] = field(default_factory=dict)
    #: face index -> (as tagged, suspect aligned, difference) for faces that were compared
    comparisons: dict[int, tuple[QImage, QImage, QImage]] = field(default_factory=dict)

    @property
    def faces(self) -> list[FaceVerdict]:
        return self.report.faces


class VerifyTab(TakesPhotos, QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self.path: Path | None = None
        self.result: VerifyResult | None = None
        self.task: Task | None = None
        self._generation = 0
        self._note = ""  # one-off message kept across the next re-check (card imported)

        bar = QHBoxLayout()
        self.open_button = self._button("Open image…", "add", self.open_files,
                                        "Open a suspect image (Ctrl+O)")
        self.paste_button = self._button("Paste", "", self.paste, "Paste an image (Ctrl+V)")
        self.import_button = self._button("Import owner's card…", "identity", self.import_card,
                                          "Import a contact's public card to check their tags")
        self.trust_button = self._button("Trust a signer…", "", self.trust_signer,
                                         "Trust Content Credentials signed under a CA "
                                         "certificate (a newsroom's, a camera maker's)")
        self.report_button = self._button("Export report…", "report", self.export_report_dialog,
                                          "Save an HTML or JSON verification report")
        self.report_button.setEnabled(False)
        for b in (self.open_button, self.paste_button, self.import_button, self.trust_button):
            bar.addWidget(b)
        bar.addStretch()
        bar.addWidget(self.report_button)

        self.preview = FacePreview(placeholder="Drop a suspect image here, open one, or paste "
                                               "it (Ctrl+V). Each face is checked for a tag.")
        self.preview.setAccessibleName("Checked image with faces outlined by verdict")
        self.preview.boxClicked.connect(lambda k: self.faces.setCurrentRow(k))
        self.status = QLabel("")
        self.status.setAccessibleName("Verify status")
        self.status.setWordWrap(True)
        self.credentials = QLabel("")
        self.credentials.setAccessibleName("Content Credentials")
        self.credentials.setWordWrap(True)
        self.credentials.setTextFormat(Qt.TextFormat.RichText)
        self.credentials.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.preview, 1)
        lv.addWidget(Legend())
        lv.addWidget(self.status)
        lv.addWidget(self.credentials)

        self.faces = QListWidget()
        self.faces.setAccessibleName("Faces and verdicts")
        self.faces.currentRowChanged.connect(self._show_face)
        self.details = QLabel()
        self.details.setAccessibleName("Face details")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.thumb_caption = QLabel("Original photo, from your ledger:")
        self.thumb_caption.setVisible(False)
        self.thumb = QLabel()
        self.thumb.setAccessibleName("Original photo thumbnail")
        self.change_view = ChangeView()
        self.face_import = self._button("Import this owner's card…", "identity",
                                        self.import_card, "Their card lets you check this tag")
        self.face_import.setVisible(False)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(QLabel("Faces"))
        rv.addWidget(self.faces, 1)
        rv.addWidget(self.details, 2)
        rv.addWidget(self.thumb_caption)
        rv.addWidget(self.thumb)
        rv.addWidget(self.change_view)
        rv.addWidget(self.face_import)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setSizes([760, 340])
        root = QVBoxLayout(self)
        root.addLayout(bar)
        root.addWidget(split, 1)
        for signal in (ctx.contactsChanged, ctx.identityChanged, ctx.ledgerChanged):
            signal.connect(self.recheck)

    def _button(self, text: str, icon_name: str, slot, tip: str) -> QPushButton:
        b = QPushButton(icon(icon_name), text) if icon_name else QPushButton(text)
        b.setAccessibleName(text.rstrip("…"))
        b.setToolTip(tip)
        b.clicked.connect(slot)
        return b

    # -- input --------------------------------------------------------------------------------

    def open_files(self) -> None:
        path = prompts.open_file(self, "Image to verify", PHOTO_FILTER)
        if path is not None:
            self.verify_path(path)

    def take_paths(self, paths: list[Path]) -> None:
        """Dropped or pasted files (TakesPhotos): the first image is checked."""
        files = [p for p in paths if p.is_file()]
        if not files:
            self.status.setText("That is not an image file.")
            return
        self.verify_path(files[0])
        if len(files) > 1:
            self.status.setText(f"Checking {files[0].name}; one image at a time here "
                                "(the command line checks many: faketagger verify).")

    # -- checking -----------------------------------------------------------------------------

    def verify_path(self, path: Path) -> Task:
        """Check `path` on a worker; the view updates when the result arrives."""
        self.cancel_work()
        self._generation += 1
        gen = self._generation
        self.path = path
        self.report_button.setEnabled(False)
        self.status.setText(f"Checking {path.name}…")
        # Only the newest check may update the view; an older one that finishes late is dropped.
        self.task = self.ctx.submit(
            lambda report, token: self._check(path),
            on_result=lambda r: self._checked(r) if gen == self._generation else None,
            on_error=lambda m, d: self._failed(m, d) if gen == self._generation else None,
            name="verify", owner=self)
        return self.task

    def recheck(self) -> None:
        """Contacts, identity or records changed: the same image may now read differently."""
        if self.path is not None and self.task is None:
            self.verify_path(self.path)

    def _check(self, path: Path) -> VerifyResult:
        """Worker: decode and judge every face, and find the ledger's original for own tags."""
        photo = load_photo(path)
        sha = sha256_file(path)
        pipeline = self.ctx.pipeline()
        verdicts = pipeline.verify_rgb(photo.rgb, sha)
        creds = pipeline.credentials(path, verdicts)
        image, scale = scaled_rgb_qimage(photo.rgb, PREVIEW_SIDE)
        result = VerifyResult(path, ImageReport(path, photo.rgb, verdicts, sha, c2pa=creds),
                              image, scale)
        for k, v in enumerate(verdicts):
            if v.own and v.record is not None:
                result.originals[k] = self._original(v)
            ref = v.change_reference
            if v.change.measures is not None and ref is not None:  # compared: show how
                framing = v.change.framing or v.box  # where the verdict's measures came from
                result.comparisons[k] = comparison_images(comparison(photo.rgb, framing, ref))
        return result

    def _original(self, v: FaceVerdict) -> tuple[str, QImage | None]:
        """The photo this tag was made from (the ledger's own record), with a thumbnail if it
        still exists; else the face thumbnail stored in the signed record."""
        assert v.record is not None and v.payload is not None
        stored = self.ctx.ledger.original_path(v.payload.key_id, v.payload.serial,
                                               v.record.file_sha256)
        if stored is None:
            return "", QImage.fromData(v.record.face_thumb_jpeg)
        original = Path(stored)
        if original.is_file():
            image = read_thumbnail(original, 160)
            if not image.isNull():
                return stored, image
        return stored, QImage.fromData(v.record.face_thumb_jpeg)

    def _checked(self, result: VerifyResult) -> None:
        self.task = None
        self.result = result
        boxes = [BoxItem([c * result.scale for c in v.box], verdict_colour(v.verdict),
                         str(k + 1), dashed=v.verdict == Verdict.NO_TAG)
                 for k, v in enumerate(result.faces)]
        self.preview.set_image(result.image, boxes)
        self.faces.clear()
        for k, v in enumerate(result.faces):
            self.faces.addItem(QListWidgetItem(chip(v.verdict), face_title(k, v)))
        self.report_button.setEnabled(True)
        n = len(result.faces)
        text = f"{result.path.name}: {n} face(s) checked." if n else \
            f"{result.path.name}: no face found."
        self.status.setText(f"{self._note} {text}" if self._note else text)
        self._note = ""
        creds = result.report.c2pa
        self.credentials.setText(credentials_html(creds) if creds is not None else "")
        if n:
            self.faces.setCurrentRow(0)
        else:
            self._show_face(-1)

    def _failed(self, message: str, details: str) -> None:
        self.task = None
        self.status.setText(message)
        show_error(self, "Could not check the image", message, details)

    def _show_face(self, k: int) -> None:
        if self.result is None or not 0 <= k < len(self.result.faces):
            self.details.setText("")
            self.thumb.clear()
            self.thumb_caption.setVisible(False)
            self.face_import.setVisible(False)
            self.change_view.show_comparison(None, None)
            return
        v = self.result.faces[k]
        original, image = self.result.originals.get(k, ("", None))
        self.details.setText(face_details_html(v, original or None))
        if image is not None and not image.isNull():
            self.thumb.setPixmap(QPixmap.fromImage(image.scaled(
                160, 160, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)))
            self.thumb_caption.setText("Original photo, from your ledger:" if original else
                                       "The face as it was tagged (signed record):")
            self.thumb_caption.setVisible(True)
        else:
            self.thumb.clear()
            self.thumb_caption.setVisible(False)
        self.face_import.setVisible(v.verdict == Verdict.UNKNOWN_OWNER)
        self.change_view.show_comparison(self.result.comparisons.get(k), v.change.reference)

    def cancel_work(self) -> None:
        """Stop waiting for the running check (a single image: it is not interrupted, its late
        result is dropped by the generation check)."""
        if self.task is not None:
            self.task.cancel()
        self.task = None

    # -- cards and reports ----------------------------------------------------------------------

    def import_card(self) -> None:
        """Import the owner's public card (on a worker, shared with the Identity tab); the
        contactsChanged signal it fires re-checks the image, and the import note stays above
        the new result."""
        path = prompts.open_file(self, "Owner's public card", prompts.CARD_FILTER)
        if path is None:
            return
        self.status.setText("Checking the card…")
        card_import.import_card(self.ctx, self, path, self._card_imported)

    def _card_imported(self, ok: bool, message: str) -> None:
        if ok:
            self._note = message
        self.status.setText(message if ok else f"{card_import.FAIL_TITLE}: {message}")

    def trust_signer(self) -> None:
        """Add a CA certificate to the trusted Content Credentials signers (on a worker); the
        image is checked again, so its manifest may now read as trusted."""
        path = prompts.open_file(self, "CA certificate to trust", prompts.CERT_FILTER)
        if path is not None:
            self.add_trust_anchor(path)

    def add_trust_anchor(self, path: Path) -> Task:
        def done(anchor) -> None:
            self._note = (f"Trusting Content Credentials signed under {anchor.label} "
                          f"(fingerprint {anchor.fingerprint}).")
            self.status.setText(self._note)
            self.ctx.contactsChanged.emit()  # who is trusted changed: re-check the image

        return self.ctx.submit(
            lambda r, t: self.ctx.ledger.credentials.add_anchor(read_file(path)),
            on_result=done,
            on_error=lambda m, d: show_error(self, "Certificate not trusted", m, d),
            name="trust", owner=self)

    def export_report_dialog(self) -> None:
        if self.result is None:
            return
        suggested = f"{self.result.path.stem}-verification.html"
        path = prompts.save_file(self, "Save verification report", suggested, REPORT_FILTER)
        if path is not None:
            self.export_report(path)

    def export_report(self, path: Path) -> Task | None:
        """Write the report on a worker (.json -> JSON, anything else -> HTML)."""
        if self.result is None:
            return None
        report = self.result.report
        return self.ctx.submit(lambda r, t: write_report(path, [report], overwrite=True),
                               on_result=lambda _: self.status.setText(f"Report saved: {path}"),
                               on_error=lambda m, d: show_error(self, "Report not saved", m, d),
                               name="report", owner=self)
