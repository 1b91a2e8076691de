"""The alignments file: every face extract saw in one source, as JSON Lines (never pickle).

    line 1   header  {"format": "faceswap_gan.alignments", "version": 2, "source": ...,
                      "source_id", "fingerprint", "width", "height", "fps", "crop_size",
                      "padding", "pipeline", "settings": {...}, "complete": false|true,
                      "frames": N|null}
    then     face    {"frame", "time", "track", "speaker", "landmarks" (478 x [x, y, z],
                      0.01 px), "matrix" (2 x 3, frame -> crop), "score", "blur", "size",
                      "yaw", "pitch", "roll", "flags", "crop" (path under the workspace or
                      null), and "file" for image folders}
    and      done    {"done": F, "cuts": n, "restart": R, "restart_id": I}  every frame up to F
                     is fully recorded (resume point); R, I: where a resumed run tracks again from

While a run is in progress the file only grows (faces, then a done marker, flushed); a run
that stops leaves a valid prefix, and a trailing partial line is ignored. The finished file is
rewritten once with ``complete: true`` and ``frames`` in its header and no done markers.

Version 2 added ``source_id`` (the name the file and the crops carry: stem plus a hash of the
source's path) and ``fingerprint`` (of the source's content) to the header; version 1 files
(no such keys, named by the stem alone) are read the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.fileio import atomic_path, writing

FORMAT = "faceswap_gan.alignments"
VERSION = 2  # 2: source_id and fingerprint in the header (version 1 is still read)


@dataclass
class FaceRecord:
    frame: int
    time: float
    track: int
    speaker: str | None
    landmarks: np.ndarray  # (478, 3) float32, frame pixels
    matrix: np.ndarray  # (2, 3) float64, frame pixels -> crop pixels
    score: float
    blur: float
    size: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    flags: list[str] = field(default_factory=list)
    crop: str | None = None  # path of the crop PNG relative to the workspace root
    file: str | None = None  # image file name, for image-folder sources

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "frame": int(self.frame),
            "time": round(float(self.time), 6),
            "track": int(self.track),
            "speaker": self.speaker,
            "landmarks": np.round(np.asarray(self.landmarks, dtype=np.float64), 2).tolist(),
            "matrix": np.round(np.asarray(self.matrix, dtype=np.float64), 7).tolist(),
            "score": round(float(self.score), 4),
            "blur": round(float(self.blur), 2),
            "size": round(float(self.size), 2),
            "yaw": round(float(self.yaw), 2),
            "pitch": round(float(self.pitch), 2),
            "roll": round(float(self.roll), 2),
            "flags": list(self.flags),
            "crop": self.crop,
        }
        if self.file is not None:
            data["file"] = self.file
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaceRecord:
        return cls(
            frame=int(data["frame"]),
            time=float(data["time"]),
            track=int(data["track"]),
            speaker=data.get("speaker"),
            landmarks=np.asarray(data["landmarks"], dtype=np.float32).reshape(-1, 3),
            matrix=np.asarray(data["matrix"], dtype=np.float64).reshape(2, 3),
            score=float(data.get("score", 0.0)),
            blur=float(data.get("blur", 0.0)),
            size=float(data.get("size", 0.0)),
            yaw=float(data.get("yaw", 0.0)),
            pitch=float(data.get("pitch", 0.0)),
            roll=float(data.get("roll", 0.0)),
            flags=list(data.get("flags", [])),
            crop=data.get("crop"),
            file=data.get("file"),
        )


def make_header(**fields: Any) -> dict[str, Any]:
    """A header dict with the format and version first."""
    header = {"format": FORMAT, "version": VERSION}
    header.update(fields)
    header.setdefault("complete", False)
    header.setdefault("frames", None)
    return header


@dataclass
class AlignmentsState:
    """What an alignments file holds: header, faces, and the last fully recorded frame."""

    header: dict[str, Any]
    records: list[FaceRecord]
    last_done: int  # -1 when no frame is done
    progress: dict[str, Any] = field(default_factory=dict)  # the last done marker's extra counts


def load_state(path: str | Path) -> AlignmentsState:
    """Read an alignments file, complete or not; faces after the last done marker are dropped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaceswapError(f"cannot read alignments {path}: {exc.strerror}") from None
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # a partial last line from an interrupted write
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise FaceswapError(f"{path} is empty, not an alignments file")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError:
        raise FaceswapError(f"{path} is not an alignments file (bad header)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FaceswapError(f"{path} is not a faceswap_gan alignments file")
    if int(header.get("version", 0)) > VERSION:
        raise FaceswapError(
            f"{path} has alignments version {header.get('version')}; this faceswap reads up to "
            f"{VERSION} (upgrade faceswap_gan)"
        )
    records: list[FaceRecord] = []
    pending: list[FaceRecord] = []
    last_done = -1
    progress: dict[str, Any] = {}
    for n, line in enumerate(lines[1:], start=2):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            raise FaceswapError(f"{path}: line {n} is not valid JSON (corrupt alignments)") from None
        if "done" in data:
            last_done = int(data["done"])
            progress = {k: v for k, v in data.items() if k != "done"}
            records.extend(pending)
            pending = []
        else:
            pending.append(FaceRecord.from_json(data))
    if header.get("complete"):
        records.extend(pending)
        if records:
            last_done = max(last_done, max(r.frame for r in records))
    return AlignmentsState(header=header, records=records, last_done=last_done, progress=progress)


def read_alignments(path: str | Path) -> tuple[dict[str, Any], list[FaceRecord]]:
    """(header, faces) of an alignments file; for an unfinished file, the finished frames."""
    state = load_state(path)
    return state.header, state.records


def write_alignments(path: str | Path, header: dict[str, Any], records: list[FaceRecord],
                     done: dict[str, Any] | None = None) -> None:
    """Write a whole alignments file atomically (header line, then one line per face).

    ``done``: an unfinished file's done marker (``{"done": frame, **counts}``) to end with, so
    the faces written stay recorded even if the run dies before it marks a frame of its own."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(header) + "\n")
        for rec in records:
            fh.write(json.dumps(rec.to_json()) + "\n")
        if done is not None:
            fh.write(json.dumps(done) + "\n")


class AlignmentsAppender:
    """Grows an unfinished alignments file: faces, then a done marker per batch of frames.

    Open it on a file ``write_alignments`` has written (header plus finished faces).
    """

    def __init__(self, path: str | Path, last_done: int = -1) -> None:
        self.path = Path(path)
        with writing(self.path):
            self._fh: TextIO = self.path.open("a", encoding="utf-8")
        self.last_done = last_done

    def append(self, record: FaceRecord) -> None:
        with writing(self.path):
            self._fh.write(json.dumps(record.to_json()) + "\n")

    def mark_done(self, frame: int, sync: bool = False, **counts: int) -> None:
        """Every frame up to ``frame`` is recorded; flush so a crash keeps it.

        ``counts`` (e.g. cuts so far) ride along so a resumed run can continue them.
        """
        with writing(self.path):
            self._fh.write(json.dumps({"done": int(frame), **counts}) + "\n")
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())
        self.last_done = frame

    def close(self) -> None:
        if not self._fh.closed:
            with writing(self.path):
                self._fh.close()  # flushes

    def __enter__(self) -> AlignmentsAppender:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        # Already failing (a full disk, say): the unflushed tail is after the last done
        # marker, which a resumed run drops anyway; the first error is the one to report.
        with contextlib.suppress(OSError, FaceswapError):
            self.close()


def read_header(path: str | Path) -> dict[str, Any]:
    """Only the header line (cheap: the faces are not parsed)."""
    path = Path(path)
    with path.open("r", encoding="utf-8") as fh:
        first = fh.readline()
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        raise FaceswapError(f"{path} is not an alignments file (bad header)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FaceswapError(f"{path} is not a faceswap_gan alignments file")
    return header


def finalize_alignments(
    path: str | Path,
    header: dict[str, Any],
    fix: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Rewrite a grown file as a finished one, streaming (memory flat in the file's length).

    The header is replaced, done markers are dropped, and so are faces after the last done
    marker; face lines are copied as they are unless ``fix`` is given (it gets and returns
    the parsed face dict, e.g. to set the speaker after clustering).
    """
    path = Path(path)
    with path.open("r", encoding="utf-8") as src, atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8") as out:
            out.write(json.dumps(header) + "\n")
            src.readline()
            pending: list[str] = []
            for line in src:
                if not line.endswith("\n"):
                    break  # partial line from an interrupted write
                if line.startswith('{"done"'):
                    out.writelines(pending)
                    pending = []
                    continue
                if not line.strip():
                    continue
                if fix is not None:
                    line = json.dumps(fix(json.loads(line))) + "\n"
                pending.append(line)
