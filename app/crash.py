"""Logging to a file in the user log folder, and a crash dialog instead of a silent exit.

PySide6 calls `sys.excepthook` for exceptions raised in slots; the default hook only prints to a
terminal the user never sees, so the app would look like it ignored the click (or vanished).
Ours logs the traceback and shows it, with the log file's path, in a dialog.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

from engine import paths

log = logging.getLogger("faketagger")
LOG_NAME = "faketagger.log"


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to <user log dir>/faketagger.log (rotated at 1 MB, 3 kept); returns the file path."""
    path = paths.log_dir() / LOG_NAME
    root = logging.getLogger()
    if not any(isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path
               for h in root.handlers):
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    return path


def format_exception(exc_type: type[BaseException], exc: BaseException,
                     tb: TracebackType | None) -> str:
    return "".join(traceback.format_exception(exc_type, exc, tb))


def install_excepthook(log_file: Path | None = None) -> None:
    """Unhandled exceptions in the GUI thread -> log + crash dialog; the app keeps running."""

    def hook(exc_type: type[BaseException], exc: BaseException,
             tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        details = format_exception(exc_type, exc, tb)
        log.critical("unhandled exception\n%s", details)
        try:
            from app.errors_ui import show_error

            where = f"\n\nThe details are also in the log file:\n{log_file}" if log_file else ""
            show_error(None, "FakeTagger hit a problem",
                       "Something went wrong that FakeTagger did not expect. Your photos and keys "
                       f"are safe; you can keep working or restart the app.{where}", details)
        except Exception:  # noqa: BLE001 - the hook itself must never raise
            sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = hook

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        # Worker code runs inside app.workers.Task, which reports its own errors; this only
        # catches stray threads, whose failure would otherwise vanish without a trace.
        log.critical("unhandled exception in thread %s\n%s",
                     args.thread.name if args.thread else "?",
                     format_exception(args.exc_type, args.exc_value, args.exc_traceback))

    threading.excepthook = thread_hook
