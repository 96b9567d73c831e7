"""Passphrase entry: the unlock prompt and the create-passphrase form with a strength hint.

The hint comes from engine.passphrase (shared with any other front end); it is a guide, never a
rule: the engine decides what passphrase is usable.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from engine.passphrase import LABELS, MIN_SCORE, passphrase_strength


class PassphraseDialog(QDialog):
    """Asks for the passphrase of the user's identity, showing why it is needed."""

    def __init__(self, parent: QWidget | None, reason: str, error: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Passphrase")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(reason))
        self.edit = QLineEdit()
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setAccessibleName("Passphrase")
        self.edit.setPlaceholderText("Your passphrase")
        lay.addWidget(self.edit)
        self.error = QLabel(error)
        self.error.setObjectName("passphraseError")
        self.error.setVisible(bool(error))
        self.error.setWordWrap(True)
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def passphrase(self) -> str:
        return self.edit.text()


class NewPassphraseForm(QWidget):
    """Passphrase twice plus a live strength hint; `problem()` says what is wrong, or ""."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.first = QLineEdit()
        self.second = QLineEdit()
        for edit, name in ((self.first, "New passphrase"), (self.second, "Repeat passphrase")):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setAccessibleName(name)
            edit.textChanged.connect(self._update)
        self.meter = QProgressBar()
        self.meter.setRange(0, 4)
        self.meter.setTextVisible(False)
        self.meter.setMaximumHeight(8)
        self.meter.setAccessibleName("Passphrase strength")
        self.hint = QLabel()
        self.hint.setObjectName("strengthHint")
        self.hint.setWordWrap(True)
        # Room for the longest advice (three lines), so the dialog never clips or jumps in size.
        self.hint.setMinimumHeight(self.hint.fontMetrics().lineSpacing() * 3)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        form.addRow("Passphrase:", self.first)
        form.addRow("Repeat:", self.second)
        form.addRow("Strength:", self.meter)
        form.addRow("", self.hint)
        self._update()

    def _update(self) -> None:
        score, advice = passphrase_strength(self.first.text())
        self.meter.setValue(score)
        self.meter.setAccessibleDescription(LABELS[score])
        self.hint.setText(advice)

    def passphrase(self) -> str:
        return self.first.text()

    def problem(self) -> str:
        if not self.first.text():
            return "Choose a passphrase."
        if self.first.text() != self.second.text():
            return "The two passphrases differ."
        if passphrase_strength(self.first.text())[0] < MIN_SCORE:
            return "This passphrase is too easy to guess; add more unrelated words."
        return ""
