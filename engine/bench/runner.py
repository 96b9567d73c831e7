"""`faketagger bench`: invisibility, robustness, false tags and speed, on real files.

Runs the same Pipeline as the app: protect (throw-away identity in a temporary home) -> attack
-> verify, per attack, on an image folder (default: the data cache's eval split, never trained
on). Every attack is also applied to the untagged photos (false tags), and optionally to the same
faces tagged by peer watermarkers (`--peers`). Prints a Markdown report and writes it into
docs/BENCHMARKS.md (`--markdown`), with every number as JSON (`--json`) and a chart (`--chart`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.attacks import AttackSpec
from engine.attacks.donors import donor_source
from engine.bench import report as bench_report
from engine.bench import speed as bench_speed
from engine.bench import suite as bench_suite
from engine.bench.gallery import write_gallery
from engine.bench.metrics import face_region, match_faces, region_quality
from engine.bench.visibility import summarize
from engine.change.compare import face_change
from engine.change.reference import reference_for
from engine.errors import FakeTaggerError
from engine.faces import (
    CROP_SCALE,
    Face,
    face_conditions,
    neighbour_boxes,
    square_region,
    tag_squares,
)
from engine.model.reading import face_framings, jittered_crops
from engine.model.registry import add_candidate, load_watermarker
from engine.payload import Payload, data_bits, encode_bits
from engine.photos import iter_photos, load_photo
from engine.pipeline import Pipeline
from engine.protect import DEFAULT_STRENGTH, embed_faces, face_thumbs
from engine.store.ledger import Ledger
from engine.store.records import sign_record
from engine.verify import Verdict

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IMAGES = ROOT / "cache" / "eval_photos"
#: The small-face subset (faces 40-110 px: real small faces and scaled-down eval photos), written
#: by engine.training.data beside the eval photos; scored as rows of its own.
DEFAULT_SMALL = ROOT / "cache" / "eval_small"
NOT_DETECTED = "not_detected"
OURS = "FakeTagger"


@dataclass
class Tally:
    """Counts for one (system, attack). A tagged face that is not re-detected is a miss: it
    counts as not recovered and, in `bit_acc`, as chance (0.5): a verifier gets no bits."""

    faces: int = 0
    exact: int = 0
    bit_acc: list[float] = field(default_factory=list)  # every tagged face, misses at 0.5
    bit_acc_detected: list[float] = field(default_factory=list)  # re-detected faces only
    data_acc: list[float] = field(default_factory=list)  # ours: 60 data bits, decoded faces only
    verdicts: Counter = field(default_factory=Counter)
    read_by: Counter = field(default_factory=Counter)  # ours: how exact recoveries were read
    #: ours, exact recoveries: verify's face-change kind against the original photo (own tags)
    #: and against the record's thumbnail alone (what a fact-checker with the card has)
    change: Counter = field(default_factory=Counter)
    change_card: Counter = field(default_factory=Counter)
    #: each of those faces' measures (attack rows only), so the thresholds can be chosen on a
    #: bench run afterwards (engine.bench.calibrate_change) without measuring again
    change_faces: list[dict] = field(default_factory=list)
    extra_faces: int = 0  # detections matching no tagged face
    untagged_faces: int = 0
    untagged_decoded: int = 0
    untagged_verified: int = 0

    @property
    def detected(self) -> int:
        return len(self.bit_acc_detected)

    def miss(self) -> None:
        self.faces += 1
        self.bit_acc.append(0.5)
        self.verdicts[NOT_DETECTED] += 1

    def hit(self, bit_acc: float, exact: bool) -> None:
        self.faces += 1
        self.exact += exact
        self.bit_acc.append(bit_acc)
        self.bit_acc_detected.append(bit_acc)

    @classmethod
    def pooled(cls, tallies: list[Tally]) -> Tally:
        return cls(faces=sum(t.faces for t in tallies), exact=sum(t.exact for t in tallies),
                   bit_acc=[x for t in tallies for x in t.bit_acc],
                   bit_acc_detected=[x for t in tallies for x in t.bit_acc_detected])

    def summary(self, ours: bool = True) -> dict:
        """Rates and counts; `ours` adds what only FakeTagger has (verdicts, RS-decoded bits)."""
        out = {"faces": self.faces, "detected": self.detected,
               "detection_rate": self.detected / max(1, self.faces),
               "exact_recovery": self.exact / max(1, self.faces),
               "bit_accuracy": _mean(self.bit_acc),
               "bit_accuracy_detected": _mean(self.bit_acc_detected),
               "extra_faces": self.extra_faces}
        if ours:
            out["verdicts"] = dict(sorted(self.verdicts.items()))
            out["data_bit_accuracy"] = _mean(self.data_acc)
            out["decoded"] = len(self.data_acc)
            out["exact_read_by"] = dict(sorted(self.read_by.items()))
            out["face_change"] = {"original": dict(sorted(self.change.items())),
                                  "thumbnail": dict(sorted(self.change_card.items()))}
            if self.change_faces:
                out["face_change_faces"] = self.change_faces
            out["untagged"] = {"faces": self.untagged_faces, "decoded": self.untagged_decoded,
                               "verified": self.untagged_verified}
        return out


def _change_face(change, reference: str, side: int) -> dict:
    """One face's face-change result as the bench JSON keeps it (measures when there are)."""
    doc = {"reference": reference, "side": side, "kind": str(change.kind),
           "reason": str(change.reason)}
    if change.measures is not None:
        doc["measures"] = change.measures.to_json()
    return doc


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _face(box) -> Face:
    return Face(tuple(float(c) for c in box), 1.0, np.zeros((5, 2), np.float32))


