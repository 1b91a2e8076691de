"""Align a face to the canonical template: a similarity transform (Umeyama) and a square crop.

The template lives in "eye units": origin midway between the eye centres, x to the subject's
left (the image's right), y down, the eye centres one unit apart at (-0.5, 0) and (0.5, 0).
The other template points (nose bridge, mouth corners) are the symmetrised mean of MediaPipe
meshes of the two public-domain portraits that ship with scikit-image and matplotlib.

The crop frame: ``padding = 0`` makes the face oval (forehead to chin) fill the crop; each
0.1 of padding adds a tenth of that side on every edge (0.25 is the default, about 0.6 shows
the whole head). An eye centre is the midpoint of that eye's two corners (the iris moves with
gaze, so it is not used).
"""

from __future__ import annotations

import cv2
import numpy as np

from faceswap_gan.faces import mesh_indices as mi
from faceswap_gan.faces.types import AlignedCrop, TrackedFace

# ALIGN_POINTS in eye units: right eye outer/inner corner, left eye inner/outer corner,
# nose bridge, right and left mouth corner.
TEMPLATE_EYE_UNITS = np.array(
    [
        [-0.725, -0.020],
        [-0.275, 0.020],
        [0.275, 0.020],
        [0.725, -0.020],
        [0.000, -0.050],
        [-0.450, 0.960],
        [0.450, 0.960],
    ],
    dtype=np.float64,
)
# The face oval's extent in eye units (same portraits): x -1.12..1.12, y -0.77..1.75. The
# crop is the square around it, centred on it.
FACE_CENTER_EYE_UNITS = np.array([0.0, 0.49])
FACE_SIDE_EYE_UNITS = 2.52


def _unit_to_crop(crop_size: int, padding: float) -> tuple[float, np.ndarray]:
    """Scale and offset taking eye units to crop pixels."""
    if padding < 0 or padding > 2:
        raise ValueError(f"padding must be within 0..2, got {padding}")
    side_units = FACE_SIDE_EYE_UNITS * (1.0 + 2.0 * padding)
    scale = crop_size / side_units
    offset = crop_size / 2.0 - scale * FACE_CENTER_EYE_UNITS
    return scale, offset


def crop_template(crop_size: int, padding: float) -> np.ndarray:
    """(len(ALIGN_POINTS), 2) where each alignment point belongs in a crop, in crop pixels."""
    scale, offset = _unit_to_crop(crop_size, padding)
    return TEMPLATE_EYE_UNITS * scale + offset


def template_eye_centers(crop_size: int, padding: float) -> np.ndarray:
    """(2, 2): where the right and the left eye centre land in the crop, in pixels."""
    scale, offset = _unit_to_crop(crop_size, padding)
    return np.array([[-0.5, 0.0], [0.5, 0.0]]) * scale + offset


def eye_centers(landmarks: np.ndarray) -> np.ndarray:
    """(2, 2): right and left eye centre (midpoint of the corners) from 478 landmarks."""
    xy = np.asarray(landmarks, dtype=np.float64)[:, :2]
    return np.stack(
        [xy[list(mi.RIGHT_EYE_CORNERS)].mean(axis=0), xy[list(mi.LEFT_EYE_CORNERS)].mean(axis=0)]
    )


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(2, 3) similarity (rotation, uniform scale, translation) best mapping src onto dst.

    Weighted least squares after Umeyama (1991), with the reflection case excluded.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s0, d0 = src - mu_s, dst - mu_d
    cov = (d0 * w[:, None]).T @ s0
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rot = u @ fix @ vt
    var_s = float(w @ (s0**2).sum(axis=1))
    scale = float(np.trace(np.diag(sig) @ fix)) / var_s if var_s > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def alignment_matrix(landmarks: np.ndarray, crop_size: int, padding: float) -> np.ndarray:
    """(2, 3) frame pixels -> crop pixels, fitted on the stable mesh points."""
    pts = np.asarray(landmarks, dtype=np.float64)[list(mi.ALIGN_POINTS), :2]
    return umeyama(pts, crop_template(crop_size, padding), np.asarray(mi.ALIGN_WEIGHTS))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2+) points (extra columns are ignored)."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert_matrix(matrix: np.ndarray) -> np.ndarray:
    """(2, 3) inverse of a (2, 3) affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


paste_back_matrix = invert_matrix  # crop pixels -> frame pixels, for cv2.warpAffine


def warp_face(image: np.ndarray, matrix: np.ndarray, crop_size: int) -> np.ndarray:
    """The crop that ``matrix`` (frame -> crop) describes, anti-aliased when shrinking a lot."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    m = np.asarray(matrix, dtype=np.float64)
    if scale < 0.75:
        # Shrink only the region the crop covers with INTER_AREA first, then warp at ~1x:
        # warpAffine alone would alias (it samples, it does not average).
        corners = np.array([[0, 0], [crop_size, 0], [0, crop_size], [crop_size, crop_size]], float)
        inv = invert_matrix(m)
        src = transform_points(inv, corners)
        h, w = image.shape[:2]
        x0, y0 = np.floor(src.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(src.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            factor = 1.0 / scale  # the region shrinks by this factor
            region = image[y0:y1, x0:x1]
            rw = max(1, int(round((x1 - x0) / factor)))
            rh = max(1, int(round((y1 - y0) / factor)))
            small = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
            # small pixel (u, v) <- frame pixel (x0 + (u + .5) * fx - .5, ...)
            fx, fy = (x1 - x0) / rw, (y1 - y0) / rh
            to_frame = np.array([[fx, 0, x0 + 0.5 * fx - 0.5], [0, fy, y0 + 0.5 * fy - 0.5]])
            m = m @ np.vstack([to_frame, [0, 0, 1]])
            image = small
    return cv2.warpAffine(
        image, m, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def align_face(image: np.ndarray, face: TrackedFace, crop_size: int, padding: float) -> AlignedCrop:
    """The aligned crop of ``face`` in ``image`` (RGB uint8), with its frame -> crop matrix."""
    matrix = alignment_matrix(face.landmarks, crop_size, padding)
    return AlignedCrop(image=warp_face(image, matrix, crop_size), matrix=matrix, face=face)


def warp_crop_to_frame(
    crop: np.ndarray, matrix: np.ndarray, frame_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Put a crop back into frame coordinates.

    ``matrix`` is the crop's frame -> crop matrix (AlignedCrop.matrix); ``frame_shape`` is
    (h, w). Returns the warped crop (h, w, C) of the crop's dtype and a float32 (h, w) mask
    in 0..1 that is 1 where the crop covers the frame (bilinear at the crop's edge).
    """
    h, w = int(frame_shape[0]), int(frame_shape[1])
    m = np.asarray(matrix, dtype=np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # m maps destination (frame) -> source (crop)
    warped = cv2.warpAffine(crop, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    ones = np.ones(crop.shape[:2], dtype=np.float32)
    mask = cv2.warpAffine(ones, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    return warped, mask


def warp_to_frame(crop: np.ndarray, matrix: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """The warped crop only (see warp_crop_to_frame)."""
    return warp_crop_to_frame(crop, matrix, frame_shape)[0]
