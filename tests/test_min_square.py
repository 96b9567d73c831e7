"""The minimum-tag-square experiment (engine.bench.min_square, issue #18): its geometry and its
reader, with the real MTCNN and the bundled v2 model."""

from __future__ import annotations

import numpy as np

from engine.bench.min_square import RATIOS, ratio_for, read_any_ratio
from engine.faces import extract_square, face_square, paste_residual
from engine.model.registry import load_watermarker
from engine.payload import Payload, encode_bits
from engine.photos import load_photo

from .conftest import SAMPLE


def test_each_face_gets_the_smallest_ratio_that_reaches_the_minimum():
    assert ratio_for(111, 128) == 1.5  # 166 px already
    assert ratio_for(70, 128) == 2.0  # 105 px at 1.5: 140 at 2.0
    assert ratio_for(40, 128) == 3.5  # 140 px
    assert ratio_for(20, 128) == RATIOS[-1]  # none reaches it: the largest
    assert ratio_for(40, 0) == 1.5  # no minimum: today's geometry


def test_a_tag_in_a_larger_square_is_read_only_by_trying_its_ratio(pipeline):
    """The reader does not know the ratio: read at 1.5 alone it finds nothing, over every
    ratio it finds the payload."""
    model = load_watermarker(2)
    rgb = load_photo(SAMPLE).rgb
    face = pipeline.detect(rgb)[0]
    payload = Payload(2, b"\x01\x02\x03\x04", 77, 5)
    square = face_square(face.box, 2.5)
    [res] = model.residuals([extract_square(rgb, square)], encode_bits(payload)[None], 1.0)
    tagged = rgb.copy()
    paste_residual(tagged, res, square)
    assert read_any_ratio(tagged, face, model, (1.5,)) is None
    got = read_any_ratio(tagged, face, model, RATIOS)
    assert got is not None and got.payload == payload
    assert np.abs(tagged.astype(int) - rgb).max() > 0
