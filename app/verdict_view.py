"""Pieces of the Verify tab that only present a verdict: colours, legend, per-face details."""

from __future__ import annotations

import html

from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from engine.change.verdict import KIND_COLOURS
from engine.display import format_when
from engine.verify import FaceVerdict, Verdict
from engine.verify.report import VERDICT_COLOURS, VERDICT_LABELS


def verdict_colour(verdict: str) -> QColor:
    return QColor(VERDICT_COLOURS.get(verdict, "#757575"))


def chip(verdict: str, size: int = 14) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(verdict_colour(verdict))
    return QIcon(pix)


class Legend(QWidget):
    """Colour chip + label for every verdict, so the boxes can be read without guessing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for row, (verdict, label) in enumerate(VERDICT_LABELS.items()):
            sw = QLabel()
            sw.setPixmap(chip(verdict).pixmap(14, 14))
            text = QLabel(label)
            text.setAccessibleName(f"Legend: {label}")
            grid.addWidget(sw, row // 3, 2 * (row % 3))
            grid.addWidget(text, row // 3, 2 * (row % 3) + 1)
        grid.setColumnStretch(6, 1)


def face_title(k: int, v: FaceVerdict) -> str:
    who = f" — {v.owner_name}" if v.owner_name else ""
    return f"Face {k + 1}: {VERDICT_LABELS.get(v.verdict, v.verdict)}{who}"


def face_details_html(v: FaceVerdict, original: str | None = None) -> str:
    """Rich text for the details panel: every field a journalist would quote."""
    esc = html.escape
    rows = [("Verdict", f'<b style="color:{VERDICT_COLOURS.get(v.verdict, "#757575")}">'
                        f"{esc(VERDICT_LABELS.get(v.verdict, v.verdict))}</b>"),
            ("Why", esc(v.reason))]
    if v.owner_name:
        rows.append(("Owner", esc(v.owner_name) + (" (you)" if v.own else "")))
    if v.owner_key_id is not None:
        rows.append(("Key ID", f"<code>{esc(str(v.owner_key_id))}</code>"))
    if v.serial is not None:
        rows.append(("Tag serial", str(v.serial)))
    if v.record is not None:
        rows.append(("Tagged on", esc(format_when(v.record.created))))
        rows.append(("Signature", "valid (Ed25519 tag record)"))
    if v.file_match:
        rows.append(("File", "exactly the file the owner tagged (same SHA-256)"))
    if v.verdict != Verdict.NO_TAG:
        rows.append(("Confidence", f"{v.confidence:.2f}"))
    ch = v.change
    rows.append(("Face change", f'<b style="color:{KIND_COLOURS[ch.kind]}">{esc(ch.label)}</b>: '
                                f"{esc(ch.text)}"))
    if original:
        rows.append(("Original photo", esc(original)))
    return "<table>" + "".join(f"<tr><td><i>{a}</i>&nbsp;&nbsp;</td><td>{b}</td></tr>"
                               for a, b in rows) + "</table>"

