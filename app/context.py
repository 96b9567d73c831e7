"""The one object every tab receives: the ledger, the settings, the pipeline and a thread pool.

Qt glue only. Detection, models and crypto stay in the engine; this class decides *where* engine
calls run (a pool thread, never the GUI thread, for anything slow) and tells the tabs, through
signals, when shared state changed so each can refresh itself without knowing about the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QCursor, QGuiApplication
from PySide6.QtWidgets import QWidget

from app.workers import Task, TaskFn
from engine.errors import FakeTaggerError
from engine.identity import Identity, UnlockedIdentity
from engine.pipeline import Pipeline
from engine.settings import AppSettings
from engine.store.ledger import Ledger

log = logging.getLogger(__name__)

#: ``provider(parent, reason, error) -> passphrase or None``: how a passphrase is obtained. The
#: default shows a dialog; tests and scripts inject one so nothing blocks on a modal exec().
PassphraseProvider = Callable[[QWidget | None, str, str], str | None]
MAX_TRIES = 5


class _Relay(QObject):
    """Lives in the GUI thread; receiving a Task's signals here makes Qt queue them to it.

    If the widget that asked for the work is gone by the time a result arrives (window closed,
    tab rebuilt), the result is dropped instead of calling into a deleted C++ object."""

    def __init__(self, on_result, on_error, on_progress, done, owner: QObject | None) -> None:
        super().__init__()
        self._on_result, self._on_error, self._on_progress, self._done = (
            on_result, on_error, on_progress, done)
        self._owner = owner

    def _alive(self) -> bool:
        return self._owner is None or shiboken6.isValid(self._owner)

    @Slot(object)
    def result(self, value: object) -> None:
        if self._on_result is not None and self._alive():
            self._on_result(value)

    @Slot(str, str)
    def error(self, message: str, details: str) -> None:
        if self._on_error is not None and self._alive():
            self._on_error(message, details)

    @Slot(object)
    def progress(self, value: object) -> None:
        if self._on_progress is not None and self._alive():
            self._on_progress(value)

    @Slot()
    def finished(self) -> None:
        self._done()


class ModelsState(StrEnum):
    """Where loading the detector and watermark models stands (the status bar shows it)."""

    IDLE = "idle"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"  # AppContext.models_error says why


class AppContext(QObject):
    identityChanged = Signal()  # identity created/restored/passphrase changed
    contactsChanged = Signal()  # card imported / contact removed
    ledgerChanged = Signal()  # new tag records (after protect)
    settingsChanged = Signal()
    modelsStateChanged = Signal(str)  # a ModelsState value; models_error says why it failed

    def __init__(self, ledger: Ledger | None = None, settings: AppSettings | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ledger = ledger if ledger is not None else Ledger()
        self.settings = settings if settings is not None else AppSettings.load()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)  # one long batch plus one preview/verify at a time
        self.passphrase_provider: PassphraseProvider | None = None
        self.models_state = ModelsState.IDLE
        self.models_error = ""  # why loading failed (ModelsState.FAILED)
        self._pipeline: Pipeline | None = None
        self._pipeline_key: tuple[str, float] | None = None
        self._pipeline_lock = threading.Lock()
        self._live: dict[Task, _Relay] = {}

    # -- state ------------------------------------------------------------------------------

    def identity(self) -> Identity | None:
        """The user's default identity, or None before the welcome dialog created one."""
        return self.ledger.default_identity()

    def pipeline(self) -> Pipeline:
        """The shared pipeline; rebuilt (cheaply: models are cached) when device or threshold
        change. Safe from any thread."""
        key = (self.settings.device, float(self.settings.threshold))
        with self._pipeline_lock:
            if self._pipeline is None or self._pipeline_key != key:
                self._pipeline = Pipeline(self.ledger, device=key[0], threshold=key[1])
                self._pipeline_key = key
            return self._pipeline

    def apply_settings(self, s: AppSettings) -> None:
        """Store new settings (atomically on disk) and tell every tab."""
        old = (self.settings.device, self.settings.threshold)
        self.settings = s.normalized()
        self.settings.save()
        self.settingsChanged.emit()
        if (self.settings.device, self.settings.threshold) != old:
            self.warm_up()

    # -- background work ----------------------------------------------------------------------

    def submit(self, fn: TaskFn, *, on_result: Callable[[Any], None] | None = None,
               on_error: Callable[[str, str], None] | None = None,
               on_progress: Callable[[Any], None] | None = None,
               name: str = "", owner: QObject | None = None) -> Task:
        """Run ``fn(report, token)`` on the pool; the callbacks run in the GUI thread, and only
        while `owner` (by default the QObject of a bound-method callback) still exists."""
        task = Task(fn, name)
        if owner is None:
            bound = [getattr(cb, "__self__", None) for cb in (on_result, on_error, on_progress)]
            owner = next((b for b in bound if isinstance(b, QObject)), None)
        # Forget the task one event-loop turn later, not inside the relay's own slot.
        relay = _Relay(on_result, on_error, on_progress,
                       lambda: QTimer.singleShot(0, lambda: self._live.pop(task, None)), owner)
        s = task.signals
        s.result.connect(relay.result)
        s.error.connect(relay.error)
        s.progress.connect(relay.progress)
        s.finished.connect(relay.finished)
        self._live[task] = relay
        self.pool.start(task)
        return task

    def busy(self) -> bool:
        return bool(self._live)

    def warm_up(self) -> Task:
        """Load MTCNN and the watermark models on a worker, reporting through modelsStateChanged."""
        self._set_models_state(ModelsState.LOADING)
        return self.submit(lambda report, token: self.pipeline().warm_up(),
                           on_result=lambda _: self._set_models_state(ModelsState.READY),
                           on_error=lambda msg, _d: self._set_models_state(ModelsState.FAILED,
                                                                           msg),
                           name="warm-up")

    def _set_models_state(self, state: ModelsState, error: str = "") -> None:
        log.info("models: %s%s", state, f" ({error})" if error else "")
        self.models_state, self.models_error = state, error
        self.modelsStateChanged.emit(state.value)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel running work and wait for it, then close the ledger (window close, tests)."""
        for task in list(self._live):
            task.cancel()
        self.pool.waitForDone(timeout_ms)
        self.ledger.close()

    # -- passphrase ---------------------------------------------------------------------------

    def ask_passphrase(self, parent: QWidget | None, reason: str) -> UnlockedIdentity | None:
        """Unlock the default identity; asks again after a wrong passphrase, None if cancelled."""
        ident = self.identity()
        if ident is None:
            from app.errors_ui import show_error

            show_error(parent, "No identity", "Create your identity first (Identity tab).")
            return None
        provider = self.passphrase_provider or _dialog_provider
        error = ""
        for _ in range(MAX_TRIES):
            passphrase = provider(parent, reason, error)
            if passphrase is None:
                return None
            QGuiApplication.setOverrideCursor(QCursor(Qt.CursorShape.WaitCursor))
            try:  # scrypt: a fraction of a second, short enough for the GUI thread
                return self.ledger.unlock(ident.key_id, passphrase)
            except FakeTaggerError as err:
                error = str(err)
            finally:
                QGuiApplication.restoreOverrideCursor()
        return None


def _dialog_provider(parent: QWidget | None, reason: str, error: str) -> str | None:
    from app.passphrase import PassphraseDialog

    dlg = PassphraseDialog(parent, reason, error)
    return dlg.passphrase() if dlg.exec() else None
