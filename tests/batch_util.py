"""Shared by the batch tests: a small photo tree and a check of a job's ledger state."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

from tests.conftest import DATA, SAMPLE


def photo_tree(root: Path) -> Path:
    """src/ with faces at two depths, a two-face photo and a photo without a face."""
    src = root / "src"
    (src / "trip" / "day2").mkdir(parents=True)
    (src / "misc").mkdir()
    shutil.copy(SAMPLE, src / "trip" / "sample.jpg")
    shutil.copy(DATA / "grace_hopper.jpg", src / "trip" / "day2" / "grace.jpg")
    shutil.copy(DATA / "two_faces.jpg", src / "two.jpg")
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, 160 * 120, dtype=np.uint8).reshape(120, 160)
    Image.fromarray(np.stack([ramp, ramp[::-1], ramp], -1)).save(src / "misc" / "sky.jpg")
    return src


def job_state(ledger_path: Path, out: Path) -> dict:
    """What a finished (or interrupted) job left: records per output file, stray temps,
    serials used twice or burned, tagged files the ledger does not know."""
    from engine.store.ledger import Ledger

    with Ledger(ledger_path) as ledger:  # opening recovers the jobs of killed runs
        assert not ledger.pending_jobs()
    con = sqlite3.connect(ledger_path)
    try:
        rows = con.execute("SELECT serial, state, output_path, record_json, original_path FROM"
                           " records WHERE identity_key_id IS NOT NULL").fetchall()
        next_serial = con.execute("SELECT next_serial FROM identities").fetchone()[0]
        free = {r[0] for r in con.execute("SELECT serial FROM free_serials")}
    finally:
        con.close()
    files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    temps = [p for p in files if p.name.startswith(".")]
    tagged = [p for p in files if "-tagged" in p.name]
    by_out: dict[str, set[str]] = {}
    for _s, _st, o, rec, _orig in rows:
        by_out.setdefault(o, set()).add(json.loads(rec)["file_sha256"])
    per_original: dict[str, set[str]] = {}
    for _s, _st, o, _rec, orig in rows:
        per_original.setdefault(orig, set()).add(o)
    serials = [r[0] for r in rows]
    return {
        "lost": sum(1 for p in tagged if str(p) not in by_out or hashlib.sha256(
            p.read_bytes()).hexdigest() not in by_out[str(p)]),
        "orphans": sum(1 for o in by_out if not Path(o).exists()),
        "duplicates": len(serials) - len(set(serials)),
        "tagged_twice": sum(1 for outs in per_original.values() if len(outs) > 1),
        "burned": len(set(range(1, next_serial)) - set(serials) - free),
        "pending": sum(1 for r in rows if r[1] != "done"),
        "temps": len(temps),
        "tagged": len(tagged),
        "records": len(rows),
    }
