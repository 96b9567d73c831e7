"""The whole user flow through the real widgets: welcome -> protect a photo -> verify it -> report.

Real MTCNN, real watermark model, real Ed25519 keys and SQLite ledger, real files; only the
passphrase prompt and file pickers are answered by the test (they would block on a person).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from app import prompts
from app.errors_ui import open_boxes
from app.main_window import MainWindow
from engine.photos import load_photo
from tests.gui.conftest import PASSPHRASE
from tests.gui.helpers import SLOW_MS, copy_photo, wait_idle


class _TagCounter(HTMLParser):
    """Checks the report page is well formed enough: tags balance, an <svg> with an image."""

    VOID = {"meta", "img", "br", "image", "rect", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: set[str] = set()
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.seen.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen.add(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unbalanced </{tag}>")
        else:
            self.stack.pop()


def test_welcome_protect_verify_report(ctx, qtbot, tmp_path):
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    window.start()

    # First start: the welcome dialog creates the identity.
    welcome = window.welcome
    assert welcome.isVisible()
    qtbot.keyClicks(welcome.name_edit, "Alice")
    qtbot.keyClicks(welcome.new_pass.first, PASSPHRASE)
    qtbot.keyClicks(welcome.new_pass.second, PASSPHRASE + "x")
    qtbot.mouseClick(welcome.ok_button, Qt.MouseButton.LeftButton)
    assert "differ" in welcome.message.text() and ctx.identity() is None
    welcome.new_pass.second.backspace()
    assert welcome.new_pass.meter.value() >= 2 and welcome.new_pass.hint.text()
    qtbot.mouseClick(welcome.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: welcome.result() == QDialog.DialogCode.Accepted, timeout=30_000)
    assert ctx.identity().name == "Alice"
    qtbot.waitUntil(lambda: ctx.models_state == "ready", timeout=SLOW_MS)
    assert window.model_label.text() == "Models ready"

    # Protect: add the photo, the preview finds and boxes its face, run.
    photo = copy_photo("grace_hopper.jpg", tmp_path / "photos")
    before = photo.read_bytes()
    tab = window.protect_tab
    assert tab.add_paths([photo]) == 1
    key = photo.resolve()
    qtbot.waitUntil(lambda: key in tab.faces.plans and bool(tab.faces.preview.boxes), timeout=SLOW_MS)
    assert len(tab.faces.preview.boxes) == 1 and len(tab.faces.checkboxes) == 1
    assert tab.faces.checkboxes[0].isChecked()
    # Clicking the face box excludes it, clicking again includes it back.
    centre = tab.faces.preview.box_rect(0).center().toPoint()
    qtbot.mouseClick(tab.faces.preview, Qt.MouseButton.LeftButton, pos=centre)
    assert not tab.faces.checkboxes[0].isChecked() and tab.faces.plans[key].chosen == set()
    qtbot.mouseClick(tab.faces.preview, Qt.MouseButton.LeftButton, pos=centre)
    assert tab.faces.plans[key].chosen == {0}

    asked = []
    ctx.passphrase_provider = lambda parent, reason, error: asked.append(reason) or PASSPHRASE
    out_dir = tmp_path / "out"
    tab.out_edit.setText(str(out_dir))
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert asked and not tab.run_button.isEnabled() and tab.cancel_button.isEnabled()
    wait_idle(qtbot, tab)
    assert tab.run_button.isEnabled() and not tab.cancel_button.isEnabled()
    [outcome] = tab.outcomes
    assert outcome.error is None and len(outcome.faces) == 1
    assert outcome.output.parent == out_dir and outcome.output.exists()
    assert photo.read_bytes() == before  # the original is never touched
    assert "1 face(s) tagged" in tab.photos.status(photo) and "PSNR" in tab.photos.status(photo)
    assert "Tagged 1 face(s) in 1 photo(s)" in tab.status.text()
    assert tab.progress.value() == 1 and tab.open_out.isEnabled()
    # Before/after compares the original with the tagged copy (same size, upright).
    assert tab.views.isTabEnabled(1)
    qtbot.waitUntil(tab.before_after.has_images, timeout=30_000)
    assert tab.before_after.view.before.size() == tab.before_after.view.after.size()
    tab.before_after.zoom.setChecked(True)  # the face region at full resolution
    zoomed = tab.before_after.view.before
    assert zoomed.width() < tab.before_after._whole[0].width() and zoomed != tab.before_after.view.after
    assert ctx.ledger.history()[0].output_path == str(outcome.output)

    # Verify the tagged copy: the face is verified, the user's own tag, with its original.
    window.tabs.setCurrentWidget(window.verify_tab)
    vt = window.verify_tab
    vt.verify_path(outcome.output)
    wait_idle(qtbot, vt)
    assert [f.verdict for f in vt.result.faces] == ["verified"]
    face = vt.result.faces[0]
    assert face.own and face.owner_name == "Alice" and face.file_match
    assert vt.faces.count() == 1 and "Verified" in vt.faces.item(0).text()
    assert "Alice" in vt.details.text() and face.owner_key_id.text in vt.details.text()
    assert vt.thumb.pixmap() is not None and not vt.thumb.pixmap().isNull()
    assert vt.result.originals[0][0] == str(photo.resolve())
    assert not vt.face_import.isVisible()
    # Face change: unchanged against the original, shown side by side with a heat map.
    assert face.change.kind == "none" and "Face change" in vt.details.text()
    assert "Unchanged" in vt.details.text()
    cv = vt.change_view
    assert cv.isVisibleTo(vt) and cv.captions[0].text() == "Your original"
    assert all(not img.pixmap().isNull() for img in cv.images)

    # The untouched original has a face but no tag.
    vt.verify_path(photo)
    wait_idle(qtbot, vt)
    assert [f.verdict for f in vt.result.faces] == ["no_tag"]
    assert not vt.change_view.isVisibleTo(vt) and "Not judged" in vt.details.text()

    # Report of the tagged copy, as JSON and as a self-contained HTML page.
    vt.verify_path(outcome.output)
    wait_idle(qtbot, vt)
    for name in ("report.json", "report.html"):
        vt.export_report(tmp_path / name)
    qtbot.waitUntil(lambda: (tmp_path / "report.html").exists()
                    and (tmp_path / "report.json").exists(), timeout=30_000)
    doc = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    [img] = doc["images"]
    assert doc["format"] == "faketagger-verify-report/1"
    assert img["sha256"] == vt.result.report.sha256 and img["summary"] == {"verified": 1}
    [f] = img["faces"]
    assert f["verdict"] == "verified" and f["owner_name"] == "Alice"
    assert f["owner_key_id"] == str(face.owner_key_id) and f["signature"].startswith("valid")
    assert f["record"]["serial"] == f["serial"] == face.serial
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    checker = _TagCounter()
    checker.feed(page)
    assert not checker.errors and not checker.stack
    assert {"svg", "image", "rect", "table"} <= checker.seen
    assert "data:image/jpeg;base64," in page and face.owner_key_id.text in page
    assert "Verified" in page and "http" not in page.split("<body>")[1]  # nothing external
    assert not open_boxes()
    load_photo(outcome.output)  # still a valid photo after everything


def test_tampered_card_import_shows_error(identity_ctx, qtbot, tmp_path, monkeypatch):
    from app.verify_tab import VerifyTab

    card = identity_ctx.ledger.export_card(identity_ctx.identity().key_id)
    doc = json.loads(card)
    text = json.dumps(doc).replace('"Alice"', '"Mallory"')
    assert text != json.dumps(doc)
    bad = tmp_path / "tampered.card.json"
    bad.write_text(text, encoding="utf-8")
    tab = VerifyTab(identity_ctx)
    qtbot.addWidget(tab)
    monkeypatch.setattr(prompts, "open_file", lambda *a: bad)
    changed = []
    identity_ctx.contactsChanged.connect(lambda: changed.append(1))
    tab.import_card()  # checked on a worker, like the Identity tab's import
    qtbot.waitUntil(lambda: bool(open_boxes()), timeout=30_000)
    [box] = open_boxes()
    assert box.windowTitle() == "Card not imported"
    assert "tampered.card.json" in box.text() and "Nothing was stored" in box.text()
    assert identity_ctx.ledger.list_contacts() == [] and not changed
    assert tab.status.text().startswith("Card not imported:")
    box.close()
