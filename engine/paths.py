"""Where FakeTagger keeps its files.

All per-user state (keys, ledger, settings, logs) lives under one root so that a single environment
variable, ``FAKETAGGER_HOME``, can redirect everything — tests, portable installs and a second
profile all rely on that. Without it we follow the platform conventions via platformdirs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

from engine.errors import FileAccessError

APP_NAME = "FakeTagger"
HOME_ENV = "FAKETAGGER_HOME"


def is_frozen() -> bool:
    """True in the desktop build (PyInstaller, installer/faketagger.spec), False in a checkout."""
    return bool(getattr(sys, "frozen", False))


def assets_dir() -> Path:
    """The read-only files FakeTagger ships: model weights and card, icons, the sample photo.

    The one place that finds them: ``sys._MEIPASS/assets`` in the frozen desktop build (the spec
    bundles them there), the repository's ``assets/`` otherwise. Every module that needs an asset
    asks here instead of computing a path from its own ``__file__``.
    """
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return base / "assets"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def _ensure(path: Path, private: bool = False) -> Path:
    """*path* as an existing folder; FileAccessError (one line, with the way out) when it cannot
    be one: FAKETAGGER_HOME naming a file, a read-only or foreign folder."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if private and os.name == "posix":
            # Key files are already 0600; a 0700 folder also hides which identities exist.
            path.chmod(0o700)
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else path
        reason = ("a file is in the way" if isinstance(exc, FileExistsError | NotADirectoryError)
                  else exc.strerror or type(exc).__name__)
        raise FileAccessError(f"cannot use {where} as FakeTagger's data folder ({reason}); "
                              f"set {HOME_ENV} to a writable folder") from None
    return path


def data_dir() -> Path:
    """Root for keys and the ledger: ``$FAKETAGGER_HOME`` or the platform user-data folder."""
    home = _home()
    base = home if home is not None else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return _ensure(base)


def config_dir() -> Path:
    """Settings folder: ``$FAKETAGGER_HOME/config`` or the platform user-config folder."""
    home = _home()
    if home is not None:
        return _ensure(home / "config")
    return _ensure(Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)))


def log_dir() -> Path:
    """Log folder: ``$FAKETAGGER_HOME/logs`` or the platform user-log folder."""
    home = _home()
    if home is not None:
        return _ensure(home / "logs")
    return _ensure(Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)))


def keys_dir(base: Path | None = None) -> Path:
    """Folder of encrypted private keys (``<base or data_dir()>/keys``), mode 0700 on POSIX."""
    return _ensure((base if base is not None else data_dir()) / "keys", private=True)


def ledger_path() -> Path:
    """Default location of the SQLite ledger."""
    return data_dir() / "ledger.sqlite3"