def _score_ours(st: Tally, model, attacked: np.ndarray, found: list, faces: list[Face],
                payloads: list[Payload], orig_shape: tuple[int, ...],
                per_face: list[list[Tally]] | None = None, framings: list[int] | None = None
                ) -> None:
    """Score each tagged face into `st` and into its own condition tallies (`per_face[i]`).
    *framings*: per face, which of its tag squares (engine.faces.tag_squares) protect wrote
    the tag in; the raw bit accuracy is read there, as found again in the attacked photo."""
    truth = {p.to_hex(): i for i, p in enumerate(payloads)}
    fixed = {truth[v.payload.to_hex()]: j for j, v in enumerate(found)
             if v.payload is not None and v.payload.to_hex() in truth}
    match = match_faces([f.box for f in faces], orig_shape, [v.box for v in found],
                        attacked.shape, fixed)
    for i, j in enumerate(match):
        tallies = [st, *(per_face[i] if per_face else ())]
        if j is None:
            for t in tallies:
                t.miss()
            continue
        v, p = found[j], payloads[i]
        # Raw accuracy of the 120 coded bits: the soft-combined logits verify hands to RS first.
        others = tuple(tuple(u.box) for u in found if u is not v)
        squares = face_framings(attacked, _face(v.box), model.square, (others,))
        square = squares[min(framings[i] if framings else 0, len(squares) - 1)]
        logits = model.logits(jittered_crops(attacked, square)).mean(axis=0)
        exact = v.verdict == Verdict.VERIFIED and v.payload == p
        acc = float(np.mean((logits > 0) == (encode_bits(p) == 1)))
        card = None
        if exact and v.record is not None:  # the same check with the card's thumbnail only
            card_change = face_change(attacked, v.box, reference_for(v.record.face_thumb_jpeg,
                                                                     v.record.face_box, None))
            card = card_change.kind
            side = int(max(v.box[2] - v.box[0], v.box[3] - v.box[1]))
            st.change_faces += [_change_face(c, ref, side) for c, ref in (
                (v.change, "original"), (card_change, "thumbnail")) if c is not None]
        for t in tallies:
            t.verdicts[v.verdict] += 1
            t.hit(acc, exact)
            if v.payload is not None:
                t.data_acc.append(float(np.mean(data_bits(v.payload) == data_bits(p))))
            if exact:
                t.read_by[getattr(v, "read_by", None) or "blind"] += 1
                t.change[v.change.kind] += 1
                if card is not None:
                    t.change_card[card] += 1
    st.extra_faces += len(found) - sum(j is not None for j in match)


