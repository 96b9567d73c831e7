"""Reading and judging the C2PA manifest of any image: who signed it, what it says was done,
whether it validates, whether the signer is trusted here, and whether its soft binding agrees
with the tag FakeTagger reads from the face.

Everything comes from the library's own Reader (no parser of ours); anything odd in a hostile
file becomes a state and a one-line reason, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import c2pa

from engine.credentials.settings import context
from engine.credentials.trust import Anchor
from engine.credentials.write import SOFT_BINDING_ALG, payload_of_value

#: IPTC digital source types that say a generator made (part of) the picture.
AI_SOURCE_TYPES = {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                   "algorithmicMedia", "compositeSynthetic"}
#: Overlap (IoU) at which a soft-binding region and a detected face are the same face.
SAME_FACE_IOU = 0.3


class CredentialState(StrEnum):
    """What a file's Content Credentials amount to (the ``c2pa.state`` of ``verify --json``)."""

    NONE = "none"  # no manifest in the file
    TRUSTED = "trusted"  # validates, and the signer chains to a certificate you trust
    VALID = "valid"  # validates, but the signer is not one you trust
    INVALID = "invalid"  # present but fails validation: changed after signing, or a bad signature
    UNREADABLE = "unreadable"  # damaged or not a manifest the library can parse


class BindingCheck(StrEnum):
    """A soft-binding block against the tag read from the face in its region."""

    AGREES = "agrees"
    DISAGREES = "disagrees"  # flagged: the manifest claims another tag than the face carries
    NOT_READ = "not_read"  # no tag read from a face in that region
    OTHER = "other_alg"  # another watermark's binding (e.g. TrustMark): not ours to check


@dataclass(frozen=True)
class FaceTag:
    """What verify read from one face, as the soft-binding check needs it."""

    box: Sequence[int]  # x1, y1, x2, y2
    payload_hex: str | None


@dataclass
class Binding:
    alg: str
    box: list[int] | None
    value: str  # base64, as in the manifest
    check: BindingCheck
    face: int | None = None  # index of the face it was compared with

    def to_json(self) -> dict:
        return {"alg": self.alg, "box": self.box, "value": self.value, "check": self.check,
                "face": self.face}


@dataclass
class Action:
    action: str
    agent: str | None = None
    source_type: str | None = None  # IPTC digital source type, short form

    def to_json(self) -> dict:
        return {"action": self.action, "agent": self.agent, "source_type": self.source_type}


@dataclass
class Credentials:
    """A file's Content Credentials as shown to the user (report, Verify tab, JSON)."""

    state: CredentialState
    reason: str
    generator: str | None = None
    title: str | None = None
    signer: str | None = None  # the signing certificate's common name
    signer_org: str | None = None
    signed_at: str | None = None
    trusted_by: str | None = None  # the anchor the signer chains to (Anchor.label)
    actions: list[Action] = field(default_factory=list)
    ai_generated: bool = False  # some manifest in the file says a generator made (part of) it
    ingredients: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)
    manifests: int = 0

    @property
    def conflict(self) -> bool:
        """The manifest's soft binding disagrees with the tag decoded from a face."""
        return any(b.check is BindingCheck.DISAGREES for b in self.bindings)

    def to_json(self) -> dict:
        return {"state": self.state, "reason": self.reason, "generator": self.generator,
                "title": self.title, "signer": self.signer, "signer_org": self.signer_org,
                "signed_at": self.signed_at, "trusted_by": self.trusted_by,
                "ai_generated": self.ai_generated,
                "actions": [a.to_json() for a in self.actions],
                "ingredients": self.ingredients, "failures": self.failures,
                "soft_bindings": [b.to_json() for b in self.bindings],
                "binding_conflict": self.conflict, "manifests": self.manifests}


NO_MANIFEST = "no Content Credentials (C2PA manifest) in this file"


