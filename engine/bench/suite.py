"""Which attacks a bench run uses: the attack library's SUITE, a `--attacks` selection, the CI
QUICK set, plus any external tool given with `--attack-cmd "TOOL {in} {out}"`.

The attack library (engine.attacks) owns the attacks themselves, external_attack included; this
module only selects them, groups the DeepFake families, and turns a failing external tool into
a one-line bench error.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.attacks import DEEPFAKE_FAMILIES, QUICK, SUITE, AttackSpec, external_attack
from engine.errors import FakeTaggerError

#: Bench grouping of the DeepFake families: both swap directions pool into one "swap" family,
#: giving the four DeepFake types of the paper's headline (swap, reenact, attribute, resynth).
FAMILY_GROUPS: dict[str, tuple[str, ...]] = {
    "swap": ("swap-target", "swap-source"),
    "reenact": ("reenact",),
    "attribute": ("attribute",),
    "resynth": ("resynth",),
}
assert sorted(sum(FAMILY_GROUPS.values(), ())) == sorted(DEEPFAKE_FAMILIES)


class AttackError(FakeTaggerError):
    """An attack cannot be used: unknown name, or an external command that failed."""


def select(names: list[str] | None, quick: bool) -> list[AttackSpec]:
    """The AttackSpecs to run: explicit names (in the order given), QUICK, or the whole SUITE."""
    wanted = names if names else (list(QUICK) if quick else list(SUITE))
    unknown = [n for n in wanted if n not in SUITE]
    if unknown:
        raise AttackError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(SUITE)}")
    return [SUITE[n] for n in wanted]


def external(template: str) -> AttackSpec:
    """engine.attacks.external_attack, with its failures as one-line bench errors (the tool's
    exit code and the last line of its error output)."""
    try:
        spec = external_attack(template)
    except ValueError as err:
        raise AttackError(f"--attack-cmd {template!r}: {err}") from err
    tool = spec.fn

    def run(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        try:
            return tool(rgb, rng)
        except FileNotFoundError as err:
            raise AttackError(f"attack command not found: {err.filename or template}") from err
        except (RuntimeError, OSError) as err:
            lines = [ln for ln in str(err).splitlines() if ln.strip()]
            detail = f"{lines[0]} | {lines[-1]}" if len(lines) > 1 else "".join(lines)
            raise AttackError(f"--attack-cmd {template!r} failed: {detail}") from err

    return dataclasses.replace(spec, fn=run)
