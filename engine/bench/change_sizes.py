"""How the face-change verdict behaves by face size (issue #20): the measurement behind
engine.change.verdict's MIN_FACE and thresholds (docs/BENCHMARKS.md, "Face change").

    .venv/bin/python -m engine.bench.change_sizes cache/eval_photos cache/eval_small \
        --out /tmp/sizes.jsonl

Every photo is tagged through the pipeline (a throw-away home), then each attack is applied to
the tagged file and verify runs on the result; every face whose tag verifies and that could be
measured (whatever its size: the size rule is what is being measured) gives one line: photo,
attack, family, box side, its measures (after verify's second look at a face that reads as
changed: engine.change.compare.settled_measures) and what verify said. The summary tables
everyday false alarms and what the swap and reenactment rows read per box-side band, under the
shipped rule and with faces under MIN_FACE left unjudged; then, per attack, what verify said
of the judged faces (96 px and over). ``--attacks`` and ``--repeats`` choose the attacks (e.g. the attribute edits,
several times each with fresh randomness).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

ATTACKS = ("clean", "jpeg75+resize0.75", "social1080", "screenshot", "double-jpeg",
           "swap-target", "reenact")
BANDS = ((40, 64), (64, 80), (80, 96), (96, 112), (112, 160), (160, 100_000))
PASSPHRASE = "change sizes throw-away home 2026"


def measure_photos(folders: list[Path], attacks: tuple[str, ...] = ATTACKS, seed: int = 3,
                   repeats: int = 1):
    """Yield one dict per measured face (see the module docstring)."""
    os.environ["FAKETAGGER_HOME"] = tempfile.mkdtemp(prefix="ft-sizes-")
    from engine.attacks import SUITE
    from engine.change.compare import settled_measures
    from engine.change.measure import sample
    from engine.photos import iter_photos, load_photo
    from engine.pipeline import Pipeline, run_all
    from engine.protect.spec import JobSpec
    from engine.store.ledger import Ledger

    ledger = Ledger(Path(os.environ["FAKETAGGER_HOME"]) / "ledger.sqlite3")
    ident = ledger.create_identity("Sizes", PASSPHRASE)
    unlocked = ledger.unlock(ident.key_id, PASSPHRASE)
    pipe = Pipeline(ledger, device="cpu")
    out = Path(tempfile.mkdtemp(prefix="ft-sizes-out-"))
    photos = list(iter_photos([Path(f) for f in folders]))
    rng = np.random.default_rng(seed)
    for done in run_all(pipe.protect(photos, unlocked, JobSpec(out_dir=out))):
        if not done.output:
            continue
        original = load_photo(done.input).rgb
        rgb = load_photo(done.output).rgb
        for name in [a for a in attacks for _ in range(repeats)]:
            attacked = SUITE[name].fn(rgb, rng)
            for v in pipe.verify_rgb(attacked):
                ref = v.change_reference
                if v.change is None or ref is None:
                    continue
                try:  # measured at any size: the size rule is what this checks
                    m, _ = settled_measures(attacked, v.box, sample(ref.crop))
                except Exception:  # noqa: BLE001 - dlib finds no shape: not measurable
                    continue
                yield {"photo": done.input.name, "attack": name, "family": SUITE[name].family,
                       "side": int(max(v.box[2] - v.box[0], v.box[3] - v.box[1])),
                       "measures": m.to_json(), "original_shape": list(original.shape),
                       "verdict": v.change.kind.value}


def summary(rows: list[dict]) -> str:
    """Markdown: per box-side band, everyday false alarms and the swap / reenact rows."""
    from engine.change.measure import Measures
    from engine.change.verdict import MIN_FACE, SHIPPED, classify

    lines = ["| box side (px) | everyday copies | read as changed | swap-target: replaced | "
             "reenact: edited or replaced |", "|---|---|---|---|---|"]
    for lo, hi in BANDS:
        kinds: dict[str, Counter] = {}
        for r in rows:
            if lo <= r["side"] < hi:
                kind = classify(Measures(**r["measures"]), "original", SHIPPED).kind.value
                key = "everyday" if r["family"] == "everyday" else r["attack"]
                kinds.setdefault(key, Counter())[kind] += 1
        every, swap, re = (kinds.get(k, Counter()) for k in ("everyday", "swap-target",
                                                              "reenact"))
        n = sum(every.values())
        changed = every["edited"] + every["replaced"]
        label = f"{lo}-{hi - 1}" if hi < 100_000 else f"{lo}+"
        lines.append(f"| {label}{' (judged)' if lo >= MIN_FACE else ''} | {n} | {changed} "
                     f"({100 * changed / max(1, n):.0f}%) | {swap['replaced']} of "
                     f"{sum(swap.values())} | {re['edited'] + re['replaced']} of "
                     f"{sum(re.values())} |")
    return "\n".join(lines)


def by_attack(rows: list[dict]) -> str:
    """Markdown: per attack, what verify says of the faces it judges (box side >= MIN_FACE):
    the recorded measures judged by the shipped rule (so ``--summary-of`` re-judges an earlier
    run with today's lines), faces verify left `unknown` (cut by the border) kept so."""
    from engine.change.measure import Measures
    from engine.change.verdict import MIN_FACE, SHIPPED, classify

    kinds: dict[str, Counter] = {}
    for r in rows:
        if r["side"] >= MIN_FACE and "verdict" in r:
            kind = r["verdict"] if r["verdict"] == "unknown" else classify(
                Measures(**r["measures"]), "original", SHIPPED).kind.value
            kinds.setdefault(r["attack"], Counter())[kind] += 1
    lines = [f"| attack (faces >= {MIN_FACE} px) | faces | none | edited | replaced | unknown |",
             "|---|---|---|---|---|---|"]
    for name, c in kinds.items():
        n = sum(c.values())
        lines.append(f"| {name} | {n} | " + " | ".join(
            f"{c[k]} ({100 * c[k] / n:.0f}%)" for k in ("none", "edited", "replaced", "unknown"))
            + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="*", type=Path)
    p.add_argument("--out", type=Path, help="write the measured faces here (JSON lines)")
    p.add_argument("--summary-of", type=Path, help="table an earlier --out file instead")
    p.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated bench attacks")
    p.add_argument("--repeats", type=int, default=1, help="each attack this many times")
    args = p.parse_args(argv)
    if args.summary_of:
        rows = [json.loads(line) for line in args.summary_of.read_text().splitlines() if line]
    else:
        rows = []
        from engine.attacks import SUITE

        attacks = tuple(a.strip() for a in args.attacks.split(",") if a.strip())
        if unknown := [a for a in attacks if a not in SUITE]:
            p.error(f"unknown attack(s): {', '.join(unknown)}")
        for row in measure_photos(args.folders, attacks, repeats=args.repeats):
            rows.append(row)
            if args.out:
                with args.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print(summary(rows))
    print()
    print(by_attack(rows))


if __name__ == "__main__":
    main()
