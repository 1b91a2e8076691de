"""A head rig built from one portrait's MediaPipe face mesh, posed by a few parameters.

The rig holds the portrait's 478 landmarks (x, y, z in portrait pixels) plus control
points outside the face: rings around the face oval (hair, ears, neck follow the head
with weights that fade outwards) and a far border (the background stays). One Delaunay
triangulation over all of them, made at rest, is what the warp draws.

``FaceRig.pose(params)`` gives every control point's position in portrait pixels after
the expression (jaw, blinks) and the head rotation, plus a depth for drawing order.

Sign conventions (also in the sample record): yaw > 0 turns the nose towards image
right, pitch > 0 lifts the nose (chin up), roll > 0 turns the head clockwise in the
image. All are relative to the portrait's own pose, except roll, whose portrait offset
(the tilt of the eye line) is removed so roll 0 means level eyes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

from faceswap_gan.faces import mesh_indices as mi

# MediaPipe face-mesh indices: faceswap_gan.faces.mesh_indices ("right" is the subject's
# right eye, which is on the image's left). As lists, so they index numpy arrays.
_OVAL = list(mi.FACE_OVAL)
_UPPER_LIPS = list(mi.LIPS_INNER_UPPER + mi.LIPS_OUTER_UPPER)
_LOWER_LIPS = list(mi.LIPS_INNER_LOWER + mi.LIPS_OUTER_LOWER)
# Per eye: upper lid, lower lid, upper crease, iris (ring and centre).
_EYES = tuple(
    (list(upper), list(lower), list(crease), list(iris))
    for upper, lower, crease, iris in (
        (mi.RIGHT_UPPER_LID, mi.RIGHT_LOWER_LID, mi.RIGHT_UPPER_CREASE, mi.RIGHT_IRIS_AND_CENTER),
        (mi.LEFT_UPPER_LID, mi.LEFT_LOWER_LID, mi.LEFT_UPPER_CREASE, mi.LEFT_IRIS_AND_CENTER),
    )
)

# Rings around the face oval: scale about the oval's centre, and how much of the head's
# motion each follows (hair and ears near the face move with it; far ones barely).
RING_SCALES = (1.18, 1.45, 1.9, 2.7)
RING_FOLLOW = (0.9, 0.6, 0.3, 0.08)
BORDER_POINTS_PER_SIDE = 8
# A jaw opening of 1.0 parts the inner lips by one inter-ocular distance.
JAW_GAIN = 1.0
UPPER_LIFT = 0.15


@dataclass
class PoseParams:
    """One frame's head state. Angles in degrees; mouth = inner-lip gap / eye distance."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    mouth: float = 0.0
    blink: float = 0.0  # 0 open, 1 closed (both eyes)


