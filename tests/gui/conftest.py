"""GUI fixtures: a real AppContext (real ledger, real MTCNN and watermark model) over a throw-away
FAKETAGGER_HOME. Models are cached process-wide by the engine, so only the first test pays for
loading them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PASSPHRASE = "correct horse battery"
DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def gui_home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("FAKETAGGER_HOME", str(path))
    monkeypatch.delenv("FAKETAGGER_PASSPHRASE", raising=False)
    return path


@pytest.fixture
def ctx(qapp, gui_home):
    """AppContext over the temp home, on the CPU. Its passphrase prompt is not set: tests that
    unlock set ``ctx.passphrase_provider`` (or use `identity_ctx`)."""
    from app.context import AppContext
    from engine.settings import AppSettings

    settings = AppSettings(device="cpu")
    settings.save()
    context = AppContext(settings=settings)
    yield context
    context.shutdown()


@pytest.fixture
def identity_ctx(ctx):
    """`ctx` with identity "Alice" / "correct horse battery" and a prompt that answers it."""
    ctx.ledger.create_identity("Alice", PASSPHRASE)
    ctx.passphrase_provider = lambda parent, reason, error: PASSPHRASE
    ctx.identityChanged.emit()
    return ctx