def _score_peer(st: Tally, peer, pipe: Pipeline, attacked: np.ndarray, faces: list[Face],
                bits: list[np.ndarray], orig_shape: tuple[int, ...]) -> None:
    found = pipe.detect(attacked)
    match = match_faces([f.box for f in faces], orig_shape, [f.box for f in found],
                        attacked.shape)
    for i, j in enumerate(match):
        if j is None:
            st.miss()
            continue
        got, want = peer.decode(attacked, found[j]), bits[i][: peer.bits]
        st.hit(float(np.mean(got == want)), bool(np.array_equal(got, want)))
    st.extra_faces += len(found) - sum(j is not None for j in match)


def _register(ledger: Ledger, unlocked, payloads: list[Payload], faces: list[Face],
              tagged: np.ndarray, original: Path | None) -> None:
    """Sign records for bench tags so verify can reach `verified` (file hash: not a real file),
    with the thumbnails protect would sign and the photo as the original, as protect keeps
    them, so verify's face-change check runs as it does for the user's own tags."""
    boxes = [f.int_box() for f in faces]
    recs = [sign_record(unlocked, serial=p.serial, payload_hex=p.to_hex(), file_sha256="0" * 64,
                        face_box=box, face_thumb_jpeg=thumb)
            for p, box, thumb in zip(payloads, boxes, face_thumbs(tagged, boxes), strict=True)]
    ledger.add_records(recs, original_path=str(original) if original else "bench",
                       output_path="bench")


def _load_photos(pipe: Pipeline, paths: list[Path], quick: bool,
                 n_quick: int) -> tuple[list, list]:
    """(photo, faces, detect seconds) for the photos with faces, and every photo read (the
    random-crop false-tag probe also samples the photos without faces)."""
    tagged, every = [], []
    for p in paths:
        photo = load_photo(p)
        every.append(photo)
        t0 = time.perf_counter()
        faces = pipe.detect(photo.rgb)
        if faces:
            tagged.append((photo, faces, time.perf_counter() - t0))
        if quick and len(tagged) == n_quick:
            break
    return tagged, every


class _Run:
    """The per-photo loop: tag with ours and each peer, then per attack score the tagged copies
    and the untagged photo, all with the same attack randomness."""

    def __init__(self, pipe: Pipeline, ledger: Ledger, unlocked, specs: list, peers: list,
                 seed: int, strength: float = DEFAULT_STRENGTH, model=None) -> None:
        self.pipe, self.ledger, self.unlocked = pipe, ledger, unlocked
        self.strength = strength
        self.model = model or pipe.model
        #: attack -> face condition (engine.faces.face_conditions) -> ours, per face
        self.by_condition: dict[str, dict[str, Tally]] = {a.name: {} for a in specs}
        self.specs, self.peers, self.seed = specs, peers, seed
        systems = [OURS, *(p.name for p in peers)]
        self.tally = {s: {a.name: Tally() for a in specs} for s in systems}
        self.quality: dict[str, list[dict[str, float]]] = {s: [] for s in systems}
        self.squares: list[tuple[np.ndarray, np.ndarray]] = []  # ours, first repeat: gallery
        self.clock: Counter = Counter()  # seconds of ours protect/verify, and faces covered
        self.readback: Counter = Counter()  # tagged faces: "faces", "passed", "boost <b>"

    def photo(self, rep: int, k: int, rgb: np.ndarray, faces: list[Face], detect_s: float,
              bar, path: Path | None = None) -> None:
        model, key_id = self.model, self.unlocked.key_id
        payloads = [Payload.create(self.unlocked.mac_key, key_id, s, model.version)
                    for s in self.ledger.allocate_serials(key_id, len(faces))]
        t0 = time.perf_counter()
        embedded = embed_faces(rgb, faces, payloads, model, self.strength)
        tagged = {OURS: embedded.tagged}
        self.clock["protect_s"] += detect_s + time.perf_counter() - t0
        self.clock["protect_faces"] += len(faces)
        ours = [c.square for c in embedded.checks]
        for c in embedded.checks:
            self.readback.update({"faces": 1, "passed": int(c.passed), f"boost {c.boost:g}": 1})
        h, w = rgb.shape[:2]
        framings = [tag_squares(f.box, w, h, model.square, neighbour_boxes(faces, f)).index(sq)
                    for f, sq in zip(faces, ours, strict=True)]
        _register(self.ledger, self.unlocked, payloads, faces, tagged[OURS], path)
        bits = [data_bits(p) for p in payloads]  # peers carry our 60 data bits
        for peer in self.peers:
            tagged[peer.name] = peer.embed(rgb, faces, bits)
        regions = {s: [square_region(sq, rgb.shape) for sq in ours] if s == OURS else
                   [face_region(f.box, rgb.shape, CROP_SCALE) for f in faces]  # peers' geometry
                   for s in tagged}
        for s, img in tagged.items():
            self.quality[s] += [region_quality(rgb, img, r) for r in regions[s]]
        conditions = [face_conditions(f.box, rgb) for f in faces]
        if rep == 0:
            self.squares += [(rgb[r], tagged[OURS][r]) for r in regions[OURS]]
        for a, spec in enumerate(self.specs):
            seed = (self.seed, rep, k, a)  # the same attack randomness for every system

            def attack(img: np.ndarray, spec=spec, seed=seed) -> np.ndarray:
                return spec.fn(img, np.random.default_rng(seed))

            st = self.tally[OURS][spec.name]
            attacked = attack(tagged[OURS])
            t0 = time.perf_counter()
            found = self.pipe.verify_rgb(attacked)
            self.clock["verify_s"] += time.perf_counter() - t0
            self.clock["verify_faces"] += len(found)
            by = self.by_condition[spec.name]
            _score_ours(st, model, attacked, found, faces, payloads, rgb.shape,
                        [[by.setdefault(c, Tally()) for c in conds] for conds in conditions],
                        framings)
            for v in self.pipe.verify_rgb(attack(rgb)):  # untagged: nothing may decode
                st.untagged_faces += 1
                st.untagged_decoded += v.payload is not None
                st.untagged_verified += v.verdict == Verdict.VERIFIED
            for peer in self.peers:
                _score_peer(self.tally[peer.name][spec.name], peer, self.pipe,
                            attack(tagged[peer.name]), faces, bits, rgb.shape)
            bar.update(1)


