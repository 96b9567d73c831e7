"""Where FakeTagger keeps its files.

All per-user state (keys, ledger, settings, logs) lives under one root so that a single environment
variable, ``FAKETAGGER_HOME``, can redirect everything — tests, portable installs and a second
profile all rely on that. Without it we follow the platform conventions via platformdirs.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "FakeTagger"
HOME_ENV = "FAKETAGGER_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def _ensure(path: Path, private: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if private and os.name == "posix":
        # Key files are already 0600; a 0700 folder also hides which identities exist.
        path.chmod(0o700)
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