def read_credentials(path: Path, anchors: Sequence[Anchor] = (),
                     faces: Sequence[FaceTag] = ()) -> Credentials:
    """The Content Credentials of *path*, judged against *anchors* and the tags read from
    *faces*. Offline; never raises for what is inside the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return Credentials(CredentialState.UNREADABLE, f"cannot read the file ({err.strerror})")
    mime = _mime(data)
    if mime is None:
        return Credentials(CredentialState.NONE, NO_MANIFEST)
    try:
        store, state, results = _read(data, mime, "".join(a.pem for a in anchors))
    except _NoManifest:
        return Credentials(CredentialState.NONE, NO_MANIFEST)
    except _Unreadable as err:
        return Credentials(CredentialState.UNREADABLE,
                           f"Content Credentials are damaged and cannot be read ({err})")
    creds = _describe(store, state, results)
    if creds.state is CredentialState.TRUSTED:
        creds.trusted_by = _which_anchor(data, mime, anchors, creds)
    creds.bindings = _bindings(store, faces)
    creds.reason = _reason(creds)
    return creds


class _NoManifest(Exception):
    pass


class _Unreadable(Exception):
    pass


_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
          (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


def _mime(data: bytes) -> str | None:
    """The container from the bytes, not the name (a renamed file is still read right)."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _read(data: bytes, mime: str, anchors_pem: str) -> tuple[dict, str, dict]:
    """(manifest store JSON, validation state, validation results) from the library's Reader."""
    import io

    try:
        reader = c2pa.Reader(mime, io.BytesIO(data), context=context(anchors_pem))
    except c2pa.C2paError as err:
        if "ManifestNotFound" in type(err).__name__ or "JumbfNotFound" in str(err):
            raise _NoManifest from None
        raise _Unreadable(_first_line(err)) from None
    except Exception as err:  # noqa: BLE001 - a hostile file must not end verify
        raise _Unreadable(f"{type(err).__name__}") from None
    try:
        with reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state() or ""
            results = reader.get_validation_results() or {}
    except Exception as err:  # noqa: BLE001
        raise _Unreadable(_first_line(err)) from None
    if not isinstance(store, dict) or not isinstance(results, dict):
        raise _Unreadable("the manifest store is not a JSON object")
    return store, state, results


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _active(store: dict) -> dict:
    manifests = store.get("manifests")
    label = store.get("active_manifest")
    if isinstance(manifests, dict) and isinstance(manifests.get(label), dict):
        return manifests[label]
    return {}


def _text(value: object) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def _describe(store: dict, state: str, results: dict) -> Credentials:
    active = _active(store)
    manifests = store.get("manifests") if isinstance(store.get("manifests"), dict) else {}
    sig = active.get("signature_info") if isinstance(active.get("signature_info"), dict) else {}
    gen = active.get("claim_generator_info")
    generator = None
    if isinstance(gen, list) and gen and isinstance(gen[0], dict):
        generator = " ".join(t for t in (_text(gen[0].get("name")), _text(gen[0].get("version")))
                             if t) or None
    generator = generator or _text(active.get("claim_generator"))
    failures = _codes(results, "failure")
    untrusted = "signingCredential.untrusted" in failures
    st = {"trusted": CredentialState.TRUSTED, "valid": CredentialState.VALID}.get(
        str(state).lower(), CredentialState.INVALID)
    if st is CredentialState.INVALID and failures == ["signingCredential.untrusted"]:
        st = CredentialState.VALID  # untrusted is not invalid: the signature itself checks
    ingredients = [{"title": _text(i.get("title")), "relationship": _text(i.get("relationship")),
                    "format": _text(i.get("format"))}
                   for i in active.get("ingredients", []) if isinstance(i, dict)][:20]
    ai = any(a.source_type in AI_SOURCE_TYPES
             for m in manifests.values() if isinstance(m, dict) for a in _actions(m))
    return Credentials(
        st, "", generator=generator, title=_text(active.get("title")),
        signer=_text(sig.get("common_name")), signer_org=_text(sig.get("issuer")),
        signed_at=_text(sig.get("time")), actions=_actions(active), ai_generated=ai,
        ingredients=ingredients,
        failures=[f for f in failures if not (untrusted and f == "signingCredential.untrusted")],
        manifests=len(manifests))


def _codes(results: dict, kind: str) -> list[str]:
    active = results.get("activeManifest")
    items = active.get(kind, []) if isinstance(active, dict) else []
    return [str(i.get("code"))[:100] for i in items if isinstance(i, dict)][:20]


def _assertions(manifest: dict, prefix: str) -> list[dict]:
    found = manifest.get("assertions")
    return [a.get("data") for a in found if isinstance(a, dict) and isinstance(a.get("data"), dict)
            and str(a.get("label", "")).startswith(prefix)] if isinstance(found, list) else []


