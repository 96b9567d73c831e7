"""Friendly error dialogs: one sentence for the person, the technical details folded away.

Dialogs are shown with ``open()`` (window-modal, non-blocking) rather than ``exec()``: the caller
keeps running, worker results keep arriving, and tests can find and close the box with qtbot.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

log = logging.getLogger(__name__)

#: Boxes without a parent would be garbage-collected at once; they are kept here until closed.
_OPEN: list[QMessageBox] = []


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """Show an error box (returned, so tests and callers can wait on or close it)."""
    log.warning("%s: %s", title, message)
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("errorBox")
    box.setAccessibleName(title)
    if details:
        box.setDetailedText(details)
    _keep(box)
    box.open()
    return box


def show_info(parent: QWidget | None, title: str, message: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, title, message,
                      QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("infoBox")
    _keep(box)
    box.open()
    return box


def _keep(box: QMessageBox) -> None:
    _OPEN.append(box)
    box.finished.connect(lambda _=0: _OPEN.remove(box) if box in _OPEN else None)


def open_boxes() -> list[QMessageBox]:
    """Message boxes currently shown, each once (tests use this to assert that an error was
    reported). Every shown box is a window, parented or not, so the top-level widgets list all
    of them; ``_OPEN`` only keeps parentless ones alive and is not a second place to look."""
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.isVisible()]
