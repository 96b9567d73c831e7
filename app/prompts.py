"""Blocking one-question dialogs (file pickers, yes/no, a secret) behind tiny functions.

Why a module of its own: QFileDialog/QMessageBox/QInputDialog static calls run a nested event loop
and wait for a person. Tabs call them only through these functions, always as ``prompts.name(...)``
so that a test can replace exactly the dialog call (monkeypatch ``app.prompts.open_file`` etc.)
while every other part of the flow (widgets, worker threads, the engine, the ledger) stays real.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox, QWidget

CARD_FILTER = "FakeTagger public cards (*.card.json *.json);;All files (*)"
CERT_FILTER = "CA certificates (*.pem *.crt *.cer *.der);;All files (*)"
BACKUP_FILTER = "FakeTagger key backups (*.backup.json *.json);;All files (*)"
JSON_FILTER = "JSON files (*.json);;All files (*)"


def open_file(parent: QWidget | None, title: str, file_filter: str) -> Path | None:
    """An existing file chosen by the user, or None if cancelled."""
    name, _ = QFileDialog.getOpenFileName(parent, title, "", file_filter)
    return Path(name) if name else None


def save_file(parent: QWidget | None, title: str, suggested: str, file_filter: str) -> Path | None:
    """Where to write a new file (the dialog itself asks before overwriting), or None."""
    name, _ = QFileDialog.getSaveFileName(parent, title, suggested, file_filter)
    return Path(name) if name else None


def choose_dir(parent: QWidget | None, title: str, start: str = "") -> Path | None:
    """A folder chosen by the user, or None."""
    name = QFileDialog.getExistingDirectory(parent, title, start)
    return Path(name) if name else None


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    """Yes/No question, No being the default so Enter never destroys anything."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_secret(parent: QWidget | None, title: str, label: str) -> str | None:
    """A passphrase typed into a masked field, or None if cancelled."""
    text, ok = QInputDialog.getText(parent, title, label, QLineEdit.EchoMode.Password)
    return text if ok else None
