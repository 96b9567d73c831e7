"""The `faketagger` command line. A thin front end: the work happens in engine.run and engine.pipeline.

Errors a user can cause (bad file, wrong passphrase, no identity) end with a one-line message and
exit status 1, never a traceback. With --json, stdout carries exactly one JSON object and
everything else (progress, notes) goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from engine import __version__
from engine.cli.keys import add_key_commands
from engine.cli.support import EXIT_ERROR, CliError, ledger_from_env, need_passphrase
from engine.errors import FakeTaggerError
from engine.files import safe_text

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
    from engine.pipeline import Progress

    outcomes, bar = [], _progress(total, unit)
    for event in events:
        if isinstance(event, Progress):
            bar.n = event.done
            bar.refresh()
            continue
        outcomes.append(event)
        if render is not None and not event.error:
            bar.write(render(event))
    bar.close()
    return outcomes


def note(text: str) -> None:
    """One line on stderr, whatever the file names in it hold (newlines, invalid UTF-8)."""
    print(" ".join(safe_text(text).split()), file=sys.stderr)


def _report_errors(outcomes: list) -> int:
    for o in outcomes:
        if o.error:
            note(f"faketagger: error: {o.error}")
    return EXIT_ERROR if any(o.error for o in outcomes) else 0


def _check_detection(args) -> None:
    """The detection options, checked before any work (engine.limits owns their ranges)."""
    from engine.limits import MIN_FACE, THRESHOLD

    THRESHOLD.check(args.threshold)
    MIN_FACE.check(args.min_face)


def _spec(args, **more):
    """The run the flags describe (JobSpec, engine/protect/spec.py, checks every range first)."""
    from engine.limits import DEFAULT_STRENGTH
    from engine.protect.spec import JobSpec

    return JobSpec(fmt=args.format, jpeg_quality=args.quality,
                   strength=DEFAULT_STRENGTH if args.strength is None else args.strength,
                   retag=args.retag, threshold=args.threshold, min_face=args.min_face,
                   c2pa=args.c2pa, small_thumbnails=args.small_thumbnails, **more)


def cmd_protect(args) -> int:
    from engine.photos import iter_photos
    from engine.protect import check_output_dir
    from engine.run.jobs import protect_job
    from engine.run.local import run_batch
    from engine.store.batches import ItemState

    # Everything a user can get wrong is checked here, before the passphrase, the models or a
    # serial: option ranges (the spec), the output folder, the inputs. Each run makes new
    # tagged copies (tag_again), as protect always has; `batch` is the rerun-safe command.
    _check_detection(args)
    out_dir = (Path(args.out) if args.out else Path.cwd() / "tagged").absolute()
    paths = iter_photos([Path(p) for p in args.inputs])
    spec = _spec(args, out_dir=out_dir, tag_again=True)
    # Never re-tag our own outputs when the output folder sits inside an input folder: the
    # job skips them, silently here, as the user did not pick them one by one.
    groups, inside = spec.plan(paths)
    if not groups:
        if inside:
            raise CliError(f"every photo given is inside the output folder {out_dir}: tagged "
                           "copies never go among the photos they come from; choose another "
                           "--out")
        raise CliError("no supported photos found in the given inputs")
    check_output_dir(out_dir)
    with ledger_from_env() as ledger:
        ident = ledger.resolve_identity(args.identity)
        unlocked, how = ledger.tagging_key(ident.key_id, len(paths), need_passphrase(),
                                           subkeys=not args.no_subkeys)
        if how:
            note(f"faketagger: {how}")
        if args.c2pa:
            _c2pa_note(ledger, unlocked)
        job_id = protect_job(ledger, unlocked.key_id, paths, spec)
        events = run_batch(_pipeline(ledger, args), unlocked, job_id)
        outcomes = _drain(events, len(paths), "photo", None if args.json else _protect_line)
    if args.json:
        # Exactly the contract: written files only; skipped photos are noted on stderr.
        print(json.dumps({"outputs": [o.to_json() for o in outcomes if o.output]}))
        for o in outcomes:
            if o.state is ItemState.NO_FACE:
                note(f"faketagger: note: {_protect_line(o)}")
    for o in outcomes:
        if o.state is ItemState.SKIPPED:
            note(f"faketagger: note: skipped {o.error}")
    return _report_errors([o for o in outcomes if o.state is ItemState.FAILED])


def _c2pa_note(ledger, unlocked) -> None:
    """Make the identity's Content Credentials chain now (once), and say what it means."""
    _, made = ledger.credentials.chain_for(unlocked)
    note("faketagger: Content Credentials on: every tagged copy carries a signed manifest with "
         f"your name ({unlocked.name}) and key ID; anyone who opens the file can read them")
    if made:
        note("faketagger: made your Content Credentials certificate; export your card again "
             "(faketagger card export) so contacts can trust your manifests")


