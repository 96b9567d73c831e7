"""dlib's 68-point landmark predictor and 128-D face descriptor, loaded from package data.

Both files ship in the `face_recognition_models` wheel, so nothing is downloaded; they load once
per process (about a second: the predictor is a 99 MB file) and are not thread-safe, hence the
worker thread below. The attack library (engine.attacks.geometry) uses the same two models.
"""

from __future__ import annotations

import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

#: Every dlib call runs on this one long-lived thread. Called straight from the desktop app's Qt
#: pool threads, compute_face_descriptor waited forever on a condition inside dlib, with no dlib
#: worker thread alive (tests/gui/test_flow.py; not reproduced from plain Python threads); one
#: owner thread also serialises the calls, which are not thread-safe.
_DLIB = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlib")


def model_file(name: str) -> str:
    """The path of one of the wheel's model files, found without importing the package.

    `face_recognition_models/__init__` imports the deprecated pkg_resources (setuptools), which
    the desktop build leaves out; the files themselves sit in its `models/` folder, in a checkout's
    site-packages and in the frozen bundle alike (installer/faketagger.spec collects them)."""
    spec = importlib.util.find_spec("face_recognition_models")
    roots = [Path(r) for r in (spec.submodule_search_locations or [])] if spec else []
    if hasattr(sys, "_MEIPASS"):
        roots.append(Path(sys._MEIPASS) / "face_recognition_models")
    for root in roots:
        path = root / "models" / name
        if path.is_file():
            return str(path)
    raise FileNotFoundError(f"{name} not found: install face-recognition-models (make setup)")


@lru_cache(maxsize=1)
def predictor():
    import dlib

    return dlib.shape_predictor(model_file("shape_predictor_68_face_landmarks.dat"))


@lru_cache(maxsize=1)
def recognizer():
    import dlib

    return dlib.face_recognition_model_v1(model_file("dlib_face_recognition_resnet_model_v1.dat"))


def shape(img: np.ndarray, rect: tuple[float, float, float, float]):
    """dlib's full_object_detection for the face inside *rect* (fractions of the crop side).

    No second face detection: the caller knows where the face is (an MTCNN box), which keeps the
    result deterministic and works on faces too small for dlib's own detector."""
    import dlib

    s = img.shape[0]
    box = dlib.rectangle(*(int(round(f * s)) for f in rect))
    return _DLIB.submit(lambda: predictor()(img, box)).result()


def points(det) -> np.ndarray:
    """(68, 2) float32 landmark coordinates (x, y) of a full_object_detection."""
    return np.array([(p.x, p.y) for p in det.parts()], np.float32)


def descriptor(img: np.ndarray, det) -> np.ndarray:
    """The 128-D descriptor (same person: distance under ~0.6) of the face *det* was fitted to."""
    return _DLIB.submit(
        lambda: np.asarray(recognizer().compute_face_descriptor(img, det), np.float32)).result()
