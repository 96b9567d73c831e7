"""The valid range and the default of every option a user can set: tag strength, JPEG quality,
detection threshold, smallest face. One owner: the engine's option types (JobSpec, FaceDetector)
check their values here and raise :class:`OptionError`; the CLI's argument parser, the GUI's spin
boxes and saved settings read the same bounds and defaults, so no front end can let a value
through that the engine refuses, refuse one the engine accepts, or start from another default
(they once did: batch jobs detected at 0.95 while protect detected at 0.92).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import FakeTaggerError


class OptionError(FakeTaggerError, ValueError):
    """An option is outside its valid range or not a number."""


@dataclass(frozen=True)
class Limit:
    """A closed range [lo, hi] for a named option; `integer` ones refuse fractions."""

    name: str
    lo: float
    hi: float
    default: float = 0.0
    integer: bool = False
    why: str = ""

    def check(self, value: object) -> float | int:
        """*value* as a number inside the range, else OptionError naming the range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(f"{self.name} must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionError(f"{self.name} must be a finite number, got {value}")
        if self.integer and value != int(value):
            raise OptionError(f"{self.name} must be a whole number, got {value}")
        if not self.lo <= value <= self.hi:
            why = f" ({self.why})" if self.why else ""
            raise OptionError(f"{self.name} must be between {self.text(self.lo)} and "
                              f"{self.text(self.hi)}, got {self.text(value)}{why}")
        return int(value) if self.integer else float(value)

    def text(self, value: float) -> str:
        return str(int(value)) if self.integer else f"{value:g}"

    def parse(self, text: str) -> float | int:
        """For argparse's ``type=``: the checked number, OptionError (one line) otherwise."""
        try:
            value = int(text) if self.integer else float(text)
        except (TypeError, ValueError):
            raise OptionError(f"{self.name} must be a number, got {text!r}") from None
        return self.check(value)


#: Multiple of the model's standard residual. Below 0.25 the tag does not survive everyday
#: processing; above 4 it becomes plainly visible (and past that, noise).
#: The default 0.88 puts model v1 at 38.35 dB mean face PSNR (37.46 worst) with every everyday
#: target still met (bench, MODEL_CARD.md "Default strength").
STRENGTH = Limit("tag strength", 0.25, 4.0, 0.88,
                 why="higher is more robust but visible; the default is 0.88")
#: JPEG / WebP quality of a tagged copy. Below 50 the compression itself destroys the tag
#: (bench: exact recovery falls under 98% at JPEG 30).
JPEG_QUALITY = Limit("JPEG quality", 50, 100, 95, integer=True,
                     why="lower qualities destroy the tag")
#: MTCNN probability a detection needs. Below 0.5 most detections are not faces (DESIGN.md);
#: at 1.0 nothing is ever found. The default: MTCNN boxes below 0.9 include false faces.
THRESHOLD = Limit("face detection threshold", 0.5, 0.99, 0.92)
#: Smallest face side (pixels) that gets a tag; smaller faces cannot carry one reliably.
MIN_FACE = Limit("smallest face size", 20, 4000, 40, integer=True, why="in pixels")

#: The defaults by name, for signatures and argparse (the Limit owns each value).
DEFAULT_STRENGTH: float = STRENGTH.default
DEFAULT_QUALITY: int = int(JPEG_QUALITY.default)
DEFAULT_THRESHOLD: float = THRESHOLD.default
DEFAULT_MIN_FACE: int = int(MIN_FACE.default)
