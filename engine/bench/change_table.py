"""The bench's face-change confusion table (issue #20): what verify's face-change check says
about each face whose tag was read exactly, per attack, against the original photo (own tags)
and against the record's thumbnail alone (a fact-checker holding the owner's card)."""

from __future__ import annotations

from engine.change.verdict import ChangeKind

KINDS = (ChangeKind.NONE, ChangeKind.EDITED, ChangeKind.REPLACED, ChangeKind.UNKNOWN)

#: (kinds that count as right, share required) per attack family (issue #20).
TARGETS: dict[str, tuple[tuple[ChangeKind, ...], float]] = {
    "everyday": ((ChangeKind.NONE,), 0.98),
    "swap-target": ((ChangeKind.REPLACED,), 0.90),
    "reenact": ((ChangeKind.EDITED, ChangeKind.REPLACED), 0.80),
    "attribute": ((ChangeKind.EDITED,), 0.80),
    "resynth": ((ChangeKind.EDITED, ChangeKind.REPLACED), 0.80),
}


def _share(counts: dict, kinds: tuple[ChangeKind, ...]) -> float | None:
    n = sum(counts.values())
    return None if n == 0 else sum(counts.get(k, 0) for k in kinds) / n


def _cells(counts: dict) -> str:
    n = sum(counts.values())
    if not n:
        return "-"
    return " / ".join(f"{100 * counts.get(k, 0) / n:.0f}" for k in KINDS)


def _target(family: str, counts: dict) -> str:
    if family not in TARGETS:
        return "-"
    kinds, need = TARGETS[family]
    got = _share(counts, kinds)
    if got is None:
        return "-"
    mark = "met" if got >= need else "**missed**"
    return f"{'+'.join(kinds)} {100 * got:.0f}% (>= {100 * need:.0f}%: {mark})"


def change_rows(attacks: dict) -> list[str]:
    lines = ["| attack | family | faces read | original: none / edited / replaced / unknown (%) "
             "| target | thumbnail: none / edited / replaced / unknown (%) | target |",
             "|---|---|---|---|---|---|---|"]
    for name, a in attacks.items():
        fc = a.get("face_change")
        if fc is None:
            continue
        orig, thumb = fc["original"], fc["thumbnail"]
        family = a.get("family", "")
        lines.append(f"| {name} | {family} | {sum(orig.values())} | {_cells(orig)} | "
                     f"{_target(family, orig)} | {_cells(thumb)} | {_target(family, thumb)} |")
    return lines


def change_markdown(r: dict) -> list[str]:
    """The table for the eval split and, when it ran, for the small-face subset."""
    if not any("face_change" in a for a in r.get("attacks", {}).values()):
        return []
    lines = ["", "#### Face change (verify's `face_change`, faces whose tag was read exactly)", "",
             "Against the original photo (own tags: the ledger's original) and against the "
             "signed record's 112 px thumbnail alone (a card). Targets from issue #20: everyday "
             "`none` >= 98%, swap-target `replaced` >= 90%, reenact and resynth `edited` or "
             "`replaced` >= 80%, attribute `edited` >= 80%.", ""]
    lines += change_rows(r["attacks"])
    small = r.get("small_faces")
    if small and any("face_change" in a for a in small["attacks"].values()):
        fams = {n: a.get("family") for n, a in r["attacks"].items()}
        rows = {n: {**a, "family": fams.get(n, "")} for n, a in small["attacks"].items()}
        lines += ["", "Small-face subset:", ""] + change_rows(rows)
    return lines
