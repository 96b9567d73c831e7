"""The attack library: every manipulation the bench measures, and the ones training simulates.

    from engine.attacks import SUITE, AttackSpec, DEEPFAKE_FAMILIES, QUICK, external_attack

SUITE maps a name to an AttackSpec whose fn takes a whole uint8 RGB photo and an rng and returns
the attacked photo. Everyday attacks are real file operations (engine.attacks.everyday);
DeepFake attacks find each face and run a crop-level op from engine.attacks.faceops (the same
code training uses as straight-through noise). `trained_on` says honestly whether the watermark
training saw this manipulation (or one of the same kind and strength); the held-out ones show
generalisation in the bench. docs/ATTACKS.md describes each attack.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.attacks.everyday import EVERYDAY, Attack

DEEPFAKE_FAMILIES = ("swap-target", "swap-source", "reenact", "attribute", "resynth")


@dataclass(frozen=True)
class AttackSpec:
    name: str
    family: str  # "everyday" | one of DEEPFAKE_FAMILIES | "external"
    fn: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    trained_on: bool  # False = held out from training
    description: str


# name -> (trained_on, description). Training's everyday noise (engine.training.noise): JPEG
# quality >= 45 (real and differentiable), resize down to 0.4 and back, blur, noise, colour,
# box jitter. Below those strengths, or with an untrained ingredient, an attack is held out.
_EVERYDAY_INFO: dict[str, tuple[bool, str]] = {
    "clean": (True, "no change (baseline)"),
    "jpeg95": (True, "JPEG quality 95 (Pillow/libjpeg, 4:2:0)"),
    "jpeg75": (True, "JPEG quality 75"),
    "jpeg50": (True, "JPEG quality 50"),
    "jpeg30": (False, "JPEG quality 30: below training's lowest quality (45)"),
    "resize0.75": (True, "downscale to 0.75 (bicubic), kept small"),
    "resize0.5": (True, "downscale to 0.5"),
    "resize0.3": (False, "downscale to 0.3: below training's smallest scale (0.4)"),
    "screenshot": (True, "screenshot-like: bilinear to 0.63x and back to full size"),
    "jpeg75+resize0.75": (True, "downscale 0.75 then JPEG 75"),
    "blur1": (True, "Gaussian blur radius 1"),
    "noise4": (True, "Gaussian noise, std 4/255"),
    "crop0.9": (True, "random crop keeping 90% of each side (re-detected face box moves)"),
    "colour": (True, "gain 1.1, gamma 0.9"),
    "social1080": (False, "social-media pipeline: long side 1080, unsharp mask, JPEG 80 "
                          "(sharpening is not simulated in training)"),
    "double-jpeg": (True, "JPEG 85 then JPEG 70"),
}

# name -> (family, trained_on, description) for the per-face DeepFake attacks.
_DEEPFAKE_INFO: dict[str, tuple[str, bool, str]] = {
    "swap-target": ("swap-target", True, "identity swap, tagged face as TARGET: a donor's inner "
                    "face Delaunay-warped onto the tagged landmarks, colour-matched, Poisson "
                    "blended; only hair, forehead, ears and background of the tag survive"),
    "swap-source": ("swap-source", True, "identity swap, tagged face as SOURCE: the tagged inner "
                    "face warped onto a donor's head and Poisson blended"),
    "reenact": ("reenact", True, "expression/pose reenactment: thin-plate warp from moved "
                "landmarks (mouth open, smile, blink, brow raise, small yaw/roll)"),
    "attribute": ("attribute", True, "attribute edit: 1-2 of skin smoothing, lip/eye/hair colour, "
                  "ageing texture, mouth/eye region re-rendered by the resynth-train generator"),
    "attribute-glasses": ("attribute", False, "attribute edit (held out): glasses drawn over "
                          "the eyes (frame, bridge, tinted lenses)"),
    "attribute-region-gan": ("attribute", False, "attribute edit (held out): mouth or eye "
                             "region re-rendered by the held-out generator"),
    "resynth": ("resynth", True, "whole face re-rendered by the project's generator "
                "resynth-train (64 px dense autoencoder) and blended back"),
    "resynth-heldout": ("resynth", False, "whole face re-rendered by the held-out generator "
                        "(128 px conv autoencoder, other seed), never seen in training"),
}


def _build_suite() -> dict[str, AttackSpec]:
    from engine.attacks.photo import per_face

    suite = {n: AttackSpec(n, "everyday", EVERYDAY[n], *_EVERYDAY_INFO[n]) for n in EVERYDAY}
    for name, (family, trained, desc) in _DEEPFAKE_INFO.items():
        suite[name] = AttackSpec(name, family, per_face(name), trained, desc)
    return suite


SUITE: dict[str, AttackSpec] = _build_suite()

#: The CI quick bench: a few everyday attacks plus one per DeepFake family.
QUICK: tuple[str, ...] = ("clean", "jpeg75+resize0.75", "jpeg50", *DEEPFAKE_FAMILIES)


#: A DeepFake tool on a CPU may be slow, but a hung one must not hang the bench forever.
EXTERNAL_TIMEOUT_S = 600


def external_attack(cmd_template: str) -> AttackSpec:
    """An attack that runs an external tool: "TOOL {in} {out}" (PNG files, no shell).

    Lets users with real DeepFake models (SimSwap, StarGAN, ...) measure with them. The tool's
    output may have another size; a failing tool raises RuntimeError with its stderr.
    """
    if "{in}" not in cmd_template or "{out}" not in cmd_template:
        raise ValueError("the command template needs both {in} and {out}")

    def run(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="faketagger-attack-") as tmp:
            src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
            Image.fromarray(rgb).save(src)
            args = [a.replace("{in}", str(src)).replace("{out}", str(dst))
                    for a in shlex.split(cmd_template)]
            try:
                proc = subprocess.run(args, capture_output=True, text=True, check=False,
                                      timeout=EXTERNAL_TIMEOUT_S)
            except subprocess.TimeoutExpired as err:
                raise RuntimeError(f"attack command took over {EXTERNAL_TIMEOUT_S} s: "
                                   f"{' '.join(args)}") from err
            except OSError as err:  # the tool is missing or not executable
                raise RuntimeError(f"attack command could not start: {err}") from err
            if proc.returncode != 0 or not dst.is_file():
                raise RuntimeError(f"attack command failed ({proc.returncode}): "
                                   f"{' '.join(args)}\n{proc.stderr.strip()[-2000:]}")
            with Image.open(dst) as im:
                return np.asarray(im.convert("RGB"))

    return AttackSpec(f"external: {cmd_template}", "external", run, False,
                      f"external tool: {cmd_template}")


__all__ = ["DEEPFAKE_FAMILIES", "EVERYDAY", "QUICK", "SUITE", "Attack", "AttackSpec",
           "external_attack"]
