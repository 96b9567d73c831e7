"""Bench output: the targets of issues #3 and #9 with pass/miss and margin, the Markdown report (also
written between the markers of docs/BENCHMARKS.md), and the PNG chart."""

from __future__ import annotations

import re
from pathlib import Path

from engine.atomic import write_atomic
from engine.bench.change_table import change_markdown

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
INSTALL_BENCH = ("the chart needs matplotlib: install the bench extra "
                 "(`make bench-deps`, or `pip install '.[bench]'`)")

#: Exact-recovery targets per DeepFake family (issue #3): 90%, except the swap that keeps only
#: the tagged head around someone else's face.
#: Re-synthesis: 75% for model v2 (issue #9; the 90% goal stands).
FAMILY_EXACT = {"swap-target": 0.80, "swap-source": 0.90, "reenact": 0.90, "attribute": 0.90,
                "resynth": 0.75}
EVERYDAY_EXACT = 0.95
DEEPFAKE_BIT_ACC = 0.95  # the paper's headline (issue #9)
PSNR_MEAN, PSNR_MIN, SSIM_MEAN = 40.0, 38.0, 0.97
#: What a viewer sees (issue #9, engine.bench.visibility): means over the tagged faces.
BLOTCH_P99, CIEDE_P99 = 3.0, 6.0
FALSE_RATE = 1e-4
#: Issue #18: protect's read-back passes this share of the eval faces (BOOSTS end at 1.2x).
READBACK = 0.95
PROTECT_S, VERIFY_S = 1.0, 0.7
#: Every row targets() produces, in order (tests and the slow full-bench check key on these).
TARGET_IDS = ("psnr-mean", "psnr-min", "ssim-mean", "blotch-p99", "ciede-p99", "deepfake-bit-accuracy", "everyday-exact",
              *(f"exact-{f}" for f in FAMILY_EXACT), "false-verified", "false-decoded",
              "readback-pass", "speed-protect", "speed-verify")


def everyday_target_applies(name: str) -> bool:
    """The everyday exact-recovery target covers JPEG quality >= 50 and resize >= 0.5 (issue #3):
    an attack whose name holds jpegNN with NN < 50 or resizeX with X < 0.5 is outside it."""
    if any(int(q) < 50 for q in re.findall(r"jpeg(\d+)", name)):
        return False
    return not any(float(s) < 0.5 for s in re.findall(r"resize(\d*\.?\d+)", name))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _row(tid: str, target: str, required: str, measured: str, met: bool | None,
         margin: str) -> dict:
    return {"id": tid, "target": target, "required": required, "measured": measured,
            "met": met, "margin": margin}


