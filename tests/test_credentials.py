"""Content Credentials (issue 21): the identity's chain, manifests written by protect and read
back with the c2pa library's own Reader, manifests of other signers, trust, damaged files.

Everything real: the c2pa library, MTCNN and the bundled model, the SQLite ledger, files on disk.
The "other signer" is an independently made ES256 (ECDSA P-256) chain, signed by the library's
own PEM-key signer, not by FakeTagger's code.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from engine.cli.main import main
from engine.credentials.chain import make_chain, parse_chain
from engine.credentials.read import BindingCheck, CredentialState, FaceTag, read_credentials
from engine.credentials.trust import Anchor
from engine.credentials.write import BoundFace, binding_value, payload_of_value, sign_into
from engine.errors import CardError, CredentialsError
from engine.identity import UnlockedIdentity
from engine.photos import sha256_file
from engine.pipeline import run_all
from engine.protect.spec import JobSpec
from engine.store.cards import parse_card

from .conftest import SAMPLE

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def library_read(path: Path, anchors: str = "") -> tuple[dict, str, list[str]]:
    """(active manifest, validation state, failure codes) straight from c2pa's Reader."""
    settings: dict = {"verify": {"remote_manifest_fetch": False, "verify_trust": True}}
    if anchors:
        settings["trust"] = {"trust_anchors": anchors}
    with open(path, "rb") as f:
        reader = c2pa.Reader("image/jpeg" if path.suffix == ".jpg" else "image/png", f,
                             context=c2pa.Context.from_dict(settings))
    with reader:
        store = json.loads(reader.json())
        failures = [r["code"] for r in
                    reader.get_validation_results()["activeManifest"].get("failure", [])]
        return store["manifests"][store["active_manifest"]], reader.get_validation_state(), \
            failures


def assertion(manifest: dict, label: str) -> dict:
    [found] = [a["data"] for a in manifest["assertions"] if a["label"].startswith(label)]
    return found


# --- the chain --------------------------------------------------------------------------------


def test_chain_is_deterministic_bound_to_the_key_and_checked():
    alice = UnlockedIdentity.generate("Alice")
    chain = make_chain(alice)
    assert make_chain(alice).pem == chain.pem  # the same bytes each time: nothing to store
    assert parse_chain(chain.pem, alice.public_raw).serial_text == chain.serial_text
    mallory = UnlockedIdentity.generate("Alice")
    with pytest.raises(CardError, match="not issued by this card's key"):
        parse_chain(chain.pem, mallory.public_raw)
    other = make_chain(mallory)
    spliced = other.pem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n" \
        + chain.ca_pem  # Mallory's signing certificate under Alice's CA
    with pytest.raises(CardError, match="bad signature"):
        parse_chain(spliced, alice.public_raw)
    with pytest.raises(CardError, match="1 certificate"):
        parse_chain(chain.ca_pem, alice.public_raw)
    with pytest.raises(CardError):
        parse_chain("not pem", alice.public_raw)
    long_name = UnlockedIdentity.generate("N" * 100)  # CN is capped at 64 characters
    assert parse_chain(make_chain(long_name).pem, long_name.public_raw)


def test_soft_binding_value_round_trips_the_payload_word():
    for word in ("000000000000000", "0123456789abcde", "fffffffffffffff"):
        assert payload_of_value(binding_value(word)) == word
    assert payload_of_value("not base64!") is None
    assert payload_of_value("AAEC") is None  # 3 bytes: not a payload


# --- protect writes, the library reads ---------------------------------------------------------


@pytest.fixture
def tagged(pipeline, identity, tmp_path):
    """The sample tagged with Content Credentials, as JPEG and as PNG."""
    outs = {}
    for fmt in ("keep", "png"):
        opts = JobSpec(out_dir=tmp_path / fmt, fmt=fmt, c2pa=True)
        [outcome] = run_all(pipeline.protect([SAMPLE], identity, opts))
        assert outcome.output is not None and outcome.c2pa, outcome.error
        outs[fmt] = outcome
    return outs


