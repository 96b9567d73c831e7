"""Reading and writing the small files a user names (cards, key backups, exported records).

Shared by the CLI and the GUI, so both report the same one-line reasons; failures raise
:class:`engine.errors.FileAccessError` (a FakeTaggerError), never a bare OSError.
"""

from __future__ import annotations

from pathlib import Path

from engine.atomic import write_atomic
from engine.errors import FileAccessError


def write_file(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Atomic write; with overwrite=False an existing file is never replaced (key backups)."""
    try:
        write_atomic(path, data, overwrite=overwrite)
    except FileExistsError:
        raise FileAccessError(f"{path} already exists; choose another name") from None
    except OSError as err:
        raise FileAccessError(f"{path}: cannot write ({err.strerror})") from None


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise FileAccessError(f"{path}: cannot read ({err.strerror})") from None
