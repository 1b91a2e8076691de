"""The ground-truth record written beside every sample clip.

``<clip>.json`` (version 1)::

    {"version": 1, "clip": "debate", "video": "debate.mp4", "fps": 30, "size": [w, h],
     "frame_count": N, "audio_rate": 16000, "layout": "cuts" | "split" | "single",
     "truth_of": "debate" | null,           # set on a ground-truth clip
     "speakers": [...],                     # label order
     "swap": {"speaker_a": "speaker_b", ...},  # who replaces whom in the truth clip
     "seed": 0, "generator": "faceswap_gan.synthetic 2",
     "landmarks": "<clip>_landmarks.npz",
     "shots": [{"index", "start", "end", "speaker" | null, "layout"}],  # end exclusive
     "cuts": [frame, ...],                  # first frame of every shot after the first
     "frames": [{"index", "time", "shot",
                 "faces": [{"slot", "speaker", "truth_speaker", "motion_of", "side",
                            "box": [x0, y0, x1, y1], "iod", "yaw", "pitch", "roll",
                            "mouth", "blink"}]}]}

``speaker`` is the identity drawn in this clip (in a truth clip, the identity of the
inner face, brows to chin, on ``motion_of``'s head); ``truth_speaker`` the identity drawn at
this face in the ground-truth clip (what a perfect swap puts there; null for a
single-speaker clip); ``motion_of`` whose pose, mouth, blinks and head the face carries. ``slot`` indexes the face axis of the
landmarks file; ``side`` is "left"/"right" (or "panel<i>" beyond two) in split layout,
else null. Angles in degrees (see faceswap_gan.synthetic.mesh for signs); ``mouth`` is the
inner-lip gap over the eye distance; ``blink`` 0 open .. 1 closed.

``<clip>_landmarks.npz``: ``landmarks`` float32 (frames, faces, 478, 2), frame pixels
of the mesh as drawn, NaN where a slot has no face; ``version`` int (1).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from faceswap_gan.fileio import write_bytes_atomic, write_json_atomic

RECORD_VERSION = 1
# The content's version: it is part of samples.json's settings, so a set made by an older
# generator is rendered again. 2: the truth is a face swap (inner face only), not whole portraits.
GENERATOR = "faceswap_gan.synthetic 2"


def write_record(path: Path, record: dict[str, Any]) -> None:
    write_json_atomic(path, record)


def write_landmarks(path: Path, landmarks: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, landmarks=landmarks.astype(np.float32),
                        version=np.array(RECORD_VERSION))
    write_bytes_atomic(path, buffer.getvalue())


def load_landmarks(path: str | Path) -> np.ndarray:
    """(frames, faces, 478, 2) float32 from a ``<clip>_landmarks.npz``."""
    with np.load(path) as data:
        return data["landmarks"]


def round_floats(value: float, digits: int = 3) -> float:
    return float(round(float(value), digits))
