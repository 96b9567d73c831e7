"""Face finding and the crop geometry shared by embedding, decoding, training and the bench.

Every stage that touches a face (protect, verify, the training-data cache, the bench) must cut the
same square around it; otherwise the decoder sees a different framing than it was trained on.
That geometry lives here and nowhere else.
"""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.limits import DEFAULT_MIN_FACE, DEFAULT_THRESHOLD

#: Side of the square crop relative to the larger side of the MTCNN box. The margin keeps hair,
#: ears and jaw line in the tagged area, so that a swap of the inner face leaves some tag behind.
CROP_SCALE = 1.5
#: Fraction of the crop side over which the residual fades out, so no seam is visible.
FEATHER = 0.12
#: Verify's second look, and MTCNN's last-stage cut-off (its default is 0.7). Re-synthesised or
#: heavily edited faces often score 0.4-0.9 (measured on the bench's resynth attacks over the 14
#: eval faces: 5 of 14 reached 0.92, 11 reached 0.7, 13 reached 0.5), so verify also reads these
#: candidates, but reports one only when a tag is read from it (FORMAT.md, "Second look"), which
#: keeps non-faces out of the results. Lowering the last stage's cut-off only adds weaker boxes:
#: MTCNN's final suppression keeps the stronger box of an overlapping pair, so the faces at or
#: above DEFAULT_THRESHOLD are the same as with MTCNN's defaults.
CANDIDATE_THRESHOLD = 0.5
#: MTCNN's three stage cut-offs (P-Net, R-Net, O-Net): its defaults but the last.
MTCNN_STAGES = (0.6, 0.7, CANDIDATE_THRESHOLD)
#: Photos with a longer side are searched on a downscaled copy (boxes are mapped back): MTCNN's
#: cost grows with the pixel count (8 s for a 6000 px photo on 2 cores), while faces too small
#: to find after that downscale (under ~1.5% of the long side) are too small to tag well anyway.
DETECT_MAX_SIDE = 2048


@dataclass(frozen=True)
class Face:
    """One detected face: MTCNN box (x1, y1, x2, y2) in image pixels, probability, 5 landmarks."""

    box: tuple[float, float, float, float]
    prob: float
    landmarks: np.ndarray  # (5, 2) float: eyes, nose, mouth corners

    @property
    def size(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, y2 - y1)

    def int_box(self) -> list[int]:
        return [int(round(v)) for v in self.box]


def crop_square(
    box: tuple[float, float, float, float], width: int, height: int, scale: float = CROP_SCALE
) -> tuple[int, int, int]:
    """Square (x, y, side) around a face box, shifted (not cut) to stay inside the image.

    Used where a crop must lie inside the image (the training-data cache, thumbnails, and the
    tag of a face whose face square the photo's edge cuts: tag_squares).
    """
    side = max(8, min(face_square(box, scale)[2], width, height))
    x1, y1, x2, y2 = box
    x = min(max(int(round((x1 + x2) / 2.0 - side / 2.0)), 0), width - side)
    y = min(max(int(round((y1 + y2) / 2.0 - side / 2.0)), 0), height - side)
    return x, y, side


def face_square(
    box: tuple[float, float, float, float], scale: float = CROP_SCALE
) -> tuple[int, int, int]:
    """Square (x, y, side) centred on the face box; it may reach past the image border."""
    x1, y1, x2, y2 = box
    side = max(8, int(round(max(x2 - x1, y2 - y1) * scale)))
    x = int(round((x1 + x2) / 2.0 - side / 2.0))
    y = int(round((y1 + y2) / 2.0 - side / 2.0))
    return x, y, side


def crowd_scale(
    box: tuple[float, float, float, float], others: Sequence[tuple[float, float, float, float]],
    scale: float, floor: float = CROP_SCALE,
) -> float:
    """The square scale for a face among neighbours: *scale*, or less where a neighbour's square
    at the same scale would overlap this one, down to *floor*.

    Why: two overlapping tags add, and each decoder then reads its neighbour's tag as noise. At
    model v3's 2.0 squares the faces of a group photo overlap; on the independent photos
    (docs/INDEPENDENT.md) protect boosted 7 of 20 faces, 5 still failed the read-back, and the
    worst face fell to 36.5 dB, while each face tagged alone read cleanly at 40.6 dB or more.
    Squares that just touch read them all (assets/model/MODEL_CARD.md, "Crowded faces"). Two
    faces shrink alike, so the rule needs only the boxes, which verify finds again. At the
    floor (the 1.5 square of models 1 and 2) nothing changes for those models."""
    if scale <= floor:
        return scale
    x1, y1, x2, y2 = box
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)
    fit = scale
    for ox1, oy1, ox2, oy2 in others:
        gap = max(abs((ox1 + ox2) / 2 - cx), abs((oy1 + oy2) / 2 - cy))
        fit = min(fit, 2 * gap / (side + max(ox2 - ox1, oy2 - oy1)))
    return max(floor, fit)


