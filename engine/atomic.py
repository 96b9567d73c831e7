"""Putting a finished temp file in place without ever clobbering a file that appeared meanwhile.

Shared by key files (:mod:`engine.identity`) and tagged photos (:mod:`engine.photos`): both write a
complete temp file beside the target first, so a crash never leaves a half-written file, and both
must not overwrite a name that another process (GUI + CLI) took between our check and our rename.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path


def publish(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Give the finished *tmp* the name *path*; FileExistsError if *path* is taken and
    *overwrite* is False (then *tmp* is left for the caller to remove).

    Without overwrite a hard link is used because it fails atomically if the name exists, where
    check-then-os.replace would silently replace a file created in between. Only where hard links
    are unsupported (FAT, some network shares) do we fall back to check-then-replace, which keeps
    a tiny race window but is the best those file systems offer.
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
    else:
        with contextlib.suppress(OSError):  # the file is in place; a stray temp is harmless
            tmp.unlink()


def fsync_dir(folder: Path) -> None:
    """Make a new name in *folder* durable (POSIX). Best effort: the file itself is already synced,
    and Windows cannot open folders at all, so a failure here must not fail the write."""
    if os.name == "posix":
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def remove_if_same(path: Path, created: os.stat_result) -> None:
    """Undo a write: delete *path* only if it is still the file *created* describes, so cleaning
    up after a failure never deletes a file that another process put there since. Best effort."""
    with contextlib.suppress(OSError):
        now = os.stat(path)
        if (now.st_dev, now.st_ino) == (created.st_dev, created.st_ino):
            os.unlink(path)


def write_atomic(path: Path, data: bytes, *, overwrite: bool = True, mode: int = 0o666) -> None:
    """Write *data* to a temp file beside *path*, then publish it under that name: a reader (or
    a crash) never meets a half-written file. The file is created with *mode* (less the umask)
    from the start, so a private file is never readable by others, not even briefly. Raises
    OSError (FileExistsError when *path* is taken and *overwrite* is False), with the temp file
    already removed. Shared by the card/backup files and the verification reports."""
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp, path, overwrite=overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
