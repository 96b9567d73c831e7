"""The change-passphrase dialog: current passphrase, then the new one twice with a strength hint.

The "new twice + hint" part is :class:`app.passphrase.NewPassphraseForm`, the same form the
welcome dialog uses, so creating and changing a passphrase cannot drift apart.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app.passphrase import NewPassphraseForm


class ChangePassphraseDialog(QDialog):
    """Collects (current, new). The caller runs the slow scrypt re-encryption on a worker and
    reports a wrong current passphrase from there, so this dialog never blocks on crypto."""

    def __init__(self, identity_label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Change passphrase")
        self.setMinimumWidth(440)
        intro = QLabel(
            f"Change the passphrase that protects the key of <b>{html.escape(identity_label)}</b>.<br>"
            "Backups made earlier still open with the passphrase they were made with."
        )
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        self.old = QLineEdit()
        self.old.setEchoMode(QLineEdit.EchoMode.Password)
        self.old.setAccessibleName("Current passphrase")
        self.new = NewPassphraseForm()
        self.problem = QLabel()
        self.problem.setObjectName("changePassphraseProblem")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Change passphrase")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("C&urrent passphrase:", self.old)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.new)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        for edit in (self.old, self.new.first, self.new.second):
            edit.textChanged.connect(self._update_ok)
        self._update_ok()

    def _update_ok(self) -> None:
        problem = "Enter your current passphrase." if not self.old.text() else self.new.problem()
        # Only a mismatch is worth shouting about while typing; "fill this in" is implied.
        self.problem.setText(problem if self.new.second.text() else "")
        self.ok_button.setEnabled(not problem)

    def values(self) -> tuple[str, str]:
        """(current, new) passphrases."""
        return self.old.text(), self.new.passphrase()
