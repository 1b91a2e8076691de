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
FRONTAL_PITCH_OFFSET = 10.0  # degrees the chin-forehead line leans back in MediaPipe's z on a level face

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
    """(yaw, pitch, roll) in degrees from the mesh's 3D points (a coarse but cheap estimate).

    Yaw is the angle of the cheek-to-cheek line in the x-z plane, pitch that of the
    forehead-to-chin line in the y-z plane (less the lean a level face shows), roll that of
    the cheek-to-cheek line in the image. Signs follow faceswap_gan.synthetic' records. Yaw and
    pitch read low (on the sample clips about 0.4x and 0.6x the recorded angle, roll about
    0.9x); the pose filter's thresholds are in these units.
    """
    p = np.asarray(landmarks, dtype=np.float64)
    across = p[mi.LEFT_CHEEK_EDGE] - p[mi.RIGHT_CHEEK_EDGE]
    down = p[mi.CHIN] - p[mi.FOREHEAD]
    yaw = math.degrees(math.atan2(across[2], across[0]))
    # Chin up brings the chin nearer (smaller z) than the forehead: a negative lean.
    pitch = FRONTAL_PITCH_OFFSET - math.degrees(math.atan2(down[2], down[1]))
    roll = math.degrees(math.atan2(across[1], across[0]))
    return yaw, pitch, roll


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