def _actions(manifest: dict) -> list[Action]:
    out = []
    for data in _assertions(manifest, "c2pa.actions"):
        for a in data.get("actions", []) if isinstance(data.get("actions"), list) else []:
            if not isinstance(a, dict) or not _text(a.get("action")):
                continue
            agent = a.get("softwareAgent")
            agent = _text(agent.get("name")) if isinstance(agent, dict) else _text(agent)
            source = _text(a.get("digitalSourceType"))
            out.append(Action(a["action"][:100], agent,
                              source.rstrip("/").rsplit("/", 1)[-1] if source else None))
    return out[:50]


def _which_anchor(data: bytes, mime: str, anchors: Sequence[Anchor],
                  creds: Credentials) -> str | None:
    """The anchor the signer chains to: each is tried alone (ours whose signing serial matches
    first), so a name in the certificate is never taken on trust."""
    serial = None
    try:
        store = _read(data, mime, "")[0]
        sig = _active(store).get("signature_info") or {}
        serial = str(sig.get("cert_serial_number")) if isinstance(sig, dict) else None
    except (_NoManifest, _Unreadable):
        pass
    ordered = sorted(anchors, key=lambda a: a.signing_serial != serial)
    for anchor in ordered:
        try:
            if _read(data, mime, anchor.pem)[1].lower() == "trusted":
                return anchor.label
        except (_NoManifest, _Unreadable):
            return None
    return None


def _box(block: dict) -> list[int] | None:
    try:
        shape = block["scope"]["region"]["region"][0]["shape"]
        x, y = float(shape["origin"]["x"]), float(shape["origin"]["y"])
        w, h = float(shape["width"]), float(shape["height"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not all(abs(v) < 1e6 for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    return [round(x), round(y), round(x + w), round(y + h)]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _bindings(store: dict, faces: Sequence[FaceTag]) -> list[Binding]:
    out = []
    for data in _assertions(_active(store), "c2pa.soft-binding"):
        alg = _text(data.get("alg")) or "?"
        blocks = data.get("blocks") if isinstance(data.get("blocks"), list) else []
        for block in blocks[:100]:
            if not isinstance(block, dict):
                continue
            value = _text(block.get("value")) or ""
            box = _box(block)
            if alg != SOFT_BINDING_ALG:
                out.append(Binding(alg, box, value, BindingCheck.OTHER))
                continue
            out.append(_check(alg, box, value, faces))
    return out


def _check(alg: str, box: list[int] | None, value: str, faces: Sequence[FaceTag]) -> Binding:
    claimed = payload_of_value(value)
    best, best_iou = None, SAME_FACE_IOU
    for k, face in enumerate(faces):
        overlap = _iou(box, face.box) if box else 0.0
        if overlap > best_iou:
            best, best_iou = k, overlap
    if best is None or faces[best].payload_hex is None:
        return Binding(alg, box, value, BindingCheck.NOT_READ, best)
    agrees = claimed is not None and faces[best].payload_hex == claimed
    return Binding(alg, box, value, BindingCheck.AGREES if agrees else BindingCheck.DISAGREES,
                   best)


def _reason(c: Credentials) -> str:
    who = c.signer or "an unnamed signer"
    if c.signer_org:
        who += f" ({c.signer_org})"
    by = f" with {c.generator}" if c.generator else ""
    if c.state is CredentialState.TRUSTED:
        text = f"Content Credentials signed by {who}{by}; trusted: {c.trusted_by or 'an anchor'}"
    elif c.state is CredentialState.VALID:
        text = (f"Content Credentials signed by {who}{by}; the signature checks, but the signer "
                "is not one you trust")
    else:
        what = ", ".join(c.failures[:3]) or "validation failed"
        text = (f"Content Credentials signed by {who}{by} do not validate ({what}): the file was "
                "changed after signing, or the manifest is forged")
    if c.ai_generated:
        text += "; the manifest says a generator (AI) made all or part of this picture"
    disagree = [b for b in c.bindings if b.check is BindingCheck.DISAGREES]
    if disagree:
        text += (f"; WARNING: its FakeTagger soft binding disagrees with the tag read from "
                 f"{len(disagree)} face(s)")
    return text
