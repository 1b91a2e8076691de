"""Quality measures of a face and the filters built on them: too small, blurred, extreme pose.

Filtered faces are still recorded in the alignments file (with their flags) so a later run
with other thresholds, or a curious user, can see what was dropped and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from faceswap_gan.config import ExtractConfig
from faceswap_gan.faces import mesh_indices as mi

BLUR_REFERENCE_SIZE = 64  # blur is measured at this crop size so thresholds hold for any crop size
FRONTAL_PITCH_OFFSET = 6.7  # degrees the mesh's up-down axis leans back in MediaPipe's z on a level face

FLAG_SMALL = "small"
FLAG_BLURRED = "blurred"
FLAG_POSE = "pose"


@dataclass
class FaceQuality:
    size: float  # side of the face oval's box in frame pixels
    blur: float  # variance of the Laplacian of the grey crop at 64 px (higher = sharper)
    yaw: float  # degrees; positive = nose towards the image's right (as the sample records)
    pitch: float  # degrees; positive = nose up (chin up)
    roll: float  # degrees; positive = head turned clockwise in the image
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flags


def face_size(landmarks: np.ndarray) -> float:
    xy = np.asarray(landmarks, dtype=np.float64)[list(mi.FACE_OVAL), :2]
    span = xy.max(axis=0) - xy.min(axis=0)
    return float(span.max())


def blur_score(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the crop in grey, resampled to 64 px."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    if grey.shape[0] != BLUR_REFERENCE_SIZE:
        interp = cv2.INTER_AREA if grey.shape[0] > BLUR_REFERENCE_SIZE else cv2.INTER_LINEAR
        grey = cv2.resize(grey, (BLUR_REFERENCE_SIZE, BLUR_REFERENCE_SIZE), interpolation=interp)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the mesh's own 3D points; the one pose measure.

    The face's left-right and up-down axes are averaged over symmetric and midline point
    pairs in 3D (MediaPipe's z is in the same pixel units as x), made orthonormal, and the
    rotation they form is decomposed (yaw about the vertical, then pitch about the
    horizontal, then roll in the image plane). Signs follow faceswap_gan.synthetic' records
    (yaw > 0: nose towards the image's right; pitch > 0: nose up; roll > 0: clockwise), and a
    level frontal face reads about (0, 0, 0) (FRONTAL_PITCH_OFFSET). No canonical face model
    is needed (the mediapipe wheel ships none as data). Used by the extract's pose filter and
    by the eval's pose error (faceswap_gan.evaluation.metrics).
    """
    pts = np.asarray(landmarks, dtype=np.float64)[:, :3]
    x_axis = sum(_unit(pts[b] - pts[a]) for a, b in mi.SYMMETRIC_PAIRS)
    y_axis = sum(_unit(pts[b] - pts[a]) for a, b in mi.MIDLINE_PAIRS)
    x_axis = _unit(x_axis)
    y_axis = _unit(y_axis - x_axis * float(np.dot(y_axis, x_axis)))
    z_axis = np.cross(x_axis, y_axis)
    rot = np.stack([x_axis, y_axis, z_axis], axis=1)  # columns: face axes in image space
    yaw = math.atan2(-float(rot[0, 2]), float(rot[2, 2]))
    pitch = math.asin(float(np.clip(rot[1, 2], -1.0, 1.0)))
    roll = math.atan2(float(rot[1, 0]), float(rot[1, 1]))
    return math.degrees(yaw), math.degrees(pitch) + FRONTAL_PITCH_OFFSET, math.degrees(roll)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else v


def assess(landmarks: np.ndarray, crop: np.ndarray, config: ExtractConfig) -> FaceQuality:
    """Measure a face and flag what the config's thresholds reject."""
    size = face_size(landmarks)
    blur = blur_score(crop)
    yaw, pitch, roll = head_pose(landmarks)
    flags = []
    if size < config.min_face_size:
        flags.append(FLAG_SMALL)
    if blur < config.min_blur:
        flags.append(FLAG_BLURRED)
    if abs(yaw) > config.max_yaw or abs(pitch) > config.max_pitch:
        flags.append(FLAG_POSE)
    return FaceQuality(size=size, blur=blur, yaw=yaw, pitch=pitch, roll=roll, flags=flags)
