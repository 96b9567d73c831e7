"""Passphrase strength: the hint shown while choosing one, and the minimum the ledger accepts.

The estimate is zxcvbn's (Dropbox's estimator, the one password managers use): it knows leaked
password lists, dictionaries, names, keyboard patterns, dates, repeats and l33t spellings, and
scores the number of guesses an attacker needs: 0 (< 10^3), 1 (< 10^6), 2 (< 10^8), 3 (< 10^10),
4 (more). The key file is protected by scrypt (~0.1 s per guess, engine.identity), so a score-1
passphrase still falls to one core in about a day; :data:`MIN_SCORE` 2 is refused below.
"""

from __future__ import annotations

import unicodedata

from zxcvbn import zxcvbn

from engine.errors import PassphraseError

LABELS = ("very weak", "weak", "fair", "good", "strong")
#: Weakest score :func:`require_strong` accepts (new identities, new passphrases).
MIN_SCORE = 2
#: zxcvbn's run time grows quickly with length; beyond this many characters a passphrase is
#: long enough that only its start needs judging.
_MAX_CHARS = 72  # zxcvbn refuses longer input


def _estimate(text: str, user_inputs: list[str] | None = None) -> dict:
    inputs = [w for s in (user_inputs or []) for w in str(s).split() if w]
    return zxcvbn(text[:_MAX_CHARS], user_inputs=inputs)


def passphrase_strength(text: str, user_inputs: list[str] | None = None) -> tuple[int, str]:
    """Score 0 (very weak) .. 4 (strong) and a one-line hint for the person typing it.
    *user_inputs* (the identity's name) count as words a guesser knows."""
    phrase = unicodedata.normalize("NFC", text or "")
    if not phrase.strip():
        return 0, "Enter a passphrase."
    result = _estimate(phrase, user_inputs)
    score = int(result["score"])
    if score >= 4:
        return 4, "Strong."
    feedback = result.get("feedback") or {}
    parts = [feedback.get("warning") or ""] + list(feedback.get("suggestions") or [])
    advice = " ".join(p.strip() for p in parts if p and p.strip())
    lead = {0: "Very weak.", 1: "Weak.", 2: "Fair.", 3: "Good."}[score]
    if score < MIN_SCORE:
        lead += " Too easy to guess: FakeTagger will not accept it."
    return score, " ".join(f"{lead} {advice}".split())


def require_strong(passphrase: str, user_inputs: list[str] | None = None) -> None:
    """PassphraseError unless *passphrase* scores at least MIN_SCORE."""
    score, hint = passphrase_strength(passphrase, user_inputs)
    if score < MIN_SCORE:
        raise PassphraseError(f"passphrase is too weak ({LABELS[score]}): {hint} "
                              "Use several unrelated words")
