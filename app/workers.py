"""Run engine work off the GUI thread; results come back to widgets only through Qt signals.

A `Task` wraps a plain callable ``fn(report, token)``: ``report(obj)`` posts a progress object
(for example an engine ``Progress``) and ``token`` is the engine ``CancelToken`` the pipeline
checks between steps. The signals live on a separate QObject created in the GUI thread, so when
they are emitted from the pool thread Qt queues them to the GUI thread (see `AppContext.submit`,
which connects them to a GUI-thread relay rather than to bare lambdas, whose thread affinity is
not guaranteed).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Signal

from engine.errors import FakeTaggerError
from engine.pipeline import CancelToken

log = logging.getLogger(__name__)

TaskFn = Callable[[Callable[[object], None], CancelToken], Any]


class TaskSignals(QObject):
    result = Signal(object)
    error = Signal(str, str)  # message for a person, details (traceback) for the details box
    progress = Signal(object)
    finished = Signal()


class Task(QRunnable):
    """One unit of background work. Keep a reference until `finished` (AppContext does)."""

    def __init__(self, fn: TaskFn, name: str = "") -> None:
        super().__init__()
        self.setAutoDelete(False)  # the Python side owns it; Qt must not delete it under us
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "task")
        self.token = CancelToken()
        self.signals = TaskSignals()

    def cancel(self) -> None:
        """Ask the work to stop at its next check; `finished` still follows."""
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled

    def run(self) -> None:  # runs on a pool thread
        try:
            value = self.fn(self.signals.progress.emit, self.token)
        except FakeTaggerError as err:
            # Expected, user-caused failures: the engine's message is already written for a person.
            log.info("%s failed: %s", self.name, err)
            self.signals.error.emit(str(err), "")
        except Exception as err:  # noqa: BLE001 - anything else is a bug: show it, with details
            log.exception("%s crashed", self.name)
            self.signals.error.emit(f"Unexpected error: {err}", traceback.format_exc())
        else:
            self.signals.result.emit(value)
        finally:
            self.signals.finished.emit()
