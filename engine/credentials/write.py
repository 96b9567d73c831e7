"""Writing a C2PA manifest into a tagged copy: opened + watermarked, the original as ingredient,
one soft binding per tagged face.

Called on the finished temp file before it is hashed (engine.protect.sequence.commit), so the
signed tag record's ``file_sha256`` is the hash of the final file, manifest included.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path

import c2pa

from engine import __version__
from engine.atomic import atomic_writer
from engine.credentials.chain import Chain, signing_key
from engine.credentials.settings import context
from engine.errors import CredentialsError
from engine.identity import UnlockedIdentity

#: Our soft-binding algorithm name. Not (yet) in the C2PA soft-binding algorithm list: readers that
#: do not know it skip it, FakeTagger's verify compares it with the tag it decodes.
SOFT_BINDING_ALG = "org.faketagger.face-tag"
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "tiff": "image/tiff"}


@dataclass(frozen=True)
class BoundFace:
    """A tagged face as the manifest states it: the MTCNN box (x1, y1, x2, y2) and the payload."""

    box: list[int]
    payload_hex: str


def binding_value(payload_hex: str) -> str:
    """A payload (the 60-bit data word, 15 hex digits) as a soft-binding value: the word as
    8 big-endian bytes, base64."""
    return base64.b64encode(int(payload_hex, 16).to_bytes(8, "big")).decode("ascii")


def payload_of_value(value: str) -> str | None:
    """Inverse of :func:`binding_value`; None when *value* is not 8 bytes of base64."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return f"{int.from_bytes(raw, 'big'):015x}" if len(raw) == 8 else None


def soft_binding(faces: list[BoundFace], model_version: int) -> dict:
    """The ``c2pa.soft-binding`` assertion: per face a pixel rectangle and the payload bytes
    (base64), which a verifier compares with the tag it reads from that face."""
    blocks = [{"scope": {"region": {"region": [{"type": "spatial", "shape": {
        "type": "rectangle", "unit": "pixel", "origin": {"x": f.box[0], "y": f.box[1]},
        "width": f.box[2] - f.box[0], "height": f.box[3] - f.box[1]}}]}},
        "value": binding_value(f.payload_hex)}
        for f in faces]
    return {"alg": SOFT_BINDING_ALG, "alg_params": f"model={model_version}",
            "name": "FakeTagger owner tag, one block per face", "pad": [0], "blocks": blocks}


def manifest_definition(title: str, faces: list[BoundFace], model_version: int) -> dict:
    return {
        "claim_generator_info": [{"name": "FakeTagger", "version": __version__}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [
                {"action": "c2pa.opened", "parameters": {"ingredientIds": ["original"]}},
                {"action": "c2pa.watermarked",
                 "softwareAgent": {"name": "FakeTagger", "version": __version__},
                 "parameters": {"description": f"invisible owner tag in {len(faces)} face(s)"}},
            ]}},
            {"label": "c2pa.soft-binding", "data": soft_binding(faces, model_version)},
        ],
    }


def sign_into(tmp: Path, fmt: str, original: Path, identity: UnlockedIdentity, chain: Chain,
              faces: list[BoundFace], model_version: int, title: str) -> None:
    """Replace the finished temp file *tmp* by a copy carrying a signed manifest. *original* is
    the untouched source photo (the ``parentOf`` ingredient; its own manifest, if any, travels
    along as the ingredient's). CredentialsError with one line when the library refuses."""
    mime = MIME.get(_kind(fmt))
    if mime is None:
        raise CredentialsError(f"Content Credentials cannot be written into {fmt} files")
    key = signing_key(identity)
    ctx = context()
    signer = c2pa.Signer.from_callback(key.sign, c2pa.C2paSigningAlg.ED25519, chain.pem, None)
    try:
        builder = c2pa.Builder(manifest_definition(title, faces, model_version), context=ctx)
        with open(original, "rb") as src:
            builder.add_ingredient(json.dumps({"title": original.name, "relationship": "parentOf",
                                               "label": "original"}),
                                   MIME.get(_kind(original.suffix), mime), src)
        # The signed copy is a temp of the temp (engine.atomic): fsynced, then it replaces *tmp*;
        # *src* is closed before that, as Windows cannot replace an open file.
        with atomic_writer(tmp, overwrite=True) as dst, open(tmp, "rb") as src:
            builder.sign(signer, mime, src, dst)
    except c2pa.C2paError as err:
        raise CredentialsError(f"{original.name}: Content Credentials could not be written "
                               f"({_first_line(err)})") from None
    except OSError as err:
        raise CredentialsError(f"{original.name}: Content Credentials could not be written "
                               f"({err.strerror or err})") from None


def _kind(name: str) -> str:
    """"JPEG", "jpg", ".tif" ... as a key of MIME."""
    ext = name.lower().lstrip(".")
    return {"jpg": "jpeg", "tif": "tiff"}.get(ext, ext)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
