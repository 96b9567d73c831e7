"""Warm-start a net with a shorter raw payload from a longer one (issue #18's density trial).

Only three layers depend on the payload length: the encoder's two message projections
(``msg_in``, ``msg_mid``: one input column per raw bit) and the decoder head's last layer (one
output row per raw bit). Keeping the first *bits* columns and rows keeps what the net already
learned for those positions; the dropped bits' inputs become 0, the mean of their +-1 coding,
so the encoder starts from the same map it made on average. Everything else is copied as is.
"""

from __future__ import annotations

import torch

#: (state_dict key, axis along which one entry per raw bit lies)
PAYLOAD_AXES = (
    ("encoder.msg_in.weight", 1),
    ("encoder.msg_mid.weight", 1),
    ("decoder.head.3.weight", 0),
    ("decoder.head.3.bias", 0),
)


def narrow_payload(state: dict[str, torch.Tensor], bits: int) -> dict[str, torch.Tensor]:
    """*state* with its payload layers cut to the first *bits* raw bits (a copy)."""
    out = dict(state)
    for key, axis in PAYLOAD_AXES:
        have = state[key].shape[axis]
        if bits > have:
            raise ValueError(f"cannot widen a {have}-bit net to {bits} bits; only narrow it")
        out[key] = state[key].narrow(axis, 0, bits).clone()
    return out
