"""Payload codec: the 60-bit owner tag <-> the 120 raw bits the neural watermark carries.

Layout, code and decoding rule are frozen in docs/FORMAT.md ("Payload") and by
tests/test_payload.py. In short: data word = version(4) | key_id(32) | serial(16) | mac(8),
MSB-first; Reed-Solomon RS(24, 12) over GF(2^5) (a shortened RS(31, 19)); coded bit i is
stored at raw position (i * 37) % 120 so that a burst of neighbouring raw errors (one image
region) spreads over many symbols. Decoding is hard-decision first, then errors-and-erasures
with the least reliable symbols erased, and a candidate is accepted only with a safety margin
left in the correction budget, because on untagged faces a false tag must be vanishingly rare.

Run ``python -m engine.payload --fp-trials 200000 --recovery-trials 10000`` to re-measure.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import threading
from dataclasses import dataclass

import numpy as np
import reedsolo

from engine.identity import KEY_ID_BYTES, KeyId

FORMAT_VERSION = 1
VERSION_BITS, SERIAL_BITS, MAC_BITS = 4, 16, 8  # key ID: KEY_ID_BYTES (4) bytes, from identity
DATA_BITS = 60
SYMBOL_BITS = 5  # GF(2^5)
RS_PRIM = 0x25  # x^5 + x^2 + 1, primitive for GF(32)
RS_FCR, RS_GENERATOR = 0, 2
RS_K, RS_NSYM = 12, 12
RS_N = RS_K + RS_NSYM  # 24 symbols, a shortened RS(31, 19)
PAYLOAD_BITS = RS_N * SYMBOL_BITS  # 120 raw bits in the image
INTERLEAVE_STEP = 37  # coprime with 120
MAC_DOMAIN = b"FTMAC1"

# Acceptance: 2 * errors + erasures <= RS_NSYM - SAFETY_MARGIN. Margin and erasure counts were
# chosen by measurement (FORMAT.md): random-input false decodes per call (version 1) are ~6.7e-8,
# 3.8e-7, 1.9e-6, 8.6e-6 for e = 0, 2, 4, 6, so e = 6 would break the 1e-5 target for +1-2 points
# of recovery. Odd counts add nothing (e and e + 1 erasures leave room for the same errors).
SAFETY_MARGIN = 2
ACCEPT_BUDGET = RS_NSYM - SAFETY_MARGIN
ERASURE_COUNTS: tuple[int, ...] = (2, 4)  # tried in this order after hard decoding fails

_SHIFTS = np.arange(SYMBOL_BITS - 1, -1, -1)  # MSB-first within a symbol
# Coded bit i -> raw position (i * 37) % 120. Deinterleave: coded = raw[_RAW_OF_CODED].
_RAW_OF_CODED = (np.arange(PAYLOAD_BITS) * INTERLEAVE_STEP) % PAYLOAD_BITS
# reedsolo keeps its GF tables in module globals that RSCodec re-installs on every call, so two
# threads using codecs with different fields could interleave; serialise our calls.
_RS_LOCK = threading.Lock()
_RS = reedsolo.RSCodec(
    nsym=RS_NSYM,
    nsize=2**SYMBOL_BITS - 1,
    fcr=RS_FCR,
    prim=RS_PRIM,
    generator=RS_GENERATOR,
    c_exp=SYMBOL_BITS,
)


def compute_mac(mac_key: bytes, version: int, key_id: bytes, serial: int) -> int:
    """8-bit tag MAC: first byte of HMAC-SHA256(mac_key, "FTMAC1" | version | key_id | serial).

    It binds the tag to the owner's secret so that the owner can tell their own tags from a
    payload someone forged with their public key ID (1/256 forgery odds per try, offline).
    """
    msg = MAC_DOMAIN + bytes([version]) + bytes(key_id) + serial.to_bytes(2, "big")
    return hmac.new(mac_key, msg, hashlib.sha256).digest()[0]


def _check_uint(name: str, value: object, bits: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} must be in 0..{(1 << bits) - 1}, got {value}")


@dataclass(frozen=True)
class Payload:
    """The fields carried in the image. Immutable and range-checked so a bad value can never be
    silently truncated into a different (valid-looking) tag."""

    version: int
    key_id: KeyId
    serial: int
    mac: int

    def __post_init__(self) -> None:
        _check_uint("version", self.version, VERSION_BITS)
        if not isinstance(self.key_id, bytes | bytearray):
            raise TypeError(f"key_id must be bytes, got {type(self.key_id).__name__}")
        if len(self.key_id) != KEY_ID_BYTES:
            raise ValueError(f"key_id must be {KEY_ID_BYTES} bytes, got {len(self.key_id)}")
        if type(self.key_id) is not KeyId:
            object.__setattr__(self, "key_id", KeyId(self.key_id))
        _check_uint("serial", self.serial, SERIAL_BITS)
        _check_uint("mac", self.mac, MAC_BITS)

    @classmethod
    def create(
        cls, mac_key: bytes, key_id: bytes, serial: int, version: int = FORMAT_VERSION
    ) -> Payload:
        """Build a payload with its MAC computed from the owner's MAC key."""
        _check_uint("version", version, VERSION_BITS)
        _check_uint("serial", serial, SERIAL_BITS)
        return cls(version, key_id, serial, compute_mac(mac_key, version, key_id, serial))

    def mac_ok(self, mac_key: bytes) -> bool:
        """True when the MAC matches this key (constant-time compare)."""
        expected = compute_mac(mac_key, self.version, self.key_id, self.serial)
        return hmac.compare_digest(bytes([expected]), bytes([self.mac]))

    def to_int(self) -> int:
        """The 60-bit data word: version | key_id | serial | mac, most significant first."""
        word = self.version
        word = (word << 32) | self.key_id.as_int
        word = (word << SERIAL_BITS) | self.serial
        return (word << MAC_BITS) | self.mac

    @classmethod
    def from_int(cls, word: int) -> Payload:
        """Inverse of :meth:`to_int`; rejects words that do not fit in 60 bits."""
        _check_uint("data word", word, DATA_BITS)
        return cls(
            version=word >> 56,
            key_id=KeyId.from_int((word >> 24) & 0xFFFFFFFF),
            serial=(word >> 8) & 0xFFFF,
            mac=word & 0xFF,
        )

    def to_hex(self) -> str:
        """The data word as 15 lowercase hex digits (what FORMAT.md vectors and records show)."""
        return f"{self.to_int():015x}"

    @classmethod
    def from_hex(cls, text: str) -> Payload:
        """Inverse of :meth:`to_hex`; exactly 15 hex digits."""
        text = text.strip()
        if len(text) != DATA_BITS // 4 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ValueError(f"payload hex must be {DATA_BITS // 4} hex digits, got {text!r}")
        return cls.from_int(int(text, 16))