#: `faketagger batch --resume` with no job ID: the newest interrupted job.
LATEST = "latest"


def cmd_batch(args) -> int:
    from engine.protect import check_output_dir
    from engine.protect.spec import JobSpec
    from engine.run.jobs import (
        capacity_problem,
        create_job,
        latest_interrupted,
        mirror_plan,
        rerun_of,
    )

    if args.list:
        with ledger_from_env() as ledger:
            for job in ledger.batch_jobs():
                state = "done" if job.done else "unfinished"
                print(f"{job.id}  {state:10}  {job.finished}/{job.total} photos  "
                      f"{job.created}  -> {job.out_dir}")
        return 0
    if args.resume is None:
        if not args.inputs or not args.out:
            raise CliError("give the photos or folders to tag and --out FOLDER (or --resume "
                           "[JOB]; --list shows the jobs)")
        _check_detection(args)
        spec = _spec(args, copy_no_face=args.copy_no_face)
        out = Path(args.out).absolute()
        plan = mirror_plan([Path(p) for p in args.inputs], out)
        if not plan:
            raise CliError("no supported photos found in the given inputs (outside --out)")
        check_output_dir(out)
    elif args.inputs:
        raise CliError("--resume continues a recorded job: give no photos with it")
    with ledger_from_env() as ledger:
        again = rerun_of(ledger, plan, out) if args.resume is None else None
        if args.resume is None and again is None:
            ident = ledger.resolve_identity(args.identity)
            problem = capacity_problem(ledger, ident.key_id, len(plan), not args.no_subkeys)
            if problem:
                raise CliError(problem)
            passphrase = need_passphrase()
            unlocked, how = ledger.tagging_key(ident.key_id, len(plan), passphrase,
                                               subkeys=not args.no_subkeys)
            if how:
                note(f"faketagger: {how}")
            job_id = create_job(ledger, unlocked.key_id, plan, out, spec)
            note(f"faketagger: batch job {job_id}: {len(plan)} photos -> {out}")
        else:
            if again is not None:
                info = again
                note(f"faketagger: the same photos and output folder as the interrupted batch "
                     f"job {info.id}: continuing it with its own settings")
                if spec.to_json() != JobSpec.from_json(info.options).to_json():
                    note("faketagger: note: the options given now differ from the job's; the "
                         "job's are used (a new output folder starts a new job)")
            elif args.resume == LATEST:
                info = latest_interrupted(ledger)
                if info is None:
                    raise CliError("no interrupted batch job to resume (--list shows the jobs)")
            else:
                info = ledger.batch_job(args.resume)
            job_id = info.id
            spec = JobSpec.from_json(info.options)
            passphrase = need_passphrase()
            unlocked = ledger.unlock(info.key_id, passphrase)
            note(f"faketagger: resuming batch job {job_id}: {info.finished}/{info.total} "
                 "photos done")
        if spec.c2pa:
            _c2pa_note(ledger, unlocked)
        return _run_batch(ledger, unlocked, job_id, spec, args,
                          _roller(ledger, unlocked, args, passphrase))


def _roller(ledger, unlocked, args, passphrase: str):
    """The batch engines' ``roll``: the next key of the job's owner once a key runs out (a
    certified sub-key, created when needed and announced); None with --no-subkeys."""
    if args.no_subkeys:
        return None
    owner = ledger.parent_of(unlocked.key_id) or unlocked.identity

    def roll(serials: int):
        key, how = ledger.tagging_key(owner.key_id, serials, passphrase)
        note(f"faketagger: {how or 'tagging with ' + owner.key_id.text}")
        return key

    return roll


