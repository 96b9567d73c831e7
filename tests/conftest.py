"""Shared fixtures: a throw-away FAKETAGGER_HOME per test, real ledger, real models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "sample.jpg"
DATA = Path(__file__).resolve().parent / "data"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("FAKETAGGER_HOME", str(path))
    monkeypatch.setenv("FAKETAGGER_PASSPHRASE", PASSPHRASE)
    return path


@pytest.fixture
def ledger(home):
    from engine.store.ledger import Ledger

    with Ledger() as led:
        yield led


@pytest.fixture
def identity(ledger):
    """An unlocked identity 'Alice' in the test's ledger."""
    ident = ledger.create_identity("Alice", PASSPHRASE)
    return ledger.unlock(ident.key_id, PASSPHRASE)


@pytest.fixture
def pipeline(ledger):
    from engine.pipeline import Pipeline

    return Pipeline(ledger, device="cpu")
