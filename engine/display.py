"""Small text helpers shared by the tabs: how times and file names are shown to a person."""

from __future__ import annotations

import re
from datetime import datetime


def format_when(iso: str) -> str:
    """The engine's UTC ISO time (``2026-11-27T08:44:05Z``) as local ``2026-11-27 09:44``;
    text that is not a timestamp is shown as it is rather than hidden."""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return str(iso)
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


def file_stem_for(name: str, fallback: str = "faketagger") -> str:
    """A display name turned into a safe default file name stem (``Ada Lovelace`` ->
    ``Ada-Lovelace``) for suggested export file names."""
    stem = re.sub(r"[^\w.-]+", "-", name, flags=re.UNICODE).strip("-.")
    return stem[:60] or fallback


def format_seconds(seconds: float | None) -> str:
    """A time-left estimate as shown under a progress bar ("" when there is none yet)."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"about {seconds} s left" if seconds < 90 else f"about {seconds // 60} min left"
