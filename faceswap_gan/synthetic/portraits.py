"""Still portraits the sample footage is animated from, and their face meshes.

The defaults are the two public-domain portraits that ship inside pip packages, so a
fresh machine needs no download: scikit-image's astronaut (Eileen Collins) and
matplotlib's Grace Hopper. The third person of ``faceswap samples --moderator`` (someone who
is neither speaker: the moderator, the audience) is scikit-image's cameraman, the only other
real face a pip package ships here: a grey photo, tinted towards skin tones and enlarged.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces import mesh_indices as mi
from faceswap_gan.video.reader import read_image

DEFAULT_SPEAKERS = ("speaker_a", "speaker_b")
DEFAULT_MODERATOR = "moderator"


@dataclass
class Portrait:
    """A portrait with its face mesh: what the animator needs from a photo."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: np.ndarray  # (478, 3) float32 pixels (z = MediaPipe z times the width)

    @property
    def fingerprint(self) -> str:
        return portrait_fingerprint(self.image)


def portrait_fingerprint(image: np.ndarray) -> str:
    """Short hash of the pixels, so cached samples know which photo made them."""
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:12]


def default_portraits() -> dict[str, np.ndarray]:
    """speaker_a: the astronaut, speaker_b: Grace Hopper (RGB uint8)."""
    import matplotlib.cbook
    import skimage.data

    astronaut = np.ascontiguousarray(skimage.data.astronaut()[..., :3])
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        data = np.frombuffer(handle.read(), dtype=np.uint8)
    hopper = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return {DEFAULT_SPEAKERS[0]: astronaut, DEFAULT_SPEAKERS[1]: hopper}


def default_third_portrait() -> np.ndarray:
    """The cameraman (scikit-image, public domain), head and shoulders, as RGB uint8.

    The photo is grey; a fixed warm tint gives it skin-like colour so that no colour feature
    tells him apart trivially, and it is enlarged 2x so the mesh finds his face (3/4 view,
    looking into a camera)."""
    import skimage.data

    grey = skimage.data.camera()[40:330, 60:350]
    big = cv2.resize(grey, (580, 580), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    tint = np.array([1.06, 0.90, 0.76], np.float32)
    rgb = big[..., None] * tint + np.array([6.0, 4.0, 0.0], np.float32)
    return np.ascontiguousarray(np.clip(rgb, 0, 255).astype(np.uint8))


def load_portrait(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8; FaceswapError when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FaceswapError(f"portrait not found: {path}")
    return read_image(path)


def parse_portrait_option(value: str) -> tuple[str, Path]:
    """``NAME=PATH`` from the command line."""
    name, sep, path = value.partition("=")
    name = name.strip()
    if not sep or not name or not path:
        raise FaceswapError(f"--portrait wants NAME=PATH, got '{value}'")
    if not all(c.isalnum() or c in "_-" for c in name):
        raise FaceswapError(f"speaker name '{name}' may use only letters, digits, _ and -")
    return name, Path(path)


def find_face_mesh(image: np.ndarray) -> np.ndarray | None:
    """The largest face's 478-point mesh in pixels, or None when MediaPipe finds no face."""
    import mediapipe as mp

    from faceswap_gan.faces.detect import quiet_native_logs

    h, w = image.shape[:2]
    with quiet_native_logs(), mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=4,
        min_detection_confidence=0.5,
    ) as mesh:
        result = mesh.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
        return None
    faces = [
        np.array([[p.x * w, p.y * h, p.z * w] for p in face.landmark], dtype=np.float32)
        for face in result.multi_face_landmarks
    ]
    return max(faces, key=lambda lm: float(np.ptp(lm[:, 0]) * np.ptp(lm[:, 1])))


def analyse_portrait(name: str, image: np.ndarray) -> Portrait:
    """Find the face mesh; FaceswapError when the photo has no usable face."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise FaceswapError(f"portrait '{name}' must be an RGB uint8 image")
    landmarks = find_face_mesh(image)
    if landmarks is None:
        raise FaceswapError(f"no face found in the portrait for '{name}'; use a clear, frontal photo")
    iod = float(np.linalg.norm(landmarks[mi.RIGHT_IRIS_CENTER, :2] - landmarks[mi.LEFT_IRIS_CENTER, :2]))
    if iod < 12:
        raise FaceswapError(
            f"the face in the portrait for '{name}' is too small ({iod:.0f} px between the eyes; "
            "need at least 12)"
        )
    return Portrait(name=name, image=np.ascontiguousarray(image), landmarks=landmarks)
