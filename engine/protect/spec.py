"""One protect run's options in one frozen value, the :class:`JobSpec` every front end builds (the
CLI's ``protect`` and ``batch``, the GUI, the Pipeline) and every runner obeys; defaults and
ranges from engine.limits. A job stores its spec (``to_json``) and a resume rebuilds it
(``from_json``); jobs stored with the former ``BatchOptions`` fields load too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from engine.limits import (
    DEFAULT_MIN_FACE,
    DEFAULT_QUALITY,
    DEFAULT_STRENGTH,
    DEFAULT_THRESHOLD,
    JPEG_QUALITY,
    MIN_FACE,
    STRENGTH,
    THRESHOLD,
    OptionError,
)
from engine.photos import OutputFormat

#: Where tagged copies go when a run names no output folder: this folder next to each photo.
DEFAULT_SUBFOLDER = "tagged"
#: What a tagged copy's name adds to the photo's stem (``a.jpg`` -> ``a-tagged.jpg``).
TAGGED_SUFFIX = "-tagged"
#: Side (px) of the face thumbnail in each signed record: enough for verify's face-change check
#: (engine.change) with a card alone. 48 px, the owner's choice, shows less and decides nothing.
THUMB_SIDE = 112
SMALL_THUMB_SIDE = 48
#: What a stored spec leaves out: the output folder and the face choices are stored per photo.
_NOT_STORED = ("out_dir", "faces")


def output_format(value: object) -> OutputFormat:
    """Any spelling ("PNG", "png", None for keep) as an OutputFormat; OptionError otherwise."""
    try:
        return OutputFormat(str(value or "keep").lower())
    except ValueError:
        choices = ", ".join(f.value for f in OutputFormat)
        raise OptionError(f"output format must be one of {choices}, got {value!r}") from None


@dataclass(frozen=True)
class JobSpec:
    """Every option of a protect run. Checked when made (engine.limits), so a bad value costs
    nothing: no detection, embedding or serial happens before it is refused."""

    out_dir: Path | None = None  # None: a DEFAULT_SUBFOLDER folder next to each photo
    fmt: OutputFormat = OutputFormat.KEEP
    jpeg_quality: int = DEFAULT_QUALITY
    strength: float = DEFAULT_STRENGTH
    retag: bool = False  # tag photos whose faces already carry a tag (else they are skipped)
    copy_no_face: bool = False  # copy photos without a face through, unchanged
    threshold: float = DEFAULT_THRESHOLD
    min_face: int = DEFAULT_MIN_FACE
    c2pa: bool = False  # also sign Content Credentials into each copy (reveals the owner's name)
    #: 48 px record thumbnails instead of 112: a card then shows less of the owner's face, and
    #: verify cannot say whether the face was changed (README, "Face change").
    small_thumbnails: bool = False
    #: Tag a photo again although its tagged copy is already recorded in its output folder:
    #: ``faketagger protect`` makes a new copy each run; batch jobs and the GUI skip it, so a
    #: rerun of the same command never tags twice.
    tag_again: bool = False
    #: Per photo, the face indices to tag (into detect(include_small=True)'s order; a photo
    #: absent: every face): the GUI's checkboxes. Stored per photo with a job, not in its spec.
    faces: Mapping[Path, list[int]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "fmt", output_format(self.fmt))
        set_(self, "jpeg_quality", JPEG_QUALITY.check(self.jpeg_quality))
        set_(self, "strength", STRENGTH.check(self.strength))
        set_(self, "threshold", THRESHOLD.check(self.threshold))
        set_(self, "min_face", MIN_FACE.check(self.min_face))
        if self.out_dir is not None:
            set_(self, "out_dir", Path(self.out_dir))

    @property
    def thumb_side(self) -> int:
        return SMALL_THUMB_SIDE if self.small_thumbnails else THUMB_SIDE

    def chosen(self, path: Path) -> list[int] | None:
        """The faces of *path* to tag (None: all)."""
        return None if self.faces is None else self.faces.get(path)

    def out_dir_for(self, path: Path) -> Path:
        return self.out_dir if self.out_dir is not None else Path(path).parent / DEFAULT_SUBFOLDER

    def plan(self, paths: list[Path]) -> tuple[dict[Path, list[Path]], list[Path]]:
        """The photos grouped by resolved output folder (order kept within a group), and the
        photos that lie inside their own output folder: never tagged again, so a run over a
        folder that holds its own outputs does not tag the tagged copies."""
        groups: dict[Path, list[Path]] = {}
        inside: list[Path] = []
        for path in paths:
            out = self.out_dir_for(path).resolve()
            if Path(path).resolve().is_relative_to(out):
                inside.append(path)
            else:
                groups.setdefault(out, []).append(path)
        return groups, inside

    def to_json(self) -> dict:
        """What a recorded job stores (plain JSON values)."""
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_STORED}
        doc["fmt"] = self.fmt.value
        return doc

    @classmethod
    def from_json(cls, doc: Mapping) -> JobSpec:
        """A stored spec; unknown keys are ignored and missing ones take today's defaults, so
        jobs stored by older versions (BatchOptions' fields) resume as they were made."""
        names = {f.name for f in fields(cls)} - set(_NOT_STORED)
        return cls(**{k: v for k, v in doc.items() if k in names})
