"""History tab over a real ledger filled by the real pipeline (MTCNN + bundled model + Ed25519):
rows, thumbnails, search, opening files (through Qt's own URL-handler hook) and record export."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from app import errors_ui, prompts
from app.history_tab import COLUMNS, HistoryTab
from engine.pipeline import run_all
from engine.protect.spec import JobSpec
from engine.store.cards import parse_card
from engine.store.ledger import Ledger
from engine.store.records import verify_record

from .conftest import DATA, PASSPHRASE

SAMPLE = DATA.parent.parent / "assets" / "sample.jpg"


@pytest.fixture
def tagged(identity_ctx, tmp_path) -> dict[str, object]:
    """Protect two real photos (one with two faces) with Alice's key; outcomes by file stem."""
    photos = tmp_path / "photos"
    photos.mkdir()
    inputs = [Path(shutil.copy(SAMPLE, photos)), Path(shutil.copy(DATA / "two_faces.jpg", photos))]
    unlocked = identity_ctx.ledger.unlock(None, PASSPHRASE)
    outcomes = run_all(identity_ctx.pipeline().protect(
        inputs, unlocked, JobSpec(out_dir=tmp_path / "out")))
    assert all(o.output and not o.error for o in outcomes), outcomes
    return {o.input.stem: o for o in outcomes}


@pytest.fixture
def tab(qtbot, identity_ctx):
    widget = HistoryTab(identity_ctx)
    qtbot.addWidget(widget)
    widget.resize(1000, 600)
    yield widget
    for box in errors_ui.open_boxes():
        box.close()


def cell(tab: HistoryTab, row: int, column: str) -> str:
    return tab.proxy.index(row, COLUMNS.index(column)).data()


def test_empty_ledger_says_so(tab):
    assert tab.model.rowCount() == 0
    assert tab.count_label.text() == "Nothing tagged yet"
    assert not tab.export_button.isEnabled()


def test_rows_appear_after_protect_with_thumbnails(qtbot, tab, identity_ctx, tagged):
    with qtbot.waitSignal(tab.refreshed, timeout=5000) as blocker:
        identity_ctx.ledgerChanged.emit()  # what the Protect tab sends after a batch
    assert blocker.args == [2]
    by_name = {cell(tab, r, "Original"): r for r in range(tab.proxy.rowCount())}
    assert set(by_name) == {"sample.jpg", "two_faces.jpg"}
    two = by_name["two_faces.jpg"]
    out = tagged["two_faces"]
    assert cell(tab, two, "Tagged copy") == out.output.name
    assert cell(tab, two, "Faces") == str(len(out.faces)) == "2"
    assert cell(tab, two, "Serials") == ", ".join(str(f.serial) for f in out.faces)
    assert "Alice" in cell(tab, two, "Identity")
    thumb = tab.model.thumbnail(tab.proxy.mapToSource(tab.proxy.index(two, 0)).row())
    assert thumb is not None and not thumb.isNull() and max(thumb.width(), thumb.height()) == 48


def test_search_filters_through_the_ledger(qtbot, tab, identity_ctx, tagged):
    tab.refresh()
    assert tab.proxy.rowCount() == 2
    with qtbot.waitSignal(tab.refreshed, timeout=5000) as blocker:
        qtbot.keyClicks(tab.search, "two_fa")
    assert blocker.args == [1]
    assert cell(tab, 0, "Original") == "two_faces.jpg"
    with qtbot.waitSignal(tab.refreshed, timeout=5000) as blocker:
        tab.search.setText("no such photo")
    assert blocker.args == [0] and tab.count_label.text() == "No match"
    with qtbot.waitSignal(tab.refreshed, timeout=5000):
        tab.search.setText(identity_ctx.identity().key_id.text)  # key ID search, dash included
    assert tab.proxy.rowCount() == 2


class UrlRecorder(QObject):
    """Stands in for the desktop's file opener via QDesktopServices.setUrlHandler (Qt's hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def test_open_and_reveal_files(qtbot, tab, tagged):
    tab.refresh()
    recorder = UrlRecorder()
    QDesktopServices.setUrlHandler("file", recorder, "open")
    try:
        assert not tab.open_button.isEnabled()
        tab.table.selectRow(0)
        row = tab.selected_rows()[0]
        tab.open_button.click()
        tab.original_button.click()
        tab.reveal_button.click()
        tab.table.setFocus()
        qtbot.keyClick(tab.table, Qt.Key.Key_Return)  # Enter opens the tagged copy too
        menu = {a.text(): a for a in tab.table.actions()}
        menu["Show in folder"].trigger()  # the right-click menu runs the same actions
    finally:
        QDesktopServices.unsetUrlHandler("file")
    opened = [Path(u.toLocalFile()) for u in recorder.urls]
    out = Path(row.output_path).resolve()
    assert opened == [out, Path(row.original_path).resolve(), out.parent, out, out.parent]


def test_missing_file_shows_an_error(qtbot, tab, tagged):
    tab.refresh()
    tab.table.selectRow(0)
    Path(tab.selected_rows()[0].output_path).unlink()
    tab.open_output()
    texts = [b.text() for b in errors_ui.open_boxes() if b.objectName() == "errorBox"]
    assert texts and "moved or deleted" in texts[0]


def test_export_selected_records_as_a_verifiable_card(qtbot, tab, identity_ctx, tagged,
                                                     tmp_path, monkeypatch):
    tab.refresh()
    two = next(r for r in range(tab.proxy.rowCount())
               if cell(tab, r, "Original") == "two_faces.jpg")
    tab.table.selectRow(two)
    out = tmp_path / "export.card.json"
    monkeypatch.setattr(prompts, "save_file", lambda *a, **k: out)
    tab.export_button.click()

    card = parse_card(out.read_bytes())  # strict: every signature checked
    want = {f.serial for f in tagged["two_faces"].faces}
    assert {r.serial for r in card.records} == want
    assert card.key_id == identity_ctx.identity().key_id
    assert all(verify_record(r) for r in card.records)
    digest = hashlib.sha256(tagged["two_faces"].output.read_bytes()).hexdigest()
    assert {r.file_sha256 for r in card.records} == {digest}
    # Someone else imports it and now knows Alice's records for that photo.
    with Ledger(tmp_path / "verifier" / "ledger.sqlite3") as other:
        contact = other.import_card(out.read_bytes())
        assert contact.record_count == 2
