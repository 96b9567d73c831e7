"""Cancelling a Protect batch: finished photos are complete, the rest untouched, no partial file."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.protect_tab import ProtectTab
from engine.photos import load_photo, sha256_file
from engine.pipeline import Progress
from engine.protect import ProtectOutcome
from tests.gui.helpers import copy_photo, wait_idle


def test_cancel_batch_leaves_no_partial_files(identity_ctx, qtbot, tmp_path):
    photos = tmp_path / "photos"
    paths = [copy_photo(name, photos, f"{k}-{name}") for k, name in enumerate(
        ["grace_hopper.jpg", "two_faces.jpg", "camera.jpg", "grace_hopper.jpg"])]
    tab = ProtectTab(identity_ctx)
    qtbot.addWidget(tab)
    assert tab.add_paths([photos]) == 4  # a folder expands to its photos
    out = tmp_path / "out"
    tab.out_edit.setText(str(out))
    tab.format_combo.setCurrentIndex(tab.format_combo.findData("png"))

    events: list[object] = []
    show = tab._event

    def spy(event: object) -> None:  # cancel as soon as the first photo is done
        events.append(event)
        show(event)
        if isinstance(event, ProtectOutcome):
            qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)

    tab._event = spy
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, tab)

    assert any(isinstance(e, Progress) for e in events)
    written = sorted(out.iterdir())
    done = [o for o in tab.outcomes if o.output]
    assert 1 <= len(done) < 4, "cancel must stop the batch before the last photo"
    assert sorted(o.output for o in done) == written  # nothing else in the folder: no .part
    for o in done:
        assert o.output.suffix == ".png" and load_photo(o.output).rgb.size > 0
    history = identity_ctx.ledger.history()
    assert {h.output_path for h in history} == {str(p) for p in written}
    assert {h.file_sha256 for h in history} == {sha256_file(p) for p in written}
    assert tab.status.text().startswith("Cancelled.")
    assert tab.run_button.isEnabled() and not tab.cancel_button.isEnabled()
    assert all(p.exists() for p in paths)


def test_interrupted_job_is_offered_and_resumed_on_start(identity_ctx, qtbot, tmp_path,
                                                         monkeypatch):
    from app import prompts
    from app.main_window import MainWindow
    from engine.run.jobs import interrupted_jobs

    photos = tmp_path / "photos"
    for k, name in enumerate(["grace_hopper.jpg", "two_faces.jpg", "grace_hopper.jpg"]):
        copy_photo(name, photos, f"{k}-{name}")
    first = ProtectTab(identity_ctx)
    qtbot.addWidget(first)
    first.add_paths([photos])
    out = tmp_path / "out"
    first.out_edit.setText(str(out))
    show = first._event

    def cancel_after_first(event: object) -> None:  # stands in for a crash mid-job
        show(event)
        if isinstance(event, ProtectOutcome):
            first.cancel_work()

    first._event = cancel_after_first
    first.run()
    wait_idle(qtbot, first)
    [job] = interrupted_jobs(identity_ctx.ledger)
    assert 1 <= job.finished < 3

    asked: list[str] = []
    monkeypatch.setattr(prompts, "confirm", lambda parent, title, text: asked.append(text) or True)
    window = MainWindow(identity_ctx)
    qtbot.addWidget(window)
    window.offer_resume()
    wait_idle(qtbot, window.protect_tab)
    assert asked and "of 3 photos done" in asked[0]
    info = identity_ctx.ledger.batch_job(job.id)
    assert info.done and info.counts == {"tagged": 3}
    outputs = sorted(p.name for p in out.iterdir())
    assert len(outputs) == 3 and not any(n.startswith(".") for n in outputs)
    assert len(identity_ctx.ledger.history()) == 3  # each photo tagged once
    assert not interrupted_jobs(identity_ctx.ledger)
