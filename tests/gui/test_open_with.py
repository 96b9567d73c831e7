"""Photos handed to the app at start ("Open with FakeTagger" in a file manager, installer/linux/
faketagger.desktop and the macOS bundle's document types) are checked on the Verify tab."""

from __future__ import annotations

from tests.gui.helpers import copy_photo, wait_idle


def test_open_paths_checks_the_photo_on_the_verify_tab(ctx, qtbot, tmp_path):
    from app.main_window import MainWindow

    photo = copy_photo("two_faces.jpg", tmp_path / "in")
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.open_paths([photo])
    assert window.tabs.currentWidget() is window.verify_tab
    wait_idle(qtbot, window.verify_tab)
    assert window.verify_tab.path == photo
    assert window.verify_tab.result is not None and len(window.verify_tab.result.faces) == 2
