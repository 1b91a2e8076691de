"""A contact sheet: a labelled grid of frames from each clip, one row per clip."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np

from faceswap_gan.fileio import atomic_path


def sample_frames(video: Path, count: int) -> list[tuple[float, np.ndarray]]:
    """``count`` evenly spaced (time, RGB frame) pairs from a video."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = [(float(f.pts * stream.time_base), f.to_ndarray(format="rgb24"))
                  for f in container.decode(stream)]
    if not frames:
        return []
    picks = np.linspace(0, len(frames) - 1, count + 2)[1:-1].round().astype(int)
    return [frames[i] for i in picks]


def _label(image: np.ndarray, text: str, scale: float) -> None:
    h = image.shape[0]
    org = (int(6 * scale), h - int(8 * scale))
    thickness = max(1, round(1.2 * scale))
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    cv2.putText(bgr, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(bgr, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 255), thickness, cv2.LINE_AA)
    image[...] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def contact_sheet(clips: dict[str, Path], out_path: str | os.PathLike, columns: int = 5,
                  thumb_width: int = 256) -> Path:
    """Write a PNG grid: one row per clip, ``columns`` frames each, labelled name @ time."""
    rows = []
    for name, video in clips.items():
        tiles = []
        for t, frame in sample_frames(video, columns):
            h, w = frame.shape[:2]
            tile = cv2.resize(frame, (thumb_width, round(h * thumb_width / w)),
                              interpolation=cv2.INTER_AREA)
            _label(tile, f"{name} @ {t:.1f}s", thumb_width / 256)
            tiles.append(tile)
        if tiles:
            while len(tiles) < columns:
                tiles.append(np.zeros_like(tiles[0]))
            rows.append(np.hstack(tiles))
    if not rows:
        raise ValueError("no frames to put on a contact sheet")
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows])
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {out_path}")
    return out_path
