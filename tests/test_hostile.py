"""Issue 11's hostile-input corpus (tests/hostile.py) under pytest: every case must end in a
clear one-line message, with originals untouched, nothing overwritten and a consistent ledger."""

from __future__ import annotations

import sys

import pytest

from .hostile import run_corpus

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names and FIFOs")


def test_hostile_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = run_corpus(tmp_path)
    assert summary.inputs >= 150
    failures = [f"{r.case.name}: {r.problems}" for r in summary.failed]
    assert not failures, "\n".join(failures)
    assert not summary.image_problems, "\n".join(summary.image_problems)
    assert not summary.orphans and not summary.temps, (summary.orphans, summary.temps)
