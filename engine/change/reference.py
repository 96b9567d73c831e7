"""What a suspect face is compared with: the face as it was tagged.

For one's own tags that is the original photo in the ledger, cut at the record's box: full
resolution and no thumbnail JPEG. Anyone else (a fact-checker holding the owner's card) has the
record's signed thumbnail. The original is used only while it still shows the face the record
was made for: a photo moved, edited or replaced since falls back to the thumbnail, which the
signature vouches for.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.faces import crop_square

#: Mean absolute difference (0-255) between the original's face, brought to the thumbnail's
#: size, and the thumbnail, over which the original no longer shows the tagged face. A JPEG
#: thumbnail of the same pixels differs by ~2; another photo or an edited face by 15 or more.
ORIGINAL_MISMATCH = 8.0


class ReferenceKind(StrEnum):
    ORIGINAL = "original"
    THUMBNAIL = "thumbnail"


@dataclass(frozen=True)
class Reference:
    crop: np.ndarray  # (s, s, 3) uint8 box crop of the face as tagged
    kind: ReferenceKind

    @property
    def side(self) -> int:
        return int(self.crop.shape[0])


def box_crop(rgb: np.ndarray, box) -> np.ndarray:
    """The face box as a square crop (scale 1.0, kept inside the image): what a record's
    thumbnail holds, so the suspect and the reference frame the face alike."""
    h, w = rgb.shape[:2]
    x, y, s = crop_square(tuple(box), w, h, scale=1.0)
    return np.ascontiguousarray(rgb[y:y + s, x:x + s, :3])


def decode_thumbnail(jpeg: bytes) -> np.ndarray | None:
    if not jpeg:
        return None
    try:
        with Image.open(io.BytesIO(jpeg)) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return rgb if min(rgb.shape[:2]) >= 8 else None


def _shows_same_face(crop: np.ndarray, thumb: np.ndarray) -> bool:
    small = np.asarray(Image.fromarray(crop).resize((thumb.shape[1], thumb.shape[0]),
                                                    Image.Resampling.LANCZOS), np.float32)
    return float(np.abs(small - thumb.astype(np.float32)).mean()) <= ORIGINAL_MISMATCH


def reference_for(thumb_jpeg: bytes, face_box, original_rgb: np.ndarray | None) -> Reference | None:
    """The best view of the tagged face: the original photo's face when it still matches the
    signed thumbnail, else the thumbnail; None when the thumbnail cannot be read."""
    thumb = decode_thumbnail(thumb_jpeg)
    if thumb is None:
        return None
    if original_rgb is not None:
        crop = box_crop(original_rgb, face_box)
        if crop.shape[0] >= thumb.shape[0] and _shows_same_face(crop, thumb):
            return Reference(crop, ReferenceKind.ORIGINAL)
    return Reference(np.ascontiguousarray(thumb), ReferenceKind.THUMBNAIL)
