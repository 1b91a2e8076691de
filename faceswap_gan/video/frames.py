"""A decoded frame as the rest of the pipeline sees it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class VideoFrame:
    index: int  # 0-based position in decode order
    timestamp: float  # presentation time in seconds (kept for variable frame rates)
    image: np.ndarray  # (H, W, 3) uint8 RGB, display orientation (rotation metadata applied)
    duration: float | None = None  # seconds until the next frame, when the container says
