"""Icons drawn for FakeTagger (assets/icons/*.svg), tinted to the current palette.

Line icons use ``currentColor``; it is replaced by the palette's text colour at load time, so the
icons follow a light or dark system theme. Each is rendered at several sizes up to 128 px, so Qt
picks a sharp one on high-DPI screens.
"""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from engine.paths import assets_dir

ICON_DIR = assets_dir() / "icons"
SIZES = (16, 24, 32, 48, 64, 128)


def _text_colour() -> str:
    app = QGuiApplication.instance()
    if app is None:
        return "#444444"
    return QGuiApplication.palette().color(QPalette.ColorRole.WindowText).name()


def icon(name: str) -> QIcon:
    """The named icon, or an empty QIcon if the file is missing (never raises)."""
    return _icon(name, _text_colour())


@cache
def _icon(name: str, colour: str) -> QIcon:
    path = ICON_DIR / f"{name}.svg"
    if not path.exists():
        return QIcon()
    svg = path.read_text(encoding="utf-8").replace("currentColor", colour)
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    result = QIcon()
    for size in SIZES:
        img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        painter = QPainter(img)
        renderer.render(painter)
        painter.end()
        result.addPixmap(QPixmap.fromImage(img))
    return result
