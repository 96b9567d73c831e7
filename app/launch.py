"""`faketagger` entry point: arguments -> the command line, no arguments -> the desktop app."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv:
        from engine.cli.main import main as cli_main

        return cli_main(argv)
    # torch before any Qt import: on Windows, torch >= 2.9 fails to load its DLLs after Qt's.
    import torch  # noqa: F401

    from app.gui import run_gui

    return run_gui()


if __name__ == "__main__":
    sys.exit(main())
