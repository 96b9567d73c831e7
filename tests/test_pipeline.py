"""Protect -> verify round trips with the real MTCNN, the bundled model, RS, Ed25519 and SQLite."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from engine.model.registry import bundled_versions, load_watermarker
from engine.payload import Payload
from engine.photos import load_photo, sha256_file
from engine.pipeline import CancelToken, Progress, run_all
from engine.protect import embed_faces
from engine.protect.spec import JobSpec
from engine.store.ledger import Ledger
from engine.store.records import sign_record
from engine.verify import Verdict

from .conftest import PASSPHRASE, SAMPLE


def _protect(pipeline, identity, src: Path, out: Path, **kw):
    [res] = run_all(pipeline.protect([src], identity, JobSpec(out_dir=out, **kw)))
    assert res.error is None, res.error
    return res


def _verify(pipeline, path: Path):
    [res] = run_all(pipeline.verify([path]))
    assert res.error is None, res.error
    return res.faces


def test_round_trip_verified_and_original_untouched(pipeline, identity, tmp_path):
    before = sha256_file(SAMPLE)
    res = _protect(pipeline, identity, SAMPLE, tmp_path / "out")
    assert sha256_file(SAMPLE) == before
    assert res.output.exists() and res.output.parent == tmp_path / "out"
    assert len(res.faces) >= 1
    assert all(f.psnr >= 36.0 for f in res.faces)
    faces = _verify(pipeline, res.output)
    assert [f.verdict for f in faces] == [Verdict.VERIFIED] * len(res.faces)
    assert faces[0].own and faces[0].owner_name == "Alice"
    assert faces[0].serial == res.faces[0].serial
    assert faces[0].file_match  # byte-identical to the file the record was signed for
    assert [f.verdict for f in _verify(pipeline, SAMPLE)] == [Verdict.NO_TAG] * len(faces)


def test_survives_jpeg75_and_resize75(pipeline, identity, tmp_path):
    res = _protect(pipeline, identity, SAMPLE, tmp_path / "out")
    im = Image.open(res.output)
    im = im.resize((im.width * 3 // 4, im.height * 3 // 4), Image.Resampling.BICUBIC)
    attacked = tmp_path / "attacked.jpg"
    im.save(attacked, quality=75)
    faces = _verify(pipeline, attacked)
    assert faces and faces[0].verdict == Verdict.VERIFIED
    assert not faces[0].file_match


def test_contact_card_flow(tmp_path, monkeypatch):
    """Alice tags and exports her card; Bob sees unknown_owner until he imports it."""
    from engine.pipeline import Pipeline

    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "alice"))
    with Ledger() as alice_ledger:
        alice = alice_ledger.create_identity("Alice", PASSPHRASE)
        unlocked = alice_ledger.unlock(alice.key_id, PASSPHRASE)
        res = _protect(Pipeline(alice_ledger, device="cpu"), unlocked, SAMPLE, tmp_path / "out")
        full_card = alice_ledger.export_card(alice.key_id)
        bare_card = alice_ledger.export_card(alice.key_id, include_records=False)
    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "bob"))
    with Ledger() as bob:
        pipe = Pipeline(bob, device="cpu")
        assert _verify(pipe, res.output)[0].verdict == Verdict.UNKNOWN_OWNER
        bob.import_card(bare_card)
        face = _verify(pipe, res.output)[0]
        assert (face.verdict, face.owner_name) == (Verdict.OWNER_KNOWN, "Alice")
        bob.import_card(full_card)
        face = _verify(pipe, res.output)[0]
        assert (face.verdict, face.owner_name, face.own) == (Verdict.VERIFIED, "Alice", False)
        # Alice's key and serial, but not the payload her signed record holds: a forgery.
        real = face.payload
        forged = Payload(real.version, real.key_id, real.serial, real.mac ^ 0x01)
        photo = load_photo(SAMPLE)
        tagged = embed_faces(photo.rgb, pipe.detect(photo.rgb)[:1], [forged], pipe.model).tagged
        face = pipe.verify_rgb(tagged)[0]
        assert face.verdict == Verdict.INVALID and "different tag" in face.reason


def test_forged_mac_is_invalid(pipeline, identity, tmp_path):
    """A tag that claims our key ID without our MAC key must not pass as ours."""
    photo = load_photo(SAMPLE)
    faces = pipeline.detect(photo.rgb)
    good = Payload.create(identity.mac_key, identity.key_id, 7, pipeline.model.version)
    forged = Payload(good.version, good.key_id, good.serial, good.mac ^ 0x5A)
    tagged = embed_faces(photo.rgb, faces[:1], [forged], pipeline.model).tagged
    verdict = pipeline.verify_rgb(tagged)[0]
    assert verdict.verdict == Verdict.INVALID
    assert "MAC" in verdict.reason


def test_exif_icc_kept_and_orientation_handled(pipeline, identity, tmp_path):
    upright = Image.open(SAMPLE)
    src = upright.transpose(Image.Transpose.ROTATE_90)  # stored sideways (turned left)
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers turn it right again: upright
    exif[0x010F] = "TestCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "sideways.jpg"
    src.save(path, quality=95, exif=exif, icc_profile=icc)
    res = _protect(pipeline, identity, path, tmp_path / "out")
    assert len(res.faces) >= 1  # found only if the orientation was applied
    out = Image.open(res.output)
    assert out.info.get("icc_profile") == icc
    assert out.getexif().get(0x0112, 1) == 1
    assert out.getexif().get(0x010F) == "TestCam"
    assert out.size == upright.size


def test_cancel_leaves_no_partial_files(pipeline, identity, tmp_path):
    srcs = []
    for k in range(3):
        p = tmp_path / f"in{k}.jpg"
        p.write_bytes(SAMPLE.read_bytes())
        srcs.append(p)
    out = tmp_path / "out"
    token = CancelToken()
    outcomes = []
    for ev in pipeline.protect(srcs, identity, JobSpec(out_dir=out), cancel=token):
        if isinstance(ev, Progress):
            if ev.stage == "done" and ev.done == 1:
                token.cancel()
            continue
        outcomes.append(ev)
    assert len(outcomes) == 1
    files = sorted(p.name for p in out.iterdir())
    assert files == [outcomes[0].output.name]  # one finished photo, no temp or partial file


def test_bad_inputs_become_outcome_errors(pipeline, identity, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    [res] = run_all(pipeline.protect([bad], identity, JobSpec(out_dir=out)))
    assert res.output is None and res.error and "broken.jpg" in res.error
    assert not out.exists() or not any(out.iterdir())


def test_photo_without_faces_writes_nothing(pipeline, identity, tmp_path):
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((200, 300, 3), 120, np.uint8)).save(flat)
    [res] = run_all(pipeline.protect([flat], identity, JobSpec(out_dir=tmp_path / "o")))
    assert res.error is None and res.output is None and res.faces == []


def test_png_output_is_lossless_and_verifies(pipeline, identity, tmp_path):
    res = _protect(pipeline, identity, SAMPLE, tmp_path / "out", fmt="PNG")
    assert res.output.suffix == ".png"
    assert Image.open(io.BytesIO(res.output.read_bytes())).format == "PNG"
    assert _verify(pipeline, res.output)[0].verdict == Verdict.VERIFIED


@pytest.mark.parametrize("strength", [0.5])
def test_strength_knob_changes_psnr(pipeline, identity, tmp_path, strength):
    weak = _protect(pipeline, identity, SAMPLE, tmp_path / "w", strength=strength)
    normal = _protect(pipeline, identity, SAMPLE, tmp_path / "n")
    assert weak.faces[0].psnr > normal.faces[0].psnr + 3


def test_include_restricts_tagged_faces(pipeline, identity, tmp_path):
    from .conftest import DATA

    src = DATA / "two_faces.jpg"
    opts = JobSpec(out_dir=tmp_path / "out", faces={src: [1]})
    [res] = run_all(pipeline.protect([src], identity, opts))
    assert len(res.faces) == 1
    faces = _verify(pipeline, res.output)
    assert sorted(f.verdict for f in faces) == [Verdict.NO_TAG, Verdict.VERIFIED]
    assert faces[1].verdict == Verdict.VERIFIED  # the second face from the left was the one chosen


def test_second_look_reports_weak_candidates_only_when_a_tag_is_read(pipeline, identity,
                                                                      tmp_path):
    """Verify's second look (engine.faces.CANDIDATE_THRESHOLD): with the detector's threshold
    raised above every score, each real face becomes a weak candidate. Tagged ones must still be
    read and flagged; untagged ones must not appear at all (no "no tag" noise from non-faces)."""
    res = _protect(pipeline, identity, SAMPLE, tmp_path / "out")
    normal = _verify(pipeline, res.output)
    assert normal and not any(f.second_look for f in normal)
    pipeline.detector.threshold = 1.01
    second = _verify(pipeline, res.output)
    assert [f.verdict for f in second] == [Verdict.VERIFIED] * len(normal)
    assert [f.box for f in second] == [f.box for f in normal]
    assert all(f.second_look and "second look" in f.reason for f in second)
    assert _verify(pipeline, SAMPLE) == []


@pytest.mark.parametrize("version", sorted(bundled_versions()))
def test_every_bundled_model_version_is_still_read(pipeline, identity, ledger, version):
    """No tag is orphaned by a newer model: a face tagged with any bundled version (as an older
    app release made it) verifies, and the verdict names the version that read it."""
    photo = load_photo(SAMPLE)
    faces = pipeline.detect(photo.rgb)
    model = load_watermarker(version, "cpu")
    payloads = [Payload.create(identity.mac_key, identity.key_id, s, version)
                for s in ledger.allocate_serials(identity.key_id, len(faces))]
    tagged = embed_faces(photo.rgb, faces, payloads, model).tagged
    ledger.add_records([sign_record(identity, serial=p.serial, payload_hex=p.to_hex(),
                                    file_sha256="0" * 64, face_box=f.int_box(),
                                    face_thumb_jpeg=b"\xff\xd8\xff\xd9")
                        for p, f in zip(payloads, faces, strict=True)],
                       original_path="test", output_path="test")
    verdicts = pipeline.verify_rgb(tagged)
    assert [v.verdict for v in verdicts] == [Verdict.VERIFIED] * len(faces)
    assert {v.model_version for v in verdicts} == {version}
    assert [v.payload for v in verdicts] == payloads
