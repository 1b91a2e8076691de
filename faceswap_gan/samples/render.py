"""Draw one portrait at a pose and a camera framing: rig -> warp -> mouth and lids."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceswap_gan.samples.details import paint_lashes, paint_mouth, teeth_colour
from faceswap_gan.samples.mesh import FaceRig, PoseParams
from faceswap_gan.samples.portraits import Portrait
from faceswap_gan.samples.warp import warp_image


@dataclass
class Framing:
    """Where the camera puts the face: the eye midpoint's pixel and the eye distance.

    Framing is in face terms, not portrait pixels, so two different portraits with the
    same framing land at the same place and size (what the ground-truth swap needs).
    """

    centre_x: float
    centre_y: float
    iod_px: float


@dataclass
class RenderedFace:
    image: np.ndarray  # (H, W, 3) uint8 RGB, before lighting
    landmarks: np.ndarray  # (478, 2) float32 frame pixels, as drawn
    mouth: float  # rendered inner-lip gap / eye distance
    blink: float


def extend_backdrop(image: np.ndarray, pad: int) -> np.ndarray:
    """Pad a photo on all sides with a heavily blurred continuation of its edges.

    A camera framing wider than the photo then sees a soft, plausible backdrop instead
    of a mirrored copy of the sitter.
    """
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    small = cv2.resize(padded, None, fx=0.125, fy=0.125, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3.0)
    blurred = cv2.resize(small, (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_LINEAR)
    h, w = image.shape[:2]
    inside = np.zeros(padded.shape[:2], np.float32)
    inside[pad:pad + h, pad:pad + w] = 1.0
    ramp = max(4.0, 0.03 * max(h, w))
    alpha = cv2.GaussianBlur(inside, (0, 0), ramp)
    alpha = np.minimum(alpha * 2.0, 1.0) * inside + alpha * (1 - inside)
    out = padded.astype(np.float32) * alpha[..., None] + blurred.astype(np.float32) * (1 - alpha[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class SpeakerRenderer:
    """A portrait ready to be drawn in any pose; build once per speaker."""

    def __init__(self, portrait: Portrait) -> None:
        self.name = portrait.name
        h, w = portrait.image.shape[:2]
        self.pad = max(h, w) // 2
        self.image = extend_backdrop(portrait.image, self.pad)
        landmarks = portrait.landmarks.astype(np.float64).copy()
        landmarks[:, :2] += self.pad
        self.rig = FaceRig(landmarks, (self.image.shape[1], self.image.shape[0]))
        self.teeth = teeth_colour(portrait.image, portrait.landmarks, self.rig.iod)

    def camera(self, framing: Framing) -> tuple[float, np.ndarray]:
        """Scale and offset taking portrait pixels to frame pixels (eye midpoint -> centre)."""
        scale = framing.iod_px / self.rig.iod
        offset = np.array([framing.centre_x, framing.centre_y]) - scale * self.rig.eye_centre
        return scale, offset

    def render(self, pose: PoseParams, framing: Framing, size: tuple[int, int]) -> RenderedFace:
        width, height = size
        scale, offset = self.camera(framing)
        posed = self.rig.pose(pose)
        dst = posed.points * scale + offset
        inverse = np.array([[1 / scale, 0, -offset[0] / scale], [0, 1 / scale, -offset[1] / scale]])
        image = warp_image(self.image, self.rig.rest_points, dst, self.rig.triangles, posed.depth,
                           self.rig.rest_area_sign, (width, height), inverse)
        upper, lower = (p * scale + offset for p in posed.inner_lips)
        paint_mouth(image, upper, lower, framing.iod_px, self.teeth)
        paint_lashes(image, tuple(p * scale + offset for p in posed.upper_lids), posed.blink,
                     framing.iod_px)
        landmarks = (posed.landmarks * scale + offset).astype(np.float32)
        return RenderedFace(image=image, landmarks=landmarks,
                            mouth=posed.mouth_gap / self.rig.iod, blink=posed.blink)