def neighbour_boxes(faces: Sequence[Face], face: Face) -> tuple[tuple[float, ...], ...]:
    """The boxes of *faces* other than *face*: its neighbours for crowd_scale."""
    return tuple(f.box for f in faces if f is not face)


def tag_squares(
    box: tuple[float, float, float, float], width: int, height: int, scale: float = CROP_SCALE,
    others: Sequence[tuple[float, float, float, float]] = (),
) -> list[tuple[int, int, int]]:
    """Where a face's tag may sit in a *width* x *height* photo, in the order protect tries them
    and verify reads them.

    Among *others* (the boxes of the photo's other faces) the squares at the crowd scale come
    first (crowd_scale), then those at *scale*: for a face whose neighbours verify does not find
    as protect did.

    The face square alone where it lies inside the photo. Where the photo's edge cuts it, the
    cut part of a tag is never written, and a close-up keeps too little (a face box as large as
    the photo keeps 7-13% of a 2.5x square, 20-35% of a 1.5x one). So the fitted square
    (crop_square: shifted, and shrunk to the photo's short side, to lie inside) comes first
    (docs/BENCHMARKS.md, "Close-ups: the tag inside the photo"). The face square stays second:
    tags written before the fitted square, and faces whose fitted tag does not read back. Both
    are recomputed from the re-detected box and the suspect's size, which a rescaled copy
    keeps; a crop that moves the edge moves a fitted square (the jittered crops absorb a few
    percent).
    """
    squares: list[tuple[int, int, int]] = []
    for s in dict.fromkeys((crowd_scale(box, others, scale), scale)):
        square = face_square(box, s)
        x, y, side = square
        if not (x >= 0 and y >= 0 and x + side <= width and y + side <= height):
            squares.append(crop_square(box, width, height, s))
        squares.append(square)
    return list(dict.fromkeys(squares))


def extract_square(rgb: np.ndarray, square: tuple[int, int, int]) -> np.ndarray:
    """The square's pixels; parts outside the image repeat the edge pixels."""
    x, y, side = square
    h, w = rgb.shape[:2]
    if x >= 0 and y >= 0 and x + side <= w and y + side <= h:
        return rgb[y:y + side, x:x + side]
    ys = np.clip(np.arange(y, y + side), 0, h - 1)
    xs = np.clip(np.arange(x, x + side), 0, w - 1)
    return rgb[ys[:, None], xs[None, :]]


