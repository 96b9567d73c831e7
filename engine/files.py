"""Reading and writing the small files a user names (cards, key backups, exported records).

Shared by the CLI and the GUI, so both report the same one-line reasons; failures raise
:class:`engine.errors.FileAccessError` (a FakeTaggerError), never a bare OSError.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.atomic import write_atomic
from engine.errors import FileAccessError


def write_file(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Atomic write, mode 0600 (key backups hold the encrypted key; cards and record exports
    list what a person tagged). With overwrite=False an existing file is never replaced: the CLI
    passes its --force here, the GUI True only after its save dialog asked."""
    try:
        write_atomic(path, data, overwrite=overwrite, mode=0o600)
    except FileExistsError:
        raise FileAccessError(f"{path} already exists; choose another name or use --force"
                              ) from None
    except IsADirectoryError:
        raise FileAccessError(f"{path} is a folder; name a file") from None
    except OSError as err:
        raise FileAccessError(f"{path}: cannot write ({err.strerror})") from None


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise FileAccessError(f"{path}: cannot read ({err.strerror})") from None


def display_path(path: Path | str) -> str:
    """*path* made absolute, as text that can always be printed, stored in SQLite and written to
    JSON: bytes of a file name that are not valid UTF-8 become ``\\xNN`` escapes (the name itself
    stays as it is on disk)."""
    text = os.path.abspath(os.fspath(path))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def safe_text(text: str) -> str:
    """Any text (an error message with a file name in it) printable and storable as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