def model_trained_on(extra: dict) -> Callable[[AttackSpec], bool]:
    """Whether the bundled model saw an attack's kind in training. A spec's `trained_on` says
    what the training code can use; a model saw the DeepFake face ops only if its run used them
    (`faceops` in the weights metadata, written by engine.training.train), so for model v1 -
    trained on everyday processing only - every DeepFake row is held out."""
    faceops = set(extra.get("faceops", ()))
    return lambda s: bool(s.trained_on) and (s.family == "everyday" or s.name in faceops)


def run_bench(args: argparse.Namespace) -> dict:
    if args.candidate:
        args.model_version = add_candidate(Path(args.candidate))
    specs = bench_suite.select(args.attacks, args.quick)
    specs += [bench_suite.external(c) for c in args.attack_cmd]
    peers = []
    if args.peers:
        from engine.bench.peers import load_peers

        peers = load_peers()
    paths = iter_photos([Path(p) for p in args.images])
    results: dict = {"command": " ".join(["faketagger", "bench", *args.argv]),
                     "machine": bench_speed.machine(), "seed": args.seed,
                     "repeats": args.repeats, "strength": args.strength,
                     "donors": donor_source()}
    with (tempfile.TemporaryDirectory(prefix="ft-bench-") as tmp,
          Ledger(Path(tmp) / "ledger.sqlite3") as ledger):
        ident = ledger.create_identity("Bench", "bench-passphrase")
        unlocked = ledger.unlock(ident.key_id, "bench-passphrase")
        pipe = Pipeline(ledger, device=args.device)
        t0 = time.perf_counter()
        pipe.warm_up()
        load_s = time.perf_counter() - t0
        model = load_watermarker(args.model_version, pipe.device)
        results["model"] = {"version": model.version, "file": model.path.name,
                            "meta": model.meta.get("extra", {}),
                            "candidate": bool(args.candidate)}
        photos, every_photo = _load_photos(pipe, paths, args.quick, args.quick_photos)
        if not photos:
            raise FakeTaggerError(f"no faces found in {', '.join(args.images)}")
        results["images"] = len(photos)
        results["images_read"] = len(every_photo)
        results["faces"] = sum(len(f) for _, f, _ in photos)
        run = _Run(pipe, ledger, unlocked, specs, peers, args.seed, args.strength, model)
        bar = tqdm(total=len(photos) * len(specs) * args.repeats, desc="bench",
                   file=sys.stderr, disable=not sys.stderr.isatty())
        for rep in range(args.repeats):  # fresh payloads and attack randomness per repeat
            for k, (photo, faces, detect_s) in enumerate(photos):
                run.photo(rep, k, photo.rgb, faces, detect_s, bar, photo.path)
        bar.close()
        tally, quality, clock = run.tally, run.quality, run.clock
        seen = model_trained_on(model.meta.get("extra", {}))
        results["attacks"] = {
            s.name: {"family": s.family, "trained_on": seen(s),
                     "description": s.description, **tally[OURS][s.name].summary()}
            for s in specs}
        results["families"] = _families(specs, tally[OURS])
        results["by_condition"] = {a: {c: t.summary() for c, t in sorted(by.items())}
                                   for a, by in run.by_condition.items()}
        if args.small_images:
            results["small_faces"] = _small_subset(args, pipe, ledger, unlocked, specs, model)
        results["invisibility"] = {**summarize(quality[OURS]), "square": model.square}
        if args.gallery:
            results["gallery"] = [str(p) for p in write_gallery(Path(args.gallery), run.squares)]
        results["false_tags"] = _false_tags(tally[OURS])
        results["readback"] = dict(sorted(run.readback.items()))
        results["random_crops"] = bench_speed.random_crops(
            pipe, every_photo, args.random_crops, np.random.default_rng(args.seed))
        results["speed"] = {
            "protect_s_per_face": clock["protect_s"] / max(1, clock["protect_faces"]),
            "verify_s_per_face": clock["verify_s"] / max(1, clock["verify_faces"]),
            "photo": None if args.no_speed else bench_speed.timing(
                pipe, unlocked, photos, load_s, Path(tmp), runs=1 if args.quick else 3),
            "gpu": bench_speed.gpu_throughput(model, photos)}
        if peers:
            results["peers"] = {
                p.name: {"bits": p.bits, "note": p.note, "invisibility": summarize(quality[p.name]),
                         "attacks": {s.name: tally[p.name][s.name].summary(ours=False)
                                     for s in specs},
                         "families": _families(specs, tally[p.name])}
                for p in peers}
            results["peer_speed"] = bench_speed.compare_peers(model, peers, photos)
    results["targets"] = bench_report.targets(results)
    return results


