"""Turning a tag read from a face (engine.model.reading) into a verdict the user can trust."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from engine.change.reference import Reference
from engine.change.verdict import ChangeReason, FaceChange, unknown
from engine.identity import KeyId
from engine.payload import DecodeResult, Payload
from engine.store.contacts import Owner
from engine.store.records import TagRecord, verify_record


class Verdict(StrEnum):
    """Per-face verdicts (DESIGN.md); the values are what JSON, reports and the GUI carry."""

    VERIFIED = "verified"
    OWNER_KNOWN = "owner_known"
    INVALID = "invalid"
    UNKNOWN_OWNER = "unknown_owner"
    NO_TAG = "no_tag"


class OwnerDirectory(Protocol):
    """Whose a key ID is, and the MAC key of the user's own identities."""

    def lookup_owner(self, key_id: KeyId) -> Owner | None: ...

    def own_mac_key(self, key_id: KeyId) -> bytes | None: ...


class RecordStore(Protocol):
    """The signed tag records kept for a key ID and serial (own first, then contacts')."""

    def records_for(self, key_id: KeyId, serial: int) -> list[TagRecord]: ...


class VerifyStore(OwnerDirectory, RecordStore, Protocol):
    """All :func:`judge` needs; the SQLite Ledger is the real one, tests use a dict."""

@dataclass
class FaceVerdict:
    """One face of a verified image, with the reason shown to the user next to the verdict."""

    box: list[int]
    verdict: Verdict
    reason: str
    confidence: float = 0.0
    payload: Payload | None = None
    owner_name: str | None = None
    owner_key_id: KeyId | None = None  # the owner's (for a sub-key's tag too); JSON: "3F2A-91C0"
    own: bool = False
    record: TagRecord | None = None
    file_match: bool = False  # the image is byte-identical to the file the record was made for
    model_version: int | None = None
    read_by: str | None = None  # "blind" RS decode or "records" match (engine.model.match)
    second_look: bool = False  # found among the detector's weaker candidates (Pipeline.verify_rgb)
    #: What was done to the face since it was tagged (engine.change); set by Pipeline.verify_rgb.
    change: FaceChange = field(default_factory=lambda: unknown(ChangeReason.NO_RECORD))
    #: The face as tagged that `change` was measured against (kept so the Verify tab can show
    #: the comparison without loading the original photo again); not part of the JSON.
    change_reference: Reference | None = field(default=None, repr=False)

    @property
    def serial(self) -> int | None:
        return self.payload.serial if self.payload else None

    def to_json(self) -> dict:
        return {"box": self.box, "verdict": self.verdict, "serial": self.serial,
                "owner_key_id": None if self.owner_key_id is None else str(self.owner_key_id),
                "owner_name": self.owner_name,
                "confidence": round(float(self.confidence), 4),
                "face_change": self.change.to_json()}


def judge(
    face_box: list[int], res: DecodeResult | None, store: VerifyStore, file_sha256: str | None
) -> FaceVerdict:
    """Verdict rules (DESIGN.md): decode -> owner lookup -> MAC (own keys) -> signed record."""
    if res is None:
        return FaceVerdict(face_box, Verdict.NO_TAG,
                           "no FakeTagger tag could be read from this face")
    p = res.payload
    base = {"box": face_box, "confidence": res.confidence, "payload": p, "read_by": res.method}
    owner = store.lookup_owner(p.key_id)
    if owner is None:
        return FaceVerdict(**base, verdict=Verdict.UNKNOWN_OWNER,
                           owner_key_id=p.key_id,
                           reason="valid tag from a key you do not know: import the owner's card")
    # A certified sub-key's tag is the owner's: the owner's name and key ID (the lookup checked
    # the owner's certificate for it); its records are signed by the sub-key itself.
    who = {"owner_name": owner.name, "owner_key_id": owner.owner_key_id, "own": owner.is_own}
    if owner.is_own:
        mac_key = store.own_mac_key(p.key_id)
        if mac_key is None or not p.mac_ok(mac_key):
            return FaceVerdict(**base, **who, verdict=Verdict.INVALID,
                               reason="claims your key ID but its MAC does not match your key")
    records = [r for r in store.records_for(p.key_id, p.serial)
               if r.owner_public_raw == owner.public_raw and verify_record(r)]
    matching = [r for r in records if r.payload == p.to_hex()]
    if matching:
        rec = matching[-1]
        match = file_sha256 is not None and any(r.file_sha256 == file_sha256 for r in matching)
        whose = "your own tag" if owner.is_own else f"tag of {owner.name}"
        how = (f"; damaged tag matched to a stored record ({res.bit_errors} of 120 bits off)"
               if res.method == "records" else "")
        if owner.parent is not None:
            how += f"; made with certified sub-key {owner.key_id}"
        return FaceVerdict(**base, **who, verdict=Verdict.VERIFIED, record=rec, file_match=match,
                           reason=f"{whose}, serial {p.serial}, signed record checks "
                                  f"(made {rec.created[:10]}){how}")
    if records:
        return FaceVerdict(**base, **who, verdict=Verdict.INVALID,
                           reason="the signed record for this serial holds a different tag")
    return FaceVerdict(**base, **who, verdict=Verdict.OWNER_KNOWN,
                       reason=f"tag of {owner.name}, but no signed record for serial {p.serial}")
