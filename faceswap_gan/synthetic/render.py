"""Draw one portrait at a pose and a camera framing: rig -> warp -> mouth and lids.

``SpeakerRenderer.draw_face_on`` draws a portrait's face mesh onto another face's drawn
mesh instead: the inner face of a perfect face swap (samples/truth.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceswap_gan.faces import mesh_indices as mi
from faceswap_gan.synthetic.details import paint_lashes, paint_mouth, teeth_colour
from faceswap_gan.synthetic.mesh import FaceRig, PoseParams
from faceswap_gan.synthetic.portraits import Portrait
from faceswap_gan.synthetic.warp import warp_image


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
    depth: np.ndarray  # (478,) drawing order of the landmarks, larger = farther


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
        # The face mesh alone (no rings or border): what a face swap carries to another head.
        inner = (self.rig.triangles < mi.NUM_LANDMARKS).all(axis=1)
        self.face_triangles = self.rig.triangles[inner]
        self.face_area_sign = self.rig.rest_area_sign[inner]

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
        image = warp_image(self.image, self.rig.rest_points, dst, self.rig.triangles, posed.depth,
                           self.rig.rest_area_sign, (width, height), _inverse(scale, offset))
        drawn = posed.landmarks * scale + offset
        self.paint_details(image, drawn, posed.blink, framing.iod_px)
        return RenderedFace(image=image, landmarks=drawn.astype(np.float32),
                            mouth=posed.mouth_gap / self.rig.iod, blink=posed.blink,
                            depth=posed.depth[:mi.NUM_LANDMARKS].copy())

    def paint_details(self, image: np.ndarray, landmarks: np.ndarray, blink: float,
                      iod_px: float) -> None:
        """Paint the mouth interior (this portrait's teeth) and lashes at ``landmarks``, in place."""
        paint_mouth(image, landmarks[list(mi.LIPS_INNER_UPPER)], landmarks[list(mi.LIPS_INNER_LOWER)],
                    iod_px, self.teeth)
        paint_lashes(image, (landmarks[list(mi.RIGHT_UPPER_LID)], landmarks[list(mi.LEFT_UPPER_LID)]),
                     blink, iod_px)

    def draw_face_on(self, face: RenderedFace, framing: Framing,
                     box: tuple[int, int, int, int]) -> np.ndarray:
        """This portrait's face mesh warped onto ``face``'s drawn mesh; the (x0, y0, x1, y1) box.

        Every landmark lands where ``face`` drew it, so this face follows the other's pose,
        mouth and lids, and its outline is the other's. The mouth interior and lashes are
        not painted: call ``paint_details`` after any recolouring (they are not skin).
        Pixels outside the mesh show this portrait's backdrop: callers blend the result in
        through a face mask.
        """
        x0, y0, x1, y1 = box
        origin = np.array([x0, y0], dtype=np.float64)
        scale, offset = self.camera(framing)
        # One warp from the portrait (not a render of it re-warped): no second resampling blur.
        return warp_image(self.image, self.rig.rest_points[:mi.NUM_LANDMARKS],
                          face.landmarks.astype(np.float64) - origin, self.face_triangles,
                          face.depth, self.face_area_sign, (x1 - x0, y1 - y0),
                          _inverse(scale, offset - origin))


def _inverse(scale: float, offset: np.ndarray) -> np.ndarray:
    """(2, 3) frame -> portrait affine of the camera ``p * scale + offset``."""
    return np.array([[1 / scale, 0, -offset[0] / scale], [0, 1 / scale, -offset[1] / scale]])
