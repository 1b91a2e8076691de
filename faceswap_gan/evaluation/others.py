"""Were only the speakers swapped? Faces of people who are none (moderator, audience) against
a plain re-encode, and the speakers' faces against it too.

The sample footage's record (``faceswap samples --moderator``) says who is where: each face
has a ``role`` ("speaker", "moderator", "audience") and a box. A render re-encodes every
frame, so "left alone" is measured against the same frames re-encoded the render's way
(``plain_reencode``: same encoder, CRF and preset, nothing swapped):

- a face of someone who is no speaker is **untouched** when, inside its box (outside the
  speakers' boxes), its pixels differ from the plain re-encode by at most
  ``UNTOUCHED_MAX_DIFF`` levels on average. They are equal in a shot that nothing touched,
  except in its last few frames before a cut to a swapped shot: x264 predicts those from
  the changed frame after the cut (measured: up to 1.6 levels on average, single pixels up
  to 25). A swapped face differs by 8 levels or more on average.
- a speaker's face is **swapped** when the mean absolute difference inside the middle of its
  box (the inner face) is at least ``SWAPPED_MIN_DIFF`` levels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

UNTOUCHED_MAX_DIFF = 3.0  # mean levels (0-255, largest channel) inside the face's box
SWAPPED_MIN_DIFF = 4.0  # mean levels inside the inner face


@dataclass
class OthersResult:
    speakers_swapped: int = 0
    speakers: int = 0
    others_untouched: int = 0
    others: int = 0
    by_role: dict[str, list[int]] = field(default_factory=dict)  # role -> [ok, total]

    @property
    def swapped_rate(self) -> float:
        return self.speakers_swapped / self.speakers if self.speakers else float("nan")

    @property
    def untouched_rate(self) -> float:
        return self.others_untouched / self.others if self.others else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"speakers_swapped": self.swapped_rate, "speaker_faces": self.speakers,
                "others_untouched": self.untouched_rate, "other_faces": self.others,
                "by_role": {k: {"ok": v[0], "faces": v[1]} for k, v in self.by_role.items()}}


def plain_reencode(source: Path, out: Path, crf: int, preset: str) -> Path:
    """``source``'s frames re-encoded as a render encodes them, with nothing changed."""
    from faceswap_gan.video.reader import VideoReader
    from faceswap_gan.video.remux import SwapVideoWriter

    with VideoReader(source) as reader:
        writer = SwapVideoWriter(out, reader.width, reader.height, reader.fps, crf=crf,
                                 preset=preset, audio_source=source, time_base=reader.time_base)
        try:
            for frame in reader:
                writer.write(frame.image, frame.timestamp, frame.duration)
        except BaseException:
            writer._abort()
            raise
        writer.close()
    return out


def _box(face: dict, w: int, h: int, shrink: float = 0.0) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = face["box"]
    dx, dy = (x1 - x0) * shrink, (y1 - y0) * shrink
    return (max(0, int(x0 + dx)), max(0, int(y0 + dy)),
            min(w, int(np.ceil(x1 - dx))), min(h, int(np.ceil(y1 - dy))))


def measure_others(rendered: Path, plain: Path, record: Path | dict) -> OthersResult:
    """Per face of the record: speakers swapped, others untouched (see the module doc)."""
    from faceswap_gan.video.reader import VideoReader

    rec = json.loads(Path(record).read_text()) if not isinstance(record, dict) else record
    frames = {f["index"]: f["faces"] for f in rec["frames"]}
    result = OthersResult()
    with VideoReader(rendered) as a, VideoReader(plain) as b:
        for fa, fb in zip(a, b):
            faces = frames.get(fa.index, [])
            if not faces:
                continue
            h, w = fa.image.shape[:2]
            diff = np.abs(fa.image.astype(np.int16) - fb.image.astype(np.int16)).max(axis=2)
            speakers = np.zeros((h, w), bool)
            for face in faces:
                if face.get("role", "speaker") == "speaker":
                    x0, y0, x1, y1 = _box(face, w, h)
                    speakers[y0:y1, x0:x1] = True
            for face in faces:
                role = face.get("role", "speaker")
                tally = result.by_role.setdefault(role, [0, 0])
                tally[1] += 1
                if role == "speaker":
                    x0, y0, x1, y1 = _box(face, w, h, shrink=0.25)
                    ok = x1 > x0 and y1 > y0 and float(diff[y0:y1, x0:x1].mean()) >= SWAPPED_MIN_DIFF
                    result.speakers += 1
                    result.speakers_swapped += int(ok)
                else:
                    x0, y0, x1, y1 = _box(face, w, h)
                    region = diff[y0:y1, x0:x1][~speakers[y0:y1, x0:x1]]
                    ok = region.size == 0 or float(region.mean()) <= UNTOUCHED_MAX_DIFF
                    result.others += 1
                    result.others_untouched += int(ok)
                tally[0] += int(ok)
    return result


def crop_groups(alignments: Path, record: Path | dict) -> dict[str, dict[str, int]]:
    """Where extract put each person's crops: identity drawn (the record's ``speaker`` of the
    face whose box holds the crop's face) -> group (a faces/ folder, or "unknown") -> crops."""
    from faceswap_gan.faces.alignments import read_alignments

    rec = json.loads(Path(record).read_text()) if not isinstance(record, dict) else record
    frames = {f["index"]: f["faces"] for f in rec["frames"]}
    _, faces = read_alignments(alignments)
    out: dict[str, dict[str, int]] = {}
    for face in faces:
        if not face.crop:
            continue
        cx, cy = np.asarray(face.landmarks)[:, :2].mean(axis=0)
        who = next((f["speaker"] for f in frames.get(face.frame, [])
                    if f["box"][0] <= cx <= f["box"][2] and f["box"][1] <= cy <= f["box"][3]),
                   "?")
        parts = Path(face.crop).parts
        group = parts[0] if parts[0] == "unknown" else parts[-2]
        out.setdefault(who, {})
        out[who][group] = out[who].get(group, 0) + 1
    return out