def test_protect_writes_a_manifest_the_library_validates(tagged, pipeline, identity):
    chain, made = pipeline.ledger.credentials.chain_for(identity)
    assert not made  # made by the first protect, stored since
    for outcome in tagged.values():
        out = outcome.output
        manifest, state, failures = library_read(out)
        assert state == "Valid" and failures == ["signingCredential.untrusted"]  # apart from trust
        actions = [a["action"] for a in assertion(manifest, "c2pa.actions")["actions"]]
        assert actions[:2] == ["c2pa.opened", "c2pa.watermarked"]
        [ingredient] = manifest["ingredients"]
        assert ingredient["relationship"] == "parentOf" and ingredient["title"] == SAMPLE.name
        blocks = assertion(manifest, "c2pa.soft-binding")["blocks"]
        assert [payload_of_value(b["value"]) for b in blocks] == \
            [f.payload_hex for f in outcome.faces]
        assert manifest["signature_info"]["common_name"] == "Alice"
        # the record is signed over the final file, manifest included
        [face] = outcome.faces
        [record] = pipeline.ledger.records_for(identity.key_id, face.serial)
        assert record.file_sha256 == sha256_file(out)
        # trusted once the identity's own CA is the anchor
        assert library_read(out, chain.ca_pem)[1] == "Trusted"
    assert SAMPLE.read_bytes()[:2] == b"\xff\xd8"  # the original is untouched (it is an input)


def test_verify_reports_own_manifest_trusted_and_agreeing(tagged, pipeline):
    out = tagged["keep"].output
    [outcome] = run_all(pipeline.verify([out]))
    assert outcome.faces[0].verdict == "verified" and outcome.faces[0].file_match
    creds = outcome.c2pa
    assert creds.state is CredentialState.TRUSTED
    assert creds.trusted_by.startswith("your identity Alice")
    assert [b.check for b in creds.bindings] == [BindingCheck.AGREES]
    doc = outcome.to_json()["c2pa"]
    assert doc["state"] == "trusted" and doc["binding_conflict"] is False
    assert doc["actions"][1]["action"] == "c2pa.watermarked" and not doc["ai_generated"]


def test_default_protect_writes_no_manifest(pipeline, identity, tmp_path):
    [outcome] = run_all(pipeline.protect([SAMPLE], identity, JobSpec(out_dir=tmp_path)))
    assert not outcome.c2pa
    assert read_credentials(outcome.output).state is CredentialState.NONE


def test_a_binding_that_disagrees_with_the_face_is_flagged(tagged, identity, tmp_path):
    """A manifest claiming another tag than the face carries (a manifest copied onto another
    tagged photo, or a forged one) is flagged, even though it validates."""
    out = tagged["keep"]
    face = out.faces[0]
    copy = tmp_path / "copy.jpg"
    shutil.copy(SAMPLE, copy)
    wrong = f"{int(face.payload_hex, 16) ^ 0xFF:015x}"
    sign_into(copy, "jpeg", SAMPLE, identity, make_chain(identity),
              [BoundFace(face.box, wrong)], 2, "copy.jpg")
    creds = read_credentials(copy, [], [FaceTag(face.box, face.payload_hex)])
    assert creds.state is CredentialState.VALID
    assert creds.conflict and "disagrees" in creds.reason
    assert read_credentials(copy, [], [FaceTag(face.box, None)]).bindings[0].check \
        is BindingCheck.NOT_READ


# --- manifests from elsewhere --------------------------------------------------------------------


