"""Every file FakeTagger writes goes through here: one temp name, fsync, publish, recovery.

A file is written complete under a hidden temp name beside its target, fsynced, and only then
given the target's name (:func:`publish`), so a crash or a full disk never leaves a half-written
key file, ledger, settings file or photo. Keeping the one copy of this sequence here matters
because each hand-written copy drifted (no fsync, a different temp name that recovery did not
know, a rename that clobbered a file another process created meanwhile).

The pieces, from the simplest to the most flexible:

* :func:`write_atomic`: bytes in memory to a file.
* :func:`atomic_writer`: the same for writers that stream into a file object (image encoders,
  copies).
* :func:`atomic_path`: for writers that need a file *name* (SQLite).
* :func:`temp_path_for`, :func:`fill_temp`, :func:`publish`, :func:`fsync_dir`: the steps
  apart, for the tagging pipeline that hashes and signs the temp file before it publishes it.
* :func:`is_temp_name`, :func:`clean_temps`: recovery, which must recognise every temp name this
  project writes now *and* the ones older versions left on disk.

This module is the bottom layer: it imports nothing from ``engine``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: New files only (O_EXCL: never reuse or follow a name someone else put there), read-write so
#: that writers which read back what they wrote (the C2PA signer) can use the same helpers.
_NEW_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)

#: SQLite writes these beside a database it is filling; a temp's sidecars are temps too.
SQLITE_SIDECARS = ("-journal", "-wal", "-shm")

#: A temp file untouched for this long belongs to no live writer: every writer here fills its
#: temp and publishes it within seconds (a large ledger backup keeps touching its file), so an
#: hour leaves a wide margin for another process (GUI and CLI side by side) that is still at it.
STALE_AFTER_S = 3600.0

#: Every temp name this project writes, and every one an older version may have left behind.
#: Only hidden names (a leading dot), with one narrow exception, so recovery never deletes a
#: user's file (browsers, for one, leave visible ``name.part`` downloads).
_TEMP_NAME = re.compile(
    r"""
    \.(?P<target>.+?)
    (?:
        \.[0-9a-f]+\.part(?:\.c2pa)?   # now: .<name>.<hex>.part (photos once had 16 hex digits);
                                       #   .c2pa: the signed copy of a photo temp, before #19
      | \.part                         # settings, ledger backups, bench report, before #19
      | \.[0-9a-f]+\.tmp               # key files (hex), training caches (pid), before #19
      | \.[0-9]+\.tmp\.png             # training video frames, before #19
      | \.[0-9a-f]+\.new               # a ledger being created, before #19
      | \.restore                      # a ledger being restored from a backup, before #19
    )
    (?:-journal|-wal|-shm)?            # SQLite's sidecars of a database temp
    """,
    re.VERBOSE,
)
#: Weights files were once written as a visible ``<name>.safetensors.part``.
_LEGACY_VISIBLE = re.compile(r"[^.].*\.safetensors\.part")


class Abandon(Exception):
    """Raise inside :func:`atomic_writer` or :func:`atomic_path` to publish nothing: the temp
    file is removed and the ``with`` block ends quietly (a ledger backup that fails its check)."""


def temp_path_for(path: Path) -> Path:
    """The temp name *path* is written under: ``.<name>.<12 hex digits>.part`` beside it.

    Hidden, so file browsers and the folder scans (:mod:`engine.photos`) skip it; random, so two
    writers of one target (GUI and CLI) never share a temp; in the same folder, so publishing is a
    rename or link within one file system; ``.part`` last, so :func:`is_temp_name` knows it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.urandom(6).hex()}.part")


def is_temp_name(name: str) -> bool:
    """Whether the file name *name* is one of our temp files (current or older convention, or a
    SQLite sidecar of one), never a finished file or a user's own file."""
    return bool(_TEMP_NAME.fullmatch(name) or _LEGACY_VISIBLE.fullmatch(name))


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


def _refuse_taken(path: Path, overwrite: bool) -> None:
    """An early FileExistsError, before any work, when *path* is taken and must not be replaced.
    Only a courtesy: :func:`publish` is what guards against a file that appears later."""
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))


def _remove_temp(tmp: Path) -> None:
    """Remove *tmp* and any SQLite sidecar of it; never fails (the caller is already failing)."""
    for name in (tmp, *(tmp.with_name(tmp.name + s) for s in SQLITE_SIDECARS)):
        with contextlib.suppress(OSError):
            name.unlink(missing_ok=True)


@contextlib.contextmanager
def fill_temp(tmp: Path, *, mode: int = 0o666) -> Iterator[BinaryIO]:
    """Create the NEW file *tmp* with *mode* (less the umask) and yield it open (binary,
    read-write). When the block ends normally the file is flushed, fsynced and closed; when it
    raises, the file is closed and removed. Publishing is left to the caller.

    The mode is given at creation (os.open, not mkstemp, whose 0600 would stick to a photo; not
    open-then-chmod, which would leave a key file readable by others for a moment)."""
    tmp = Path(tmp)
    fd = os.open(tmp, _NEW_FILE_FLAGS, mode)
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _remove_temp(tmp)
        raise


@contextlib.contextmanager
def atomic_writer(path: Path, *, overwrite: bool = True, mode: int = 0o666) -> Iterator[BinaryIO]:
    """Yield a file to write *path*'s new content into; when the block ends it is fsynced and
    published under *path*, and the folder synced. On any failure (or :class:`Abandon`) nothing
    is published and the temp is gone. With *overwrite* False an existing *path* is never
    replaced, not even one that appears while the block runs: FileExistsError."""
    path = Path(path)
    _refuse_taken(path, overwrite)
    tmp = temp_path_for(path)
    try:
        with fill_temp(tmp, mode=mode) as fh:
            yield fh
    except Abandon:
        return
    try:
        publish(tmp, path, overwrite=overwrite)
    finally:
        _remove_temp(tmp)  # gone already after a replace; a link leaves it behind
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: Path, *, overwrite: bool = True, mode: int = 0o666) -> Iterator[Path]:
    """Like :func:`atomic_writer` for writers that need a file name (SQLite): yield the name of a
    new, empty temp file created with *mode*. Whatever the block left there is fsynced and
    published under *path*; on failure or :class:`Abandon` the temp and its SQLite sidecars are
    removed. The block must have closed the file (its connection) before it ends."""
    path = Path(path)
    _refuse_taken(path, overwrite)
    tmp = temp_path_for(path)
    os.close(os.open(tmp, _NEW_FILE_FLAGS, mode))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))  # Windows fsyncs writable fds
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        publish(tmp, path, overwrite=overwrite)
    except Abandon:
        return
    finally:
        _remove_temp(tmp)
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, *, overwrite: bool = True, mode: int = 0o666) -> None:
    """Write *data* to a temp file beside *path*, then publish it under that name: a reader (or
    a crash) never meets a half-written file. The file is created with *mode* (less the umask)
    from the start, so a private file is never readable by others, not even briefly. Raises
    OSError (FileExistsError when *path* is taken and *overwrite* is False), with the temp file
    already removed."""
    with atomic_writer(path, overwrite=overwrite, mode=mode) as fh:
        fh.write(data)


def clean_temps(folder: Path, *, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Recovery: remove the temp files (:func:`is_temp_name`, any convention) that a killed
    writer left in *folder* (not its subfolders), and return them. A temp younger than
    *older_than_s* may belong to a writer in another process that is still at work, so it stays.
    Best effort: recovery must never be what stops the app from opening."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not is_temp_name(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False) or now - info.st_mtime < older_than_s:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed
