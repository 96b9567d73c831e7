"""Settings tab: edits go through the real widgets, are stored by AppSettings (a real JSON file
under the test's FAKETAGGER_HOME) and survive a fresh AppSettings.load()."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app import prompts
from app.settings_tab import SettingsTab
from engine.model.registry import available_devices, gpu_name, pick_device
from engine.protect import DEFAULT_STRENGTH
from engine.settings import AppSettings, settings_path


@pytest.fixture
def tab(qtbot, ctx):
    widget = SettingsTab(ctx)
    qtbot.addWidget(widget)
    return widget


def test_available_devices_only_offers_what_pick_device_accepts():
    devices = available_devices()
    keys = [k for k, _ in devices]
    assert keys[:2] == ["auto", "cpu"]
    for key in keys:
        assert pick_device(key) in ("cpu", "cuda")  # never raises
    name = gpu_name()
    assert ("cuda" in keys) == (name is not None)
    if name:
        assert name in dict(devices)["cuda"]


def test_cuda_entry_is_disabled_without_a_gpu(tab):
    index = tab.device.findData("cuda")
    assert index >= 0
    enabled = bool(tab.device.model().index(index, 0).flags() & Qt.ItemFlag.ItemIsEnabled)
    assert enabled == (gpu_name() is not None)
    if not enabled:
        assert "no usable GPU" in tab.device.itemText(index)


def test_form_shows_current_settings_and_apply_is_off_until_a_change(tab, ctx):
    assert tab.device.currentData() == "cpu"  # the ctx fixture stores device="cpu"
    assert tab.threshold.value() == pytest.approx(ctx.settings.threshold)
    assert not tab.apply_button.isEnabled()
    assert not tab.jpeg_quality.isEnabled()  # format "keep": quality does not apply
    tab.threshold.setValue(0.95)
    assert tab.apply_button.isEnabled() and tab.status.text() == "Unsaved changes"
    tab.revert_button.click()
    assert tab.threshold.value() == pytest.approx(ctx.settings.threshold)
    assert not tab.apply_button.isEnabled()


def test_settings_persist_across_load(qtbot, tab, ctx, tmp_path, monkeypatch):
    out = tmp_path / "tagged-photos"
    out.mkdir()
    monkeypatch.setattr(prompts, "choose_dir", lambda *a, **k: out)
    tab.threshold.setValue(0.95)
    tab.output_format.setCurrentIndex(tab.output_format.findData("jpeg"))
    assert tab.jpeg_quality.isEnabled()
    tab.jpeg_quality.setValue(88)
    tab.strength.setValue(1.5)
    tab.browse_button.click()
    assert tab.output_dir.text() == str(out)

    with qtbot.waitSignal(ctx.settingsChanged, timeout=5000):
        qtbot.mouseClick(tab.apply_button, Qt.MouseButton.LeftButton)

    stored = AppSettings.load()
    assert stored == ctx.settings
    assert (stored.threshold, stored.output_format, stored.jpeg_quality, stored.strength,
            stored.output_dir, stored.device) == (0.95, "jpeg", 88, 1.5, str(out), "cpu")
    assert settings_path().is_file()
    assert not tab.apply_button.isEnabled() and tab.status.text() == "Saved"

    # A second tab (the next start of the app) shows the stored values.
    again = SettingsTab(ctx)
    qtbot.addWidget(again)
    assert again.output_format.currentData() == "jpeg" and again.jpeg_quality.value() == 88
    assert again.strength.value() == pytest.approx(1.5)


def test_reset_to_defaults_is_stored(qtbot, tab, ctx):
    tab.strength.setValue(2.0)
    tab.apply()
    assert AppSettings.load().strength == 2.0
    tab.reset_button.click()
    assert AppSettings.load() == AppSettings()
    assert tab.device.currentData() == "auto"
    assert tab.strength.value() == pytest.approx(DEFAULT_STRENGTH)
