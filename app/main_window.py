"""The main window: five tabs, a menu with shortcuts, model status, remembered geometry."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, QUrl
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from app import prompts
from app.context import AppContext, ModelsState
from app.history_tab import HistoryTab
from app.icons import icon
from app.identity_tab import IdentityTab
from app.protect_tab import ProtectTab
from app.settings_tab import SettingsTab
from app.verify_tab import VerifyTab
from engine import __version__, paths

log = logging.getLogger(__name__)

MODEL_STATE_TEXT = {
    ModelsState.IDLE: "Models not loaded yet",
    ModelsState.LOADING: "Loading face detector and tag models…",
    ModelsState.READY: "Models ready",
    ModelsState.FAILED: "Models could not be loaded: {error}",
}


def window_state_store() -> QSettings:
    """Window geometry lives with the other settings (so FAKETAGGER_HOME covers it too)."""
    return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext, log_file: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.log_file = log_file
        self.setWindowTitle("FakeTagger")
        self.setWindowIcon(icon("app"))
        self.setMinimumSize(760, 520)
        self.resize(1120, 760)

        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Sections")
        self.tabs.setDocumentMode(True)
        self.protect_tab = ProtectTab(ctx)
        self.verify_tab = VerifyTab(ctx)
        self.identity_tab = IdentityTab(ctx)
        self.history_tab = HistoryTab(ctx)
        self.settings_tab = SettingsTab(ctx)
        for widget, name, tip in (
            (self.protect_tab, "Protect", "Tag the faces in your photos"),
            (self.verify_tab, "Verify", "Check the tags in a suspect image"),
            (self.identity_tab, "Identity", "Your key, backups and contacts"),
            (self.history_tab, "History", "What you have tagged"),
            (self.settings_tab, "Settings", "Device, detection and output defaults"),
        ):
            k = self.tabs.addTab(widget, icon(name.lower()), name)
            self.tabs.setTabToolTip(k, tip)
        self.setCentralWidget(self.tabs)

        self.model_label = QLabel()
        self.model_label.setAccessibleName("Model status")
        self.statusBar().addPermanentWidget(self.model_label)
        ctx.modelsStateChanged.connect(self._models_state)
        self._models_state(ctx.models_state)
        self._build_menu()
        self._restore_state()

    # -- menu ---------------------------------------------------------------------------------

    def _action(self, text: str, slot, shortcut=None, icon_name: str = "") -> QAction:
        act = QAction(icon(icon_name), text, self) if icon_name else QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        return act

    def _build_menu(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self._action("&Open photos…", self.open_files,
                                    QKeySequence.StandardKey.Open, "add"))
        file.addAction(self._action("&Paste image", self.paste, QKeySequence.StandardKey.Paste))
        file.addSeparator()
        file.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))
        view = bar.addMenu("&View")
        for k, name in enumerate(("Protect", "Verify", "Identity", "History", "Settings")):
            view.addAction(self._action(name, lambda _=False, k=k: self.tabs.setCurrentIndex(k),
                                        f"Ctrl+{k + 1}"))
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("Open &log folder",
                                         lambda: self._reveal(paths.log_dir())))
        help_menu.addAction(self._action("&About FakeTagger", self.about,
                                         QKeySequence.StandardKey.HelpContents))

    def _current_handler(self, name: str):
        """The current tab's `open_files`/`paste`, else the Protect tab's (the main job)."""
        tab = self.tabs.currentWidget()
        if not hasattr(tab, name):
            self.tabs.setCurrentWidget(self.protect_tab)
            tab = self.protect_tab
        return getattr(tab, name)

    def open_files(self) -> None:
        self._current_handler("open_files")()

    def open_paths(self, paths: list[Path]) -> None:
        """Photos handed to the app at start ("Open with FakeTagger"): checked on the Verify tab,
        what opening a suspect image asks for (protecting is a choice made on the Protect tab)."""
        self.tabs.setCurrentWidget(self.verify_tab)
        self.verify_tab.take_paths(paths)

    def paste(self) -> None:
        # A focused text field keeps its own Ctrl+V (the shortcut is window-wide).
        focus = self.focusWidget()
        if focus is not None and hasattr(focus, "paste") and focus.metaObject().className() in (
                "QLineEdit", "QPlainTextEdit", "QTextEdit", "QSpinBox"):
            focus.paste()
            return
        self._current_handler("paste")()

    def about(self) -> None:
        QMessageBox.about(
            self, "About FakeTagger",
            f"<b>FakeTagger {__version__}</b><p>Hides an invisible, signed owner tag in each face "
            "of your photos, and checks the tags in suspect images, offline.</p>"
            "<p>Method after <i>FakeTagger: Robust Safeguards against DeepFake Dissemination via "
            "Provenance Tracking</i> (Wang et al., ACM MM 2021).</p>"
            f"<p>Log file: {self.log_file or paths.log_dir()}</p>")

    @staticmethod
    def _reveal(folder: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # -- start-up and state ---------------------------------------------------------------------

    def start(self) -> None:
        """Warm the models up on a worker, greet a first-time user, and offer to finish a
        protect job that a crash or a kill interrupted."""
        self.ctx.warm_up()
        self.offer_resume()
        if self.ctx.identity() is None:
            from app.welcome import WelcomeDialog

            self.welcome = WelcomeDialog(self.ctx, self)
            self.welcome.rejected.connect(lambda: self.statusBar().showMessage(
                "No identity yet: create one on the Identity tab before protecting photos."))
            self.welcome.open()

    def offer_resume(self) -> None:
        from engine.run.jobs import discard_job, interrupted_jobs

        jobs = interrupted_jobs(self.ctx.ledger)
        if not jobs:
            return
        job = jobs[0]
        if prompts.confirm(self, "Finish the interrupted job?", (
                f"A protect job was interrupted on {job.created[:16].replace('T', ' ')}: "
                f"{job.finished} of {job.total} photos done. Finish it now? (No: the photos "
                "already tagged stay tagged; the rest is left as it is.)")):
            self.tabs.setCurrentWidget(self.protect_tab)
            self.protect_tab.resume(job.id)
        else:
            discard_job(self.ctx.ledger, job.id)

    def _models_state(self, state: str) -> None:
        text = MODEL_STATE_TEXT[ModelsState(state)]
        self.model_label.setText(text.format(error=self.ctx.models_error))

    def _restore_state(self) -> None:
        store = window_state_store()
        geometry = store.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        tab = store.value("tab", 0, type=int)
        if 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)

    def save_state(self) -> None:
        store = window_state_store()
        store.setValue("geometry", self.saveGeometry())
        store.setValue("tab", self.tabs.currentIndex())
        store.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        for tab in (self.protect_tab, self.verify_tab):
            tab.cancel_work()
        super().closeEvent(event)
