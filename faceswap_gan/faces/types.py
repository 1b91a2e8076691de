"""The small records that flow between the face stages.

Conventions (everywhere in the library):
- images are numpy uint8 arrays, RGB, shape (H, W, 3); convert to BGR only at OpenCV calls
  that need it;
- pixel coordinates are (x, y) floats in the frame the image was decoded to (rotation
  already applied);
- landmarks are MediaPipe's 478-point face mesh, shape (478, 3) float32, x and y in pixels,
  z in pixels too (MediaPipe's normalised z times the frame width), smaller z = nearer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FaceDetection:
    """One face from the detector, before tracking."""

    box: np.ndarray  # (4,) x0, y0, x1, y1 in pixels
    score: float
    keypoints: np.ndarray  # (6, 2) MediaPipe order: right eye, left eye, nose, mouth, right ear, left ear


@dataclass
class TrackedFace:
    """A face in one frame, with the id of the track it belongs to."""

    frame_index: int
    timestamp: float  # seconds from the start of the stream
    track_id: int
    box: np.ndarray  # (4,) x0, y0, x1, y1 in pixels
    score: float  # detection score of the track's last detection
    landmarks: np.ndarray  # (478, 3) float32, smoothed when a smoother ran
    speaker: str | None = None


@dataclass
class AlignedCrop:
    """A square crop of a face in the canonical pose, with the transform that made it."""

    image: np.ndarray  # (S, S, 3) uint8 RGB
    matrix: np.ndarray  # (2, 3) float64 similarity transform: frame pixels -> crop pixels
    face: TrackedFace

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    def inverse_matrix(self) -> np.ndarray:
        """(2, 3) crop pixels -> frame pixels."""
        m = np.vstack([self.matrix, [0.0, 0.0, 1.0]])
        return np.linalg.inv(m)[:2]
