"""A visible label that says a frame is synthetic."""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_LABEL = "SYNTHETIC - face swapped"


def add_watermark(image: np.ndarray, text: str = DEFAULT_LABEL) -> np.ndarray:
    """Draw ``text`` in the bottom-left corner on a dark translucent band, in place; returns image."""
    h, w = image.shape[:2]
    scale = max(h / 720.0, 0.3)
    thickness = max(1, round(2 * scale))
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    margin = max(2, int(8 * scale))
    x0, y1 = margin, h - margin
    y0 = max(0, y1 - th - base - 2 * margin)
    x1 = min(w, x0 + tw + 2 * margin)
    band = image[y0:y1, x0:x1]
    band[:] = (band.astype(np.float32) * 0.4).astype(np.uint8)
    cv2.putText(image, text, (x0 + margin, y1 - margin - base), font, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)
    return image