def _small_subset(args, pipe: Pipeline, ledger: Ledger, unlocked, specs: list, model) -> dict:
    """The small-face rows: the same attacks on the small-face photos, ours only."""
    paths = iter_photos([Path(p) for p in args.small_images])
    photos, _ = _load_photos(pipe, paths, args.quick, args.quick_photos)
    run = _Run(pipe, ledger, unlocked, specs, [], args.seed + 1, args.strength, model)
    for rep in range(args.repeats):
        for k, (photo, faces, detect_s) in enumerate(photos):
            run.photo(rep, k, photo.rgb, faces, detect_s, _NoBar(), photo.path)
    return {"images": len(photos), "faces": sum(len(f) for _, f, _ in photos),
            "folders": [str(p) for p in args.small_images],
            "attacks": {s.name: run.tally[OURS][s.name].summary() for s in specs},
            "invisibility": summarize(run.quality[OURS])}


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _pool(tallies: list[Tally]) -> dict:
    s = Tally.pooled(tallies).summary(ours=False)
    return {k: s[k] for k in ("faces", "detection_rate", "exact_recovery", "bit_accuracy",
                              "bit_accuracy_detected")}


def _families(specs: list, tally: dict[str, Tally]) -> dict:
    """Per DeepFake family (bench_suite.FAMILY_GROUPS pools both swap directions) and per
    attack-library family: face-trials pooled over the family's attacks."""
    out: dict = {"groups": {}, "families": {}}
    for group, fams in bench_suite.FAMILY_GROUPS.items():
        members = [tally[s.name] for s in specs if s.family in fams]
        if members:
            out["groups"][group] = {**_pool(members), "attacks": sum(
                1 for s in specs if s.family in fams)}
    for fam in dict.fromkeys(s.family for s in specs):
        out["families"][fam] = _pool([tally[s.name] for s in specs if s.family == fam])
    accs = [g["bit_accuracy"] for g in out["groups"].values() if g["bit_accuracy"] is not None]
    out["deepfake_bit_accuracy"] = float(np.mean(accs)) if accs else None
    out["deepfake_groups_measured"] = list(out["groups"])
    return out


