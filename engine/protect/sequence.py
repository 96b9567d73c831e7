"""One photo's protect, in the four steps every runner takes in this order: plan -> reserve ->
render -> commit.

- plan (pure): find the faces to tag and any tag already in them (:func:`plan_photo`);
  :func:`settle` ends the photo there when nothing is to be tagged.
- reserve (ledger): serials for the faces, one transaction for many photos (:func:`reserve`).
- render (pure): embed the payload bits, encode the file, cut the thumbnails
  (engine.protect.render).
- commit (ledger): write the temp file, sign Content Credentials, hash, sign and stage the
  records, publish the file, finish the records (:func:`commit`, engine.store.tagging).

A failure or a kill leaves the tagged file with its records or neither, and no serial is used
up by a photo never written. The local runner and ``Pipeline.protect`` take all four steps in
one go (:func:`protect_one`); the Ray runner plans and renders on workers, the rest in the driver.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.credentials.write import BoundFace, sign_into
from engine.errors import LedgerError
from engine.faces import Face, FaceDetector, neighbour_boxes
from engine.files import display_path
from engine.identity import KeyId, UnlockedIdentity
from engine.model.reading import decode_face
from engine.model.registry import Watermarker
from engine.payload import Payload
from engine.photos import (
    NameTakenError,
    OutputFormat,
    Photo,
    PhotoError,
    load_photo,
    publish_photo,
    sha256_file,
    temp_path_for,
    unique_output_path,
    write_temp_bytes,
)
from engine.protect.outcome import ProtectOutcome, Reason, TaggedFace
from engine.protect.render import Rendered, payload_bits, render_tagged
from engine.protect.spec import TAGGED_SUFFIX, JobSpec
from engine.store.ledger import Ledger, TagJob
from engine.store.records import sign_record
from engine.store.tagging import TagPlan

#: How often protect picks a new output name when another program takes the chosen one first.
_NAME_TRIES = 20


@dataclass
class Tools:
    """What the pure steps need: the detector and the bundled models, newest first (the newest
    makes new tags; every one reads old ones)."""

    detector: FaceDetector
    models: list[Watermarker]

    @property
    def model(self) -> Watermarker:
        return self.models[0]


@dataclass(frozen=True)
class FoundTag:
    """A tag already in a face: where, whose key, which serial (who that is needs the ledger)."""

    box: list[int]
    key_id: KeyId
    serial: int


@dataclass
class PhotoPlan:
    """The plan step's answer for one photo (pure, so a Ray worker can make it)."""

    src: Path
    format: str  # the photo's own format ("JPEG", ...)
    faces: list[Face] = field(default_factory=list)  # the faces to tag
    small: list[list[int]] = field(default_factory=list)  # boxes of faces too small to tag
    tag: FoundTag | None = None  # a tag already in one of `faces` (not looked for with retag)


def usable_faces(found: list[Face], min_face: int, chosen: list[int] | None) -> list[Face]:
    """The faces to tag among detect(include_small=True)'s: big enough, and chosen (the GUI's
    checkboxes; None: all)."""
    picked = set(chosen) if chosen is not None else None
    return [f for k, f in enumerate(found) if f.size >= min_face
            and (picked is None or k in picked)]


def first_tag(rgb, faces: list[Face], models: list[Watermarker]) -> FoundTag | None:
    """The first face that already carries a tag (a second tag on top would garble both)."""
    for face in faces:
        res, _version = decode_face(rgb, face, models, neighbours=(neighbour_boxes(faces, face),))
        if res is not None:
            return FoundTag(face.int_box(), res.payload.key_id, res.payload.serial)
    return None


def plan_photo(photo: Photo, tools: Tools, spec: JobSpec, chosen: list[int] | None) -> PhotoPlan:
    """Step 1 (pure): the faces the spec's detection settings find and the user chose, the ones
    too small, and (unless ``retag``) the first tag already in them."""
    found = [f for f in tools.detector.detect(photo.rgb, include_small=True,
                                              min_prob=spec.threshold) if f.prob >= spec.threshold]
    faces = usable_faces(found, spec.min_face, chosen)
    small = [f.int_box() for f in found if f.size < spec.min_face]
    tag = first_tag(photo.rgb, faces, tools.models) if faces and not spec.retag else None
    return PhotoPlan(photo.path, photo.format, faces, small, tag)


