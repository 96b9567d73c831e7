"""Protect: tagging the faces of one photo, crash-safe.

``sequence`` is the one per-photo sequence every runner takes (plan -> reserve -> render ->
commit), ``render`` the pure pixel and file work of the render step, ``outcome`` what happened
to the photo. The names callers use are re-exported here.
"""

from engine.limits import DEFAULT_STRENGTH
from engine.protect.outcome import Outcome, ProtectOutcome, Reason, TaggedFace
from engine.protect.render import (
    Embedded,
    FaceMarks,
    Rendered,
    embed_bits,
    embed_faces,
    face_thumbs,
    payload_bits,
    region_psnr,
    render_tagged,
)
from engine.protect.sequence import check_output_dir, payloads_for, protect_photo
from engine.protect.spec import SMALL_THUMB_SIDE, THUMB_SIDE

__all__ = ["DEFAULT_STRENGTH", "SMALL_THUMB_SIDE", "THUMB_SIDE", "Embedded", "FaceMarks",
           "Outcome", "ProtectOutcome", "Reason", "Rendered", "TaggedFace", "check_output_dir",
           "embed_bits", "embed_faces", "face_thumbs", "payload_bits", "payloads_for",
           "protect_photo", "region_psnr", "render_tagged"]
