"""Where the generated face replaces the original: the face mesh from the eyebrows to the chin.

The mask is drawn in the aligned crop, where the face is upright: the convex hull of the
face-oval points below the top of the eyebrows, plus the eyebrows. It is then eroded
(so the seam sits inside the face, not on its outline) and feathered with a linear ramp
of the distance to the outline, which keeps every non-zero value strictly inside the hull.
Sizes are fractions of the face width, so the look is the same at any crop size.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceswap_gan.faces import mesh_indices as mi
from faceswap_gan.faces.align import transform_points

# The points the mask is drawn from (faces/mesh_indices.py, the one home of mesh indices).
_OVAL = np.array(sorted(set(mi.FACE_OVAL)), dtype=np.int64)
_BROWS = np.array(sorted(set(mi.EYEBROWS)), dtype=np.int64)


def face_hull(points: np.ndarray) -> np.ndarray:
    """(K, 2) outline of the face from the eyebrows to the chin, in the points' coordinates."""
    oval, brows = points[_OVAL], points[_BROWS]
    top = brows[:, 1].min()
    kept = np.concatenate([oval[oval[:, 1] >= top], brows])
    return cv2.convexHull(kept.astype(np.float32)).reshape(-1, 2)


def face_mask(
    points: np.ndarray,
    size: int | tuple[int, int],
    erode: float = 0.04,
    feather: float = 0.08,
) -> np.ndarray:
    """Float32 mask in [0, 1] of shape ``size`` (side or (h, w)) from 478 mesh points in its pixels.

    ``erode`` and ``feather`` are fractions of the face width: the mask is 0 outside the hull
    and within ``erode`` of the outline, ramps to 1 over the next ``feather``.
    """
    h, w = (size, size) if isinstance(size, int) else size
    hull = face_hull(np.asarray(points, dtype=np.float64)[:, :2])
    face_width = float(np.ptp(np.asarray(points)[_OVAL, 0]))
    # Rasterise with 4 bits of sub-pixel precision: at 32-64 px crops whole pixels are coarse.
    shift = 4
    filled = np.zeros((h, w), dtype=np.uint8)
    cv2.fillConvexPoly(filled, np.round(hull * (1 << shift)).astype(np.int32), 255,
                       lineType=cv2.LINE_AA, shift=shift)
    inside = (filled >= 128).astype(np.uint8)
    if not inside.any():
        return np.zeros((h, w), dtype=np.float32)
    # Distance to the nearest outside pixel; pad so the crop border counts as outside.
    dist = cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    erode_px = erode * face_width
    feather_px = max(feather * face_width, 1.0)
    return np.clip((dist - erode_px) / feather_px, 0.0, 1.0).astype(np.float32)


def crop_face_mask(
    landmarks: np.ndarray,
    matrix: np.ndarray,
    crop_size: int,
    erode: float = 0.04,
    feather: float = 0.08,
) -> np.ndarray:
    """The face mask in an aligned crop, from frame landmarks and the crop's frame->crop matrix."""
    return face_mask(transform_points(matrix, landmarks), crop_size, erode, feather)
