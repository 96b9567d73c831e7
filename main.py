"""`python main.py` - same as the `faketagger` command."""

import sys

import torch  # noqa: F401  -- before any Qt import: Windows DLL load order (torch >= 2.9)

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