def targets(r: dict) -> list[dict]:
    """One row per target; met None = not measured in this run (e.g. attack family absent)."""
    rows = []
    q = r["invisibility"]
    rows.append(_row("psnr-mean", "PSNR of tagged face regions, mean", f">= {PSNR_MEAN:.0f} dB",
                     f"{q['psnr']['mean']:.2f} dB", q["psnr"]["mean"] >= PSNR_MEAN,
                     f"{q['psnr']['mean'] - PSNR_MEAN:+.2f} dB"))
    rows.append(_row("psnr-min", "PSNR of tagged face regions, worst face", f">= {PSNR_MIN:.0f} dB",
                     f"{q['psnr']['min']:.2f} dB", q["psnr"]["min"] >= PSNR_MIN,
                     f"{q['psnr']['min'] - PSNR_MIN:+.2f} dB"))
    rows.append(_row("ssim-mean", "SSIM of tagged face regions, mean", f">= {SSIM_MEAN}",
                     f"{q['ssim']['mean']:.4f} (min {q['ssim']['min']:.4f})",
                     q["ssim"]["mean"] >= SSIM_MEAN, f"{q['ssim']['mean'] - SSIM_MEAN:+.4f}"))
    for tid, key, what, need in (
            ("blotch-p99", "blotch_p99", "blotch p99 (CIEDE2000 after a side/64 low-pass), mean",
             BLOTCH_P99),
            ("ciede-p99", "ciede_p99", "CIEDE2000 p99 of tagged face regions, mean", CIEDE_P99)):
        m = q[key]
        rows.append(_row(tid, what, f"<= {need:.1f}",
                         f"{m['mean']:.2f} (worst face {m['max']:.2f})", m["mean"] <= need,
                         f"{m['mean'] - need:+.2f}"))
    fam = r["families"]
    acc = fam["deepfake_bit_accuracy"]
    groups = ", ".join(fam["deepfake_groups_measured"]) or "none measured"
    rows.append(_row("deepfake-bit-accuracy",
                     f"bit accuracy, mean over the DeepFake families ({groups})",
                     f">= {100 * DEEPFAKE_BIT_ACC:.0f}% (paper: > 95%)", _pct(acc),
                     None if acc is None else acc >= DEEPFAKE_BIT_ACC,
                     "-" if acc is None else f"{100 * (acc - DEEPFAKE_BIT_ACC):+.1f} pts"))
    every = {n: a for n, a in r["attacks"].items()
             if a["family"] == "everyday" and everyday_target_applies(n)}
    if every:
        worst = min(every, key=lambda n: every[n]["exact_recovery"])
        low = every[worst]["exact_recovery"]
        misses = [n for n, a in every.items() if a["exact_recovery"] < EVERYDAY_EXACT]
        rows.append(_row("everyday-exact",
                         f"exact recovery, each everyday attack at JPEG >= 50 and resize >= 0.5 "
                         f"({len(every)} attacks)", f">= {100 * EVERYDAY_EXACT:.0f}% each",
                         f"worst {_pct(low)} ({worst})"
                         + (f"; below: {', '.join(misses)}" if misses else ""),
                         low >= EVERYDAY_EXACT, f"{100 * (low - EVERYDAY_EXACT):+.1f} pts"))
    for family, need in FAMILY_EXACT.items():
        f = fam["families"].get(family)
        rows.append(_row(f"exact-{family}", f"exact recovery, {family} family",
                         f">= {100 * need:.0f}%",
                         "not measured" if f is None else
                         f"{_pct(f['exact_recovery'])} of {f['faces']}",
                         None if f is None else f["exact_recovery"] >= need,
                         "-" if f is None else f"{100 * (f['exact_recovery'] - need):+.1f} pts"))
    ft, rc = r["false_tags"], r["random_crops"]
    rows.append(_row("false-verified", "`verified` on untagged faces (every attack)", "0 ever",
                     f"{ft['verified']} of {ft['untagged_faces']}", ft["verified"] == 0,
                     f"{ft['verified']:+d}"))
    n, bad = ft["untagged_faces"] + rc["crops"], ft["decoded"] + rc["decoded"]
    rows.append(_row("false-decoded", "any decoded payload on untagged faces and random crops",
                     f"<= {FALSE_RATE:.0e} of faces/crops",
                     f"{bad} of {n} ({bad / max(1, n):.1e})", bad / max(1, n) <= FALSE_RATE,
                     f"{bad / max(1, n) - FALSE_RATE:+.1e}"))
    rb = r.get("readback") or {}
    n, ok = rb.get("faces", 0), rb.get("passed", 0)
    rows.append(_row("readback-pass", "tagged faces whose tag reads back after protect's test "
                     "re-encode (base strength or a boost <= 1.2x)", f">= {100 * READBACK:.0f}%",
                     f"{ok} of {n} ({_pct(ok / n)})" if n else "not measured",
                     ok / n >= READBACK if n else None,
                     f"{100 * (ok / n - READBACK):+.1f} pts" if n else "-"))
    t = r["speed"]["photo"]
    for tid, what, need in (("speed-protect", "protect", PROTECT_S),
                            ("speed-verify", "verify", VERIFY_S)):
        got = None if t is None else t[f"{what}_s"]
        rows.append(_row(tid, f"{what} time, 1920x1280 photo with 3 faces, model loaded",
                         f"<= {need} s", "not measured" if got is None else f"{got:.2f} s",
                         None if got is None else got <= need,
                         "-" if got is None else f"{got - need:+.2f} s"))
    return rows


def _met(m: bool | None) -> str:
    return "n/a" if m is None else ("yes" if m else "**MISS**")


def _cell(text: str) -> str:
    """Attack names can be external command lines: keep their pipes out of the table syntax."""
    return text.replace("|", "\\|")


