"""Start-up pieces: settings file, the entry point's CLI/GUI split, logging and the crash hook."""

from __future__ import annotations

import json
import logging
import sys
import threading

from engine.settings import AppSettings, settings_path


def test_settings_round_trip_and_bad_values(gui_home):
    assert AppSettings.load() == AppSettings()  # no file yet: defaults
    s = AppSettings(device="cpu", threshold=0.95, output_dir="/tmp/x", output_format="png",
                    jpeg_quality=80, strength=1.5)
    s.save()
    assert AppSettings.load() == s
    assert not list(settings_path().parent.glob(".*.part"))
    settings_path().write_text(json.dumps({"device": "tpu", "threshold": "high",
                                           "jpeg_quality": 500, "extra": 1}))
    assert AppSettings.load() == AppSettings()
    settings_path().write_text("{not json")
    assert AppSettings.load() == AppSettings()


def test_launch_with_arguments_is_the_cli(gui_home, capsys):
    from app.launch import main

    assert main(["identity", "list"]) == 0
    assert "No identity yet" in capsys.readouterr().out


def test_launch_without_arguments_opens_the_window(qapp, gui_home, monkeypatch):
    """`faketagger` alone runs the real desktop start-up (app.gui.run_gui): the main window is
    shown and the welcome dialog greets a first-time user; a timer then quits the event loop."""
    import signal

    from PySide6.QtCore import QTimer

    from app.launch import main
    from app.main_window import MainWindow

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run_gui installs its crash hook
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's Ctrl+C handling
    shown: list[tuple[str, bool]] = []

    def look() -> None:
        for w in qapp.topLevelWidgets():
            if isinstance(w, MainWindow) and w.isVisible():
                shown.append((w.windowTitle(), w.welcome.isVisible()))
                w.close()
        qapp.quit()  # one quit only: the last window closing must not quit as well

    quit_on_close = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    QTimer.singleShot(0, look)
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        assert main([]) == 0
    finally:
        qapp.setQuitOnLastWindowClosed(quit_on_close)
        for h in [h for h in root.handlers if h not in before]:  # run_gui's log file handler
            root.removeHandler(h)
            h.close()
    assert shown == [("FakeTagger", True)]


def test_crash_hook_logs_and_shows_dialog(qapp, gui_home, qtbot):
    from app.crash import install_excepthook, setup_logging
    from app.errors_ui import open_boxes

    log_file = setup_logging()
    old, old_thread = sys.excepthook, threading.excepthook
    try:
        install_excepthook(log_file)
        try:
            raise RuntimeError("boom in a slot")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook, threading.excepthook = old, old_thread
    [box] = [b for b in open_boxes() if b.windowTitle() == "FakeTagger hit a problem"]
    assert "boom in a slot" in box.detailedText() and str(log_file) in box.text()
    for h in logging.getLogger().handlers:
        h.flush()
    assert "boom in a slot" in log_file.read_text(encoding="utf-8")
    box.close()
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "baseFilename", "") == str(log_file)]:
        root.removeHandler(h)
        h.close()


def test_main_window_menu_state_and_no_welcome_when_identity_exists(identity_ctx, qtbot):
    from PySide6.QtGui import QKeySequence

    from app.main_window import MainWindow, window_state_store

    window = MainWindow(identity_ctx)
    qtbot.addWidget(window)
    window.show()
    window.start()
    assert not hasattr(window, "welcome")  # identity exists: straight to work
    assert identity_ctx.models_state == "loading"  # start() returned at once; loading goes on
    assert window.model_label.text().startswith("Loading")
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&View", "&Help"]
    shortcuts = {a.text(): a.shortcut() for m in window.menuBar().actions()
                 for a in m.menu().actions()}
    assert shortcuts["&Open photos…"] == QKeySequence(QKeySequence.StandardKey.Open)
    assert shortcuts["&Paste image"] == QKeySequence(QKeySequence.StandardKey.Paste)
    assert [window.tabs.tabText(k) for k in range(window.tabs.count())] == [
        "Protect", "Verify", "Identity", "History", "Settings"]
    window.tabs.setCurrentIndex(1)
    window.resize(770, 560)  # the offscreen screen is 800x600; restoreGeometry keeps it on it
    qtbot.waitUntil(lambda: identity_ctx.models_state == "ready", timeout=90_000)
    window.close()
    assert window_state_store().value("tab", type=int) == 1
    again = MainWindow(identity_ctx)
    qtbot.addWidget(again)
    assert again.tabs.currentIndex() == 1 and again.size().width() == 770


def test_welcome_restores_a_key_backup(ctx, qtbot, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QDialog

    from app.welcome import WelcomeDialog
    from engine.store.ledger import Ledger

    with Ledger(tmp_path / "old-pc" / "ledger.sqlite3") as old:
        ident = old.create_identity("Alice", "old computer passphrase")
        backup = tmp_path / "alice.backup.json"
        backup.write_bytes(old.export_backup(ident.key_id))
    dialog = WelcomeDialog(ctx)
    qtbot.addWidget(dialog)
    dialog.open()
    dialog.restore_choice.setChecked(True)
    assert dialog.ok_button.text() == "Restore"
    dialog.backup_edit.setText(str(backup))
    dialog.restore_pass.setText("wrong passphrase")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.ok_button.isEnabled(), timeout=30_000)
    assert "passphrase" in dialog.message.text().lower() and ctx.identity() is None
    dialog.restore_pass.setText("old computer passphrase")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result() == QDialog.DialogCode.Accepted, timeout=30_000)
    assert ctx.identity().key_id == ident.key_id
    assert ctx.ledger.unlock(None, "old computer passphrase").name == "Alice"
