"""Screenshots of every tab for the README: ``python -m app.screenshots [OUT_DIR] [WxH]``.

Runs the real app (offscreen by default) over a throw-away FAKETAGGER_HOME: creates an example
identity, imports one contact's card (made by a second throw-away ledger) so the contacts table is
not empty, tags the bundled sample photo and a two-face test photo through the Protect tab,
verifies the two-face output (both faces "Verified"), selects a History row, then grabs each tab.
The user's own data is never touched, and the caller's environment is restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.paths import assets_dir

if TYPE_CHECKING:  # Qt is imported only once `take` runs (torch first, see app.launch)
    from app.context import AppContext
    from app.main_window import MainWindow

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = (assets_dir() / "sample.jpg", ROOT / "tests" / "data" / "two_faces.jpg")
IDENTITY = "Ada Lovelace"
CONTACT = "Grace Newsroom"
PASSPHRASE = "screenshot example passphrase"
TABS = ("protect", "verify", "identity", "history", "settings")
EXTRA = ("before-after",)  # shots of a view inside a tab, after the tabs
DEFAULT_SIZE = (1200, 780)


@dataclass
class Shots:
    """What `take` produced: one PNG per tab, and the verdicts the Verify tab showed."""

    paths: list[Path] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    face_rows: list[str] = field(default_factory=list)  # the Verify tab's face list, as shown


def _wait(done: Callable[[], bool], timeout: float = 180.0) -> None:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("the app did not finish in time")
        QApplication.processEvents()
        time.sleep(0.02)


@contextlib.contextmanager
def _throwaway_home() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="faketagger-shots-"))
    old = os.environ.get("FAKETAGGER_HOME")
    os.environ["FAKETAGGER_HOME"] = str(work / "home")
    try:
        yield work
    finally:
        if old is None:
            os.environ.pop("FAKETAGGER_HOME", None)
        else:
            os.environ["FAKETAGGER_HOME"] = old
        shutil.rmtree(work, ignore_errors=True)


def _grab(window: MainWindow, ctx: AppContext, path: Path, size: tuple[int, int]) -> Path:
    """Save the whole window, once every background job (thumbnails, previews) has landed."""
    from PySide6.QtWidgets import QApplication

    _wait(lambda: not ctx.busy(), 60)
    for _ in range(10):
        QApplication.processEvents()
    image = window.grab()
    if (image.width(), image.height()) != size:  # a window manager may refuse a size
        image = image.scaled(*size)
    if not image.save(str(path)):
        raise OSError(f"{path}: cannot write the screenshot")
    return path


def _models_ready(ctx: AppContext) -> bool:
    from app.context import ModelsState

    if ctx.models_state is ModelsState.FAILED:  # say why at once rather than time out
        raise RuntimeError(f"models failed: {ctx.models_error}")
    return ctx.models_state is ModelsState.READY


def _contact_card(work: Path) -> Path:
    """A real public card from a second, throw-away ledger ("someone else's computer")."""
    from engine.store.ledger import Ledger

    with Ledger(work / "contact" / "ledger.sqlite3") as other:
        grace = other.create_identity(CONTACT, "a different example passphrase")
        card = work / "grace.card.json"
        card.write_bytes(other.export_card(grace.key_id))
    return card


def take(out: Path, size: tuple[int, int] = DEFAULT_SIZE) -> Shots:
    """Write <out>/<name>.png for every tab (TABS order), then EXTRA, at exactly `size`.

    Everything shown is produced by the real app: the contact is imported through the shared
    card import, both photos are tagged by the Protect tab's batch, and the two-face output is
    checked by the Verify tab. Returns the PNG paths and the Verify tab's verdicts."""
    import torch  # noqa: F401  -- before Qt (see app.launch)
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication(["faketagger"])
    from app.card_import import import_card
    from app.context import AppContext
    from app.main_window import MainWindow
    from engine.settings import AppSettings

    out.mkdir(parents=True, exist_ok=True)
    shots = Shots()
    with _throwaway_home() as work:
        ctx = AppContext(settings=AppSettings())  # device "auto", as a new user has it
        try:
            ctx.ledger.create_identity(IDENTITY, PASSPHRASE)
            ctx.passphrase_provider = lambda parent, reason, error: PASSPHRASE
            window = MainWindow(ctx)
            window.setMinimumSize(0, 0)
            window.resize(*size)
            window.show()
            window.start()
            imported: list[bool] = []
            import_card(ctx, window.identity_tab, _contact_card(work),
                        lambda ok, message: imported.append(ok))
            _wait(lambda: bool(imported) and _models_ready(ctx))
            if imported != [True]:
                raise RuntimeError("the example contact's card was not imported")

            photos = work / "photos"
            photos.mkdir()
            inputs = [photos / "astronaut.jpg", photos / "two_faces.jpg"]
            for src, dest in zip(PHOTOS, inputs, strict=True):
                shutil.copyfile(src, dest)
            # The copies carry Content Credentials (off by default), so the Verify tab shows a
            # manifest; the settings go back to the defaults before the Settings tab's shot.
            ctx.apply_settings(AppSettings(c2pa=True))
            protect = window.protect_tab
            protect.add_paths(inputs)
            protect.photos.setCurrentRow(1)  # the preview shows the two-face photo
            _wait(lambda: inputs[1].resolve() in protect.faces.plans)
            protect.run()
            _wait(lambda: protect.task is None and len(protect.outcomes) == len(inputs))
            failed = [o for o in protect.outcomes if o.error or not o.output]
            if failed:
                raise RuntimeError(f"protect failed: {failed}")
            two_faces = next(o.output for o in protect.outcomes
                             if o.input.resolve() == inputs[1].resolve())

            ctx.apply_settings(AppSettings())
            verify = window.verify_tab
            verify.verify_path(two_faces)
            _wait(lambda: verify.result is not None and verify.task is None)
            shots.verdicts = [f.verdict for f in verify.result.faces]
            shots.face_rows = [verify.faces.item(k).text() for k in range(verify.faces.count())]

            history = window.history_tab
            _wait(lambda: history.model.rowCount() == len(inputs))
            history.table.selectRow(0)
            for name in TABS:
                window.tabs.setCurrentWidget(getattr(window, f"{name}_tab"))
                shots.paths.append(_grab(window, ctx, out / f"{name}.png", size))
            # The Protect tab's before/after view, zoomed to the faces: original vs tagged copy.
            window.tabs.setCurrentWidget(protect)
            protect.views.setCurrentWidget(protect.before_after)
            protect.before_after.zoom.setChecked(True)
            _wait(protect.before_after.has_images)
            shots.paths.append(_grab(window, ctx, out / f"{EXTRA[0]}.png", size))
            window.close()
        finally:
            ctx.shutdown()
    return shots


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = Path(argv[0] if argv else "docs/screenshots")
    size = tuple(int(v) for v in argv[1].split("x")) if len(argv) > 1 else DEFAULT_SIZE
    for path in take(out, size).paths:  # type: ignore[arg-type]
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
