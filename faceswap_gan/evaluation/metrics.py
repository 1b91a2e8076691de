"""Pure metric functions over numpy arrays: pose, expression, appearance, sharpness, temporal stability.

Every function here takes plain arrays (RGB uint8 images, (478, 3) MediaPipe landmarks in
pixels) and returns plain numbers, so each can be tested on known cases without video.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from faceswap_gan.faces.align import eye_centers
from faceswap_gan.faces.mesh_indices import (
    FACE_OVAL,
    INNER_LIP_PAIRS,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LIDS,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LIDS,
)
from faceswap_gan.faces.quality import head_pose  # the one pose measure (extract's filter too)


def interocular(landmarks: np.ndarray) -> float:
    """Distance in pixels between the two eye centres (mean of each eye's corners)."""
    right, left = eye_centers(landmarks)
    return float(np.linalg.norm(left - right))


def pose_error(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Absolute (yaw, pitch, roll) difference in degrees between two faces' landmarks."""
    pa, pb = head_pose(a), head_pose(b)
    return tuple(abs(_wrap_deg(x - y)) for x, y in zip(pa, pb))  # type: ignore[return-value]


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap over the inter-ocular distance (0 = closed)."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    gap = np.mean([np.linalg.norm(pts[u] - pts[d]) for u, d in INNER_LIP_PAIRS])
    return float(gap / max(interocular(landmarks), 1e-6))


def eye_opening(landmarks: np.ndarray) -> float:
    """Mean over both eyes of the lid gap over the eye's width (0 = shut)."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    values = []
    for corners, lids in ((RIGHT_EYE_CORNERS, RIGHT_EYE_LIDS), (LEFT_EYE_CORNERS, LEFT_EYE_LIDS)):
        width = max(float(np.linalg.norm(pts[corners[0]] - pts[corners[1]])), 1e-6)
        gap = np.mean([np.linalg.norm(pts[u] - pts[d]) for u, d in lids])
        values.append(gap / width)
    return float(np.mean(values))


def face_mask(landmarks: np.ndarray, shape: tuple[int, ...], dilate: float = 0.0) -> np.ndarray:
    """Boolean (H, W) mask of the face oval; ``dilate`` grows it by that fraction of the IOD."""
    h, w = shape[:2]
    mask = np.zeros((h, w), dtype=np.uint8)
    poly = np.round(np.asarray(landmarks)[list(FACE_OVAL), :2]).astype(np.int32)
    cv2.fillPoly(mask, [poly], 1)
    radius = round(dilate * interocular(landmarks))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.dilate(mask, kernel)
    return mask.astype(bool)


def region_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM of two RGB images over ``mask`` (1 = identical).

    The SSIM map is computed on the mask's bounding box (with a margin for the window) in
    grey, then averaged over the masked pixels only.
    """
    box = _mask_box(mask, margin=8)
    if box is None:
        return float("nan")
    y0, y1, x0, x1 = box
    ga = cv2.cvtColor(np.ascontiguousarray(a[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    gb = cv2.cvtColor(np.ascontiguousarray(b[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    win = min(7, _odd_floor(min(ga.shape)))
    if win < 3:
        return float("nan")
    _, smap = structural_similarity(ga, gb, data_range=255, win_size=win, full=True)
    return float(smap[mask[y0:y1, x0:x1]].mean())


def region_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray, cap: float = 100.0) -> float:
    """PSNR in dB over the masked pixels; identical regions score ``cap``."""
    if not mask.any():
        return float("nan")
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse <= 0.0:
        return cap
    return float(min(cap, 10.0 * math.log10(255.0 * 255.0 / mse)))


def outside_change(swapped: np.ndarray, source: np.ndarray, face_region: np.ndarray) -> float:
    """Mean absolute pixel difference (0..255) outside ``face_region`` (what a swap should keep)."""
    outside = ~face_region
    if not outside.any():
        return 0.0
    return float(np.abs(swapped[outside].astype(np.int16) - source[outside].astype(np.int16)).mean())


def region_mean(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean grey level (0..255) of ``image`` over ``mask``; the signal flicker is measured on."""
    if not mask.any():
        return float("nan")
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return float(grey[mask].mean())


def high_frequency_energy(image: np.ndarray, weights: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image, weighted by ``weights`` (H, W) in [0, 1].

    The sharpness signal: fine detail (pores, lashes, hair strands, edges) has a large
    Laplacian, a blurred face a small one. Compare faces of the same size only (the ratio of
    a swapped face to the source face at the same place), since scale changes it.
    """
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if total <= 0.0:
        return float("nan")
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3).astype(np.float64)
    return float((lap * lap * w).sum() / total)


def periodic_energy(image: np.ndarray, weights: np.ndarray) -> float:
    """How much the fine detail is a repeating pattern: the strongest 1% of the Laplacian's
    spectrum, each frequency over the mean at its distance from the centre (so a blurred and
    a sharp face of natural texture both score about 5-6: the tail of a smooth spectrum).

    A generator's grid or checkerboard artefacts (transposed convolutions, a face drawn small
    and enlarged) put their energy into a few sharp spectral peaks, far above the ring they
    sit on; skin, hair and edges spread theirs around it. So a swapped face that scores far
    above the source's has detail that is a pattern, however sharp it reads.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0.0 or min(w.shape) < 16:
        return float("nan")
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3).astype(np.float64) * w
    window = np.outer(np.hanning(lap.shape[0]), np.hanning(lap.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(lap * window))) ** 2
    cy, cx = power.shape[0] // 2, power.shape[1] // 2
    yy, xx = np.ogrid[: power.shape[0], : power.shape[1]]
    # Rings one frequency step wide, in units of the shorter side's step.
    ring = np.round(np.hypot((yy - cy) * min(power.shape) / power.shape[0],
                             (xx - cx) * min(power.shape) / power.shape[1])).astype(int)
    ring_mean = np.bincount(ring.ravel(), power.ravel()) / np.maximum(np.bincount(ring.ravel()), 1)
    keep = (ring >= 3) & (ring <= min(power.shape) // 2)  # above the face's shape, within Nyquist
    relative = power[keep] / np.maximum(ring_mean[ring[keep]], 1e-12)
    if relative.size < 100:
        return float("nan")
    return float(np.sort(relative)[-(relative.size // 100):].mean())


def landmark_jitter(track: Sequence[np.ndarray]) -> float:
    """Mean second difference of 2D landmarks, per point, over the inter-ocular distance.

    ``track`` is one face's landmarks on consecutive frames of one shot. The second
    difference removes steady motion (a turning head) and keeps frame-to-frame shake.
    Returns nan for fewer than three frames.
    """
    if len(track) < 3:
        return float("nan")
    pts = np.stack([np.asarray(t, dtype=np.float64)[:, :2] for t in track])
    iod = np.array([interocular(t) for t in track])
    accel = pts[2:] - 2.0 * pts[1:-1] + pts[:-2]
    per_frame = np.linalg.norm(accel, axis=2).mean(axis=1) / np.maximum(iod[1:-1], 1e-6)
    return float(per_frame.mean())


def flicker(region_means: Sequence[float]) -> float:
    """Mean absolute frame-to-frame change of a face region's mean grey level."""
    values = np.asarray(region_means, dtype=np.float64)
    if values.size < 2:
        return float("nan")
    return float(np.abs(np.diff(values)).mean())


def stability_ratio(output: float, truth: float, floor: float = 1e-3) -> float:
    """output / truth, with a floor on both so a perfectly still truth does not divide by 0."""
    if math.isnan(output) or math.isnan(truth):
        return float("nan")
    return float(max(output, floor) / max(truth, floor))


def _wrap_deg(d: float) -> float:
    return (d + 180.0) % 360.0 - 180.0


def _odd_floor(n: int) -> int:
    return n if n % 2 == 1 else n - 1


def _mask_box(mask: np.ndarray, margin: int) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    h, w = mask.shape
    return (
        max(0, int(ys.min()) - margin), min(h, int(ys.max()) + margin + 1),
        max(0, int(xs.min()) - margin), min(w, int(xs.max()) + margin + 1),
    )
