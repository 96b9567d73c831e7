"""Small waits shared by the GUI tests (real workers: the tests wait for real signals)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.gui.conftest import DATA

SLOW_MS = 90_000  # first use loads MTCNN and the model on this 2-core machine


def copy_photo(name: str, folder: Path, as_name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / (as_name or name)
    shutil.copyfile(DATA / name, dest)
    return dest


def wait_idle(qtbot, tab, timeout: int = SLOW_MS) -> None:
    """Until the tab's background task has reported its result."""
    qtbot.waitUntil(lambda: tab.task is None, timeout=timeout)
