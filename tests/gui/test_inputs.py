"""Getting photos in: drag-and-drop of files and folders, pasting an image or copied files."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication, QImage

from app.protect_tab import ProtectTab
from app.verify_tab import VerifyTab
from engine.photos import load_photo
from tests.gui.conftest import DATA
from tests.gui.helpers import copy_photo, wait_idle


def _drop(widget, mime: QMimeData) -> None:
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def test_drop_files_folders_and_paste_into_protect(ctx, qtbot, tmp_path):
    tab = ProtectTab(ctx)
    qtbot.addWidget(tab)
    folder = tmp_path / "album"
    copy_photo("grace_hopper.jpg", folder)
    copy_photo("camera.jpg", folder / "sub")
    (folder / "notes.txt").write_text("not a photo")
    single = copy_photo("two_faces.jpg", tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder)), QUrl.fromLocalFile(str(single))])
    _drop(tab, mime)
    assert [p.name for p in tab.photos.paths()] == ["grace_hopper.jpg", "camera.jpg",
                                                   "two_faces.jpg"]
    _drop(tab, mime)  # dropping the same things again adds nothing
    assert len(tab.photos.paths()) == 3

    image = QImage(str(DATA / "grace_hopper.jpg"))
    QGuiApplication.clipboard().setImage(image)
    tab.paste()
    QGuiApplication.clipboard().clear()
    pasted = tab.photos.paths()[-1]
    assert len(tab.photos.paths()) == 4 and pasted.suffix == ".png"
    assert load_photo(pasted).rgb.shape[:2] == (image.height(), image.width())


def test_paste_copied_file_into_verify(ctx, qtbot, tmp_path):
    tab = VerifyTab(ctx)
    qtbot.addWidget(tab)
    photo = copy_photo("grace_hopper.jpg", tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    QGuiApplication.clipboard().setMimeData(mime)  # the clipboard owns it from here on
    del mime
    tab.paste()
    QGuiApplication.clipboard().clear()  # leaving it set crashes Qt's teardown at exit
    wait_idle(qtbot, tab)
    assert tab.result.path == photo and [f.verdict for f in tab.result.faces] == ["no_tag"]
    assert "1 face(s) checked" in tab.status.text() and tab.report_button.isEnabled()
