"""Weights files: safetensors with the model config in the header metadata.

safetensors holds tensors only (no pickle), so a bundled or user-supplied weights file cannot run
code when it is loaded. The config travels in the same file so a weights file is self-describing:
the loader can rebuild the right nets for every bundled model version.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from engine.atomic import write_atomic
from engine.model.nets import ModelConfig, WatermarkNet

FORMAT = "faketagger-watermark"


def save_weights(
    net: WatermarkNet, path: Path, extra: dict | None = None, half: bool = True
) -> None:
    """Write atomically (engine.atomic): a training run killed mid-save must not leave a torn
    file behind, and one loading the weights meanwhile must never read half a file.

    Stored as float16 by default: half the size to bundle, and the nets run in float32 anyway
    (load_state_dict casts), so the only cost is a rounding far below the residual's scale.
    """
    meta = {"format": FORMAT, "config": json.dumps(net.cfg.to_dict())}
    if extra:
        meta["extra"] = json.dumps(extra)
    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to(dtype).contiguous().cpu() for k, v in net.state_dict().items()}
    write_atomic(Path(path), save(state, metadata=meta))  # a few MB: fine to hold in memory


def read_metadata(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a FakeTagger watermark weights file")
    out = {"config": json.loads(meta["config"])}
    if "extra" in meta:
        out["extra"] = json.loads(meta["extra"])
    return out


def load_weights(path: Path, device: str | torch.device = "cpu") -> WatermarkNet:
    meta = read_metadata(path)
    net = WatermarkNet(ModelConfig(**meta["config"]))
    net.load_state_dict(load_file(str(path), device="cpu"))
    return net.to(device).eval()