def square_region(square: tuple[int, int, int], shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The part of a tag square (x, y, side) inside an image of *shape*, as index slices: where
    a tag is written, and where its PSNR counts."""
    x, y, s = square
    h, w = shape[:2]
    return slice(max(y, 0), min(y + s, h)), slice(max(x, 0), min(x + s, w))


def inside_mask(square: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """bool (side, side): where the square lies inside an image of *shape* (the only part of
    a tag that paste_residual writes)."""
    x, y, side = square
    h, w = shape[:2]
    out = np.zeros((side, side), bool)
    out[max(0, -y):max(0, min(side, h - y)), max(0, -x):max(0, min(side, w - x))] = True
    return out


def feather_mask(side: int, feather: float = FEATHER) -> np.ndarray:
    """(side, side) float32 mask: 1 inside, raised-cosine fade to 0 at the border."""
    ramp = max(1, int(round(side * feather)))
    t = np.ones(side, dtype=np.float32)
    edge = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp + 2, dtype=np.float32)[1:-1])
    t[:ramp] = edge
    t[side - ramp :] = edge[::-1]
    return np.outer(t, t)


def paste_residual(rgb: np.ndarray, residual: np.ndarray, square: tuple[int, int, int]) -> None:
    """Add a residual (side, side, 3) float, in 0..255 units, into rgb in place, feathered.

    Only the part of the square inside the image is written.
    """
    x, y, side = square
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if x0 >= x1 or y0 >= y1:
        return
    weighted = residual * feather_mask(side)[..., None]
    region = rgb[y0:y1, x0:x1].astype(np.float32)
    region += weighted[y0 - y:y1 - y, x0 - x:x1 - x]
    rgb[y0:y1, x0:x1] = np.clip(np.rint(region), 0, 255).astype(np.uint8)


_DETECT_LOCK = threading.Lock()  # shared: detectors share MTCNN instances

#: Rows of the IoU matrix computed at once by batched_nms (512 x n floats per temporary).
_NMS_BLOCK = 512


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """Greedy non-maximum suppression within each group, in plain torch and NumPy.

    The contract of torchvision.ops.batched_nms, which MTCNN calls: boxes (N, 4) as x1, y1, x2, y2,
    scores (N,), group ids idxs (N,); a box is dropped when its IoU with a kept box of the same
    group and a higher score is above iou_threshold; returns the kept indices (int64) by decreasing
    score (equal scores: lower index first). Ours so that the desktop build needs no torchvision
    (tests/test_nms.py checks it against torchvision's). For MTCNN's few thousand candidates the
    IoU matrix is computed in row blocks of the upper triangle; only rows that overlap anything
    take part in the greedy pass.
    """
    import torch

    n = int(boxes.shape[0])
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes.detach()[order].cpu()
    group = idxs.detach()[order].cpu()
    x1, y1, x2, y2 = b.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    removed = np.zeros(n, dtype=bool)
    for start in range(0, n, _NMS_BLOCK):
        rows, cols = slice(start, min(n, start + _NMS_BLOCK)), slice(start, n)
        w = torch.minimum(x2[rows, None], x2[None, cols]) - torch.maximum(x1[rows, None],
                                                                          x1[None, cols])
        h = torch.minimum(y2[rows, None], y2[None, cols]) - torch.maximum(y1[rows, None],
                                                                          y1[None, cols])
        inter = w.clamp_(min=0) * h.clamp_(min=0)
        iou = inter / (areas[rows, None] + areas[None, cols] - inter)
        over = (iou > iou_threshold) & (group[rows, None] == group[None, cols])
        over = torch.triu(over, diagonal=1).numpy()  # only later (lower-score) boxes
        for k in np.flatnonzero(over.any(axis=1)):
            if not removed[start + k]:  # box start+k is kept: it removes what it overlaps
                removed[start:] |= over[k]
    keep = torch.from_numpy(np.flatnonzero(~removed))
    return order[keep.to(order.device)]


def _to_tensor(pic):
    """torchvision.transforms.functional.to_tensor for an (H, W, C) array: facenet-pytorch's
    extract_face uses it (FakeTagger never calls that, but the stand-in keeps it working)."""
    import torch

    arr = np.asarray(pic)
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return t.float().div(255) if arr.dtype == np.uint8 else t


@contextmanager
def _torchvision_stand_in():
    """facenet-pytorch's detect_face module imports two torchvision names at load time:
    ops.boxes.batched_nms and transforms.functional (for to_tensor). While facenet-pytorch loads,
    a stand-in package with just those two serves the import, then leaves sys.modules again, so
    neither the desktop build (which leaves torchvision out: it does not load beside the CPU
    torch) nor a checkout pays for importing torchvision, and both detect with the same code."""
    ops, boxes = types.ModuleType("torchvision.ops"), types.ModuleType("torchvision.ops.boxes")
    tf, fn = (types.ModuleType("torchvision.transforms"),
              types.ModuleType("torchvision.transforms.functional"))
    boxes.batched_nms, fn.to_tensor = batched_nms, _to_tensor
    tv = types.ModuleType("torchvision", "FakeTagger's stand-in (engine.faces)")
    tv.ops, ops.boxes, tv.transforms, tf.functional = ops, boxes, tf, fn
    names = {"torchvision": tv, "torchvision.ops": ops, "torchvision.ops.boxes": boxes,
             "torchvision.transforms": tf, "torchvision.transforms.functional": fn}
    sys.modules.update(names)
    try:
        yield
    finally:
        for name, module in names.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _mtcnn_class():
    """facenet-pytorch's MTCNN, on our batched_nms (picks identical to torchvision's)."""
    if "facenet_pytorch" not in sys.modules and "torchvision" not in sys.modules:
        with _torchvision_stand_in():
            import facenet_pytorch  # noqa: F401
    from facenet_pytorch import MTCNN
    from facenet_pytorch.models.utils import detect_face

    # Also where torchvision was loaded first (training, the bench): one NMS everywhere.
    detect_face.batched_nms = batched_nms
    return MTCNN


@lru_cache(maxsize=4)
def _mtcnn(min_face_size: int, device: str):
    """One MTCNN per (search size, device), shared by every detector in the process."""
    return _mtcnn_class()(keep_all=True, min_face_size=min_face_size, device=device,
                          post_process=False, thresholds=list(MTCNN_STAGES))


class FaceDetector:
    """MTCNN from facenet-pytorch; its weights ship inside the wheel, so nothing is downloaded.

    Built lazily and guarded by a lock: the GUI loads it on a worker thread while the CLI loads it
    on first use, and MTCNN itself is not safe to run from two threads at once.
    """

    def __init__(
        self,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        min_face: int = DEFAULT_MIN_FACE,
        device: str = "cpu",
    ) -> None:
        self.threshold = threshold
        self.min_face = min_face
        self.device = device
        self._lock = _DETECT_LOCK

    def _search_size(self, scale: float) -> int:
        # MTCNN's own min_face_size is a search limit; we search a bit below our minimum so that
        # faces just under it are still reported (as too small) instead of vanishing.
        return max(12, int(self.min_face * 0.6 * scale))

    def _load(self, scale: float):
        return _mtcnn(self._search_size(scale), self.device)

    def detect(self, rgb: np.ndarray, *, include_small: bool = False,
               min_prob: float | None = None) -> list[Face]:
        """Faces sorted left to right; those below min_face only when include_small is set,
        those under the threshold only down to min_prob when that is given (verify's second
        look)."""
        floor = self.threshold if min_prob is None else min(min_prob, self.threshold)
        import torch
        from PIL import Image

        scale = min(1.0, DETECT_MAX_SIDE / max(rgb.shape[:2]))
        small = rgb
        if scale < 1.0:
            h, w = rgb.shape[:2]
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR,
                                                           reducing_gap=2.0))
        if min(small.shape[:2]) < self._search_size(scale):
            # MTCNN's smallest window does not fit (a thumbnail, a 8000x40 strip): it would fail
            # with an internal error; no face it could find fits either.
            return []
        with self._lock:
            mtcnn = self._load(scale)
            with torch.inference_mode():
                boxes, probs, points = mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return []
        faces = []
        for box, prob, pts in zip(boxes, probs, points, strict=True):
            if prob is None or prob < floor:
                continue
            face = Face(tuple(float(v) / scale for v in box), float(prob),
                        np.asarray(pts, np.float32) / scale)
            if face.size < self.min_face and not include_small:
                continue
            faces.append(face)
        faces.sort(key=lambda f: (f.box[0], f.box[1]))
        return faces


def box_iou(a, b) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


#: Face conditions the data cache and the bench report results by (issue #17): where model v2
#: failed were small faces in group shots, dark snapshots and faces that fill the frame.
SMALL_FACE = (40, 110)  # box side in px
LARGE_FACE = 250
DARK_LUMA = 80  # mean 0-255 luma inside the box
CLOSE_UP = 0.4  # box side / the photo's short side


def box_side(box: tuple[float, float, float, float]) -> int:
    """The longer side of a face box, in whole pixels."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return max(x2 - x1, y2 - y1)


def face_luma(box: tuple[float, float, float, float], rgb: np.ndarray) -> float:
    """Mean BT.601 luma (0-255) inside a face box: how dark the face is, not the photo."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    patch = rgb[max(0, y1):max(y1 + 1, y2), max(0, x1):max(x1 + 1, x2), :3].astype(np.float32)
    return float((patch @ np.array([0.299, 0.587, 0.114], np.float32)).mean()) if patch.size else 0.0


def face_conditions(box: tuple[float, float, float, float], rgb: np.ndarray) -> list[str]:
    """Which of small / medium / large, dark and close-up a detected face is, from its box and
    the photo it is in: one rule for the data cache's manifest and the bench's rows."""
    h, w = rgb.shape[:2]
    side = box_side(box)
    size = ("small" if side <= SMALL_FACE[1] else "large" if side > LARGE_FACE else "medium")
    tags = [size]
    if face_luma(box, rgb) < DARK_LUMA:
        tags.append("dark")
    if side >= CLOSE_UP * min(h, w):
        tags.append("close-up")
    return tags