def describe_tag(ledger: Ledger, tag: FoundTag) -> str:
    """A :class:`FoundTag` in words (whose tag it is comes from the ledger)."""
    owner = ledger.lookup_owner(tag.key_id)
    who = (f"your identity {owner.name}" if owner and owner.is_own else
           owner.name if owner else "an unknown owner")
    return (f"already tagged: the face at {tag.box} carries a tag of {who} "
            f"({tag.key_id}, serial {tag.serial})")


def settle(ledger: Ledger, plan: PhotoPlan) -> ProtectOutcome | None:
    """The photo's outcome when the plan leaves nothing to tag (a face already tagged, no face
    big enough); None when the photo goes on to be reserved."""
    if plan.tag is not None:
        return ProtectOutcome(plan.src, error=f"{display_path(plan.src)}: "
                              f"{describe_tag(ledger, plan.tag)}; not tagged again (--retag, or "
                              "“Retag tagged photos” in the app, tags it anyway)",
                              reason=Reason.HAS_TAG)
    if not plan.faces:
        return ProtectOutcome(plan.src, small_faces=plan.small)
    return None


@dataclass
class Held:
    """A reservation (step 2): the ledger's tag job, the copy's format, the payload of each
    serial, and the key that signs them (a job may roll over to another key)."""

    plan: PhotoPlan
    job: TagJob
    fmt: str
    payloads: list[Payload]
    identity: UnlockedIdentity


def payloads_for(identity: UnlockedIdentity, serials: list[int], version: int) -> list[Payload]:
    """The payload of each reserved serial (needs the identity's MAC key: driver side only)."""
    return [Payload.create(identity.mac_key, identity.key_id, s, version) for s in serials]


def reserve(ledger: Ledger, identity: UnlockedIdentity, plans: list[tuple[PhotoPlan, Path]],
            spec: JobSpec, version: int, batch_job: str | None = None) -> list[Held]:
    """Step 2: serials for every (plan, output folder), in one transaction: all or none
    (SerialsExhaustedError). With *batch_job*, each photo's job item is tied to its reservation,
    so it is marked tagged in the transaction that commits its records."""
    targets, tag_plans = [], []
    for plan, out_dir in plans:
        fmt = plan.format if spec.fmt is OutputFormat.KEEP else spec.fmt.value
        ensure_output_dir(out_dir)
        out_path = unique_output_path(out_dir, plan.src, suffix=TAGGED_SUFFIX, fmt=fmt)
        targets.append(fmt)
        tag_plans.append(TagPlan(len(plan.faces), display_path(plan.src), out_path,
                                 temp_path_for(out_path), batch_job, plan.src))
    jobs = ledger.begin_tags(identity.key_id, tag_plans)
    return [Held(plan, job, fmt, payloads_for(identity, job.serials, version), identity)
            for (plan, _), fmt, job in zip(plans, targets, jobs, strict=True)]