@dataclass(frozen=True)
class DecodeResult:
    """A decoded payload and how much it took to get it.

    ``confidence`` in [0, 1] is the mean of (a) the fraction of the acceptance budget left,
    (ACCEPT_BUDGET - 2*errors - erasures) / ACCEPT_BUDGET, and (b) the soft agreement with the
    re-encoded codeword, max(0, 2*A - 1) with A = sum |logit| over agreeing bits / sum |logit|.
    A clean read scores 1; a read at the edge of the budget with noisy bits scores near 0.
    """

    payload: Payload
    errors_corrected: int  # symbol errors outside the erased positions
    erasures_used: int  # symbols erased (counted whether or not they were wrong)
    bit_errors: int  # raw bits whose hard decision disagrees with the re-encoded codeword
    confidence: float
    method: str = "blind"  # "blind" (RS decode) or "records" (engine.model.match, known payloads)


def data_symbols(p: Payload) -> list[int]:
    """The 12 five-bit RS data symbols of the 60-bit word, most significant first."""
    word = p.to_int()
    return [(word >> (SYMBOL_BITS * (RS_K - 1 - j))) & 0x1F for j in range(RS_K)]


def data_bits(p: Payload) -> np.ndarray:
    """The 60-bit data word as a uint8 0/1 array, MSB first."""
    return _symbols_to_bits(np.array(data_symbols(p)))


