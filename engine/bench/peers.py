"""Peer watermarkers for the bench: invisible-watermark (dwtDct, dwtDctSvd, rivaGan) and
blind-watermark, run face-tag against face-tag with FakeTagger.

Why the face square and not the whole photo: FakeTagger only tags faces, and a DeepFake only
keeps (a transformed version of) the face. So each peer embeds into exactly the square our tag
occupies (engine.faces.face_square: 1.5x the MTCNN box), and after an attack it decodes from the
square around the RE-DETECTED face, the same way our verify does. The peers need at least 256x256
pixels (invisible-watermark refuses less), so each works on the square resized to 256 px; its
residual is scaled back to the square's native size and added over the whole square (our model
works at 128 px the same way, but pastes with a feathered edge). Peers carry the same 60 data
bits as our payload (rivaGan is fixed at 32 bits: it carries the first 32), with no error
correction and no notion of "no tag": every decode returns bits, so false tags are not
comparable and not reported for them. Each decodes one crop (ours soft-combines nine jittered
ones): the peers give no per-bit reliability to combine.

Optional: needs the `bench` extra (`make bench-deps`). Nothing is downloaded at run time; the
rivaGan ONNX models ship inside the invisible-watermark wheel.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.errors import FakeTaggerError
from engine.faces import Face, extract_square, face_square

#: Working size of the peers: the smallest input invisible-watermark accepts.
WORK = 256
PEER_NAMES = ("dwtDct", "dwtDctSvd", "rivaGan", "blind-watermark")
INSTALL_HINT = "install the bench extra: `make bench-deps` (pip install '.[bench]' and the peers)"


class PeerUnavailable(FakeTaggerError):
    """A peer library (or one of its imports) is missing."""


@dataclass(frozen=True)
class Peer:
    """One peer method on a WORKxWORK uint8 RGB square: embed(bits) and decode() -> bits."""

    name: str
    bits: int
    note: str
    embed_work: Callable[[np.ndarray, np.ndarray], np.ndarray]
    decode_work: Callable[[np.ndarray], np.ndarray]

    def embed(self, rgb: np.ndarray, faces: list[Face], bits: list[np.ndarray]) -> np.ndarray:
        """A copy of rgb with each face square carrying its bits (first self.bits of each)."""
        out = rgb.copy()
        for face, b in zip(faces, bits, strict=True):
            sq = face_square(face.box)
            crop = extract_square(rgb, sq)
            work = _resize(crop, WORK)
            marked = self.embed_work(work, np.asarray(b[: self.bits], np.uint8))
            residual = marked.astype(np.float32) - work.astype(np.float32)
            _paste(out, _resize_float(residual, sq[2]), sq)
        return out

    def decode(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The bits read from the standard face square of a (re-)detected face."""
        work = _resize(extract_square(rgb, face_square(face.box)), WORK)
        return np.asarray(self.decode_work(work), np.uint8).reshape(-1)[: self.bits]


def _paste(rgb: np.ndarray, residual: np.ndarray, square: tuple[int, int, int]) -> None:
    """Add the residual over the whole square (the part inside the image), without our feathered
    edge: the peers spread their bits over the whole region, and a faded border cost them up to
    20 bits in 100 in a probe here, so the comparison gives them their full square."""
    x, y, side = square
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    region = rgb[y0:y1, x0:x1].astype(np.float32) + residual[y0 - y:y1 - y, x0 - x:x1 - x]
    rgb[y0:y1, x0:x1] = np.clip(np.rint(region), 0, 255).astype(np.uint8)


def _resize(rgb: np.ndarray, side: int) -> np.ndarray:
    if rgb.shape[:2] == (side, side):
        return np.ascontiguousarray(rgb)
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(
        (side, side), Image.Resampling.BICUBIC))


def _resize_float(res: np.ndarray, side: int) -> np.ndarray:
    if res.shape[0] == side:
        return res
    return np.stack([np.asarray(Image.fromarray(res[..., c]).resize(
        (side, side), Image.Resampling.BILINEAR)) for c in range(3)], axis=-1)


def _imwatermark(method: str, nbits: int) -> Peer:
    try:
        import cv2  # noqa: F401  (imwatermark imports it; fail here with the hint)
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError as err:
        raise PeerUnavailable(f"invisible-watermark is not usable ({err}): {INSTALL_HINT}") from err
    if method == "rivaGan":
        try:
            WatermarkEncoder.loadModel()  # the ONNX files inside the package; onnxruntime
        except ImportError as err:
            raise PeerUnavailable(f"rivaGan needs onnxruntime ({err}): {INSTALL_HINT}") from err

    def embed(rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
        enc = WatermarkEncoder()
        enc.set_watermark("bits", bits.tolist())
        return enc.encode(rgb[..., ::-1].copy(), method)[..., ::-1]  # the library works in BGR

    def decode(rgb: np.ndarray) -> np.ndarray:
        return np.asarray(WatermarkDecoder("bits", nbits).decode(rgb[..., ::-1].copy(), method))

    note = "fixed at 32 bits by the library" if method == "rivaGan" else "no error correction"
    return Peer(method, nbits, note, embed, decode)


def _import_blind_watermark():
    """blind_watermark's package import calls multiprocessing.set_start_method('fork'), which
    raises if the start method was already chosen in this process; skip that call in that case
    (we run it in its single-process 'common' mode, so the start method does not matter)."""
    if multiprocessing.get_start_method(allow_none=True) is None:
        import blind_watermark
    else:
        original = multiprocessing.set_start_method
        multiprocessing.set_start_method = lambda *a, **k: None
        try:
            import blind_watermark
        finally:
            multiprocessing.set_start_method = original
    blind_watermark.bw_notes.close()  # otherwise it prints a banner on first use
    return blind_watermark


def _blind_watermark(nbits: int) -> Peer:
    try:
        import cv2  # noqa: F401
        import pywt  # noqa: F401

        bw = _import_blind_watermark()
    except ImportError as err:
        raise PeerUnavailable(f"blind-watermark is not usable ({err}): {INSTALL_HINT}") from err

    def embed(rgb: np.ndarray, bits: np.ndarray) -> np.ndarray:
        wm = bw.WaterMark(password_wm=1, password_img=1)
        wm.read_img(img=rgb[..., ::-1].astype(np.float32))
        wm.read_wm(bits.astype(bool), mode="bit")
        out = wm.embed()[..., ::-1]
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def decode(rgb: np.ndarray) -> np.ndarray:
        wm = bw.WaterMark(password_wm=1, password_img=1)
        got = wm.extract(embed_img=rgb[..., ::-1].copy(), wm_shape=nbits, mode="bit")
        return np.asarray(got, np.uint8)

    return Peer("blind-watermark", nbits, "no error correction", embed, decode)


def load_peers(names: tuple[str, ...] = PEER_NAMES, data_bits: int = 60) -> list[Peer]:
    """The peers by name, each carrying data_bits where it can; PeerUnavailable if one is not
    installed (the bench then says how to install them instead of silently skipping)."""
    peers = []
    for name in names:
        if name in ("dwtDct", "dwtDctSvd"):
            peers.append(_imwatermark(name, data_bits))
        elif name == "rivaGan":
            peers.append(_imwatermark(name, 32))
        elif name == "blind-watermark":
            peers.append(_blind_watermark(data_bits))
        else:
            raise PeerUnavailable(f"unknown peer {name!r} (known: {', '.join(PEER_NAMES)})")
    return peers
