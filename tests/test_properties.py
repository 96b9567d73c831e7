"""Property-based tests (hypothesis, issue 11): the payload codec, card and record parsing, key
backups and image loading, fed generated and mutated input. The budget is fixed (max_examples,
no deadline, derandomized) so CI runs the same examples every time in a bounded time."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.errors import FakeTaggerError
from engine.identity import UnlockedIdentity
from engine.payload import (
    ACCEPT_BUDGET,
    PAYLOAD_BITS,
    RS_N,
    SYMBOL_BITS,
    Payload,
    decode_logits,
    deinterleave,
    encode_bits,
    interleave,
)
from engine.photos import PhotoError, encode_jpeg_thumbnail, load_photo
from engine.store.backup import parse_backup
from engine.store.cards import make_card, parse_card
from engine.store.records import MAX_SERIAL, TagRecord, sign_record, verify_record

BUDGET = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow,
                                         HealthCheck.function_scoped_fixture])

key_ids = st.binary(min_size=4, max_size=4)
serials = st.integers(min_value=1, max_value=MAX_SERIAL)
mac_keys = st.binary(min_size=32, max_size=32)


# --- payload codec -------------------------------------------------------------------------------


@BUDGET
@given(mac_keys, key_ids, serials)
def test_payload_round_trips_through_bits_and_hex(mac_key, key_id, serial):
    p = Payload.create(mac_key, key_id, serial, 1)
    assert Payload.from_hex(p.to_hex()) == p and p.mac_ok(mac_key)
    bits = encode_bits(p)
    assert bits.shape == (PAYLOAD_BITS,) and set(np.unique(bits)) <= {0, 1}
    assert np.array_equal(deinterleave(interleave(bits)), bits)
    res = decode_logits(np.where(bits > 0, 4.0, -4.0))
    assert res is not None and res.payload == p


@BUDGET
@given(mac_keys, key_ids, serials, st.data())
def test_payload_survives_errors_within_its_budget(mac_key, key_id, serial, data):
    """Up to ACCEPT_BUDGET // 2 wrong symbols (any bits inside them) still decode exactly."""
    p = Payload.create(mac_key, key_id, serial, 1)
    coded = deinterleave(encode_bits(p)).copy()  # symbol order
    bad = data.draw(st.lists(st.integers(0, RS_N - 1), max_size=ACCEPT_BUDGET // 2, unique=True))
    for sym in bad:
        mask = data.draw(st.integers(1, 2**SYMBOL_BITS - 1))
        for b in range(SYMBOL_BITS):
            if mask >> b & 1:
                coded[sym * SYMBOL_BITS + b] ^= 1
    res = decode_logits(np.where(interleave(coded) > 0, 3.0, -3.0))
    assert res is not None and res.payload == p


@BUDGET
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32),
                min_size=PAYLOAD_BITS, max_size=PAYLOAD_BITS))
def test_decoder_never_crashes_on_any_logits(values):
    res = decode_logits(np.asarray(values, dtype=np.float32))
    assert res is None or isinstance(res.payload, Payload)


# --- records, cards, backups ---------------------------------------------------------------------


THUMB = encode_jpeg_thumbnail(np.full((16, 16, 3), 128, np.uint8))


@pytest.fixture(scope="module")
def alice():
    return UnlockedIdentity.generate("Alice")


@pytest.fixture(scope="module")
def card_bytes(alice):
    rec = sign_record(alice, serial=7, payload_hex=Payload.create(alice.mac_key, alice.key_id, 7,
                                                                  1).to_hex(),
                      file_sha256="ab" * 32, face_box=[1, 2, 30, 40], face_thumb_jpeg=THUMB)
    return make_card(alice, [rec])


def _mutations():
    return st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                    max_size=8)


@BUDGET
@given(_mutations())
def test_mutated_cards_are_refused_or_equal(card_bytes, changes):
    """A card with any bytes changed either parses to the same card (a change in insignificant
    whitespace) or is refused with a one-line FakeTaggerError: never a crash, never a different
    owner that still verifies."""
    data = bytearray(card_bytes)
    for at, value in changes:
        data[at % len(data)] = value
    try:
        card = parse_card(bytes(data))
    except FakeTaggerError as err:
        assert "\n" not in str(err)
        return
    original = parse_card(card_bytes)
    assert card.public_raw == original.public_raw and card.name == original.name


@BUDGET
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash_card_or_backup_parsing(data):
    for parse in (parse_card, parse_backup):
        with contextlib.suppress(FakeTaggerError):
            parse(data)


@BUDGET
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20))
def test_arbitrary_json_is_refused_as_a_record_or_card(doc):
    with pytest.raises(FakeTaggerError):
        TagRecord.from_dict(doc)
    with pytest.raises(FakeTaggerError):
        parse_card(json.dumps(doc).encode())


@BUDGET
@given(serials, st.binary(min_size=32, max_size=32).map(bytes.hex))
def test_signed_records_verify_and_any_field_change_breaks_them(alice, serial, sha):
    p = Payload.create(alice.mac_key, alice.key_id, serial, 1)
    rec = sign_record(alice, serial=serial, payload_hex=p.to_hex(), file_sha256=sha,
                      face_box=[0, 0, 10, 10], face_thumb_jpeg=THUMB)
    assert verify_record(rec)
    doc = rec.to_dict()
    doc["file_sha256"] = ("0" if sha[0] != "0" else "1") + sha[1:]
    assert not verify_record(TagRecord.from_dict(doc))


# --- image loading -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_images():
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    out = {}
    for fmt, suffix in (("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("TIFF", ".tif")):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt)
        out[suffix] = buf.getvalue()
    return out


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from([".jpg", ".png", ".webp", ".tif"]), _mutations(),
       st.integers(0, 100))
def test_damaged_images_load_or_fail_with_one_line(small_images, tmp_path_factory, suffix,
                                                   changes, cut_percent):
    data = bytearray(small_images[suffix])
    for at, value in changes:
        data[at % len(data)] = value
    data = data[: max(0, len(data) * (100 - cut_percent // 4) // 100)]
    path = tmp_path_factory.mktemp("img") / f"x{suffix}"
    path.write_bytes(bytes(data))
    try:
        photo = load_photo(path)
    except PhotoError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert photo.rgb.ndim == 3 and photo.rgb.shape[2] == 3 and photo.rgb.dtype == np.uint8
