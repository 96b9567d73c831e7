"""Verify: the verdict on a tag read from a face (``verdict``) and the reports made of the
verdicts (``report``). The verdict's names are re-exported here."""

from engine.verify.verdict import (
    FaceVerdict,
    OwnerDirectory,
    RecordStore,
    Verdict,
    VerifyStore,
    judge,
)

__all__ = ["FaceVerdict", "OwnerDirectory", "RecordStore", "Verdict", "VerifyStore", "judge"]
