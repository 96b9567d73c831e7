"""Record-informed decoding: read a damaged tag by matching it against the signed tag records
this machine already holds (own records and imported contacts' cards).

Why: a blind Reed-Solomon decode must pick one of 2^60 data words, so to keep false tags rare it
may only correct a few bit errors (FORMAT.md). A DeepFake that re-renders most of a face leaves
far more. But a fact-checker who imported the owner's card - or the owner checking a copy of their
own photo - knows which few payloads can be there at all: one per signed record. Choosing among N
known codewords instead of 2^60 lets us accept a much noisier read at a false-match rate we can
state exactly.

Rule: verify hands over A logit vectors for a face (the soft-combined one and each jittered
crop's: after a face swap, the mean is often dragged off by crops that straddle the pasted face
while one well-aligned crop still reads cleanly). For each, with hard bits h and d_i = Hamming
distance from h to the raw bits of candidate i, the nearest candidate is accepted only if
  (1) A * N_eff * P[Binomial(120, 1/2) <= d_min] <= FALSE_MATCH_RATE   (an untagged face's bits
      are a coin flip per bit against any fixed codeword; the union bound over A attempts holds
      however the attempts correlate; N_eff = max(N, MIN_CANDIDATES) so the bound does not
      loosen for a small ledger), and
  (2) the runner-up is at least MARGIN_BITS further away (two records that both fit are
      ambiguous, so we claim neither).
The first attempt (in the order given) that passes wins.
Only called after the blind decode has failed, so it never changes a blind result. A match is
a payload that has a signed record; the normal verdict rules then apply unchanged.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from engine.payload import PAYLOAD_BITS, DecodeResult, Payload, encode_bits

#: Per-face false-match probability bound for an untagged face (the product's target for any
#: decoded payload is <= 1e-4; a false match here would read as `verified`, so far stricter).
FALSE_MATCH_RATE = 1e-7
#: The bound is computed as if at least this many records were known.
MIN_CANDIDATES = 1000
#: Required gap in bits between the best and second-best candidate.
MARGIN_BITS = 8


@lru_cache(maxsize=256)
def _binom_cdf_table(n: int = PAYLOAD_BITS) -> tuple[float, ...]:
    """P[Binomial(n, 1/2) <= d] for d = 0..n, exactly (integers, then one division)."""
    total, out = 0, []
    for d in range(n + 1):
        total += math.comb(n, d)
        out.append(total / 2**n)
    return tuple(out)


def max_distance(n_candidates: int, attempts: int = 1) -> int:
    """The largest accepted Hamming distance for this many candidates and attempts (rule 1)."""
    n_eff = max(n_candidates, MIN_CANDIDATES) * max(1, attempts)
    cdf = _binom_cdf_table()
    accepted = [d for d in range(PAYLOAD_BITS + 1) if n_eff * cdf[d] <= FALSE_MATCH_RATE]
    return accepted[-1] if accepted else -1


@lru_cache(maxsize=8)
def _codebook(candidates: tuple[str, ...], version: int) -> tuple[tuple[str, ...], np.ndarray]:
    """The candidates of one payload version, sorted, and their raw bits (cached: a ledger's
    payloads rarely change between the faces of one verify)."""
    hexes = tuple(sorted(h for h in set(candidates) if Payload.from_hex(h).version == version))
    bits = [encode_bits(Payload.from_hex(h)) for h in hexes]
    return hexes, (np.stack(bits).astype(bool) if bits else np.zeros((0, PAYLOAD_BITS), bool))


def match_logits(
    logits: np.ndarray, candidates: tuple[str, ...], version: int
) -> DecodeResult | None:
    """The known payload that one of these attempts matches, or None (see module doc).
    ``logits``: (120,) or (A, 120) raw-order logits. Only candidates of the reading model's
    payload ``version`` take part."""
    hexes, book = _codebook(tuple(candidates), version)
    if not hexes:
        return None
    attempts = np.nan_to_num(np.asarray(logits, dtype=np.float64)).reshape(-1, PAYLOAD_BITS)
    limit = max_distance(len(hexes), len(attempts))
    for raw in attempts:
        res = _match_one(raw, hexes, book, limit)
        if res is not None:
            return res
    return None


def _match_one(
    raw: np.ndarray, hexes: tuple[str, ...], book: np.ndarray, limit: int
) -> DecodeResult | None:
    hard = raw > 0
    dist = (book != hard[None, :]).sum(axis=1)
    order = np.argsort(dist, kind="stable")
    best = int(dist[order[0]])
    if best > limit:
        return None
    if len(hexes) > 1 and int(dist[order[1]]) - best < MARGIN_BITS:
        return None
    payload = Payload.from_hex(hexes[int(order[0])])
    # Same confidence scale as a blind read: share of the distance budget left, and the soft
    # agreement (|logit|-weighted) with the chosen codeword.
    agree = hard == book[int(order[0])]
    total = float(np.abs(raw).sum())
    soft = float(np.abs(raw)[agree].sum()) / total if total > 0 else 0.5
    confidence = 0.5 * (limit - best) / max(limit, 1) + 0.5 * max(0.0, 2.0 * soft - 1.0)
    return DecodeResult(payload, errors_corrected=0, erasures_used=0, bit_errors=best,
                        confidence=confidence, method="records")
