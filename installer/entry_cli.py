"""Frozen entry of the command line: the console `faketagger` executable (faketagger-cli.exe on
Windows and in the macOS app bundle, whose file systems do not tell it apart from FakeTagger).

The same as the developer install's `faketagger` command: arguments run the command line, none
open the desktop app.
"""

import sys

from app.launch import main

if __name__ == "__main__":
    sys.exit(main())