def _symbols_to_bits(symbols: np.ndarray) -> np.ndarray:
    return ((np.asarray(symbols, dtype=np.int64)[:, None] >> _SHIFTS) & 1).astype(np.uint8).ravel()


def _bits_to_symbols(bits: np.ndarray) -> np.ndarray:
    return (bits.reshape(-1, SYMBOL_BITS).astype(np.int64) << _SHIFTS).sum(axis=1)


def _symbols_word(codeword: np.ndarray) -> int:
    word = 0
    for s in codeword[:RS_K].tolist():
        word = (word << SYMBOL_BITS) | s
    return word


def _rs_encode(data: list[int]) -> np.ndarray:
    with _RS_LOCK:
        codeword = _RS.encode(bytearray(data))
    return np.frombuffer(bytes(codeword), dtype=np.uint8).astype(np.int64)


def interleave(coded: np.ndarray) -> np.ndarray:
    """Coded order -> raw (image) order: raw[(i * 37) % 120] = coded[i]."""
    raw = np.empty_like(coded)
    raw[_RAW_OF_CODED] = coded
    return raw


def deinterleave(raw: np.ndarray) -> np.ndarray:
    """Raw (image) order -> coded order; works for bits and logits alike."""
    return raw[_RAW_OF_CODED]


def codeword_bits(p: Payload) -> np.ndarray:
    """The 120 coded bits in coded (symbol-major, not interleaved) order."""
    return _symbols_to_bits(_rs_encode(data_symbols(p)))


def encode_bits(p: Payload) -> np.ndarray:
    """The 120 raw bits to embed, shape (120,), uint8 0/1, interleaved order."""
    return interleave(codeword_bits(p))


def _try_decode(received: np.ndarray, erase: list[int]) -> tuple[np.ndarray, int] | None:
    """RS errors-and-erasures decode; returns (re-encoded codeword, errors outside erasures)."""
    try:
        with _RS_LOCK:
            data, _, _ = _RS.decode(bytearray(received.tolist()), erase_pos=erase or None)
    except (reedsolo.ReedSolomonError, ZeroDivisionError, IndexError, ValueError):
        return None
    codeword = _rs_encode(list(data))  # the decoder's output is trusted only once re-encoded
    outside = np.ones(RS_N, dtype=bool)
    outside[erase] = False
    return codeword, int(np.count_nonzero((codeword != received) & outside))


def decode_logits(
    logits: np.ndarray, known_versions: frozenset[int] = frozenset({FORMAT_VERSION})
) -> DecodeResult | None:
    """Decode 120 raw-order logits (> 0 means bit 1, |logit| = reliability) into a payload.

    Tries hard decision, then erasure of the e least reliable symbols (reliability = min |logit|
    over the symbol's 5 bits) for e in ERASURE_COUNTS. The first candidate with
    2 * errors + erasures <= ACCEPT_BUDGET and a version in ``known_versions`` wins. Returns None
    when nothing qualifies (an untagged face): the margin keeps false tags rare (FORMAT.md).
    """
    raw = np.nan_to_num(np.asarray(logits, dtype=np.float64).reshape(-1))
    if raw.shape != (PAYLOAD_BITS,):
        raise ValueError(f"expected {PAYLOAD_BITS} logits, got {raw.size}")
    coded = deinterleave(raw)
    received = _bits_to_symbols((coded > 0).astype(np.uint8))
    reliability = np.abs(coded).reshape(RS_N, SYMBOL_BITS).min(axis=1)
    order = np.argsort(reliability, kind="stable")
    for e in (0, *ERASURE_COUNTS):
        erase = sorted(int(i) for i in order[:e])
        found = _try_decode(received, erase)
        if found is None:
            continue
        codeword, errors = found
        if 2 * errors + e > ACCEPT_BUDGET:
            continue
        payload = Payload.from_int(_symbols_word(codeword))
        if payload.version not in known_versions:
            continue
        bits = _symbols_to_bits(codeword)
        agree = (coded > 0) == (bits == 1)
        total = float(np.abs(coded).sum())
        soft = float(np.abs(coded)[agree].sum()) / total if total > 0 else 0.5
        budget_left = (ACCEPT_BUDGET - 2 * errors - e) / ACCEPT_BUDGET
        confidence = 0.5 * budget_left + 0.5 * max(0.0, 2.0 * soft - 1.0)
        return DecodeResult(payload, errors, e, int(np.count_nonzero(~agree)), confidence)
    return None


