"""The app's own settings (device, threshold, output defaults) as a small JSON file.

A JSON file in the platformdirs config folder rather than QSettings: it lives next to the rest of
the user's FakeTagger state, honours ``FAKETAGGER_HOME`` (tests, portable installs), and is
readable by a person. Unknown keys are ignored and bad values fall back to the defaults, so an
old or hand-edited file never stops the app from starting.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path

from engine import paths
from engine.atomic import clean_temps, write_atomic
from engine.limits import (
    DEFAULT_QUALITY,
    DEFAULT_STRENGTH,
    DEFAULT_THRESHOLD,
    JPEG_QUALITY,
    STRENGTH,
    THRESHOLD,
    Limit,
    OptionError,
)
from engine.photos import OutputFormat
from engine.protect.spec import JobSpec

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
#: The output formats the GUI offers (the engine also writes WebP and TIFF: `faketagger protect`).
FORMATS = (OutputFormat.KEEP, OutputFormat.JPEG, OutputFormat.PNG)
FILE_NAME = "settings.json"


def settings_path() -> Path:
    return paths.config_dir() / FILE_NAME


def _within(limit: Limit, value, default):
    """*value* when engine.limits accepts it, else *default* (a hand-edited file never stops
    the app)."""
    try:
        return limit.check(value)
    except OptionError:
        return default


@dataclass
class AppSettings:
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    threshold: float = DEFAULT_THRESHOLD
    output_dir: str = ""  # "" = a "tagged" folder next to the photos
    output_format: OutputFormat = OutputFormat.KEEP  # one of FORMATS
    jpeg_quality: int = DEFAULT_QUALITY
    strength: float = DEFAULT_STRENGTH  # JobSpec.strength
    c2pa: bool = False  # JobSpec.c2pa: off unless the user turns it on (it reveals a name)
    small_thumbnails: bool = False  # JobSpec.small_thumbnails (less face on a card)

    def job_spec(self, **form) -> JobSpec:
        """The GUI's protect run: these saved preferences, overridden by what the Protect tab's
        form says for this run (output folder, format, quality, retag, face choices). Built
        here, once, so the GUI's jobs detect and tag exactly as its preview did."""
        out = Path(self.output_dir) if self.output_dir else None
        return JobSpec(**{"out_dir": out, "fmt": self.output_format,
                          "jpeg_quality": self.jpeg_quality, "strength": self.strength,
                          "threshold": self.threshold, "c2pa": self.c2pa,
                          "small_thumbnails": self.small_thumbnails, **form})

    def normalized(self) -> AppSettings:
        """A copy with every out-of-range value replaced by its default."""
        d = AppSettings()
        return AppSettings(
            device=self.device if self.device in DEVICES else d.device,
            threshold=_within(THRESHOLD, self.threshold, d.threshold),
            output_dir=self.output_dir,
            output_format=OutputFormat(self.output_format) if self.output_format in FORMATS
            else d.output_format,
            jpeg_quality=_within(JPEG_QUALITY, self.jpeg_quality, d.jpeg_quality),
            strength=_within(STRENGTH, self.strength, d.strength),
            c2pa=self.c2pa is True,
            small_thumbnails=self.small_thumbnails is True,
        )

    @classmethod
    def load(cls) -> AppSettings:
        """Settings from the config file; defaults when it is missing or unreadable."""
        path = settings_path()
        clean_temps(path.parent)  # what a save killed mid-way left (engine.atomic recovery)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as err:
            log.warning("ignoring unreadable settings file %s: %s", path, err)
            return cls()
        if not isinstance(doc, dict):
            return cls()
        defaults = cls()
        values = {}
        for f in fields(cls):
            want = type(getattr(defaults, f.name))
            value = doc.get(f.name, getattr(defaults, f.name))
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is want or (issubclass(want, StrEnum) and type(value) is str):
                values[f.name] = value  # normalized() turns a known string into its enum
        return cls(**values).normalized()

    def save(self) -> None:
        """Write atomically (engine.atomic: temp file, fsync, replace): a crash never leaves
        half a settings file."""
        text = json.dumps(asdict(self), indent=2) + "\n"
        write_atomic(settings_path(), text.encode("utf-8"))