@dataclass
class PosedRig:
    points: np.ndarray  # (P, 2) float64 portrait pixels after expression and rotation
    depth: np.ndarray  # (P,) larger = farther; non-face control points are far
    landmarks: np.ndarray  # (478, 2) the face-mesh part of ``points``
    inner_lips: tuple[np.ndarray, np.ndarray]  # upper, lower inner-lip polylines (11, 2)
    upper_lids: tuple[np.ndarray, np.ndarray]  # right, left upper-lid polylines (7, 2)
    blink: float
    mouth_gap: float  # rendered inner-lip gap in portrait pixels


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation in image axes (x right, y down, z away from the camera)."""
    y, p, r = np.radians([yaw, pitch, roll])
    # yaw about the image's vertical axis: nose (negative z) moves to +x for yaw > 0
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    # pitch about the horizontal axis: nose moves to -y (up) for pitch > 0
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    # roll in the image plane, clockwise on screen (y down) for roll > 0
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _mesh_neighbours() -> list[np.ndarray]:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    neighbours: list[set[int]] = [set() for _ in range(468)]
    for a, b in FACEMESH_TESSELATION:
        neighbours[a].add(b)
        neighbours[b].add(a)
    return [np.array(sorted(n), dtype=np.int64) for n in neighbours]


def _smooth_depth(z: np.ndarray, xy: np.ndarray, iod: float) -> np.ndarray:
    """Laplacian-smooth the mesh depth, strongly towards the face's sides.

    MediaPipe's depth is noisy near the silhouette; rotating that noise makes a sawtooth
    cheek. The centre of the face keeps its shape (a few light iterations).
    """
    z = z.astype(np.float64).copy()
    neighbours = _mesh_neighbours()
    centre = xy[_OVAL].mean(axis=0)
    radius = np.linalg.norm(xy[_OVAL] - centre, axis=1).mean()
    dist = np.linalg.norm(xy[:468] - centre, axis=1) / max(radius, 1e-6)
    strength = np.clip((dist - 0.55) / 0.35, 0.0, 1.0) * 0.8 + 0.1
    for _ in range(25):
        avg = np.array([z[n].mean() for n in neighbours])
        z[:468] += strength * (avg - z[:468])
    return z


class FaceRig:
    """The deformable head of one portrait. Build once; ``pose`` per frame."""

    def __init__(self, landmarks: np.ndarray, image_size: tuple[int, int]) -> None:
        lm = np.asarray(landmarks, dtype=np.float64)
        if lm.shape != (mi.NUM_LANDMARKS, 3):
            raise ValueError(f"landmarks must be ({mi.NUM_LANDMARKS}, 3), got {lm.shape}")
        self.image_size = image_size  # (width, height) of the portrait
        xy = lm[:, :2]
        right_eye, left_eye = xy[mi.RIGHT_IRIS_CENTER], xy[mi.LEFT_IRIS_CENTER]
        self.eye_centre = (right_eye + left_eye) / 2
        eye_vec = left_eye - right_eye
        self.iod = float(np.linalg.norm(eye_vec))
        # The portrait's own tilt of the eye line; the rig removes it so roll 0 = level.
        self.roll_offset = float(np.degrees(np.arctan2(eye_vec[1], eye_vec[0])))
        self.u = eye_vec / self.iod  # face's horizontal axis (towards the image right)
        self.v = np.array([-self.u[1], self.u[0]])  # face's down axis

        z = lm[:, 2].copy()
        z[:468] = _smooth_depth(z[:468], xy, self.iod)
        self.rest3d = np.column_stack([xy, z])
        # Head pivot: between the ears, behind the face, a little below the eyes. Placed
        # from the eyes (not the whole mesh), in eye distances, so every portrait's eyes
        # swing the same way for the same pose: the ground-truth swap keeps placement.
        # The portrait's tilt is removed by turning about the eye midpoint first (so the
        # eyes stay where the camera framing puts them); the pivot is then straight below.
        eye_depth = float(z[[*mi.RIGHT_EYE_CORNERS, *mi.LEFT_EYE_CORNERS]].mean())
        self.eye_point = np.array([*self.eye_centre, eye_depth])
        self.pivot = self.eye_point + np.array([0.0, 0.45 * self.iod, 1.3 * self.iod])
        self.level = _rotation(0.0, 0.0, -self.roll_offset)

        # Control points outside the face.
        oval = xy[_OVAL]
        oval_centre = oval.mean(axis=0)
        rings, ring_depth, ring_follow, ring_src = [], [], [], []
        for scale, follow in zip(RING_SCALES, RING_FOLLOW):
            rings.append(oval_centre + scale * (oval - oval_centre))
            ring_depth.append(z[_OVAL])
            ring_follow.append(np.full(len(_OVAL), follow))
            ring_src.append(np.array(_OVAL))
        self.ring_xy = np.concatenate(rings)
        self.ring_z = np.concatenate(ring_depth)
        self.ring_follow = np.concatenate(ring_follow)
        self.ring_src = np.concatenate(ring_src)
        w, h = image_size
        span = 4.0 * max(w, h, 8 * self.iod)  # far enough that no camera framing sees past it
        t = np.linspace(-0.5, 0.5, BORDER_POINTS_PER_SIDE, endpoint=False)
        centre = self.eye_centre
        top = np.column_stack([centre[0] + t * span, np.full_like(t, centre[1] - span / 2)])
        right = np.column_stack([np.full_like(t, centre[0] + span / 2), centre[1] + t * span])
        bottom = np.column_stack([centre[0] - t * span, np.full_like(t, centre[1] + span / 2)])
        left = np.column_stack([np.full_like(t, centre[0] - span / 2), centre[1] - t * span])
        self.border_xy = np.concatenate([top, right, bottom, left])

        self.rest_points = np.concatenate([xy, self.ring_xy, self.border_xy])
        self.num_face = mi.NUM_LANDMARKS
        self.num_ring = len(self.ring_xy)
        self.triangles = Delaunay(self.rest_points).simplices.astype(np.int32)
        self.rest_area_sign = np.sign(_signed_areas(self.rest_points, self.triangles))

        self._jaw_weights = self._make_jaw_weights()
        self.rest_gap = float(np.dot(xy[mi.LOWER_LIP_INNER] - xy[mi.UPPER_LIP_INNER], self.v))

    def _make_jaw_weights(self) -> np.ndarray:
        """How much each mesh point moves with the lower jaw (1 = lower lip and chin)."""
        xy = self.rest3d[:, :2]
        rel = xy - self.eye_centre
        along_v = rel @ self.v
        along_u = rel @ self.u
        inner_lips = list(mi.LIPS_INNER_UPPER + mi.LIPS_INNER_LOWER)
        mouth_v = float(np.mean((xy[inner_lips] - self.eye_centre) @ self.v))
        chin_v = float((xy[mi.CHIN] - self.eye_centre) @ self.v)
        right_corner, left_corner = mi.MOUTH_CORNERS
        mouth_half = 0.5 * abs(float((xy[left_corner] - xy[right_corner]) @ self.u))
        face_half = 0.5 * float(np.ptp(xy[_OVAL] @ self.u))
        # Below the mouth line the weight rises to 1 over a fifth of the mouth-chin span.
        span = max(chin_v - mouth_v, 1e-6)
        vertical = np.clip((along_v - mouth_v) / (0.2 * span), 0.0, 1.0)
        vertical = vertical * vertical * (3 - 2 * vertical)
        # Sideways it fades from the mouth's width to the jaw's hinge near the ears.
        lateral = 1.0 - np.clip((np.abs(along_u) - mouth_half) / max(face_half - mouth_half, 1e-6),
                                0.0, 1.0)
        weights = vertical * (0.35 + 0.65 * lateral)
        # Lips: the opening is an oval, not a box. The lower lip drops most in the middle
        # and the upper lip lifts a little (UPPER_LIFT of the opening), both tapering
        # towards the corners.
        def taper(indices: list[int]) -> np.ndarray:
            across = np.abs(along_u[indices]) / max(mouth_half, 1e-6)
            return np.clip(1.0 - across ** 2, 0.0, 1.0)

        weights[_UPPER_LIPS] = -UPPER_LIFT * taper(_UPPER_LIPS)
        weights[_LOWER_LIPS] = 0.35 + 0.65 * taper(_LOWER_LIPS)
        corners = [mi.LIPS_INNER[0], mi.LIPS_INNER[10], *mi.MOUTH_CORNERS]
        weights[corners] = 0.0
        return weights

    def ring_jaw_weights(self) -> np.ndarray:
        """Rings under the jaw move with it too, or triangles below the chin fold over."""
        follow = np.clip(self.ring_follow * 1.1, 0.0, 1.0)
        return self._jaw_weights[self.ring_src] * follow

    def pose(self, params: PoseParams) -> PosedRig:
        p3 = self.rest3d.copy()
        # --- expression, in the face's own frame (before the head turns) ---
        gap_target = params.mouth * JAW_GAIN * self.iod
        # The mid-lips part by (1 + UPPER_LIFT) x drop; may be negative: closes an open mouth.
        drop = (gap_target - self.rest_gap) / (1.0 + UPPER_LIFT)
        jaw = self._jaw_weights
        p3[:, :2] += (drop * jaw)[:, None] * self.v
        p3[:, 2] += 0.25 * drop * jaw  # the jaw swings back a little as it opens
        ring_xy = self.ring_xy + (drop * self.ring_jaw_weights())[:, None] * self.v

        blink = float(np.clip(params.blink, 0.0, 1.0))
        if blink > 0:
            for upper, lower, crease, iris in _EYES:
                # The lid closes onto a line a fifth of the way up from the lower lid.
                closed = 0.8 * p3[lower] + 0.2 * p3[upper]
                delta = blink * (closed - p3[upper])
                p3[upper] += delta
                p3[crease] += 0.45 * delta  # the skin above follows: lid texture from above
                # The iris squashes down with the lid so nothing folds over it.
                lower_mid = p3[lower[3]]
                for i in iris:
                    p3[i, :2] += blink * 0.9 * np.dot(lower_mid[:2] - p3[i, :2], self.v) * self.v

        # --- level the portrait's tilt about the eyes, then turn the head about the pivot ---
        turn = _rotation(params.yaw, params.pitch, params.roll)
        rot = turn @ self.level
        # p -> turn @ (level @ (p - eye) + eye - pivot) + pivot, written as rot @ p + offset
        offset = turn @ (self.eye_point - self.level @ self.eye_point - self.pivot) + self.pivot
        posed = p3 @ rot.T + offset
        ring3 = np.column_stack([ring_xy, self.ring_z])
        ring_rot = ring3 @ rot.T + offset
        ring_posed = ring_xy + self.ring_follow[:, None] * (ring_rot[:, :2] - ring_xy)

        points = np.concatenate([posed[:, :2], ring_posed, self.border_xy])
        far = float(posed[:, 2].max()) + 1e6
        depth = np.concatenate([posed[:, 2], np.full(self.num_ring, far),
                                np.full(len(self.border_xy), far * 2)])
        lm = posed[:, :2]
        gap = float(np.dot(lm[mi.LOWER_LIP_INNER] - lm[mi.UPPER_LIP_INNER], rot[:2, :2] @ self.v))
        return PosedRig(
            points=points,
            depth=depth,
            landmarks=lm,
            inner_lips=(lm[list(mi.LIPS_INNER_UPPER)], lm[list(mi.LIPS_INNER_LOWER)]),
            upper_lids=(lm[list(mi.RIGHT_UPPER_LID)], lm[list(mi.LEFT_UPPER_LID)]),
            blink=blink,
            mouth_gap=max(gap, 0.0),
        )


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = (points[triangles[:, i]] for i in range(3))
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Signed area of each triangle (positive = counter-clockwise in x-right, y-up terms)."""
    return _signed_areas(points, triangles)