# ---- measurement helpers (run once from the command line, not in unit tests) -------------------


def false_positive_rate(
    n: int, rng: np.random.Generator, known_versions: frozenset[int] = frozenset({FORMAT_VERSION})
) -> tuple[int, float]:
    """Decode n vectors of i.i.d. N(0, 1) logits (an untagged face); return (decodes, rate)."""
    hits = sum(
        decode_logits(rng.normal(size=PAYLOAD_BITS), known_versions) is not None for _ in range(n)
    )
    return hits, hits / n


def noisy_logits(bits: np.ndarray, flip_p: float, rng: np.random.Generator) -> np.ndarray:
    """Soft-channel model: each bit flips with prob flip_p; correct bits get |N(2, 1)|,
    flipped bits the less confident |N(0.5, 0.5)| (a decoder that knows when it is unsure)."""
    flip = rng.random(bits.size) < flip_p
    sign = np.where((bits == 1) ^ flip, 1.0, -1.0)
    mag = np.where(
        flip, np.abs(rng.normal(0.5, 0.5, bits.size)), np.abs(rng.normal(2.0, 1.0, bits.size))
    )
    return sign * mag


def recovery_rate(flip_p: float, n: int, rng: np.random.Generator) -> dict[str, float]:
    """Exact-recovery, wrong-payload and no-decode rates for random payloads at flip_p."""
    ok = wrong = 0
    for _ in range(n):
        key = rng.integers(0, 256, KEY_ID_BYTES, dtype=np.uint8).tobytes()
        p = Payload(FORMAT_VERSION, key, int(rng.integers(0, 65536)), int(rng.integers(0, 256)))
        res = decode_logits(noisy_logits(encode_bits(p), flip_p, rng))
        ok += res is not None and res.payload == p
        wrong += res is not None and res.payload != p
    return {"exact": ok / n, "wrong": wrong / n, "none": (n - ok - wrong) / n}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m engine.payload", description=__doc__)
    ap.add_argument("--fp-trials", type=int, default=0, help="random-logit decodes to try")
    ap.add_argument("--recovery-trials", type=int, default=0, help="decodes per bit-error rate")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    if args.fp_trials:
        hits, rate = false_positive_rate(args.fp_trials, rng)
        hits_any, rate_any = false_positive_rate(args.fp_trials, rng, frozenset(range(16)))
        print(
            f"random logits, {args.fp_trials} trials: {hits} decodes (rate {rate:.2e}); "
            f"any version accepted: {hits_any} (rate {rate_any:.2e}, /16 = {rate_any / 16:.1e})"
        )
    for p in (0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.10, 0.12) if args.recovery_trials else ():
        r = recovery_rate(p, args.recovery_trials, rng)
        print(f"flip {p:.0%}: exact {r['exact']:.4f}  wrong {r['wrong']:.4f}  none {r['none']:.4f}")


if __name__ == "__main__":
    main()
