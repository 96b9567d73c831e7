"""The passphrase strength hint shown while choosing a passphrase (welcome + change dialogs)."""

from __future__ import annotations

import pytest

from engine.passphrase import LABELS, passphrase_strength


@pytest.mark.parametrize(
    "text", ["", "   ", "password", "123456789", "aaaaaaaaaaaa", "abcdefgh", "qwertyuiop", "hello"]
)
def test_obviously_weak_scores_zero(text: str) -> None:
    score, hint = passphrase_strength(text)
    assert score == 0
    assert hint


def test_common_word_plus_digits_stays_weak() -> None:
    assert passphrase_strength("qwerty123")[0] <= 1
    assert passphrase_strength("password2024!")[0] <= 2


@pytest.mark.parametrize("text", ["x", "hunter2", "password123", "Alice1", "aaaaaaaaaaaaaaa"])
def test_weakest_passphrases_are_refused(text: str) -> None:
    """Issue 11: a 1-character passphrase was accepted for a new identity."""
    from engine.errors import PassphraseError
    from engine.passphrase import require_strong

    with pytest.raises(PassphraseError, match="too weak"):
        require_strong(text, user_inputs=["Alice"])
    require_strong("correct horse battery staple")


def test_weak_passphrase_creates_no_identity(home) -> None:
    from engine.errors import PassphraseError
    from engine.store.ledger import Ledger

    with Ledger() as ledger:
        with pytest.raises(PassphraseError, match="too weak"):
            ledger.create_identity("Alice", "a")
        assert ledger.list_identities() == []


def test_long_phrases_are_strong() -> None:
    assert passphrase_strength("correct horse battery staple") == (4, "Strong.")
    assert passphrase_strength("ΚαλημέραΚόσμε φίλε")[0] == 4  # non-ASCII counts


def test_score_never_drops_when_words_are_added() -> None:
    scores = [
        passphrase_strength(t)[0]
        for t in ("maple", "maple river", "maple river gold", "maple river gold tiger")
    ]
    assert scores == sorted(scores)
    assert scores[-1] >= 3


def test_score_range_and_labels() -> None:
    for text in ("x", "Tr0ub4dor&3", "x9#Lq2!vP0zR", "a" * 200):
        score, hint = passphrase_strength(text)
        assert 0 <= score < len(LABELS)
        assert isinstance(hint, str) and "\n" not in hint
