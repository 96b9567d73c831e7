"""`python main.py` - same as the `faketagger` command: no arguments open the desktop app,
arguments run the command line."""

import sys

import torch  # noqa: F401  -- before any Qt import: Windows DLL load order (torch >= 2.9)

from app.launch import main

if __name__ == "__main__":
    sys.exit(main())
