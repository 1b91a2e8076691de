"""What the sample generator recorded about a clip: who is where in each frame, and the cuts.

The sample footage (faceswap_gan/synthetic/footage.py) writes ``<clip>.json`` beside each
clip. Eval needs two things from it: the shot cuts (temporal measures restart there) and,
for each face, the speaker the truth clip shows at that place (the swap's target).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceswap_gan.errors import FaceswapError


@dataclass
class RecordedFace:
    box: np.ndarray  # (4,) x0, y0, x1, y1 in pixels
    target: str  # who the truth shows here
    role: str = "speaker"  # "moderator", "audience": someone the swap leaves as they are


@dataclass
class TruthRecord:
    cut_frames: set[int]
    has_shots: bool
    faces: dict[int, list[RecordedFace]] = field(default_factory=dict)

    def speakers(self) -> set[str]:
        """Every target speaker the record names (not the moderator or audience)."""
        return {face.target for faces in self.faces.values() for face in faces
                if face.role == "speaker"}

    def boxes_at(self, frame: int) -> list[np.ndarray]:
        """The recorded face boxes of ``frame``."""
        return [face.box for face in self.faces.get(frame) or []]

    def face_at(self, frame: int, centre: np.ndarray) -> RecordedFace | None:
        """The recorded face whose box holds ``centre`` (the nearest such), else None."""
        faces = self.faces.get(frame) or []
        best, best_d = None, float("inf")
        for face in faces:
            x0, y0, x1, y1 = face.box
            mid = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            d = float(np.linalg.norm(mid - centre))
            inside = x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1
            if inside and d < best_d:
                best, best_d = face, d
        return best

    def speaker_at(self, frame: int, centre: np.ndarray) -> str | None:
        """The target speaker of the recorded face at ``centre`` (see ``face_at``)."""
        face = self.face_at(frame, centre)
        return None if face is None else face.target


def record_path(clip: Path) -> Path:
    return Path(clip).with_suffix(".json")


def load_truth_record(clip: Path, truth: Path | None = None) -> TruthRecord | None:
    """The record for ``clip`` (targets = each face's truth speaker), or for ``truth`` (targets
    = each face's speaker); None when neither exists."""
    for path, key in ((record_path(clip), "truth"), (record_path(truth) if truth else None, "own")):
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                return _parse(data, use_truth=key == "truth")
            except (ValueError, KeyError, TypeError) as exc:
                raise FaceswapError(f"{path} is not a readable sample record ({exc})") from None
    return None


def _parse(data: dict, use_truth: bool) -> TruthRecord:
    cuts: set[int] = set()
    shots = data.get("shots")
    for shot in shots or []:
        start = shot.get("start", shot.get("start_frame")) if isinstance(shot, dict) else shot
        if start:
            cuts.add(int(start))
    cuts.update(int(c) for c in data.get("cuts", []) or [])
    faces: dict[int, list[RecordedFace]] = {}
    for i, frame in enumerate(data.get("frames", []) or []):
        index = int(frame.get("index", frame.get("frame", i)))
        out = []
        for face in frame.get("faces", []) or []:
            speaker = face.get("speaker")
            truth = face.get("truth_speaker", face.get("truth", speaker))
            target = truth if use_truth else speaker
            if target is None or "box" not in face:
                continue
            out.append(RecordedFace(np.asarray(face["box"], dtype=np.float64), str(target),
                                    str(face.get("role", "speaker"))))
        faces[index] = out
    return TruthRecord(cut_frames=cuts, has_shots=bool(shots) or "cuts" in data, faces=faces)


def sample_speakers(clip: Path) -> list[str]:
    """Speaker names the clip's sample record lists (empty when there is no record)."""
    path = record_path(clip)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return []
    names = data.get("speakers")
    if isinstance(names, dict):
        names = list(names)
    if not names:
        names = sorted({
            str(face["speaker"])
            for frame in data.get("frames", []) or []
            for face in frame.get("faces", []) or []
            if face.get("speaker")
        })
    return [str(n) for n in names]
