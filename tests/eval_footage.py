"""Tiny footage with ground truth for the eval tests, built from the two real portraits.

A two-panel "debate" (speaker_a left, speaker_b right) whose panels sway a little each
frame, its truth (the same sway with the speakers exchanged), and one clip per speaker
alone with a different sway (what the identity classifier learns from).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from faceswap_gan.evaluation.landmarks import FaceMeshes
from faceswap_gan.synthetic.portraits import default_portraits
from faceswap_gan.video.writer import VideoWriter

PANEL = 128


def face_panels() -> dict[str, np.ndarray]:
    """Each portrait cut to a square around its face (2x the face's width)."""
    out = {}
    with FaceMeshes() as meshes:
        for name, image in default_portraits().items():
            lm = meshes(image)[0]
            (x0, y0), (x1, y1) = lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)
            cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 1.9 * max(x1 - x0, y1 - y0)
            scale = PANEL / side
            m = np.float32([[scale, 0, PANEL / 2 - scale * cx], [0, scale, PANEL / 2 - scale * cy]])
            out[name] = cv2.warpAffine(image, m, (PANEL, PANEL), borderMode=cv2.BORDER_REFLECT)
    return out


def sway(panel: np.ndarray, t: int, phase: float) -> np.ndarray:
    angle = 4.0 * math.sin(0.5 * t + phase)
    m = cv2.getRotationMatrix2D((PANEL / 2, PANEL / 2), angle, 1.0 + 0.03 * math.cos(0.4 * t))
    m[0, 2] += 3.0 * math.sin(0.3 * t + phase)
    return cv2.warpAffine(panel, m, (PANEL, PANEL), borderMode=cv2.BORDER_REFLECT)


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps, crf=12) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def make_footage(folder: Path, frames: int = 10) -> dict[str, Path]:
    """debate.mp4, debate_truth.mp4, speaker_a.mp4, speaker_b.mp4 in ``folder``."""
    panels = face_panels()
    a, b = panels["speaker_a"], panels["speaker_b"]
    source, truth = [], []
    for t in range(frames):
        left, right = (0.0, 1.3)
        source.append(np.hstack([sway(a, t, left), sway(b, t, right)]))
        truth.append(np.hstack([sway(b, t, left), sway(a, t, right)]))
    paths = {
        "clip": write_clip(folder / "debate.mp4", source),
        "truth": write_clip(folder / "debate_truth.mp4", truth),
    }
    for name, panel in panels.items():
        alone = [sway(panel, t, 2.0) for t in range(24)]
        paths[name] = write_clip(folder / f"{name}.mp4", alone)
    return paths


def eval_cli(footage: dict, *extra: str) -> None:
    """`faceswap eval` on the footage of ``make_footage`` with its speaker clips."""
    from faceswap_gan.cli import main

    main([
        "eval", "--clip", str(footage["clip"]), "--truth", str(footage["truth"]),
        "--speaker-clip", f"speaker_a={footage['speaker_a']}",
        "--speaker-clip", f"speaker_b={footage['speaker_b']}",
        "--workspace", str(footage["workspace"]), *extra,
    ])
