"""The README screenshot script runs end to end through the real app (a real contact card import,
real protect of two photos, real verify) and writes one PNG per tab at the requested size."""

from __future__ import annotations

import hashlib

from PySide6.QtGui import QImage

from app.screenshots import EXTRA, TABS, take


def test_screenshots_of_every_tab(qapp, gui_home, tmp_path):
    shots = take(tmp_path / "shots", size=(900, 600))

    assert [p.stem for p in shots.paths] == [*TABS, *EXTRA]
    assert shots.verdicts == ["verified", "verified"]  # both faces of the two-face photo
    assert [row.split(" — ")[0] for row in shots.face_rows] == ["Face 1: Verified",
                                                               "Face 2: Verified"]
    digests = set()
    for path in shots.paths:
        assert path.is_file() and path.stat().st_size > 10_000, path  # a real picture, not blank
        image = QImage(str(path))
        assert (image.width(), image.height()) == (900, 600), path
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == len(shots.paths)  # each file shows something different
    assert not gui_home.exists()  # the script used its own throw-away home, not the caller's
