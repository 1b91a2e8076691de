"""What a warp of a still photo cannot produce: the inside of an open mouth, a closed lid's lash line.

The mouth interior is shaded, not flat: a dark throat in the middle, a lit cavity at the
edges, a tongue low in the mouth, the upper teeth under the upper lip (in the colour of
the portrait's own teeth when its mouth shows them) and the lower teeth only as a sliver
when the mouth is wide open. A closing lid gets a soft dark lash line along its edge.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceswap_gan.faces import mesh_indices as mi

DEFAULT_TEETH = np.array([214.0, 204.0, 188.0])
_SHIFT = 2  # 1/4-pixel vertex precision for the polygon masks


def teeth_colour(image: np.ndarray, landmarks: np.ndarray, iod: float) -> np.ndarray:
    """The portrait's teeth colour when its mouth is open enough to show them, else ivory."""
    upper = landmarks[list(mi.LIPS_INNER_UPPER), :2]
    lower = landmarks[list(mi.LIPS_INNER_LOWER), :2]
    gap = float(np.linalg.norm(landmarks[mi.LOWER_LIP_INNER, :2] - landmarks[mi.UPPER_LIP_INNER, :2]))
    if gap < 0.06 * iod:
        return DEFAULT_TEETH.copy()
    mask = np.zeros(image.shape[:2], np.uint8)
    poly = np.concatenate([upper, lower[::-1]])
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
    pixels = image[mask > 0].astype(np.float64)
    if len(pixels) < 10:
        return DEFAULT_TEETH.copy()
    luma = pixels.mean(axis=1)
    bright = pixels[luma >= np.percentile(luma, 60)]
    return np.clip(np.median(bright, axis=0), 120, 245)


def _curve_at(poly: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(poly[:, 0])
    return np.interp(xs, poly[order, 0], poly[order, 1])


def paint_mouth(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, iod: float,
                teeth: np.ndarray) -> None:
    """Draw the mouth interior between the inner-lip polylines (frame pixels), in place."""
    gap = float(np.max(_curve_at(lower, upper[:, 0]) - upper[:, 1]))
    if gap < 0.8:
        return
    h, w = image.shape[:2]
    poly = np.concatenate([upper, lower[::-1]])
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    pts = np.round((poly - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1.0, lineType=cv2.LINE_AA, shift=_SHIFT)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.5 + 0.01 * iod)

    xs = np.arange(x0, x1, dtype=np.float64) + 0.5
    ys = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
    top = _curve_at(upper, xs)[None, :]
    bottom = _curve_at(lower, xs)[None, :]
    s = np.clip((ys - top) / np.maximum(bottom - top, 1e-3), 0, 1)  # 0 upper lip .. 1 lower lip
    left, right = upper[:, 0].min(), upper[:, 0].max()
    r = np.clip((xs - (left + right) / 2) / max((right - left) / 2, 1e-3), -1, 1)[None, :]

    # Warm, lit cavity near the lips; a dark throat further in (deeper when wider open).
    cavity = np.array([128.0, 52.0, 54.0])
    throat = np.array([38.0, 12.0, 14.0])
    depth = min(1.0, gap / (0.25 * iod))
    darkness = depth * np.exp(-((r / 0.5) ** 2 + ((s - 0.45) / 0.32) ** 2))[..., None]
    colour = cavity * (1 - darkness) + throat * darkness
    # Corners of the mouth and the parts just under the lips are in shadow.
    lip_shadow = 0.7 + 0.3 * np.clip(np.minimum(s, 1 - s) / 0.2, 0, 1)
    colour *= ((0.5 + 0.5 * (1 - np.abs(r) ** 3)) * lip_shadow)[..., None]

    # Tongue: a rounded lighter shape resting low in the mouth.
    tongue_alpha = (np.clip((s - 0.62) / 0.25, 0, 1) * np.clip(1 - r ** 2, 0, 1) * 0.75)[..., None]
    colour = colour * (1 - tongue_alpha) + np.array([165.0, 72.0, 74.0]) * 0.8 * tongue_alpha

    # Upper teeth: a band under the upper lip, about a tenth of the eye distance tall.
    band = min(0.10 * iod, 0.45 * gap)
    edge = band / max(gap, 1e-3)
    upper_teeth = (np.clip((edge - s) / max(edge * 0.25, 1e-3), 0, 1)
                   * np.clip((0.85 - np.abs(r)) / 0.2, 0, 1))[..., None]
    gaps_between = 1 - 0.10 * np.cos(np.pi * 5 * r) ** 12  # faint separations, not a grid
    lit = (0.55 + 0.45 * (1 - np.abs(r) ** 2)) * gaps_between
    # The lip shades the top of the teeth.
    lit = lit * (0.75 + 0.25 * np.clip(s / max(edge * 0.5, 1e-3), 0, 1))
    colour = colour * (1 - upper_teeth) + (teeth * lit[..., None]) * upper_teeth

    # Lower teeth stay mostly hidden: a sliver only when the mouth is wide open.
    open_frac = np.clip((gap / iod - 0.28) / 0.2, 0, 1)
    if open_frac > 0:
        low = 0.05 * iod * open_frac / max(gap, 1e-3)
        lower_teeth = (np.clip((s - (1 - low)) / max(low * 0.3, 1e-3), 0, 1)
                       * np.clip((0.6 - np.abs(r)) / 0.2, 0, 1) * 0.8)[..., None]
        colour = colour * (1 - lower_teeth) + teeth * 0.6 * lower_teeth

    region = image[y0:y1, x0:x1].astype(np.float32)
    m = mask[..., None]
    image[y0:y1, x0:x1] = np.clip(region * (1 - m) + colour * m + 0.5, 0, 255).astype(np.uint8)


def paint_lashes(image: np.ndarray, lids: tuple[np.ndarray, ...], blink: float, iod: float) -> None:
    """A soft dark line along each closing upper lid (frame pixels), in place."""
    strength = float(np.clip((blink - 0.35) / 0.55, 0, 1)) * 0.7
    if strength <= 0:
        return
    h, w = image.shape[:2]
    thickness = max(1, round(0.045 * iod))
    for lid in lids:
        x0, y0 = np.floor(lid.min(axis=0)).astype(int) - 4 - thickness
        x1, y1 = np.ceil(lid.max(axis=0)).astype(int) + 5 + thickness
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        pts = np.round((lid - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
        cv2.polylines(mask, [pts], False, 1.0, thickness=thickness, lineType=cv2.LINE_AA,
                      shift=_SHIFT)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.5 + 0.02 * iod)[..., None] * strength
        region = image[y0:y1, x0:x1].astype(np.float32)
        dark = region * 0.25 + np.array([18.0, 12.0, 12.0])
        image[y0:y1, x0:x1] = np.clip(region * (1 - mask) + dark * mask + 0.5, 0, 255).astype(np.uint8)
