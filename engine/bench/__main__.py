"""``python -m engine.bench``: the same as ``faketagger bench``."""

import sys

from engine.bench.runner import main

sys.exit(main())