def _false_tags(tally: dict[str, Tally]) -> dict:
    faces = sum(t.untagged_faces for t in tally.values())
    decoded = sum(t.untagged_decoded for t in tally.values())
    return {"untagged_faces": faces, "decoded": decoded,
            "verified": sum(t.untagged_verified for t in tally.values()),
            "rate": decoded / max(1, faces)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="faketagger bench", description=__doc__.splitlines()[0])
    p.add_argument("--images", nargs="+", default=[str(DEFAULT_IMAGES)],
                   help="photos or folders (default: the data cache's eval split)")
    p.add_argument("--attacks", type=lambda s: [a.strip() for a in s.split(",") if a.strip()],
                   help="comma-separated attack names (default: the whole suite)")
    p.add_argument("--attack-cmd", action="append", default=[], metavar='"TOOL {in} {out}"',
                   help="run an external tool as an attack ({in}: the photo as PNG, {out}: "
                        "where the tool writes its result); repeatable. Without --attacks "
                        "or --quick, runs only 'clean' plus these tools")
    p.add_argument("--quick", action="store_true",
                   help="the QUICK attacks on a few photos, fewer random crops (CI)")
    p.add_argument("--quick-photos", type=int, default=2, help="photos with faces in --quick")
    p.add_argument("--peers", action="store_true",
                   help="also run invisible-watermark (dwtDct, dwtDctSvd, rivaGan) and "
                        "blind-watermark on the same faces and attacks (needs `make bench-deps`)")
    p.add_argument("--random-crops", type=int, default=None,
                   help="random crops of untagged photos to decode (default 10000; quick 500)")
    p.add_argument("--small-images", nargs="*",
                   default=[str(DEFAULT_SMALL)] if DEFAULT_SMALL.is_dir() else [],
                   help="photos for the small-face rows (default: the data cache's eval_small; "
                        "give no folder to skip them)")
    p.add_argument("--candidate", metavar="WEIGHTS",
                   help="tag with this unreleased weights file (a new model version; verify reads "
                        "it beside the bundled ones, in this run only)")
    p.add_argument("--model-version", type=int, default=None,
                   help="tag with this bundled model version (default: the newest, as protect)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=None,
                   help="tag and attack every face this many times with fresh payloads and "
                        "attack randomness (default 3; quick 1)")
    p.add_argument("--strength", type=float, default=DEFAULT_STRENGTH,
                   help=f"tag strength for our tags (default {DEFAULT_STRENGTH:g}, as protect)")
    p.add_argument("--no-speed", action="store_true",
                   help="skip the 1920x1280 speed photo (its targets then read 'not measured')")
    p.add_argument("--json", help="write all numbers here as JSON")
    p.add_argument("--markdown", help="write the report into this Markdown file between the "
                   "bench markers (e.g. docs/BENCHMARKS.md)")
    p.add_argument("--chart", help="write a PNG bar chart here (needs matplotlib: the bench extra)")
    p.add_argument("--gallery", help="write one PNG per tagged face here (original | tagged | "
                   "residual x10, at 3x), e.g. docs/gallery")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[2:] if argv is None else argv)
    if args.attack_cmd and not args.attacks and not args.quick:
        args.attacks = ["clean"]
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.random_crops is None:
        args.random_crops = 500 if args.quick else 10000
    try:
        if args.chart:
            bench_report.require_matplotlib()  # fail before the long run, not after it
        results = run_bench(args)
    except FakeTaggerError as err:
        print(f"faketagger bench: error: {err}", file=sys.stderr)
        return 2
    md = bench_report.to_markdown(results)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.markdown:
        bench_report.write_markdown(Path(args.markdown), md)
    if args.chart:
        bench_report.write_chart(results, Path(args.chart))
    return 0
