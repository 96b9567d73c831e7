"""Protect jobs (engine.protect.spec, engine.run.jobs): where tagged copies go, which photos are
skipped, and the one vocabulary of output formats and outcomes. The full run is covered by the CLI
and GUI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.photos import OutputFormat
from engine.pipeline import Progress
from engine.protect import ProtectOutcome, Reason, TaggedFace
from engine.protect.spec import DEFAULT_SUBFOLDER, JobSpec
from engine.run.jobs import ALREADY_IN_OUTPUT
from engine.store.batches import ItemState


def test_default_output_is_a_tagged_folder_next_to_each_photo(tmp_path: Path) -> None:
    a, b = tmp_path / "trip" / "a.jpg", tmp_path / "home" / "b.png"
    groups, inside = JobSpec().plan([a, b])
    assert groups == {(a.parent / DEFAULT_SUBFOLDER).resolve(): [a],
                      (b.parent / DEFAULT_SUBFOLDER).resolve(): [b]}
    assert inside == []


def test_one_output_folder_keeps_the_order(tmp_path: Path) -> None:
    paths = [tmp_path / n for n in ("c.jpg", "a.jpg", "b.jpg")]
    groups, _ = JobSpec(out_dir=tmp_path / "out").plan(paths)
    assert groups == {(tmp_path / "out").resolve(): paths}


def test_photos_inside_their_output_folder_are_not_tagged_again(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    tagged = tmp_path / "out" / "a-tagged.jpg"
    nested = tmp_path / "out" / "deeper" / "x.jpg"
    groups, inside = JobSpec(out_dir=tmp_path / "out").plan([tagged, photo, nested])
    assert list(groups.values()) == [[photo]] and inside == [tagged, nested]


def test_job_options_carry_format_quality_and_strength(tmp_path: Path) -> None:
    opts = JobSpec(out_dir=tmp_path, fmt=OutputFormat.PNG, jpeg_quality=80, strength=1.5)
    assert (opts.out_dir, opts.fmt, opts.jpeg_quality, opts.strength) == (
        tmp_path, OutputFormat.PNG, 80, 1.5)
    # What a recorded job stores, and what an old one (BatchOptions' fields) loads as.
    assert JobSpec.from_json(opts.to_json()) == JobSpec(fmt="png", jpeg_quality=80,
                                                        strength=1.5)
    old = {"fmt": "keep", "jpeg_quality": 90, "strength": 0.88, "retag": False,
           "copy_no_face": True, "threshold": 0.95, "min_face": 40}
    assert JobSpec.from_json(old) == JobSpec(jpeg_quality=90, copy_no_face=True, threshold=0.95)


@pytest.mark.parametrize(("given", "expected"), [
    (None, OutputFormat.KEEP), ("PNG", OutputFormat.PNG), ("jpeg", OutputFormat.JPEG),
    (OutputFormat.WEBP, OutputFormat.WEBP), ("keep", OutputFormat.KEEP)])
def test_output_format_has_one_vocabulary(tmp_path: Path, given, expected) -> None:
    assert JobSpec(out_dir=tmp_path, fmt=given).fmt is expected
    assert expected == expected.value  # settings files and CLI flags keep their strings


def test_unknown_output_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        JobSpec(out_dir=tmp_path, fmt="GIF")


def test_outcome_state_is_the_stored_vocabulary(tmp_path: Path) -> None:
    """A protect outcome speaks the batch job's own states: no translation between the two."""
    p = tmp_path / "a.jpg"
    face = TaggedFace([0, 0, 80, 80], 1, "00", 40.0)
    assert ProtectOutcome(p).state is ItemState.NO_FACE
    assert ProtectOutcome(p, output=tmp_path / "a-tagged.jpg", faces=[face]).state is ItemState.TAGGED
    assert ProtectOutcome(p, output=tmp_path / "a.jpg").state is ItemState.COPIED
    assert ProtectOutcome(p, error="unreadable").state is ItemState.FAILED
    for reason in (Reason.IN_OUTPUT, Reason.COPY_EXISTS, Reason.HAS_TAG):
        skipped = ProtectOutcome(p, error=ALREADY_IN_OUTPUT, reason=reason)
        assert skipped.state is ItemState.SKIPPED and skipped.state == "skipped"
    for reason in (Reason.CHANGED, Reason.OUT_OF_SERIALS, Reason.ERROR):
        assert ProtectOutcome(p, error="no", reason=reason).state is ItemState.FAILED


def test_seconds_left_is_linear_and_absent_at_the_ends() -> None:
    assert Progress(0, 4, faces_done=0, elapsed=0.0).seconds_left() is None
    assert Progress(1, 4, faces_done=2, elapsed=10.0).seconds_left() == 30.0
    assert Progress(4, 4, faces_done=8, elapsed=40.0).seconds_left() is None


def test_reasons_come_from_types_not_words(tmp_path: Path) -> None:
    """Issue #19: code acts on a typed reason; the words are for people and may change."""
    from engine.errors import LedgerError, SerialsExhaustedError
    from engine.protect import Reason
    from engine.run.jobs import in_output

    p = tmp_path / "a.jpg"
    out = ProtectOutcome.failed(p, SerialsExhaustedError("reworded: no numbers left"))
    assert out.reason is Reason.OUT_OF_SERIALS and out.state is ItemState.FAILED
    assert ProtectOutcome.failed(p, LedgerError("tag serials left")).reason is Reason.ERROR
    assert ProtectOutcome(p, error="unreadable").reason is Reason.ERROR
    assert ProtectOutcome(p).reason is None
    # A photo inside its own output folder is skipped as IN_OUTPUT before any pipeline work.
    inside = tmp_path / "tagged" / "x.jpg"
    inside.parent.mkdir()
    inside.write_bytes(b"")
    assert JobSpec(inside.parent).plan([inside]) == ({}, [inside])
    first = in_output(inside)
    assert first.reason is Reason.IN_OUTPUT and first.state is ItemState.SKIPPED
