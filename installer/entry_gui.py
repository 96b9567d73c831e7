"""Frozen entry of the desktop app: the `FakeTagger` executable (FakeTagger.exe, FakeTagger.app).

Arguments are photos to open ("Open with FakeTagger" in a file manager passes them), never
command-line commands: the console executable beside it (`faketagger`) is the command line.
"""

import sys

import torch  # noqa: F401  -- before any Qt import: Windows DLL load order (torch >= 2.9)

from app.gui import run_gui

if __name__ == "__main__":
    sys.exit(run_gui(files=sys.argv[1:]))