def _run_batch(ledger, unlocked, job_id: str, spec, args, roll=None) -> int:
    import time

    from engine.pipeline import Pipeline, Progress
    from engine.run.jobs import write_report
    from engine.run.local import run_batch
    from engine.store.batches import ItemState

    pipeline = Pipeline(ledger, device=args.device, threshold=spec.threshold,
                        min_face=spec.min_face)
    if args.engine == "ray":
        try:
            from engine.run.ray_runner import run_batch_ray
        except ModuleNotFoundError as err:
            raise CliError(f"--engine ray needs Ray ({err.name} is not installed): pip "
                           "install 'faketagger[scale]' (not part of the desktop build)") from None
        events = run_batch_ray(pipeline, unlocked, job_id, address=args.address,
                               chunk=args.chunk, roll=roll)
    else:
        events = run_batch(pipeline, unlocked, job_id, roll=roll)
    outcomes, last = [], 0.0
    try:
        for event in events:
            if isinstance(event, Progress):
                now = time.monotonic()
                if now - last >= args.progress_every or event.done == event.total:
                    last = now
                    rate, left = event.rate(), event.seconds_left()
                    note(f"faketagger: {event.done}/{event.total} photos, {event.faces_done} "
                         f"faces" + (f", {rate:.2f} photos/s" if rate else "")
                         + (f", about {left:.0f} s left" if left is not None else ""))
                continue
            outcomes.append(event)
            if not args.json and not event.error:
                print(_protect_line(event))
            elif event.state is ItemState.SKIPPED:
                note(f"faketagger: note: skipped {event.error}")
    except KeyboardInterrupt:
        note(f"faketagger: interrupted; nothing half-done is left. Resume with: faketagger "
             f"batch --resume {job_id}")
        return 130
    info = ledger.batch_job(job_id)
    if args.report:
        write_report(ledger, job_id, Path(args.report))
        note(f"faketagger: job report written to {args.report}")
    failed = [o for o in outcomes if o.state is ItemState.FAILED]
    if args.json:
        print(json.dumps({"job": job_id, "done": info.done, "counts": info.counts,
                          "outputs": [o.to_json() for o in outcomes if o.output],
                          "errors": [{"input": str(o.input), "error": o.error}
                                     for o in failed]}))
    counts = ", ".join(f"{n} {state}" for state, n in sorted(info.counts.items()))
    note(f"faketagger: batch job {job_id}: {counts}" + (
        "" if info.done else f"; resume with: faketagger batch --resume {job_id}"))
    if not spec.copy_no_face and info.counts.get("no_face"):
        note(f"faketagger: note: {info.counts['no_face']} photo(s) had no face to tag "
             "(--copy-no-face copies them through)")
    return _report_errors(failed)


def _protect_line(o) -> str:
    if not o.faces:
        small = f" ({len(o.small_faces)} too small to tag)" if o.small_faces else ""
        return f"skipped {o.input}: no face found{small}; nothing written"
    psnr = min(f.psnr for f in o.faces)
    serials = ", ".join(str(f.serial) for f in o.faces)
    note = o.readback_note()
    return (f"tagged  {o.input} -> {o.output}  {len(o.faces)} face(s), serials {serials}, "
            f"PSNR >= {psnr:.1f} dB" + (f"\n        note: {note}" if note else ""))


