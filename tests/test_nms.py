"""engine.faces.batched_nms, MTCNN's NMS without torchvision (the desktop build leaves torchvision
out), against torchvision's own, which the developer venv has."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from engine.faces import batched_nms

from .conftest import ROOT

tv_ops = pytest.importorskip("torchvision.ops")


def _random_boxes(n: int, seed: int, groups: int = 3, spread: float = 300.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * spread
    wh = torch.rand(n, 2, generator=g) * 80 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.randperm(n, generator=g).float() / max(n, 1)  # distinct: no tie order to argue
    idxs = torch.randint(0, groups, (n,), generator=g)
    return boxes, scores, idxs


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 700, 1500])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7])
def test_same_picks_as_torchvision(n, thr):
    boxes, scores, idxs = _random_boxes(n, seed=n)
    ours = batched_nms(boxes, scores, idxs, thr)
    assert ours.dtype == torch.int64
    assert torch.equal(ours, tv_ops.batched_nms(boxes, scores, idxs, thr))


def test_plain_nms_and_float64_and_degenerate_boxes():
    boxes, scores, _ = _random_boxes(300, seed=5, spread=100.0)
    boxes = boxes.double()
    boxes[:5, 2:] = boxes[:5, :2]  # zero-area boxes: IoU 0/0 never suppresses
    one = torch.zeros(300, dtype=torch.int64)
    assert torch.equal(batched_nms(boxes, scores.double(), one, 0.5),
                       tv_ops.nms(boxes, scores.double(), 0.5))


def test_groups_never_suppress_each_other():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 4)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert batched_nms(box, scores, torch.tensor([0, 1, 0, 1]), 0.5).tolist() == [0, 1]
    assert batched_nms(box, scores, torch.tensor([0, 1, 2, 3]), 0.5).tolist() == [0, 1, 2, 3]


def test_mtcnn_finds_the_same_faces_with_either_nms(monkeypatch):
    from PIL import Image

    from engine.faces import FaceDetector, _mtcnn_class

    _mtcnn_class()
    from facenet_pytorch.models.utils import detect_face

    rgb = np.asarray(Image.open(ROOT / "tests" / "data" / "two_faces.jpg").convert("RGB"))
    detector = FaceDetector()
    ours = detector.detect(rgb, min_prob=0.7)
    monkeypatch.setattr(detect_face, "batched_nms", tv_ops.batched_nms)
    theirs = detector.detect(rgb, min_prob=0.7)
    assert len(ours) == len(theirs) >= 2
    for a, b in zip(ours, theirs, strict=True):
        assert a.box == b.box and a.prob == b.prob


def test_face_detection_never_imports_torchvision():
    """In a fresh interpreter (as in the desktop build): MTCNN loads and detects through the
    stand-in, and no torchvision module is left behind."""
    code = (
        "import sys, numpy as np\n"
        "from PIL import Image\n"
        "from engine.faces import FaceDetector\n"
        "rgb = np.asarray(Image.open('assets/sample.jpg').convert('RGB'))\n"
        "assert FaceDetector().detect(rgb), 'no face'\n"
        "left = [m for m in sys.modules if m.split('.')[0] == 'torchvision']\n"
        "assert not left, left\n"
        "import facenet_pytorch.models.utils.detect_face as d, engine.faces as f\n"
        "assert d.batched_nms is f.batched_nms\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
