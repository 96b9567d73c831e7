"""Record-informed decoding (engine.model.match): exact bound, noisy reads, rejections."""

import math

import numpy as np

from engine.model.match import (
    FALSE_MATCH_RATE,
    MARGIN_BITS,
    MIN_CANDIDATES,
    match_logits,
    max_distance,
)
from engine.payload import FORMAT_VERSION, PAYLOAD_BITS, Payload, decode_logits, encode_bits


def _random_payloads(n: int, rng: np.random.Generator, version: int = FORMAT_VERSION) -> list:
    return [Payload(version, rng.integers(0, 256, 4, dtype=np.uint8).tobytes(),
                    int(rng.integers(0, 65536)), int(rng.integers(0, 256))) for _ in range(n)]


def _logits(bits: np.ndarray, wrong=()) -> np.ndarray:
    """A confident read of ``bits`` with the bits at positions ``wrong`` flipped."""
    flips = np.zeros(PAYLOAD_BITS, bool)
    flips[np.asarray(wrong, dtype=int)] = True
    sign = np.where((bits == 1) ^ flips, 1.0, -1.0)
    return sign * 1.5


def test_max_distance_is_the_exact_binomial_bound():
    for n, attempts in ((1, 1), (MIN_CANDIDATES, 1), (20_000, 1), (300, 10)):
        d = max_distance(n, attempts)
        n_eff = max(n, MIN_CANDIDATES) * attempts

        def tail(k: int) -> float:
            return sum(math.comb(PAYLOAD_BITS, i) for i in range(k + 1)) / 2**PAYLOAD_BITS

        assert n_eff * tail(d) <= FALSE_MATCH_RATE < n_eff * tail(d + 1)
    assert max_distance(1) == max_distance(MIN_CANDIDATES)  # never looser for a small ledger
    assert max_distance(10**6) < max_distance(10**3)


def test_a_noisy_read_far_beyond_blind_rs_matches_its_record():
    rng = np.random.default_rng(5)
    payloads = _random_payloads(200, rng)
    hexes = tuple(p.to_hex() for p in payloads)
    target = payloads[17]
    bits = encode_bits(target)
    logits = _logits(bits, rng.choice(PAYLOAD_BITS, 20, replace=False))  # 16.7% bit errors
    assert decode_logits(logits) is None  # the blind decoder cannot read it
    res = match_logits(logits, hexes, FORMAT_VERSION)
    assert res is not None and res.payload == target
    assert res.method == "records" and res.bit_errors == 20
    assert 0 < res.confidence < 1


def test_random_logits_never_match():
    rng = np.random.default_rng(11)
    hexes = tuple(p.to_hex() for p in _random_payloads(2000, rng))
    hits = sum(match_logits(rng.normal(size=PAYLOAD_BITS), hexes, FORMAT_VERSION) is not None
               for _ in range(3000))
    assert hits == 0


def test_too_far_and_other_versions_are_rejected():
    rng = np.random.default_rng(3)
    payloads = _random_payloads(10, rng)
    hexes = tuple(p.to_hex() for p in payloads)
    bits = encode_bits(payloads[0])
    too_far = _logits(bits, range(max_distance(len(hexes)) + 1))
    assert match_logits(too_far, hexes, FORMAT_VERSION) is None
    clean = _logits(bits)
    assert match_logits(clean, hexes, FORMAT_VERSION + 1) is None
    assert match_logits(clean, (), FORMAT_VERSION) is None


def test_two_records_that_fit_equally_are_ambiguous():
    # Two serials of one key: their codewords are the closest pairs a ledger holds.
    key = bytes.fromhex("3f2a91c0")
    a, b = Payload(FORMAT_VERSION, key, 41, 7), Payload(FORMAT_VERSION, key, 42, 7)
    ba, bb = encode_bits(a), encode_bits(b)
    differ = np.flatnonzero(ba != bb)
    # Start from a's bits and move halfway to b: both are equally near, neither is claimed.
    logits = _logits(ba, differ[: len(differ) // 2])
    da = len(differ) // 2
    db = len(differ) - da
    assert abs(da - db) < MARGIN_BITS
    assert max(da, db) <= max_distance(2)  # each alone would be accepted
    assert match_logits(logits, (a.to_hex(),), FORMAT_VERSION).payload == a
    assert match_logits(logits, (a.to_hex(), b.to_hex()), FORMAT_VERSION) is None


def test_one_clean_attempt_among_several_is_enough_and_costs_bound():
    rng = np.random.default_rng(21)
    payloads = _random_payloads(50, rng)
    hexes = tuple(p.to_hex() for p in payloads)
    bits = encode_bits(payloads[4])
    good = rng.choice(PAYLOAD_BITS, max_distance(len(hexes), 10), replace=False)
    attempts = np.stack([rng.normal(size=PAYLOAD_BITS) for _ in range(9)]
                        + [_logits(bits, good)])
    res = match_logits(attempts, hexes, FORMAT_VERSION)
    assert res is not None and res.payload == payloads[4]
    # Ten attempts buy a stricter limit (union bound), so a read just inside the one-attempt
    # limit no longer matches when it comes with nine others.
    assert max_distance(len(hexes), 10) < max_distance(len(hexes))
    alone = _logits(bits, range(max_distance(len(hexes))))
    assert match_logits(alone, hexes, FORMAT_VERSION) is not None
    assert match_logits(np.stack([alone] * 10), hexes, FORMAT_VERSION) is None
