"""``python -m engine.cli``: the command line without the desktop app."""

import sys

from engine.cli.main import main

sys.exit(main())
