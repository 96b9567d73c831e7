"""Start the desktop app: Qt application, logging, crash hook, context, first-start welcome."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox

from app.crash import install_excepthook, setup_logging
from engine import __version__
from engine.errors import FakeTaggerError

log = logging.getLogger(__name__)


def run_gui(argv: list[str] | None = None, files: list[str] | None = None) -> int:
    """Open the main window; `files` (the desktop build's "Open with FakeTagger") are checked on
    the Verify tab once the window is up."""
    try:
        log_file: Path | None = setup_logging()
    except FakeTaggerError:  # an unusable data folder: the ledger check below says so
        log_file = None
    log.info("FakeTagger %s starting", __version__)
    app = QApplication.instance() or QApplication(argv or ["faketagger"])
    app.setApplicationName("FakeTagger")
    app.setOrganizationName("FakeTagger")
    app.setApplicationVersion(__version__)
    install_excepthook(log_file)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl+C in the terminal still quits

    from app.context import AppContext
    from app.icons import icon
    from app.main_window import MainWindow

    app.setWindowIcon(icon("app"))
    try:
        ctx = AppContext()
    except FakeTaggerError as err:  # damaged ledger, unusable data folder: say so, change nothing
        log.error("cannot start: %s", err)
        QMessageBox.critical(None, "FakeTagger cannot start", str(err))
        return 1
    window = MainWindow(ctx, log_file=log_file)
    window.show()
    log.info("window shown")  # installer/smoke_test.sh times start-up by this and "models: ready"
    window.start()  # warm-up on a worker; welcome dialog on first start
    if files:
        window.open_paths([Path(f) for f in files])
    code = app.exec()
    ctx.shutdown()
    return code
