"""Smooth seeded random motion: per-frame pose, blinks, camera drift and lighting.

Every curve is white noise low-passed with a Gaussian of a few tenths of a second to a
few seconds, normalised, then squashed with tanh into its range, so the motion is
smooth, bounded and the same for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

# Ranges from the issue: yaw about +/-20 degrees, pitch and roll about +/-10.
YAW_RANGE, PITCH_RANGE, ROLL_RANGE = 20.0, 10.0, 10.0


def smooth_noise(rng: np.random.Generator, n: int, fps: float, timescale_s: float) -> np.ndarray:
    """(n,) smooth zero-mean curve with unit standard deviation; correlation ~timescale_s."""
    sigma = max(timescale_s * fps, 0.5)
    pad = int(4 * sigma) + 1
    raw = gaussian_filter1d(rng.standard_normal(n + 2 * pad), sigma, mode="wrap")[pad:pad + n]
    # Normalise by the filter's theoretical gain, not the sample's std, so short clips
    # keep the same amplitude as long ones (and values do not depend on the length).
    gain = 1.0 / np.sqrt(2.0 * np.sqrt(np.pi) * sigma)
    return raw / gain


@dataclass
class SpeakerMotion:
    """Per-frame head state of one speaker (arrays of length n_frames)."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    blink: np.ndarray  # 0 open .. 1 closed
    drift_x: np.ndarray  # camera offset, fraction of the frame width
    drift_y: np.ndarray  # fraction of the frame height
    zoom: np.ndarray  # multiplicative face size

    def __len__(self) -> int:
        return len(self.yaw)


def blink_curve(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """Blinks every 2-6 s: 80 ms closing, 50 ms shut, 140 ms opening (smooth steps)."""
    t = np.arange(n) / fps
    curve = np.zeros(n)
    start = rng.uniform(0.3, 2.5)
    while start < n / fps:
        close_t, hold_t, open_t = 0.08, rng.uniform(0.03, 0.08), 0.14
        x = t - start
        closing = np.clip(x / close_t, 0, 1)
        opening = np.clip((x - close_t - hold_t) / open_t, 0, 1)
        shape = closing - opening
        shape = shape * shape * (3 - 2 * shape)
        curve = np.maximum(curve, np.where((x >= 0) & (x < close_t + hold_t + open_t), shape, 0.0))
        start += rng.uniform(2.0, 6.0)
    return curve


def speaker_motion(rng: np.random.Generator, n: int, fps: float) -> SpeakerMotion:
    """Head pose, blinks and camera drift for ``n`` frames."""
    yaw = YAW_RANGE * np.tanh(0.9 * smooth_noise(rng, n, fps, 1.2))
    pitch = PITCH_RANGE * np.tanh(0.9 * smooth_noise(rng, n, fps, 0.9))
    roll = ROLL_RANGE * np.tanh(0.9 * smooth_noise(rng, n, fps, 1.6))
    blink = blink_curve(rng, n, fps)
    drift_x = 0.05 * np.tanh(smooth_noise(rng, n, fps, 3.0))
    drift_y = 0.04 * np.tanh(smooth_noise(rng, n, fps, 3.0))
    zoom = 1.0 + 0.08 * np.tanh(smooth_noise(rng, n, fps, 4.0))
    return SpeakerMotion(yaw, pitch, roll, blink, drift_x, drift_y, zoom)


@dataclass
class Lighting:
    """Per-frame global light: gain, a left-right and a top-bottom gradient, warmth."""

    gain: np.ndarray
    gradient_x: np.ndarray
    gradient_y: np.ndarray
    warmth: np.ndarray

    def __len__(self) -> int:
        return len(self.gain)


def lighting(rng: np.random.Generator, n: int, fps: float) -> Lighting:
    return Lighting(
        gain=1.0 + 0.15 * np.tanh(smooth_noise(rng, n, fps, 2.5)),
        gradient_x=0.18 * np.tanh(smooth_noise(rng, n, fps, 3.0)),
        gradient_y=0.10 * np.tanh(smooth_noise(rng, n, fps, 3.0)),
        warmth=0.05 * np.tanh(smooth_noise(rng, n, fps, 4.0)),
    )


def apply_lighting(image: np.ndarray, light: Lighting, index: int,
                   noise: np.ndarray | None = None) -> np.ndarray:
    """Scale the image by the frame's light field and add sensor noise; returns uint8."""
    h, w = image.shape[:2]
    xs = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    ys = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    warm = float(light.warmth[index])
    shade = float(light.gain[index]) * (1 + float(light.gradient_x[index]) * xs
                                        + float(light.gradient_y[index]) * ys)  # (H, W)
    field = cv2.merge([shade * (1 + warm), shade, shade * (1 - warm)])
    lit = cv2.multiply(image, field, dtype=cv2.CV_32F)
    if noise is None:
        return cv2.convertScaleAbs(lit)  # rounds and saturates to uint8
    return cv2.add(lit, noise, dtype=cv2.CV_8U)


class NoiseBank:
    """A few frames of Gaussian sensor noise, one picked per frame by a seeded index.

    Drawing fresh noise every frame costs about as much as the warp; a bank of a dozen
    frames in random order is indistinguishable to the eye and to the detector.
    """

    def __init__(self, rng: np.random.Generator, width: int, height: int, sigma: float = 2.0,
                 count: int = 12) -> None:
        self.frames = (rng.standard_normal((count, height, width, 3), dtype=np.float32)
                       * np.float32(sigma))
        self.rng = rng

    def pick(self) -> np.ndarray:
        return self.frames[int(self.rng.integers(len(self.frames)))]