def es256_chain(tmp_path: Path) -> tuple[str, str, str]:
    """An independently made ES256 chain (root CA + signer), as a generator or newsroom has:
    (chain PEM, private key PEM, CA PEM)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Generator Root CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example AI Lab")])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example ImageGen"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example AI Lab")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
          .sign(ca_key, hashes.SHA256()))
    ee = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=90))
          .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False,
                                       False), critical=True)
          .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                         False)
          .sign(ca_key, hashes.SHA256()))

    def pem(c):
        return c.public_bytes(serialization.Encoding.PEM).decode()

    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem(ee) + pem(ca), key_pem, pem(ca)


def generated_image(tmp_path: Path) -> tuple[Path, str]:
    """A JPEG 'made by a generator', with its manifest; returns (path, CA PEM)."""
    chain, key_pem, ca_pem = es256_chain(tmp_path)
    plain = tmp_path / "plain.jpg"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(plain, quality=90)
    manifest = {"claim_generator_info": [{"name": "Example ImageGen", "version": "4.2"}],
                "title": "generated.jpg",
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": AI}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain.encode(),
                                                       key_pem.encode(), None))
    out = tmp_path / "generated.jpg"
    with open(plain, "rb") as src, open(out, "w+b") as dst:
        c2pa.Builder(manifest).sign(signer, "image/jpeg", src, dst)
    return out, ca_pem


def test_verify_reads_a_manifest_signed_elsewhere_and_trust_is_the_users_choice(
        pipeline, tmp_path):
    image, ca_pem = generated_image(tmp_path)
    [outcome] = run_all(pipeline.verify([image]))
    creds = outcome.c2pa
    assert creds.state is CredentialState.VALID and creds.trusted_by is None
    assert creds.signer == "Example ImageGen" and creds.signer_org == "Example AI Lab"
    assert creds.generator == "Example ImageGen 4.2"
    assert creds.ai_generated and "generator (AI)" in creds.reason
    assert [(a.action, a.source_type) for a in creds.actions] == \
        [("c2pa.created", "trainedAlgorithmicMedia")]
    pipeline.ledger.credentials.add_anchor(ca_pem.encode(), "Example AI Lab root")
    [outcome] = run_all(pipeline.verify([image]))
    assert outcome.c2pa.state is CredentialState.TRUSTED
    assert outcome.c2pa.trusted_by == "added certificate Example AI Lab root"
    [added] = pipeline.ledger.credentials.added_anchors()
    pipeline.ledger.credentials.remove_anchor(added.fingerprint[:8])
    assert run_all(pipeline.verify([image]))[0].c2pa.state is CredentialState.VALID


def test_only_a_ca_certificate_can_be_trusted(ledger, tmp_path):
    chain, _, _ = es256_chain(tmp_path)
    signer_only = chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    with pytest.raises(CredentialsError, match="not a CA certificate"):
        ledger.credentials.add_anchor(signer_only.encode())
    with pytest.raises(CredentialsError, match="2 certificates"):
        ledger.credentials.add_anchor(chain.encode())
    with pytest.raises(CredentialsError, match="not a PEM or DER"):
        ledger.credentials.add_anchor(b"hello")


# --- damaged and hostile files --------------------------------------------------------------------


def test_damaged_and_hostile_manifests_give_a_state_and_one_line(tmp_path):
    image, _ = generated_image(tmp_path)
    data = image.read_bytes()
    start = data.index(b"jumb")  # inside the APP11 segments that carry the manifest
    cases = {
        "flipped": data[:start + 200] + bytes(b ^ 0x5A for b in data[start + 200:start + 260])
        + data[start + 260:],
        "pixels changed": data[:-400] + bytes(b ^ 0x01 for b in data[-400:-300]) + data[-300:],
        "truncated": data[:start + 100],
        "garbage app11": data[:2] + b"\xff\xeb\x00\x20JP" + bytes(range(28)) + data[2:],
        "not an image": b"GIF89a" + bytes(100),
    }
    for name, blob in cases.items():
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(blob)
        creds = read_credentials(path)
        assert creds.state in {CredentialState.INVALID, CredentialState.UNREADABLE,
                               CredentialState.NONE}, name
        assert "\n" not in creds.reason and len(creds.reason) < 400, name
    assert read_credentials(tmp_path / "pixels changed.jpg").state is CredentialState.INVALID
    assert read_credentials(tmp_path / "missing.jpg").state is CredentialState.UNREADABLE


# --- cards and the command line ----------------------------------------------------------------


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_c2pa_card_carries_the_chain_and_a_contact_trusts_it(home, capsys, tmp_path,
                                                                   monkeypatch):
    assert run(capsys, "identity", "create", "--name", "Alice")[0] == 0
    code, out, err = run(capsys, "protect", str(SAMPLE), "--out", str(tmp_path / "t"), "--c2pa",
                         "--json", "--device", "cpu")
    assert code == 0 and "your name (Alice)" in err and "export your card again" in err
    [entry] = json.loads(out)["outputs"]
    assert entry["c2pa"] is True
    card = tmp_path / "alice.card"
    assert run(capsys, "card", "export", str(card))[0] == 0
    doc = json.loads(card.read_text())
    assert len(doc["c2pa_chains"]) == 1 and parse_card(card.read_bytes()).chains
    monkeypatch.setenv("FAKETAGGER_HOME", str(tmp_path / "bob"))
    code, out, _ = run(capsys, "verify", entry["output"], "--json")
    c2 = json.loads(out)["results"][0]["c2pa"]
    assert code == 0 and c2["state"] == "valid" and c2["soft_bindings"][0]["check"] == "agrees"
    assert run(capsys, "card", "import", str(card))[0] == 0
    code, out, _ = run(capsys, "verify", entry["output"])
    assert "Content Credentials: TRUSTED" in out and "trusted: contact Alice" in out
    code, out, _ = run(capsys, "trust", "list")
    assert "contact Alice" in out
    # a card whose chain is not the card's key is refused whole
    doc["c2pa_chains"] = {doc["key_id"]: make_chain(UnlockedIdentity.generate("Alice")).pem}
    bad = tmp_path / "bad.card"
    bad.write_text(json.dumps(doc))
    code, _, err = run(capsys, "card", "import", str(bad))
    assert code == 1 and "not issued by this card's key" in err and err.count("\n") == 1


def test_cli_trust_add_refuses_a_non_ca_with_one_line(home, capsys, tmp_path):
    chain, _, ca = es256_chain(tmp_path)
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    code, _, err = run(capsys, "trust", "add", str(leaf))
    assert code == 1 and err.startswith("faketagger: error:") and err.count("\n") == 1
    root = tmp_path / "root.pem"
    root.write_text(ca)
    code, out, _ = run(capsys, "trust", "add", str(root), "--label", "Example AI Lab")
    assert code == 0 and "Example AI Lab" in out
    assert "Example AI Lab" in run(capsys, "trust", "list")[1]


def test_batch_job_keeps_the_c2pa_choice_for_resume(ledger, identity, tmp_path):
    from dataclasses import replace

    from engine.protect.spec import JobSpec
    from engine.run.jobs import create_job, mirror_plan

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(SAMPLE, src / "a.jpg")
    job = create_job(ledger, identity.key_id, mirror_plan([src], tmp_path / "out"),
                     tmp_path / "out", JobSpec(c2pa=True))
    assert JobSpec.from_json(ledger.batch_job(job).options).c2pa is True
    assert replace(JobSpec.from_json(ledger.batch_job(job).options), out_dir=tmp_path).c2pa


def test_settings_default_off(home):
    from engine.settings import AppSettings

    assert AppSettings().c2pa is False
    assert AppSettings(c2pa="yes").normalized().c2pa is False  # only a real True turns it on


def test_reader_mime_from_bytes_not_name(tagged, tmp_path):
    renamed = tmp_path / "renamed.bin"
    shutil.copy(tagged["png"].output, renamed)
    assert read_credentials(renamed).state is CredentialState.VALID


def test_chain_vector_is_frozen():
    """docs/FORMAT.md, "Content Credentials chain": the RFC 8032 test key's chain."""
    import hashlib

    from engine.credentials.chain import signing_key

    from .test_cards_records import fixed_identity

    alice = fixed_identity()
    chain = make_chain(alice)
    assert signing_key(alice).public_key().public_bytes_raw().hex() == \
        "2321688f326feaaa4429cefd42e4a709b780f84f9946833a7069c3bfcd790ee8"
    assert chain.serial_text == "17081308629238079432694139332337805959"
    assert hashlib.sha256(chain.pem.encode()).hexdigest() == \
        "b608f0daa064dfa37a08f3a8b8064098ffc3a7d7904eb028938800f4c1d49089"
    assert binding_value("121fe31df0007bd") == "ASH+Md8AB70="


@pytest.mark.parametrize(("fmt", "ext"), [("jpeg", "jpg"), ("png", "png"), ("webp", "webp"),
                                          ("tiff", "tif")])
def test_every_output_format_carries_a_manifest(tmp_path, fmt, ext):
    """Every format protect writes (engine.photos.OutputFormat) takes a manifest the Reader
    validates, and the image still opens."""
    alice = UnlockedIdentity.generate("Alice")
    chain = make_chain(alice)
    out = tmp_path / f"copy.{ext}"
    Image.open(SAMPLE).save(out)
    sign_into(out, fmt, SAMPLE, alice, chain, [BoundFace([10, 10, 60, 70], "0123456789abcde")],
              2, out.name)
    creds = read_credentials(out, [Anchor(chain.ca_pem, "me", chain.serial_text)])
    assert creds.state is CredentialState.TRUSTED and creds.trusted_by == "me"
    assert Image.open(out).size == Image.open(SAMPLE).size
