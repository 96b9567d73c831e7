"""Is the process that reserved these serials still alive? A lock file per session answers it.

Each process that starts a tag job holds an exclusive lock on ``locks/<token>.lock`` beside the
ledger for as long as it lives; the operating system drops the lock when the process ends, however
it ends (kill -9, power cut: the file may stay, but nobody holds it). Recovery takes over a
reservation only when it can take its session's lock itself, so a running GUI and a CLI run never
undo each other's work. Process IDs would not do: they are reused, and say nothing across machines
that share a folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fh: BinaryIO) -> bool:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fh: BinaryIO) -> None:
        with contextlib.suppress(OSError):
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fh: BinaryIO) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(fh: BinaryIO) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class SessionLock:
    """This process's session: a fresh token whose lock file stays locked until close()."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(8)
        self.path = folder / f"{self.token}.lock"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._fh: BinaryIO | None = os.fdopen(fd, "r+b")
        if not _try_lock(self._fh):  # a fresh name: nobody else can hold it
            raise OSError(f"cannot lock {self.path}")

    def close(self) -> None:
        if self._fh is None:
            return
        _unlock(self._fh)
        self._fh.close()
        self._fh = None
        with contextlib.suppress(OSError):
            self.path.unlink()


def session_alive(folder: Path, token: str) -> bool:
    """True while the session *token* is held by a live process (this one included)."""
    path = folder / f"{token}.lock"
    try:
        fh = open(path, "r+b")  # noqa: SIM115 - closed below, lock released first
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: assume alive, never undo a live job
    try:
        if not _try_lock(fh):
            return True
        _unlock(fh)
    finally:
        fh.close()
    with contextlib.suppress(OSError):  # a dead session's file: tidy up
        path.unlink()
    return False
