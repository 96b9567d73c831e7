"""Choose the face-change thresholds on a bench run's recorded measures (issue #20).

    .venv/bin/faketagger bench --attacks clean,jpeg75,jpeg50,resize0.5,jpeg75+resize0.75,\\
        screenshot,social1080,double-jpeg,colour,crop0.9,swap-target,reenact,attribute,\\
        attribute-glasses,resynth,resynth-heldout --repeats 1 --no-speed --json /tmp/fc.json
    .venv/bin/python -m engine.bench.calibrate_change /tmp/fc.json [--margin 1.05]

The bench keeps, for every face whose tag it read exactly, the four measures behind verify's
face-change verdict (``face_change_faces`` in each attack row, against the owner's original and
against the record's thumbnail). The rule is an OR of four "edited" lines and one "replaced"
line, and the everyday rows allow at most 2% false alarms: with 25-40 faces per row that is no
face at all. So each line is put just above the largest value any everyday face reached
(times *margin*), which is the most sensitive rule with no everyday false alarm on this run; the
table then shows what it finds on the DeepFake rows, beside the shipped thresholds. Choose on
the eval split; check on the independent photos (docs/INDEPENDENT.md) before shipping.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import fields
from pathlib import Path

from engine.bench.change_table import KINDS, TARGETS
from engine.change.measure import Measures
from engine.change.verdict import SHIPPED, ChangeKind, Thresholds, classify

#: Which measure each threshold bounds (the replaced line reads the identity distance too).
MEASURE_OF = {"replaced_identity": "identity", "edited_identity": "identity",
              "edited_expression": "expression", "edited_appearance": "appearance",
              "edited_local": "local", "edited_lips": "lips", "edited_eyes": "eyes",
              "edited_skin": "skin", "edited_hair": "hair", "edited_smoothing": "smoothing"}


def faces_of(doc: dict) -> list[tuple[str, str, dict]]:
    """(attack, family, face) for every recorded face of a bench JSON."""
    return [(name, row.get("family", ""), face)
            for name, row in doc.get("attacks", {}).items()
            for face in row.get("face_change_faces", ())]


def calibrate(faces: list[tuple[str, str, dict]], margin: float = 1.05) -> Thresholds:
    """Each line just above the largest everyday value of its measure. The replaced line stays
    above the edited-identity line, so a drifted identity still reads as an edit first. The
    intact-part line is not an everyday bound (it separates edits from swaps, past the identity
    line) and keeps its shipped value."""
    top = {m: 0.0 for m in set(MEASURE_OF.values())}
    for _name, family, face in faces:
        if family == "everyday" and "measures" in face:
            for m in top:
                top[m] = max(top[m], float(face["measures"].get(m, 0.0)))
    # A measure no everyday face carries (bench files older than it) keeps its shipped line.
    edited = {f.name: round(top[MEASURE_OF[f.name]] * margin, 3) if top[MEASURE_OF[f.name]] > 0
              else getattr(SHIPPED, f.name) for f in fields(Thresholds)
              if f.name in MEASURE_OF and f.name != "replaced_identity"}
    replaced = max(SHIPPED.replaced_identity, edited["edited_identity"] * 1.2)
    return Thresholds(replaced_identity=round(replaced, 3), **edited,
                      intact_part=SHIPPED.intact_part)


def table(faces: list[tuple[str, str, dict]], th: Thresholds) -> dict[tuple[str, str], Counter]:
    """Kinds per (attack, reference) under *th* (faces without measures keep their kind:
    unknown, a too-small face or reference)."""
    out: dict[tuple[str, str], Counter] = {}
    for name, _family, face in faces:
        if "measures" in face:
            kind = classify(Measures(**face["measures"]), face["reference"], th).kind
        else:
            kind = ChangeKind(face["kind"])
        out.setdefault((name, face["reference"]), Counter())[kind] += 1
    return out


def _row(counts: Counter, family: str) -> str:
    n = sum(counts.values())
    cells = " / ".join(f"{100 * counts.get(k, 0) / n:.0f}" for k in KINDS)
    kinds, need = TARGETS.get(family, ((), 0.0))
    got = sum(counts.get(k, 0) for k in kinds) / n if kinds else None
    mark = "-" if got is None else f"{100 * got:.0f}% ({'met' if got >= need else 'missed'})"
    return f"{cells} | {mark}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bench_json", nargs="+", type=Path)
    p.add_argument("--margin", type=float, default=1.05)
    p.add_argument("--check", nargs="+", type=Path, default=[],
                   help="bench JSON(s) of photos not chosen on (the independent check): the "
                        "chosen thresholds are tabled on them, never fitted")
    args = p.parse_args(argv)
    faces = [f for path in args.bench_json for f in faces_of(json.loads(path.read_text()))]
    if not faces:
        raise SystemExit("no recorded face-change measures in these files (bench runs before "
                         "2026-12-07 did not keep them): run the bench again")
    chosen = calibrate(faces, args.margin)
    print(f"shipped: {SHIPPED}\nchosen:  {chosen}")
    _print(f"chosen on {', '.join(map(str, args.bench_json))}", faces, chosen)
    for path in args.check:
        _print(f"checked on {path}", faces_of(json.loads(path.read_text())), chosen)


def _print(title: str, faces: list[tuple[str, str, dict]], chosen: Thresholds) -> None:
    families = {name: family for name, family, _ in faces}
    shipped, new = table(faces, SHIPPED), table(faces, chosen)
    print(f"\n{title}\n")
    print("| attack | reference | faces | shipped: none / edited / replaced / unknown (%) | "
          "target | chosen: none / edited / replaced / unknown (%) | target |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(new, key=lambda k: (list(families).index(k[0]), k[1])):
        fam = families[key[0]]
        print(f"| {key[0]} | {key[1]} | {sum(new[key].values())} | {_row(shipped[key], fam)} | "
              f"{_row(new[key], fam)} |")


if __name__ == "__main__":
    main()
