"""Identity tab, driven through its real widgets: real ledger, real Ed25519 cards, real scrypt key
files, real files on disk. Only the blocking file/question dialogs (app.prompts) are answered by
the test; error boxes are the real non-blocking ones from app.errors_ui."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QToolButton

from app import errors_ui, prompts
from app.identity_tab import IdentityTab
from engine.errors import WrongPassphraseError
from engine.store.cards import parse_card
from engine.store.ledger import Ledger

from .conftest import PASSPHRASE

WAIT_MS = 30_000


@pytest.fixture
def tab(qtbot, identity_ctx):
    widget = IdentityTab(identity_ctx)
    qtbot.addWidget(widget)
    yield widget
    for box in errors_ui.open_boxes():
        box.close()


@pytest.fixture
def bob_card(tmp_path) -> bytes:
    """A real public card from a different person's ledger (not the test's FAKETAGGER_HOME)."""
    with Ledger(tmp_path / "bob" / "ledger.sqlite3") as other:
        bob = other.create_identity("Bob Reporter", "bob's own passphrase")
        return other.export_card(bob.key_id)


def answer(monkeypatch, **replies) -> None:
    """Answer app.prompts dialogs: name -> value returned without showing the dialog."""
    for name, value in replies.items():
        monkeypatch.setattr(prompts, name, lambda *a, _v=value, **k: _v)


def run_action(qtbot, tab: IdentityTab, action) -> tuple[bool, str]:
    with qtbot.waitSignal(tab.workDone, timeout=WAIT_MS) as blocker:
        action()
    return tuple(blocker.args)  # type: ignore[return-value]


def error_texts() -> list[str]:
    return [f"{b.windowTitle()}: {b.text()}" for b in errors_ui.open_boxes()
            if b.objectName() == "errorBox"]


def test_shows_identity_key_id_and_copyable_fingerprint(tab, identity_ctx):
    ident = identity_ctx.identity()
    assert "Alice" in tab.name_label.text()
    assert tab.key_id_field.text() == ident.key_id.text
    assert tab.fingerprint_field.text() == ident.fingerprint
    assert tab.fingerprint_field.text().replace(" ", "").startswith(ident.key_id.hex().upper())
    assert tab.fingerprint_field.isReadOnly()
    copy = [b for b in tab.findChildren(QToolButton) if b.accessibleName() == "Copy fingerprint"]
    assert copy, "a copy button sits next to the fingerprint"
    copy[0].click()
    assert QGuiApplication.clipboard().text() == ident.fingerprint


def test_import_tampered_card_shows_error_and_stores_nothing(qtbot, tab, identity_ctx, bob_card,
                                                              tmp_path, monkeypatch):
    doc = json.loads(bob_card)
    doc["name"] = "Bob Trusted Source"  # a changed name breaks the self-signature
    bad = tmp_path / "tampered.card.json"
    bad.write_text(json.dumps(doc))
    answer(monkeypatch, open_file=bad)

    ok, message = run_action(qtbot, tab, tab.import_card)

    assert not ok
    assert "self-signature is invalid" in message
    texts = error_texts()
    assert len(texts) == 1 and "Card not imported" in texts[0]
    assert "Nothing was stored" in texts[0] and "tampered.card.json" in texts[0]
    assert identity_ctx.ledger.list_contacts() == []
    assert tab.contacts.rowCount() == 0
    assert tab.import_button.isEnabled()  # the tab is usable again


def test_import_truncated_card_is_refused(qtbot, tab, identity_ctx, bob_card, tmp_path,
                                         monkeypatch):
    cut = tmp_path / "cut.card.json"
    cut.write_bytes(bob_card[: len(bob_card) // 2])
    answer(monkeypatch, open_file=cut)
    ok, message = run_action(qtbot, tab, tab.import_card)
    assert not ok and "truncated" in message
    assert identity_ctx.ledger.list_contacts() == []


def test_import_valid_card_is_listed_then_removed(qtbot, tab, identity_ctx, bob_card, tmp_path,
                                                  monkeypatch):
    good = tmp_path / "bob.card.json"
    good.write_bytes(bob_card)
    answer(monkeypatch, open_file=good)

    ok, message = run_action(qtbot, tab, tab.import_card)

    assert ok, message
    [contact] = identity_ctx.ledger.list_contacts()
    assert contact.name == "Bob Reporter"
    assert contact.fingerprint in message
    assert tab.contacts.rowCount() == 1
    row = [tab.contacts.item(0, c).text() for c in range(tab.contacts.columnCount())]
    assert row[0] == "Bob Reporter" and row[1] == contact.key_id.text and row[4] == "0"
    assert not tab.empty_contacts.isVisibleTo(tab)

    assert not tab.remove_button.isEnabled()  # nothing selected yet
    tab.contacts.selectRow(0)
    assert tab.remove_button.isEnabled()
    asked = []
    monkeypatch.setattr(prompts, "confirm", lambda parent, title, text: asked.append(text) or True)
    with qtbot.waitSignal(identity_ctx.contactsChanged, timeout=WAIT_MS):
        qtbot.mouseClick(tab.remove_button, Qt.MouseButton.LeftButton)
    assert "Bob Reporter" in asked[0]
    assert identity_ctx.ledger.list_contacts() == []
    assert tab.contacts.rowCount() == 0


def test_remove_needs_confirmation(qtbot, tab, identity_ctx, bob_card, monkeypatch):
    identity_ctx.ledger.import_card(bob_card)
    identity_ctx.contactsChanged.emit()
    tab.contacts.selectRow(0)
    answer(monkeypatch, confirm=False)  # the person says No
    tab.remove_contact()
    assert len(identity_ctx.ledger.list_contacts()) == 1


def test_export_card_writes_a_valid_card(qtbot, tab, identity_ctx, tmp_path, monkeypatch):
    out = tmp_path / "alice.card.json"
    answer(monkeypatch, save_file=out)
    ok, message = run_action(qtbot, tab, tab.export_card)
    assert ok, message
    card = parse_card(out.read_bytes())
    assert card.name == "Alice"
    assert card.fingerprint == identity_ctx.identity().fingerprint


def test_backup_and_restore_round_trip(qtbot, tab, identity_ctx, tmp_path, monkeypatch):
    from app.context import AppContext
    from app.identity_tab import IdentityTab

    backup = tmp_path / "alice.backup.json"
    answer(monkeypatch, save_file=backup)
    ok, message = run_action(qtbot, tab, tab.backup_key)
    assert ok, message
    assert backup.exists() and PASSPHRASE not in backup.read_text()

    # A second, empty installation (its own ledger and key folder) restores it.
    other = AppContext(ledger=Ledger(tmp_path / "laptop" / "ledger.sqlite3"),
                       settings=identity_ctx.settings)
    try:
        fresh = IdentityTab(other)
        qtbot.addWidget(fresh)
        assert fresh.key_id_field.text() == ""
        assert not fresh.backup_button.isEnabled() and fresh.restore_button.isEnabled()

        answer(monkeypatch, open_file=backup, ask_secret="wrong passphrase")
        ok, message = run_action(qtbot, fresh, fresh.restore_backup)
        assert not ok and "wrong passphrase" in message
        assert any("Backup not restored" in t for t in error_texts())
        assert other.identity() is None

        answer(monkeypatch, ask_secret=PASSPHRASE)
        with qtbot.waitSignal(other.identityChanged, timeout=WAIT_MS):
            ok, message = run_action(qtbot, fresh, fresh.restore_backup)
        assert ok, message
        mine = identity_ctx.identity()
        assert fresh.fingerprint_field.text() == mine.fingerprint
        assert other.ledger.unlock(None, PASSPHRASE).identity == mine  # the key really works
    finally:
        other.shutdown()


def test_change_passphrase_then_unlock_with_the_new_one(qtbot, tab, identity_ctx):
    new = "seven purple lanterns drift"
    tab.passphrase_button.click()
    dialog = tab.passphrase_dialog
    assert dialog is not None and dialog.isVisible()
    assert not dialog.ok_button.isEnabled()
    dialog.old.setText(PASSPHRASE)
    dialog.new.first.setText(new)
    dialog.new.second.setText(new + "x")
    assert not dialog.ok_button.isEnabled()
    assert "differ" in dialog.problem.text()
    dialog.new.second.setText(new)
    assert dialog.ok_button.isEnabled()
    assert "Strong" in dialog.new.hint.text() or "Good" in dialog.new.hint.text()

    ok, message = run_action(qtbot, tab, dialog.ok_button.click)

    assert ok, message
    key_id = identity_ctx.identity().key_id
    assert identity_ctx.ledger.unlock(key_id, new).identity.name == "Alice"
    with pytest.raises(WrongPassphraseError):
        identity_ctx.ledger.unlock(key_id, PASSPHRASE)


def test_change_passphrase_with_wrong_current_one_is_refused(qtbot, tab, identity_ctx):
    tab.change_passphrase()
    dialog = tab.passphrase_dialog
    dialog.old.setText("not my passphrase")
    dialog.new.first.setText("another long phrase here")
    dialog.new.second.setText("another long phrase here")
    ok, message = run_action(qtbot, tab, dialog.accept)
    assert not ok and "wrong passphrase" in message
    assert any("Passphrase not changed" in t for t in error_texts())
    identity_ctx.ledger.unlock(None, PASSPHRASE)  # still the old one


def test_no_identity_disables_identity_actions(qtbot, ctx):
    widget = IdentityTab(ctx)
    qtbot.addWidget(widget)
    assert "No identity" in widget.name_label.text()
    assert not widget.export_button.isEnabled()
    assert not widget.passphrase_button.isEnabled()
    assert widget.restore_button.isEnabled() and widget.import_button.isEnabled()
    ctx.ledger.create_identity("Carol", PASSPHRASE)
    ctx.identityChanged.emit()
    assert widget.export_button.isEnabled()
    assert widget.key_id_field.text() == ctx.identity().key_id.text


def test_restoring_a_second_identity_offers_a_choice(qtbot, tab, identity_ctx, tmp_path,
                                                      monkeypatch):
    with Ledger(tmp_path / "old-pc" / "ledger.sqlite3") as other:
        work = other.create_identity("Alice at work", "work passphrase words")
        backup = tmp_path / "work.backup.json"
        backup.write_bytes(other.export_backup(work.key_id))
    assert not tab.identity_combo.isVisibleTo(tab)  # one identity: nothing to choose
    answer(monkeypatch, open_file=backup, ask_secret="work passphrase words")

    ok, message = run_action(qtbot, tab, tab.restore_backup)

    assert ok and "still signed as Alice" in message
    assert identity_ctx.identity().name == "Alice"  # the default did not silently change
    assert tab.identity_combo.isVisibleTo(tab) and tab.identity_combo.count() == 2
    index = tab.identity_combo.findData(work.key_id.hex())
    with qtbot.waitSignal(identity_ctx.identityChanged, timeout=WAIT_MS):
        tab.identity_combo.activated.emit(index)  # what choosing an entry sends
    assert identity_ctx.identity().key_id == work.key_id
    assert tab.key_id_field.text() == work.key_id.text