def _verdicts(v: dict) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(v.items()))


def to_markdown(r: dict) -> str:
    t, q, fam = r["speed"]["photo"], r["invisibility"], r["families"]
    meta = ", ".join(f"{k} {v}" for k, v in r["model"]["meta"].items())
    ft, rc = r["false_tags"], r["random_crops"]
    trials = next(iter(r["attacks"].values()))["faces"] if r["attacks"] else 0
    lines = [
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']}  ",
        f"Model: v{r['model']['version']} "
        f"{'(UNRELEASED CANDIDATE) ' if r['model'].get('candidate') else ''}"
        f"({r['model']['file']}; {meta}); tag strength "
        f"{r.get('strength', 1.0):g}  ",
        f"Images: {r['images']} photos with faces, {r['faces']} faces; each tagged and attacked "
        f"{r['repeats']} time(s) with fresh payloads and attack randomness ({trials} "
        f"face-trials per attack)" + (f"  \nSwap donors: {r['donors']}" if "donors" in r else ""),
        "",
        "#### Targets (issues #3 and #9)",
        "",
        "| target | required | measured | met | margin |",
        "|---|---|---|---|---|",
        *(f"| {x['target']} | {x['required']} | {x['measured']} | {_met(x['met'])} | "
          f"{x['margin']} |" for x in r["targets"]),
        "",
        "#### Summary",
        "",
    ]
    if fam["deepfake_bit_accuracy"] is not None:
        per = ", ".join(f"{g} {_pct(v['bit_accuracy'])}" for g, v in fam["groups"].items())
        lines.append(f"- **Average bit accuracy over the DeepFake families: "
                     f"{_pct(fam['deepfake_bit_accuracy'])}** ({per}; paper: > 95%)")
    sp = r["speed"]
    lines += [
        f"- Invisibility over {q['faces']} tagged faces (the tag's square: "
        f"{q.get('square', 1.5)}x the detector box, or fitted inside the photo): "
        f"PSNR mean {q['psnr']['mean']:.2f} dB, min {q['psnr']['min']:.2f} dB (luma "
        f"{q['psnr_luma']['mean']:.2f}, chroma {q['psnr_chroma']['mean']:.2f}); SSIM mean "
        f"{q['ssim']['mean']:.4f}, min {q['ssim']['min']:.4f}; CIEDE2000 mean "
        f"{q['ciede_mean']['mean']:.2f}, p99 {q['ciede_p99']['mean']:.2f}; blotch p99 "
        f"{q['blotch_p99']['mean']:.2f} (worst face {q['blotch_p99']['max']:.2f})"
        + (f"; gallery: {len(r['gallery'])} faces in `{Path(r['gallery'][0]).parent}`"
           if r.get("gallery") else ""),
        f"- False tags: {ft['decoded']} of {ft['untagged_faces']} untagged faces (every attack "
        f"applied to the untagged photos) decoded to any payload, {ft['verified']} `verified`; "
        f"{rc['decoded']} of {rc['crops']} random crops of the {r['images_read']} untagged "
        f"photos (with or without faces) decoded "
        f"(blind decode, then matching against the {rc.get('known_records', 0)} bench records)",
        (f"- Speed ({t['photo']}, median of {t['runs']}): protect {t['protect_s']:.2f} s, "
         f"verify {t['verify_s']:.2f} s with models loaded (loading MTCNN + model: "
         f"{t['load_s']:.2f} s). " if t else "- Speed photo skipped (--no-speed). ")
        + f"Over the bench photos: protect {1000 * sp['protect_s_per_face']:.0f} ms and verify "
        f"{1000 * sp['verify_s_per_face']:.0f} ms per face, detection included",
    ]
    if sp.get("gpu"):
        g = sp["gpu"]
        lines.append(f"- GPU ({g['device']}, batch {g['batch']}, model only): embed "
                     f"{g['embed_faces_per_s']:.0f} faces/s, decode {g['decode_faces_per_s']:.0f} "
                     f"faces/s")
    lines += [
        "",
        "#### Per attack",
        "",
        "| attack | family | seen in training (this model) | faces | detected | exact recovery | bit acc. (120 raw) "
        "| data bits (60, if decoded) | verdicts | untagged: decoded / faces |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, a in r["attacks"].items():
        u = a["untagged"]
        held = "yes" if a["trained_on"] else "**held out**"
        lines.append(
            f"| {_cell(name)} | {a['family']} | {held} | {a['faces']} | "
            f"{_pct(a['detection_rate'])} | "
            f"{_pct(a['exact_recovery'])} | {_pct(a['bit_accuracy'])} | "
            f"{_pct(a['data_bit_accuracy'])} ({a['decoded']}) | {_verdicts(a['verdicts'])} | "
            f"{u['decoded']} / {u['faces']} |")
    if fam["groups"]:
        lines += ["", "#### DeepFake families (face-trials pooled over each family's attacks)", "",
                  "| family | attacks | face-trials | detected | exact recovery | bit accuracy |",
                  "|---|---|---|---|---|---|"]
        for g, v in fam["groups"].items():
            lines.append(f"| {g} | {v['attacks']} | {v['faces']} | {_pct(v['detection_rate'])} "
                         f"| {_pct(v['exact_recovery'])} | {_pct(v['bit_accuracy'])} |")
    if r.get("by_condition"):
        lines += _condition_markdown(r)
    lines += change_markdown(r)
    if r.get("peers"):
        lines += _peer_markdown(r)
    return "\n".join(lines) + "\n"


CONDITIONS = ("small", "medium", "large", "dark", "close-up")


def _exact_blind(a: dict | None) -> str:
    if not a or not a["faces"]:
        return "-"
    blind = a.get("exact_read_by", {}).get("blind", 0) / a["faces"]
    return f"{_pct(a['exact_recovery'])} / {_pct(blind)}"


def _condition_markdown(r: dict) -> list[str]:
    """Per face condition (engine.faces.face_conditions) and the small-face subset: exact
    recovery with the owner's records / blind (no records: a fact-checker's read)."""
    by, small = r["by_condition"], r.get("small_faces")
    first = next(iter(by.values()), {})
    counts = ", ".join(f"{c} {first[c]['faces']}" for c in CONDITIONS if c in first)
    head = [c for c in CONDITIONS if any(c in v for v in by.values())]
    lines = ["", "#### By face (exact recovery with records / blind, no records)", "",
             f"Face-trials per attack: {counts} (small: box 40-110 px, medium: 110-250, large: "
             "over 250; dark: mean luma in the box under 80; close-up: box over 40% of the "
             "photo's short side)."]
    if small:
        lines.append(f"Small-face subset: {small['faces']} faces in {small['images']} photos "
                     f"({', '.join(small['folders'])}: real small faces and eval photos scaled "
                     "down to 80 px faces), tagged and attacked the same way.")
    lines += ["", "| attack | " + " | ".join(head) + (" | small-face subset |" if small else " |"),
              "|---|" + "---|" * (len(head) + bool(small))]
    for name, conds in by.items():
        cells = [_exact_blind(conds.get(c)) for c in head]
        if small:
            cells.append(_exact_blind(small["attacks"].get(name)))
        lines.append(f"| {_cell(name)} | " + " | ".join(cells) + " |")
    return lines


def _visibility_row(name: str, q: dict) -> str:
    return (f"| {name} | {q['psnr']['mean']:.2f} / {q['psnr']['min']:.2f} dB | "
            f"{q['psnr_luma']['mean']:.2f} / {q['psnr_chroma']['mean']:.2f} dB | "
            f"{q['ciede_mean']['mean']:.2f} / {q['ciede_p99']['mean']:.2f} | "
            f"{q['blotch_p99']['mean']:.2f} ({q['blotch_p99']['max']:.2f}) | "
            f"{q['ssim']['mean']:.4f} |")


def _peer_markdown(r: dict) -> list[str]:
    ps, sp = r["peers"], r["peer_speed"]
    ours = sp["FakeTagger"]
    lines = ["", "#### Peers (same faces, same attacks, same run)", "",
             "| method | data bits | PSNR mean / min | SSIM mean | DeepFake bit acc. | "
             "embed per face | decode per face |", "|---|---|---|---|---|---|---|",
             f"| FakeTagger | 60 (+60 RS parity) | {r['invisibility']['psnr']['mean']:.2f} / "
             f"{r['invisibility']['psnr']['min']:.2f} dB | {r['invisibility']['ssim']['mean']:.4f}"
             f" | {_pct(r['families']['deepfake_bit_accuracy'])} | {1000 * ours['embed_s']:.1f} ms"
             f" | {1000 * ours['decode_s']:.1f} ms |"]
    for name, p in ps.items():
        s, q = sp[name], p["invisibility"]
        lines.append(
            f"| {name} | {p['bits']} ({p['note']}) | {q['psnr']['mean']:.2f} / "
            f"{q['psnr']['min']:.2f} dB | {q['ssim']['mean']:.4f} | "
            f"{_pct(p['families']['deepfake_bit_accuracy'])} | {1000 * s['embed_s']:.1f} ms "
            f"({s['embed_ratio']:.2f}x ours) | {1000 * s['decode_s']:.1f} ms "
            f"({s['decode_ratio']:.2f}x ours) |")
    lines += ["", "What a viewer sees (means over the same face squares; lower CIEDE2000 and "
              "blotch are better):", "",
              "| method | PSNR mean / min | PSNR luma / chroma | CIEDE2000 mean / p99 | "
              "blotch p99 (worst face) | SSIM |", "|---|---|---|---|---|---|",
              _visibility_row("FakeTagger", r["invisibility"]),
              *(_visibility_row(name, p["invisibility"]) for name, p in ps.items())]
    names = list(ps)
    lines += ["", "Exact recovery of all carried bits / bit accuracy (misses count as 50%):", "",
              "| attack | FakeTagger | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]
    for att, a in r["attacks"].items():
        cells = [f"{_pct(a['exact_recovery'])} / {_pct(a['bit_accuracy'])}"]
        cells += [f"{_pct(ps[n]['attacks'][att]['exact_recovery'])} / "
                  f"{_pct(ps[n]['attacks'][att]['bit_accuracy'])}" for n in names]
        lines.append(f"| {_cell(att)} | " + " | ".join(cells) + " |")
    return lines


def write_markdown(path: Path, md: str) -> None:
    """Replace the generated block between the markers, keeping the hand-written text around it,
    so rerunning the bench regenerates exactly the numbers the document shows."""
    block = f"{START}\n{md}{END}\n"
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text + ("\n" if text else "") + block
    write_atomic(path, text.encode("utf-8"))


def require_matplotlib():
    """matplotlib with the file-only Agg backend, or a clear error naming the extra."""
    from engine.errors import FakeTaggerError

    try:
        import matplotlib
    except ImportError as err:
        raise FakeTaggerError(INSTALL_BENCH) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_chart(r: dict, path: Path) -> None:
    """Grouped bars per attack: exact recovery (top) and bit accuracy (bottom), ours vs peers."""
    plt = require_matplotlib()
    attacks = list(r["attacks"])
    systems = {"FakeTagger": r["attacks"]}
    systems.update({n: p["attacks"] for n, p in r.get("peers", {}).items()})
    # About 0.6 inch per attack group: wide enough for five bars, still readable at page width.
    fig, axes = plt.subplots(2, 1, figsize=(min(16.0, max(8.0, 0.6 * len(attacks))), 7.5),
                             sharex=True)
    width = 0.8 / len(systems)
    for ax, key, label in ((axes[0], "exact_recovery", "exact payload recovery"),
                           (axes[1], "bit_accuracy", "bit accuracy, misses = 50%")):
        for k, (name, table) in enumerate(systems.items()):
            xs = [i + (k - (len(systems) - 1) / 2) * width for i in range(len(attacks))]
            ax.bar(xs, [100 * (table[a][key] or 0.0) for a in attacks], width, label=name)
        ax.set_ylabel(f"{label} (%)")
        ax.set_ylim(0 if key == "exact_recovery" else 40, 101)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(attacks)))
    axes[1].set_xticklabels(
        [a[:28] + ("*" if not r["attacks"][a]["trained_on"] else "") for a in attacks],
        rotation=60, ha="right", fontsize=8)
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[0].set_title(f"FakeTagger bench: {r['faces']} faces x {r['repeats']} repeat(s); "
                      "* = not seen in training by this model")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
