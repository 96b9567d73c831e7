"""The `faketagger` command line. A thin front end: the work happens in engine.jobs and engine.pipeline.

Errors a user can cause (bad file, wrong passphrase, no identity) end with a one-line message and
exit status 1, never a traceback. With --json, stdout carries exactly one JSON object and
everything else (progress, notes) goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine import __version__
from engine.cli.keys import add_key_commands
from engine.cli.support import EXIT_ERROR, CliError, ledger_from_env, need_passphrase
from engine.errors import FakeTaggerError

#: `faketagger bench` where the bench is left out: the desktop build (installer/faketagger.spec).
BENCH_NEEDS_CHECKOUT = (
    "faketagger: error: `faketagger bench` needs the developer install: this build leaves out the "
    "bench, the attack library and training. Run it from a git checkout of FakeTagger with "
    "Python 3.11: `make bench-quick` or `make bench` (README, \"Measuring and training\").")


def _pipeline(ledger, args):
    from engine.pipeline import Pipeline

    return Pipeline(ledger, device=args.device, threshold=args.threshold, min_face=args.min_face)


def _progress(total: int, unit: str):
    from tqdm import tqdm

    # Only on a terminal: in a log file a redrawn bar is noise.
    return tqdm(total=total, unit=unit, file=sys.stderr, leave=False,
                disable=total < 2 or not sys.stderr.isatty())


def _drain(events, total: int, unit: str, render) -> list:
    """Run a pipeline or job generator under a progress bar; print each good outcome with
    `render`."""
    from engine.jobs import JobProgress
    from engine.pipeline import Progress

    outcomes, bar = [], _progress(total, unit)
    for event in events:
        if isinstance(event, Progress | JobProgress):
            bar.n = event.done
            bar.refresh()
            continue
        outcomes.append(event)
        if render is not None and not event.error:
            bar.write(render(event))
    bar.close()
    return outcomes


def _report_errors(outcomes: list) -> int:
    for o in outcomes:
        if o.error:
            print(f"faketagger: error: {o.error}", file=sys.stderr)
    return EXIT_ERROR if any(o.error for o in outcomes) else 0


def cmd_protect(args) -> int:
    from engine.jobs import ProtectJob, run_protect
    from engine.photos import iter_photos
    from engine.protect import DEFAULT_STRENGTH, Outcome

    out_dir = (Path(args.out) if args.out else Path.cwd() / "tagged").resolve()
    job = ProtectJob(iter_photos([Path(p) for p in args.inputs]), out_dir, args.format,
                     args.quality, DEFAULT_STRENGTH if args.strength is None else args.strength)
    # Never re-tag our own outputs when the output folder sits inside an input folder: the
    # job skips them; here they are left out silently, as the user did not pick them one by one.
    groups, _inside = job.plan()
    if not groups:
        raise CliError("no supported photos found in the given inputs")
    with ledger_from_env() as ledger:
        ident = ledger.default_identity()
        if ident is None:
            raise CliError("no identity: create one with faketagger identity create --name NAME")
        unlocked = ledger.unlock(ident.key_id, need_passphrase())
        events = run_protect(_pipeline(ledger, args), unlocked, job)
        outcomes = [o for o in _drain(events, len(job.paths), "photo",
                                      None if args.json else _protect_line)
                    if o.status is not Outcome.SKIPPED]
    if args.json:
        # Exactly the contract: written files only; skipped photos are noted on stderr.
        print(json.dumps({"outputs": [o.to_json() for o in outcomes if o.output]}))
        for o in outcomes:
            if o.status is Outcome.NO_FACE:
                print(f"faketagger: note: {_protect_line(o)}", file=sys.stderr)
    return _report_errors(outcomes)


def _protect_line(o) -> str:
    if not o.faces:
        small = f" ({len(o.small_faces)} too small to tag)" if o.small_faces else ""
        return f"skipped {o.input}: no face found{small}; nothing written"
    psnr = min(f.psnr for f in o.faces)
    serials = ", ".join(str(f.serial) for f in o.faces)
    return (f"tagged  {o.input} -> {o.output}  {len(o.faces)} face(s), serials {serials}, "
            f"PSNR >= {psnr:.1f} dB")


def cmd_verify(args) -> int:
    paths = [Path(p) for p in args.images]
    with ledger_from_env() as ledger:
        events = _pipeline(ledger, args).verify(paths)
        outcomes = _drain(events, len(paths), "image", None if args.json else _verify_text)
    if args.report:
        from engine.report import image_report, write_report

        report = Path(args.report)
        write_report(report, [image_report(o.file, o.faces, o.error) for o in outcomes])
        print(f"faketagger: report written to {report}", file=sys.stderr)
    if args.json:
        print(json.dumps({"results": [o.to_json() for o in outcomes]}))
    return _report_errors(outcomes)


def _verify_text(o) -> str:
    lines = [f"{o.file}: {len(o.faces)} face(s)"]
    for k, f in enumerate(o.faces, 1):
        same = "; this is the exact file the owner tagged" if f.file_match else ""
        lines.append(f"  face {k} at {f.box}: {f.verdict.upper().replace('_', ' ')}"
                     f" (confidence {f.confidence:.2f}) - {f.reason}{same}")
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from engine.cli.demo import run_demo

    return run_demo(device=args.device)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="faketagger",
        description="Tag the faces in your photos with a signed, invisible owner tag, and "
                    "verify suspect images offline. Start with: faketagger demo. Run "
                    "faketagger without arguments to open the desktop app.",
    )
    p.add_argument("--version", action="version", version=f"FakeTagger {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    add_key_commands(sub)

    from engine.photos import OutputFormat

    def engine_opts(sp):
        from engine.faces import DEFAULT_MIN_FACE, DEFAULT_THRESHOLD

        sp.add_argument("--json", action="store_true", help="one JSON object on stdout")
        sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        sp.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="face detection probability threshold")
        sp.add_argument("--min-face", type=int, default=DEFAULT_MIN_FACE,
                        help="smallest face side in pixels that gets a tag")

    pr = sub.add_parser("protect", help="tag the faces in photos (files or folders)")
    pr.add_argument("inputs", nargs="+")
    pr.add_argument("--out", help="output folder (default: ./tagged)")
    pr.add_argument("--format", choices=list(OutputFormat), type=str.lower,
                    default=OutputFormat.KEEP, help="output format (default: keep the input's)")
    pr.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default 95)")
    pr.add_argument("--strength", type=float, default=None,
                    help="tag strength, a multiple of the standard one: higher is more robust "
                         "and less invisible (default: the standard, "
                         "engine.protect.DEFAULT_STRENGTH)")
    engine_opts(pr)
    pr.set_defaults(func=cmd_protect)

    v = sub.add_parser("verify", help="read and check the tags in suspect images")
    v.add_argument("images", nargs="+")
    v.add_argument("--report", metavar="FILE",
                   help="also write a verification report: FILE.html (self-contained page) "
                        "or FILE.json")
    engine_opts(v)
    v.set_defaults(func=cmd_verify)

    d = sub.add_parser("demo", help="tag and verify the bundled sample photo (temporary data)")
    d.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    d.set_defaults(func=cmd_demo)

    # Listed for --help only: main() hands `bench ...` to engine.bench.runner before parsing.
    sub.add_parser("bench", help="measure invisibility, robustness and speed (see bench --help)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the bench has its own parser; hand it every remaining option
        try:
            from engine.bench.runner import main as bench_main
        except ModuleNotFoundError as err:
            if not (err.name or "").startswith(("engine.bench", "engine.attacks")):
                raise
            print(BENCH_NEEDS_CHECKOUT, file=sys.stderr)
            return EXIT_ERROR
        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command is None:
        # `faketagger` with no arguments opens the desktop app (app.launch, which calls this
        # only with arguments); reaching here means `python -m engine.cli` alone: show help.
        build_parser().print_help()
        return 0
    try:
        return args.func(args)
    except FakeTaggerError as err:
        print(f"faketagger: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("faketagger: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
