"""Protect: tagging the faces of one photo, crash-safe. ``spec`` is the job spec, ``sequence`` the
per-photo steps every runner takes (plan -> reserve -> render -> commit), ``render`` their pure
pixel and file work, ``outcome`` what happened to the photo. Callers' most used names are here."""

from engine.limits import DEFAULT_STRENGTH
from engine.protect.outcome import ProtectOutcome, Reason, TaggedFace
from engine.protect.render import embed_faces, face_thumbs, region_psnr
from engine.protect.sequence import check_output_dir, payloads_for, protect_photo

__all__ = ["DEFAULT_STRENGTH", "ProtectOutcome", "Reason", "TaggedFace",
           "check_output_dir", "embed_faces", "face_thumbs", "payloads_for", "protect_photo",
           "region_psnr"]
