"""Verify a photo tagged by someone else: unknown owner -> import their card -> verified.
Also: unchecking a face in the Protect preview leaves that face untagged."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app import prompts
from app.protect_tab import ProtectTab
from app.verify_tab import VerifyTab
from engine.pipeline import Pipeline, run_all
from engine.protect.spec import JobSpec
from engine.store.ledger import Ledger
from tests.gui.helpers import SLOW_MS, copy_photo, wait_idle


def test_unknown_owner_then_card_import(identity_ctx, qtbot, tmp_path, monkeypatch):
    # Bob tags a photo on "his computer" (a second ledger), and shares his card.
    photo = copy_photo("grace_hopper.jpg", tmp_path / "bob")
    with Ledger(tmp_path / "bob-home" / "ledger.sqlite3") as bob:
        ident = bob.create_identity("Bob", "bob's long passphrase")
        unlocked = bob.unlock(ident.key_id, "bob's long passphrase")
        [outcome] = run_all(Pipeline(bob, device="cpu").protect(
            # This verifier has no record of Bob's, so the tag must read blind. At the default
            # strength model v2 read this face blind 8 times in 12 (fresh payloads, 2026-12-01;
            # the bench measures that); at 1.5 12 in 12. The flow, not robustness, is tested here.
            [photo], unlocked, JobSpec(out_dir=tmp_path / "bob-out", strength=1.5)))
        card = tmp_path / "bob.card.json"
        card.write_bytes(bob.export_card(ident.key_id))

    tab = VerifyTab(identity_ctx)
    qtbot.addWidget(tab)
    tab.show()
    tab.verify_path(outcome.output)
    wait_idle(qtbot, tab)
    [face] = tab.result.faces
    assert face.verdict == "unknown_owner" and face.owner_key_id == ident.key_id
    assert "Unknown owner" in tab.faces.item(0).text() and tab.face_import.isVisible()

    monkeypatch.setattr(prompts, "open_file", lambda *a: card)
    with qtbot.waitSignal(identity_ctx.contactsChanged, timeout=SLOW_MS):  # card checked on a worker
        qtbot.mouseClick(tab.face_import, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)  # contactsChanged re-checks the same image
    assert "Imported Bob" in tab.status.text() and "1 face(s) checked" in tab.status.text()
    [face] = tab.result.faces
    assert face.verdict == "verified" and face.owner_name == "Bob" and not face.own
    assert "Bob" in tab.details.text() and not tab.face_import.isVisible()


def test_excluded_face_is_not_tagged(identity_ctx, qtbot, tmp_path):
    photo = copy_photo("two_faces.jpg", tmp_path / "photos")
    tab = ProtectTab(identity_ctx)
    qtbot.addWidget(tab)
    tab.show()
    tab.add_paths([photo])
    key = photo.resolve()
    qtbot.waitUntil(lambda: key in tab.faces.plans, timeout=SLOW_MS)
    plan = tab.faces.plans[key]
    assert len(plan.boxes) == 2 and len(tab.faces.checkboxes) == 2
    tab.faces.checkboxes[1].setChecked(False)
    assert plan.chosen == {0} and tab.faces.preview.boxes[1].dashed
    assert "1 of 2 face(s) will be tagged" in tab.faces.note.text()
    tab.out_edit.setText(str(tmp_path / "out"))
    tab.run()
    wait_idle(qtbot, tab)
    [o] = tab.outcomes
    assert len(o.faces) == 1
    assert o.faces[0].box == [round(v) for v in plan.boxes[0]]


def test_small_face_is_shown_but_not_tagged(identity_ctx, qtbot, tmp_path):
    from PIL import Image

    from tests.gui.conftest import DATA

    big = Image.open(DATA / "grace_hopper.jpg").convert("RGB")
    canvas = Image.new("RGB", (big.width + 120, big.height), (128, 128, 128))
    canvas.paste(big, (0, 0))
    canvas.paste(big.resize((80, round(big.height * 80 / big.width))), (big.width + 20, 20))
    photo = tmp_path / "small-face.png"
    canvas.save(photo)
    tab = ProtectTab(identity_ctx)
    qtbot.addWidget(tab)
    tab.add_paths([photo])
    qtbot.waitUntil(lambda: photo.resolve() in tab.faces.plans, timeout=SLOW_MS)
    plan = tab.faces.plans[photo.resolve()]
    assert plan.small == [False, True]
    small_box = tab.faces.checkboxes[1]
    assert not small_box.isEnabled() and "too small" in small_box.text()
    assert "too small" in tab.faces.preview.boxes[1].label and "too small" in tab.faces.note.text()
    tab.out_edit.setText(str(tmp_path / "out"))
    tab.run()
    wait_idle(qtbot, tab)
    [o] = tab.outcomes
    assert len(o.faces) == 1 and len(o.small_faces) == 1
