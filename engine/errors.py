"""Exception types shared by the engine.

Every error a user may see derives from :class:`FakeTaggerError`, so front ends (GUI, CLI) can catch
one type and show ``str(err)`` as-is: the message is always a single line written for a person,
never a traceback fragment. Programming errors (wrong argument types from our own code) stay as
ordinary ``TypeError``/``ValueError``.
"""

from __future__ import annotations


class FakeTaggerError(Exception):
    """Base for all user-facing engine errors; ``str()`` is a one-line, human-readable reason."""

    def __init__(self, message: str) -> None:
        # Collapse whitespace so a stray newline from a library message cannot break a status line.
        text = " ".join(str(message).split())
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a file name that is not valid UTF-8: show its bytes escaped
            try:
                text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        self.message = text
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class PassphraseError(FakeTaggerError):
    """The passphrase is unusable (for example empty) — raised before any key material is touched."""


class WrongPassphraseError(PassphraseError):
    """The passphrase does not decrypt the private key."""


class IdentityError(FakeTaggerError):
    """Identity data is unacceptable, e.g. an empty display name or one with control characters."""


class KeyIdError(FakeTaggerError, ValueError):
    """Text that should be a key ID (``3F2A-91C0``) is not one."""


class KeyStoreError(FakeTaggerError):
    """A key file or key backup is missing, damaged or does not match its identity."""


class RecordError(FakeTaggerError):
    """A tag record is malformed (wrong type, format, missing or extra field) or cannot be made."""


class CardError(FakeTaggerError):
    """A public card cannot be accepted: not JSON, truncated, wrong format, bad signature, ..."""


class LedgerError(FakeTaggerError):
    """The local ledger refused an operation (unknown identity, conflicting key ID, ...)."""


class SerialsExhaustedError(LedgerError):
    """An identity has used all of its tag serials (the payload carries 16 bits of serial)."""


class FileAccessError(FakeTaggerError):
    """A file the user named cannot be read or written (missing, no permission, name taken)."""


class CredentialsError(FakeTaggerError):
    """Content Credentials (C2PA) could not be written or read; one line, never a traceback."""
