"""Settings tab: compute device, face detection threshold, where and how tagged copies are
written, and the tag strength. Stored through ``ctx.apply_settings`` (a JSON file in the config
folder, see engine.settings), which also tells the other tabs and reloads the models when the
device or threshold changed.

The device list comes from the engine (:func:`engine.model.registry.available_devices`), so the
tab never offers CUDA on a machine where ``pick_device`` would refuse it.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import prompts
from app.context import AppContext
from engine.limits import JPEG_QUALITY, STRENGTH, THRESHOLD
from engine.model.registry import available_devices
from engine.photos import OutputFormat
from engine.settings import AppSettings

FORMAT_CHOICES = ((OutputFormat.KEEP, "Same as the original"), (OutputFormat.JPEG, "JPEG"),
                  (OutputFormat.PNG, "PNG (lossless)"))


def _hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setEnabled(False)  # greyed: secondary text in both light and dark palettes
    return label


class SettingsTab(QWidget):
    """Edit a copy of ``ctx.settings``; Apply stores it. ``applied`` fires after each store."""

    applied = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._loading = False

        self.device = QComboBox()
        self.device.setAccessibleName("Compute device")
        for key, label in available_devices():
            self.device.addItem(label, key)
        if self.device.findData("cuda") < 0:  # shown, but greyed out, so people know why
            self.device.addItem("CUDA (no usable GPU found)", "cuda")
            item = self.device.model()
            assert isinstance(item, QStandardItemModel)
            item.item(self.device.count() - 1).setEnabled(False)

        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(THRESHOLD.lo, THRESHOLD.hi)  # engine.limits owns the ranges
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        self.threshold.setAccessibleName("Face detection threshold")

        self.output_dir = QLineEdit()
        self.output_dir.setPlaceholderText("A “tagged” folder next to the photos")
        self.output_dir.setAccessibleName("Default output folder")
        self.output_dir.setClearButtonEnabled(True)
        self.browse_button = QPushButton("&Browse…")
        self.browse_button.clicked.connect(self.browse_output_dir)
        out_row = QHBoxLayout()
        out_row.setContentsMargins(0, 0, 0, 0)
        out_row.addWidget(self.output_dir, 1)
        out_row.addWidget(self.browse_button)

        self.output_format = QComboBox()
        self.output_format.setAccessibleName("Output format")
        for key, label in FORMAT_CHOICES:
            self.output_format.addItem(label, key.value)
        self.jpeg_quality = QSpinBox()
        self.jpeg_quality.setRange(int(JPEG_QUALITY.lo), int(JPEG_QUALITY.hi))
        self.jpeg_quality.setSuffix(" %")
        self.jpeg_quality.setAccessibleName("JPEG quality")

        self.strength = QDoubleSpinBox()
        self.strength.setRange(STRENGTH.lo, STRENGTH.hi)
        self.strength.setSingleStep(0.1)
        self.strength.setDecimals(2)
        self.strength.setPrefix("× ")
        self.strength.setAccessibleName("Tag strength")

        self.c2pa = QCheckBox("Sign &Content Credentials (C2PA) into each tagged copy")
        self.c2pa.setAccessibleName("Sign Content Credentials")
        self.small_thumbnails = QCheckBox("S&mall face thumbnails in the signed records (48 px)")
        self.small_thumbnails.setAccessibleName("Small face thumbnails")

        for w in (self.threshold, self.jpeg_quality, self.strength):
            w.setMaximumWidth(140)
        for w in (self.device, self.output_format):
            w.setMaximumWidth(420)

        engine_box = QGroupBox("Processing")
        form = QFormLayout(engine_box)
        form.addRow("&Device:", self.device)
        form.addRow("", _hint("Auto uses the GPU when one is usable, otherwise the CPU."))
        form.addRow("Face &detection threshold:", self.threshold)
        form.addRow("", _hint("Higher skips doubtful detections (fewer false faces); lower "
                              "finds more faces, including some that are not faces."))
        output_box = QGroupBox("Tagged copies")
        form2 = QFormLayout(output_box)
        out_label = QLabel("Default &output folder:")
        out_label.setBuddy(self.output_dir)
        form2.addRow(out_label, out_row)
        form2.addRow("&Format:", self.output_format)
        form2.addRow("JPEG &quality:", self.jpeg_quality)
        form2.addRow("Tag &strength:", self.strength)
        form2.addRow("", _hint("1.0 is what the model was trained and measured at. Higher "
                               "survives heavier editing but may become visible; lower is even "
                               "less visible but easier to destroy. Originals are never changed."))
        form2.addRow("", self.c2pa)
        form2.addRow("", _hint("Off by default. A signed manifest tells news sites and "
                               "fact-checking tools that you tagged the photo, but it carries "
                               "your name and key ID inside every copy, readable by anyone. "
                               "The invisible tag works without it."))
        form2.addRow("", self.small_thumbnails)
        form2.addRow("", _hint("Each tag's signed record holds a thumbnail of the face, and your "
                               "card carries those records. At the standard 112 px, Verify can "
                               "tell whether a face was edited or replaced; at 48 px a card "
                               "shows less of each face, and that check says \"unknown\"."))

        self.apply_button = QPushButton("&Apply")
        self.apply_button.setDefault(True)
        self.revert_button = QPushButton("Re&vert")
        self.reset_button = QPushButton("Reset to &defaults")
        self.apply_button.clicked.connect(self.apply)
        self.revert_button.clicked.connect(self.load)
        self.reset_button.clicked.connect(self.reset_to_defaults)
        self.status = QLabel()
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        for b in (self.reset_button, self.revert_button, self.apply_button):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addWidget(engine_box)
        layout.addWidget(output_box)
        layout.addStretch(1)
        layout.addLayout(buttons)

        for signal in (self.device.currentIndexChanged, self.threshold.valueChanged,
                       self.output_dir.textChanged, self.output_format.currentIndexChanged,
                       self.jpeg_quality.valueChanged, self.strength.valueChanged,
                       self.c2pa.toggled, self.small_thumbnails.toggled):
            signal.connect(self._changed)
        ctx.settingsChanged.connect(self.load)
        self.load()

    # -- form <-> AppSettings -----------------------------------------------------------------

    def load(self) -> None:
        """Show ``ctx.settings`` (also after another part of the app changed them)."""
        s = self.ctx.settings
        self._loading = True
        try:
            index = self.device.findData(s.device)
            item = self.device.model().index(index, 0) if index >= 0 else None
            usable = item is not None and bool(item.flags() & Qt.ItemFlag.ItemIsEnabled)
            self.device.setCurrentIndex(index if usable else self.device.findData("auto"))
            self.threshold.setValue(s.threshold)
            self.output_dir.setText(s.output_dir)
            self.output_format.setCurrentIndex(max(self.output_format.findData(s.output_format), 0))
            self.jpeg_quality.setValue(s.jpeg_quality)
            self.strength.setValue(s.strength)
            self.c2pa.setChecked(s.c2pa)
            self.small_thumbnails.setChecked(s.small_thumbnails)
        finally:
            self._loading = False
        self._changed()

    def form_settings(self) -> AppSettings:
        """The settings as the form shows them (fields the form does not edit are kept)."""
        return replace(
            self.ctx.settings,
            device=self.device.currentData(),
            threshold=round(self.threshold.value(), 2),
            output_dir=self.output_dir.text().strip(),
            output_format=OutputFormat(self.output_format.currentData()),
            jpeg_quality=self.jpeg_quality.value(),
            strength=round(self.strength.value(), 2),
            c2pa=self.c2pa.isChecked(),
            small_thumbnails=self.small_thumbnails.isChecked(),
        )

    def _changed(self) -> None:
        if self._loading:
            return
        self.jpeg_quality.setEnabled(self.output_format.currentData() == OutputFormat.JPEG)
        dirty = self.form_settings() != self.ctx.settings
        self.apply_button.setEnabled(dirty)
        self.revert_button.setEnabled(dirty)
        self.status.setText("Unsaved changes" if dirty else "")

    # -- actions ------------------------------------------------------------------------------

    def apply(self) -> None:
        self.ctx.apply_settings(self.form_settings())  # emits settingsChanged -> load()
        self.status.setText("Saved")
        self.applied.emit()

    def reset_to_defaults(self) -> None:
        defaults = AppSettings()
        self.ctx.apply_settings(defaults)
        self.status.setText("Defaults restored and saved")
        self.applied.emit()

    def browse_output_dir(self) -> None:
        folder = prompts.choose_dir(self, "Default folder for tagged copies",
                                    self.output_dir.text())
        if folder is not None:
            self.output_dir.setText(str(folder))
