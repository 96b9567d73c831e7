"""A rough passphrase strength estimate for the "choose a passphrase" fields (welcome dialog,
change-passphrase dialog, CLI if it wants one).

Why a hint and not a rule: the key file is protected by scrypt (engine.identity), so each guess
costs an attacker real work, and people remember long phrases better than short symbol soups.
We therefore reward length and variety, and flag the patterns that guessers try first (common
passwords, one repeated character, keyboard/alphabet runs). The estimate never refuses anything;
:func:`engine.identity.check_passphrase` decides what is usable.
"""

from __future__ import annotations

import math
import re
import unicodedata

LABELS = ("very weak", "weak", "fair", "good", "strong")

# The passwords that top every leaked-password list; a phrase made only of these is guessed first.
# fmt: off
_COMMON = frozenset((
    "password", "passw0rd", "p@ssw0rd", "123456", "12345678", "123456789", "1234567890", "qwerty",
    "qwertyuiop", "azerty", "abc123", "111111", "000000", "letmein", "welcome", "iloveyou",
    "admin", "monkey", "dragon", "master", "sunshine", "princess", "football", "baseball",
    "shadow", "trustno1", "secret", "faketagger", "changeme",
))
# fmt: on
_RUNS = ("abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm", "01234567890")


def _alphabet_size(text: str) -> int:
    """Size of the character pool the text draws from (lower, upper, digits, symbols, other)."""
    size = 0
    if re.search(r"[a-z]", text):
        size += 26
    if re.search(r"[A-Z]", text):
        size += 26
    if re.search(r"[0-9]", text):
        size += 10
    if re.search(r"[^\w\s]", text, re.ASCII):
        size += 33
    if re.search(r"\s", text):
        size += 1
    if any(ord(c) > 127 for c in text):
        size += 100  # any non-ASCII script widens the pool a lot
    return max(size, 1)


def _is_run(text: str) -> bool:
    """True for a stretch of the alphabet, a keyboard row or digits, forwards or backwards."""
    low = text.lower()
    return len(low) >= 4 and any(low in run or low in run[::-1] for run in _RUNS)


def _collapse_patterns(text: str) -> str:
    """*text* (lower case) with each common password and each 4+ character sequence replaced by
    one character, so "qwerty123!" counts about as long as "x1!" does to a guesser."""
    low = text.lower()
    for word in sorted(_COMMON, key=len, reverse=True):
        low = low.replace(word, "\x00")
    for run in (*_RUNS, *(r[::-1] for r in _RUNS)):
        for size in range(len(run), 3, -1):
            for start in range(len(run) - size + 1):
                piece = run[start : start + size]
                if piece in low:
                    low = low.replace(piece, "\x01")
    return low


def passphrase_strength(text: str) -> tuple[int, str]:
    """Score 0 (very weak) .. 4 (strong) and a one-line hint for the person typing it.

    Entropy is estimated as length x log2(pool), with a penalty for repeated characters; it is a
    coarse guide (like the bars most sign-up forms show), not a guarantee.
    """
    phrase = unicodedata.normalize("NFC", text or "")
    if not phrase.strip():
        return 0, "Enter a passphrase."
    stripped = phrase.strip()
    words = re.findall(r"\w+", stripped.lower())
    if stripped.lower() in _COMMON or (words and all(w in _COMMON for w in words)):
        return 0, "This is one of the most common passwords; choose something personal."
    if len(set(stripped)) <= 2:
        return 0, "Avoid repeating the same character."
    if _is_run(stripped.replace(" ", "")):
        return 0, "Avoid keyboard or alphabet sequences."
    collapsed = _collapse_patterns(stripped)
    distinct = len(set(collapsed))
    effective_len = min(len(collapsed), 2 * distinct)  # "abababab..." is not long in practice
    bits = effective_len * math.log2(_alphabet_size(stripped))
    if len(stripped) < 8:
        return (0 if bits < 28 else 1), "Too short: use at least 8 characters, ideally 4+ words."
    if bits < 45:
        score, hint = 1, "Weak: add more words or characters."
    elif bits < 60:
        score, hint = 2, "Fair: a few more words would make it much harder to guess."
    elif bits < 80:
        score, hint = 3, "Good."
    else:
        score, hint = 4, "Strong."
    if score < 4 and len(words) < 3 and len(stripped) < 16:
        hint += " Several unrelated words are easy to remember and hard to guess."
    return score, hint
