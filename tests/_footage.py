"""Small synthetic clips for the extract tests, with exact ground truth.

Real public-domain portraits (scikit-image's astronaut, matplotlib's Grace Hopper) are placed
into frames by a known similarity transform per frame, so where every portrait pixel (and so
every landmark found on the still portrait) lands in each frame is known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

SIZE = (640, 360)
FPS = 25


def astronaut() -> np.ndarray:
    from faceswap_gan.synthetic.portraits import default_portraits

    return default_portraits()["speaker_a"][:400, 60:460].copy()  # 400 x 400, head and shoulders


def hopper() -> np.ndarray:
    from faceswap_gan.synthetic.portraits import default_portraits

    return default_portraits()["speaker_b"][60:480, 40:460].copy()  # 420 x 420 around the face


def placement(portrait: np.ndarray, cx: float, cy: float, side: float, angle: float = 0.0) -> np.ndarray:
    """(2, 3) portrait pixels -> frame pixels: portrait centre to (cx, cy), width to ``side``."""
    h, w = portrait.shape[:2]
    s = side / w
    c, sn = np.cos(np.radians(angle)) * s, np.sin(np.radians(angle)) * s
    return np.array([[c, -sn, cx - c * w / 2 + sn * h / 2], [sn, c, cy - sn * w / 2 - c * h / 2]])


def compose(size: tuple[int, int], layers: list[tuple[np.ndarray, np.ndarray]], bg: tuple[int, int, int]) -> np.ndarray:
    w, h = size
    frame = np.empty((h, w, 3), dtype=np.uint8)
    frame[:] = bg
    for portrait, m in layers:
        warped = cv2.warpAffine(portrait, m, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.ones(portrait.shape[:2], np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
        frame[mask > 0] = warped[mask > 0]
    return frame


def write_clip(
    path: Path, frames: list[np.ndarray], fps: int = FPS, rotation: int = 0, faststart: bool = False
) -> Path:
    """H.264 MP4; ``faststart`` puts the index first (so a truncated copy still opens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        if rotation:
            stream.set_display_rotation(rotation)
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@dataclass
class Clip:
    path: Path
    frames: int
    # per frame: list of (speaker, portrait -> frame matrix)
    placements: list[list[tuple[str, np.ndarray]]] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # first frame of each new shot


def single_speaker_clip(path: Path, frames: int = 60, seed: int = 0, faststart: bool = False) -> Clip:
    """One face that drifts, grows and tilts smoothly; no cuts."""
    portrait = astronaut()
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi)
    images, places = [], []
    for i in range(frames):
        t = i / FPS
        m = placement(
            portrait,
            cx=320 + 80 * np.sin(0.8 * t + phase),
            cy=190 + 15 * np.cos(1.1 * t),
            side=300 + 40 * np.sin(0.5 * t),
            angle=8 * np.sin(0.7 * t),
        )
        images.append(compose(SIZE, [(portrait, m)], (96, 110, 120)))
        places.append([("astronaut", m)])
    write_clip(path, images, faststart=faststart)
    return Clip(path, frames, places, [])


def cuts_clip(path: Path, shot_frames: int = 20, shots: int = 4) -> Clip:
    """Alternating shots of two speakers on different backgrounds: A B A B ..."""
    who = [("astronaut", astronaut(), (96, 110, 120)), ("hopper", hopper(), (150, 120, 90))]
    images, places, cuts = [], [], []
    for shot in range(shots):
        name, portrait, bg = who[shot % 2]
        if shot:
            cuts.append(len(images))
        for i in range(shot_frames):
            t = i / FPS
            m = placement(portrait, cx=300 + 40 * t + 20 * shot, cy=185, side=300 + 20 * t)
            images.append(compose(SIZE, [(portrait, m)], bg))
            places.append([(name, m)])
    write_clip(path, images)
    return Clip(path, len(images), places, cuts)


def split_clip(path: Path, frames: int = 30) -> Clip:
    """Split screen: the astronaut on the left half, Grace Hopper on the right."""
    a, b = astronaut(), hopper()
    images, places = [], []
    for i in range(frames):
        t = i / FPS
        ma = placement(a, cx=160 + 10 * np.sin(2 * t), cy=190, side=260)
        mb = placement(b, cx=480 - 10 * np.sin(2 * t), cy=190, side=260)
        img = compose(SIZE, [(a, ma)], (96, 110, 120))
        right = compose(SIZE, [(b, mb)], (150, 120, 90))
        img[:, SIZE[0] // 2 :] = right[:, SIZE[0] // 2 :]
        images.append(img)
        places.append([("astronaut", ma), ("hopper", mb)])
    write_clip(path, images)
    return Clip(path, frames, places, [])
