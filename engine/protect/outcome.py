"""What happened to one photo of a protect run, as data: a status, a typed reason, the words.

Front ends and runners act on the photo's :class:`~engine.store.batches.ItemState` (the one
vocabulary of photo states, also what a batch job stores) and its :class:`Reason` (never on an
error's words, which are for people and may change); the exception's type decides the reason,
once, here, and the reason decides between skipped and failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from engine.errors import FakeTaggerError, SerialsExhaustedError
from engine.files import display_path, safe_text
from engine.model.readback import BOOSTS, CHECK_QUALITY, CHECK_SCALE, ReadBack
from engine.store.batches import ItemState

log = logging.getLogger(__name__)


def unexpected(path: Path, err: BaseException) -> str:
    """A bug met on one photo, logged with its traceback and told in one line: the photo fails,
    the run goes on."""
    log.error("unexpected error on %s", display_path(path), exc_info=err)
    return safe_text(f"{display_path(path)}: unexpected error ({type(err).__name__}: {err}); "
                     "the other photos go on")


@dataclass
class TaggedFace:
    box: list[int]
    serial: int
    payload_hex: str
    psnr: float
    readback: ReadBack | None = None  # None: tagged before read-back existed (not stored)

    def to_json(self) -> dict:
        doc = {"box": self.box, "serial": self.serial}
        if self.readback is not None:
            doc["boost"], doc["read_back"] = self.readback.boost, self.readback.passed
        return doc


class Reason(StrEnum):
    """Why a photo was skipped or failed, for code to act on (:attr:`ProtectOutcome.reason`);
    the words for people stay in :attr:`ProtectOutcome.error`."""

    IN_OUTPUT = "in_output"  # the photo lies inside its own output folder
    COPY_EXISTS = "copy_exists"  # its tagged copy is already recorded in the output folder
    HAS_TAG = "has_tag"  # a face already carries a tag (not --retag)
    CHANGED = "changed"  # changed since its batch job started, or gone
    OUT_OF_SERIALS = "out_of_serials"  # the key ran out of serials within the photo
    ERROR = "error"  # anything else: unreadable, unwritable, a bug


#: Reasons for not tagging a photo on purpose (state SKIPPED); every other reason is a failure.
SKIP_REASONS = frozenset({Reason.IN_OUTPUT, Reason.COPY_EXISTS, Reason.HAS_TAG})


@dataclass
class ProtectOutcome:
    input: Path
    output: Path | None = None
    faces: list[TaggedFace] = field(default_factory=list)
    small_faces: list[list[int]] = field(default_factory=list)
    error: str | None = None  # why the photo failed or was skipped, in words
    c2pa: bool = False  # the tagged copy carries a signed Content Credentials manifest
    reason: Reason | None = None  # `error` for code: set with every error (ERROR by default)

    def __post_init__(self) -> None:
        if self.error and self.reason is None:
            self.reason = Reason.ERROR

    @classmethod
    def failed(cls, path: Path, err: BaseException | str) -> ProtectOutcome:
        """A photo's failure, its reason taken from the exception's type (not its words); a
        bug (not a FakeTaggerError) is logged and told as one, and the other photos go on."""
        reason = Reason.OUT_OF_SERIALS if isinstance(err, SerialsExhaustedError) else Reason.ERROR
        if not isinstance(err, str | FakeTaggerError):
            err = unexpected(Path(path), err)
        return cls(Path(path), error=str(err), reason=reason)

    @property
    def state(self) -> ItemState:
        """The photo's state, the same vocabulary a batch job stores: a copy written with faces
        is tagged, without faces it was copied through (``--copy-no-face``)."""
        if self.reason in SKIP_REASONS:
            return ItemState.SKIPPED
        if self.error:
            return ItemState.FAILED
        if self.output is None:
            return ItemState.NO_FACE
        return ItemState.TAGGED if self.faces else ItemState.COPIED

    def to_json(self) -> dict:
        return {"input": str(self.input), "output": str(self.output) if self.output else None,
                "faces": [f.to_json() for f in self.faces], "c2pa": self.c2pa}

    def readback_note(self, short: bool = False) -> str | None:
        """What the user should know when a tag did not read back (engine.model.readback), or None;
        *short* for a status line."""
        weak = [f for f in self.faces if f.readback is not None and not f.readback.passed]
        if not weak:
            return None
        if short:
            return f"{len(weak)} tag(s) may not survive re-compression"
        return (f"{len(weak)} of {len(self.faces)} face tag(s) did not read back with room to "
                f"spare after a test re-encode (JPEG {CHECK_QUALITY} at {CHECK_SCALE:g}x), even "
                f"at {BOOSTS[-1]:g}x strength: they may not survive heavy re-compression")