def cmd_verify(args) -> int:
    import os

    _check_detection(args)
    paths = [Path(p) for p in args.images]
    report = Path(args.report) if args.report else None
    if report is not None:  # refused now, not after every image was checked
        if any(report.exists() and p.exists() and os.path.samefile(report, p) for p in paths):
            raise CliError(f"{report} is one of the images to check; the report needs another "
                           "name")
        if report.exists() and not args.force:
            raise CliError(f"{report} already exists; choose another name or use --force")
    with ledger_from_env() as ledger:
        events = _pipeline(ledger, args).verify(paths)
        outcomes = _drain(events, len(paths), "image", None if args.json else _verify_text)
    if report is not None:
        from engine.verify.report import image_report, write_report

        write_report(report, [image_report(o.file, o.faces, o.error, o.c2pa) for o in outcomes],
                     overwrite=args.force)
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
    if o.c2pa is not None:
        lines.append(f"  Content Credentials: {o.c2pa.state.upper()} - {o.c2pa.reason}")
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

    from engine.limits import JPEG_QUALITY, MIN_FACE, STRENGTH, THRESHOLD
    from engine.photos import OutputFormat

    def span(limit) -> str:
        return f"{limit.text(limit.lo)}-{limit.text(limit.hi)}"

    def engine_opts(sp):
        from engine.faces import DEFAULT_MIN_FACE, DEFAULT_THRESHOLD

        sp.add_argument("--json", action="store_true", help="one JSON object on stdout")
        sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        sp.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"face detection probability threshold, {span(THRESHOLD)} "
                             f"(default {DEFAULT_THRESHOLD})")
        sp.add_argument("--min-face", type=int, default=DEFAULT_MIN_FACE,
                        help=f"smallest face side in pixels that gets a tag, {span(MIN_FACE)} "
                             f"(default {DEFAULT_MIN_FACE})")

    def tag_opts(sp, out_of_serials: str):
        """What protect and batch both take: how the tagged files are written and signed."""
        sp.add_argument("--format", choices=[f.value for f in OutputFormat], type=str.lower,
                        default=OutputFormat.KEEP.value,
                        help="output format (default: keep the input's)")
        sp.add_argument("--quality", type=int, default=95,
                        help=f"JPEG/WebP quality, {span(JPEG_QUALITY)} (default 95)")
        sp.add_argument("--strength", type=float, default=None,
                        help=f"tag strength, a multiple of the standard one, {span(STRENGTH)}: "
                             "higher is more robust and less invisible (default: the standard, "
                             "engine.protect.DEFAULT_STRENGTH)")
        sp.add_argument("--identity", metavar="KEY-ID|NAME",
                        help="which of your identities signs the tags (default: the default one)")
        sp.add_argument("--retag", action="store_true",
                        help="also tag photos whose faces already carry a tag (skipped otherwise)")
        sp.add_argument("--c2pa", action="store_true",
                        help="also sign Content Credentials (a C2PA manifest) into each tagged "
                             "copy; off by default because the manifest carries your name in "
                             "every photo")
        sp.add_argument("--small-thumbnails", action="store_true",
                        help="sign 48 px face thumbnails into the records instead of 112 px: a "
                             "card then shows less of each face, and verify cannot tell whether "
                             "a face was changed")
        sp.add_argument("--no-subkeys", action="store_true",
                        help="never tag with (or create) a certified sub-key when the identity's "
                             f"own serials run out: {out_of_serials}")

    pr = sub.add_parser("protect", help="tag the faces in photos (files or folders)")
    pr.add_argument("inputs", nargs="+")
    pr.add_argument("--out", help="output folder (default: ./tagged)")
    tag_opts(pr, "fail instead")
    engine_opts(pr)
    pr.set_defaults(func=cmd_protect)

    b = sub.add_parser("batch", help="tag whole folders as a resumable job (mirrors the tree)")
    b.add_argument("inputs", nargs="*", metavar="SRC")
    b.add_argument("--out", metavar="DST", help="output folder: the input tree is mirrored")
    b.add_argument("--resume", metavar="JOB", nargs="?", const=LATEST,
                   help="continue an interrupted job (default: the newest one); running the "
                        "same command again continues it too")
    b.add_argument("--list", action="store_true", help="list the batch jobs in the ledger")
    b.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local (this process) or ray (Ray Data; pip install "
                        "'faketagger[scale]')")
    b.add_argument("--address", help="Ray cluster to use (default: a local one)")
    b.add_argument("--chunk", type=int, default=64,
                   help="ray engine: photos whose serials are reserved together (default 64)")
    b.add_argument("--copy-no-face", action="store_true",
                   help="copy photos without a face through, unchanged")
    b.add_argument("--report", metavar="FILE", help="write the job report (FILE.json or .csv)")
    b.add_argument("--progress-every", type=float, default=5.0, help=argparse.SUPPRESS)
    tag_opts(b, "refuse the job instead")
    engine_opts(b)
    b.set_defaults(func=cmd_batch)

    v = sub.add_parser("verify", help="read and check the tags in suspect images")
    v.add_argument("images", nargs="+")
    v.add_argument("--report", metavar="FILE",
                   help="also write a verification report: FILE.html (self-contained page) "
                        "or FILE.json")
    v.add_argument("--force", action="store_true", help="replace an existing report file")
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
    _quiet_streams()
    args = build_parser().parse_args(argv)
    if args.command is None:
        # `faketagger` with no arguments opens the desktop app (app.launch, which calls this
        # only with arguments); reaching here means `python -m engine.cli` alone: show help.
        build_parser().print_help()
        return 0
    try:
        return args.func(args)
    except FakeTaggerError as err:
        note(f"faketagger: error: {err}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("faketagger: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one-line contract holds even for our bugs
        if os.environ.get("FAKETAGGER_DEBUG"):
            raise
        logging.getLogger(__name__).exception("unexpected error")
        note(f"faketagger: error: unexpected {type(err).__name__}: {err} (a bug: please report "
             "it; FAKETAGGER_DEBUG=1 shows the details)")
        return EXIT_ERROR


def _quiet_streams() -> None:
    """File names that are not valid UTF-8 print as the bytes they are (stdout) or escaped
    (stderr) instead of ending the run in UnicodeEncodeError; library warnings (Pillow's) stay
    out of the one-line error contract."""
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors=errors)
    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")


if __name__ == "__main__":
    sys.exit(main())
