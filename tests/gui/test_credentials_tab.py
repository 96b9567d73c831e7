"""Content Credentials in the GUI: the Settings switch (off by default, stored), the Protect tab
passes it on, and the Verify tab shows a file's manifest."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt

from app.protect_tab import ProtectTab
from app.settings_tab import SettingsTab
from app.verify_tab import VerifyTab
from engine.pipeline import Pipeline, run_all
from engine.protect.spec import JobSpec
from engine.settings import AppSettings
from tests.gui.conftest import PASSPHRASE
from tests.gui.helpers import copy_photo, wait_idle


def test_switch_is_off_by_default_says_what_it_reveals_and_is_stored(qtbot, ctx):
    tab = SettingsTab(ctx)
    qtbot.addWidget(tab)
    assert not tab.c2pa.isChecked() and not ctx.settings.c2pa
    hints = " ".join(w.text() for w in tab.findChildren(type(tab.status)))
    assert "your name and key ID inside every copy" in hints
    tab.c2pa.setChecked(True)
    assert tab.apply_button.isEnabled()
    with qtbot.waitSignal(ctx.settingsChanged, timeout=5000):
        qtbot.mouseClick(tab.apply_button, Qt.MouseButton.LeftButton)
    assert AppSettings.load().c2pa is True
    protect = ProtectTab(ctx)
    qtbot.addWidget(protect)
    protect.show()
    assert protect.spec().c2pa is True and protect.c2pa_note.isVisible()
    ctx.apply_settings(replace(ctx.settings, c2pa=False))
    assert protect.spec().c2pa is False and not protect.c2pa_note.isVisible()


def test_verify_tab_shows_the_manifest(qtbot, identity_ctx, tmp_path):
    ledger = identity_ctx.ledger
    photo = copy_photo("grace_hopper.jpg", tmp_path / "in")
    unlocked = ledger.unlock(ledger.default_identity().key_id, PASSPHRASE)
    [outcome] = run_all(Pipeline(ledger, device="cpu").protect(
        [photo], unlocked, JobSpec(out_dir=tmp_path / "out", c2pa=True)))
    tab = VerifyTab(identity_ctx)
    qtbot.addWidget(tab)
    tab.show()
    tab.verify_path(outcome.output)
    wait_idle(qtbot, tab)
    text = tab.credentials.text()
    assert "TRUSTED" in text and "your identity Alice" in text and "agrees" in text
    assert tab.result.report.c2pa.state == "trusted"
    tab.verify_path(photo)  # the untagged original: no manifest
    wait_idle(qtbot, tab)
    assert "NONE" in tab.credentials.text()


def test_trusting_a_signer_from_the_verify_tab(qtbot, ctx, tmp_path, monkeypatch):
    """A generator's manifest reads 'valid' until its CA certificate is trusted from the tab;
    a certificate that is not a CA is refused in an error box, nothing stored."""
    from app import errors_ui, prompts
    from tests.test_credentials import es256_chain, generated_image

    image, ca_pem = generated_image(tmp_path)
    tab = VerifyTab(ctx)
    qtbot.addWidget(tab)
    tab.show()
    tab.verify_path(image)
    wait_idle(qtbot, tab)
    assert "VALID" in tab.credentials.text() and "not one you trust" in tab.credentials.text()

    chain, _, _ = es256_chain(tmp_path)
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    monkeypatch.setattr(prompts, "open_file", lambda *a: leaf)
    tab.trust_button.click()
    qtbot.waitUntil(lambda: any(b.objectName() == "errorBox" for b in errors_ui.open_boxes()),
                    timeout=10000)
    assert "not a CA certificate" in " ".join(b.text() for b in errors_ui.open_boxes())
    assert ctx.ledger.credentials.added_anchors() == []
    for box in errors_ui.open_boxes():
        box.close()

    root = tmp_path / "root.pem"
    root.write_text(ca_pem)
    monkeypatch.setattr(prompts, "open_file", lambda *a: root)
    with qtbot.waitSignal(ctx.contactsChanged, timeout=10000):
        tab.trust_button.click()
    wait_idle(qtbot, tab)
    assert "TRUSTED" in tab.credentials.text() and "Example Generator Root CA" in \
        tab.credentials.text()
    assert "Trusting Content Credentials" in tab.status.text()