def commit(ledger: Ledger, held: Held, spec: JobSpec,
           render: Callable[[], Rendered]) -> ProtectOutcome:
    """Steps 3-4 of a reservation: *render* the copy (here, or a worker's answer), write it to
    the temp file, sign Content Credentials into it, hash it, sign and stage its records,
    publish it (a new name if another program took it) and commit the records. A failure
    before the publish aborts the reservation: serials freed, temp removed."""
    job, src, identity = held.job, held.plan.src, held.identity
    outcome = ProtectOutcome(src, small_faces=held.plan.small)
    out_path, tmp = job.output_path, job.tmp_path
    published = False
    try:
        rendered = render()
        write_temp_bytes(rendered.data, src, out_path, tmp, fmt=held.fmt)
        marks = rendered.marks
        if spec.c2pa:  # before the hash: the record's file_sha256 covers the manifest too
            chain, _ = ledger.credentials.chain_for(identity)
            bound = [BoundFace(box, p.to_hex()) for p, box in zip(held.payloads, marks.boxes,
                                                                  strict=True)]
            sign_into(tmp, held.fmt, src, identity, chain, bound, held.payloads[0].version,
                      out_path.name)
            outcome.c2pa = True
        digest = sha256_file(tmp)
        records = []
        for payload, box, thumb, psnr, check in zip(held.payloads, marks.boxes, marks.thumbs,
                                                    marks.psnrs, marks.checks, strict=True):
            records.append(sign_record(
                identity, serial=payload.serial, payload_hex=payload.to_hex(),
                file_sha256=digest, face_box=box, face_thumb_jpeg=thumb))
            outcome.faces.append(TaggedFace(box, payload.serial, payload.to_hex(), psnr, check))
        ledger.stage_tag(job, records)
        for attempt in range(_NAME_TRIES):
            try:
                publish_photo(tmp, out_path)
                published = True
                break
            except NameTakenError:  # another program took the name meanwhile: pick the next
                if attempt == _NAME_TRIES - 1:
                    raise
                out_path = unique_output_path(out_path.parent, src, suffix=TAGGED_SUFFIX,
                                              fmt=held.fmt)
                ledger.move_tag(job, out_path)
    except BaseException:
        if not published:
            with contextlib.suppress(Exception):  # if this fails too, the next open recovers it
                ledger.abort_tag(job)
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    try:
        ledger.finish_tag(job)
    except LedgerError as err:  # the file is out: its staged records are finished on next open
        raise LedgerError(f"{display_path(out_path)} was written, but the ledger could not "
                          f"commit its records yet ({err}); FakeTagger finishes them the next "
                          "time it opens the ledger") from None
    outcome.output = out_path
    return outcome


def protect_photo(photo: Photo, faces: list[Face], identity: UnlockedIdentity, ledger: Ledger,
                  model: Watermarker, spec: JobSpec, out_dir: Path | None = None,
                  batch_job: str | None = None) -> ProtectOutcome:
    """Steps 2-4 for *faces* of *photo*, in this process: reserve, render, commit."""
    if not faces:
        return ProtectOutcome(photo.path)
    plan = PhotoPlan(photo.path, photo.format, faces)
    out_dir = spec.out_dir_for(photo.path) if out_dir is None else out_dir
    [held] = reserve(ledger, identity, [(plan, out_dir)], spec, model.version, batch_job)
    return commit(ledger, held, spec, lambda: render_tagged(
        photo, faces, payload_bits(held.payloads), model, spec, held.fmt))


def protect_one(tools: Tools, ledger: Ledger, identity: UnlockedIdentity, src: Path,
                out_dir: Path, spec: JobSpec, *, chosen: list[int] | None = None,
                batch_job: str | None = None,
                cancelled: Callable[[], bool] = lambda: False) -> ProtectOutcome | None:
    """All four steps for one photo: its outcome (a failure too: one photo's error never ends a
    run), or None when *cancelled* after the plan, before anything was reserved or written."""
    try:
        photo = load_photo(src)
        plan = plan_photo(photo, tools, spec, chosen)
        if cancelled():  # last chance before anything is written
            return None
        outcome = settle(ledger, plan)
        if outcome is None:
            outcome = protect_photo(photo, plan.faces, identity, ledger, tools.model, spec,
                                    out_dir, batch_job)
            outcome.small_faces = plan.small
        return outcome
    except Exception as err:  # noqa: BLE001 - typed: the outcome's reason comes from it
        return ProtectOutcome.failed(Path(src), err)


def check_output_dir(folder: Path) -> None:
    """PhotoError now, before any work, if *folder* cannot be (made into) a writable folder:
    it is a file, or it or the nearest folder above it that exists is not writable."""
    folder = Path(folder).absolute()
    probe = folder
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise PhotoError(f"{folder}: cannot create the output folder ({probe} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        what = "output folder" if probe == folder else f"output folder (in {probe})"
        raise PhotoError(f"{folder}: cannot write the {what}: permission denied or read-only")


def ensure_output_dir(folder: Path) -> None:
    """Create the output folder (and parents); one-line PhotoError when it cannot be."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise PhotoError(f"{folder}: the output folder is a file, not a folder") from None
    except OSError as exc:
        raise PhotoError(f"{folder}: cannot create the output folder ({exc.strerror})") from None
    if not Path(folder).is_dir():
        raise PhotoError(f"{folder}: the output folder is not a folder")

