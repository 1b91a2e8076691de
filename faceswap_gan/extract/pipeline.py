"""The extract job: a video (or an image folder) -> aligned face crops per speaker + alignments.

    decode (thread) -> FaceTracker (detect / mesh / cut / One Euro) -> assign speaker
      -> align crop -> quality -> crop PNG (atomic) + alignments line -> done marker

A source is named by its sanitised stem plus a short hash of its resolved path
(``source_id``: ``clip-1a2b3c4d``), so two files with the same stem never share alignments or
crops; its header also records a fingerprint of the content, so a changed file is never taken
for the one extracted before. A run holds a lock on the source (``fileio.output_lock``): a
second run on the same source at the same time fails with a clear message.

Resume: the alignments file (workspace/alignments/<source id>.jsonl) grows during the run
with a done marker every few frames. A re-run of a finished source (header complete) with the
same settings is skipped; an unfinished one continues after its last done frame, first removing
crops of frames past it (and temporary files a killed run left), and tracks again (recording
nothing) from the last fresh start of the tracker (frame 0 or a cut) so the result is the
uninterrupted run's. Clustering (``--speakers``)
stages crops under alignments/<source id>.staging/ and names them only when the whole source is
seen. Alignments of version 1 (named by the stem alone) are still found and continued.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceswap_gan.config import ExtractConfig, Pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces.align import align_face
from faceswap_gan.faces.alignments import (
    AlignmentsAppender,
    AlignmentsState,
    FaceRecord,
    finalize_alignments,
    load_state,
    make_header,
    read_header,
    write_alignments,
)
from faceswap_gan.faces.assign import (
    UNKNOWN,
    SpeakerAssignment,
    contact_sheet,
    group_tracks,
)
from faceswap_gan.faces.quality import assess
from faceswap_gan.faces.track import FaceTracker
from faceswap_gan.fileio import WriteError, atomic_path, output_lock, remove_temporaries
from faceswap_gan.video.frames import VideoFrame
from faceswap_gan.video.reader import (
    VideoReader,
    is_image_file,
    iter_images,
    list_images,
    read_image,
)
from faceswap_gan.workspace import Workspace

__all__ = ["ExtractSummary", "SpeakerAssignment", "extract_source", "source_fingerprint", "source_id"]

DONE_EVERY = 25  # frames between done markers (each one flushes the alignments file)
CONTACT_SHEET_MAX = 64  # crops per contact sheet
FINGERPRINT_BYTES = 1 << 20  # a file's content is identified by its size, first and last MiB

# progress(frames_done, frames_total_or_None, faces_found)
ProgressFn = Callable[[int, "int | None", int], None]


@dataclass
class ExtractSummary:
    source: Path
    alignments: Path
    frames: int = 0  # frames (or images) looked at, this run and earlier runs
    frames_with_face: int = 0
    faces: int = 0  # faces recorded (all tracks, filtered or not)
    tracks: int = 0
    cuts: int = 0
    crops: dict[str, int] = field(default_factory=dict)  # speaker -> crops written
    filtered: dict[str, int] = field(default_factory=dict)  # flag -> faces flagged
    contact_sheets: dict[str, Path] = field(default_factory=dict)
    unknown: int = 0  # crops of faces that are none of the speakers, set aside in unknown/
    unknown_tracks: int = 0  # their tracks (the people reported as not the speaker)
    skipped: bool = False  # already complete: nothing was done
    resumed_from: int | None = None  # first frame of this run when it continued an earlier one
    seconds: float = 0.0
    frames_per_second: float = 0.0  # frames processed by this run / its wall time


def _stem_name(source: Path) -> str:
    """The file (or folder) name stem, reduced to safe characters (alignments version 1's id)."""
    name = source.stem if source.is_file() else source.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "source"


def source_id(source: Path) -> str:
    """The name a source's alignments and crops carry: its sanitised stem and 8 hex digits of a
    SHA-1 of its resolved path, so different files with one stem (``a/x.mp4``, ``b/x.mp4``,
    ``débat.mp4``, ``dèbat.mp4``) never share a name."""
    digest = hashlib.sha1(os.fsencode(Path(source).resolve())).hexdigest()[:8]
    return f"{_stem_name(source)}-{digest}"


def source_fingerprint(source: Path) -> str:
    """A cheap identity of a source's content: a file's size and a SHA-1 of its first and last
    MiB; a folder's image names and sizes."""
    h = hashlib.sha1()
    if source.is_dir():
        for path in list_images(source):
            h.update(f"{path.name}\0{path.stat().st_size}\0".encode("utf-8", "surrogateescape"))
        return f"images:{h.hexdigest()[:16]}"
    size = source.stat().st_size
    with source.open("rb") as fh:
        h.update(fh.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            fh.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            h.update(fh.read(FINGERPRINT_BYTES))
    return f"{size}:{h.hexdigest()[:16]}"


def _legacy_alignments(workspace: Workspace, source: Path) -> Path | None:
    """An alignments file of version 1 (named by the stem alone) that this very source wrote."""
    path = workspace.alignments_dir / f"{_stem_name(source)}.jsonl"
    if not path.is_file():
        return None
    try:
        header = read_header(path)
    except (FaceswapError, OSError, UnicodeDecodeError):
        return None
    recorded = header.get("source")
    if "source_id" in header or not isinstance(recorded, str):
        return None
    return path if Path(recorded).resolve() == source.resolve() else None


def _crop_name(sid: str, frame: int, track: int) -> str:
    return f"{sid}_f{frame:06d}_t{track:03d}.png"


def _crop_frame(path: str) -> int:
    """The frame index a crop's name carries (``_crop_name``)."""
    match = re.search(r"_f(\d+)_t\d+\.png$", path)
    return int(match.group(1)) if match else -1


def _settings(config: ExtractConfig, assignment: SpeakerAssignment) -> dict:
    return {"extract": dataclasses.asdict(config), "assignment": assignment.to_dict()}


def _write_png(path: Path, rgb: np.ndarray, locked: bool = False) -> None:
    """``locked``: the source's lock covers ``path`` (crops; see ``_remove_crops_after``)."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise FaceswapError(f"cannot encode {path}")
    with atomic_path(path, locked=locked) as tmp:
        tmp.write_bytes(data.tobytes())  # not cv2.imwrite: it says False, not why (a full disk)


def _read_png(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FaceswapError(f"cannot read crop {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class _Source:
    """Frames of a video, an image folder or a single image, with what the header needs."""

    def __init__(self, path: Path, start_frame: int) -> None:
        self.path = path
        self.reader: VideoReader | None = None
        self.files: list[Path] = []
        self.is_stills = False
        if not path.exists():
            raise FaceswapError(f"file not found: {path}")
        if path.is_dir():
            self.files = list_images(path)
            if not self.files:
                raise FaceswapError(f"{path} holds no images (png, jpg, bmp, webp, tif)")
            self.is_stills = True
            first = read_image(self.files[0]) if start_frame == 0 else None
            self.width = int(first.shape[1]) if first is not None else None
            self.height = int(first.shape[0]) if first is not None else None
            self.fps = None
            self.total = len(self.files)
        elif is_image_file(path):
            self.files = [path]
            self.is_stills = True
            image = read_image(path)
            self.height, self.width = int(image.shape[0]), int(image.shape[1])
            self.fps, self.total = None, 1
        else:
            self.reader = VideoReader(path)
            self.width, self.height = self.reader.width, self.reader.height
            self.fps = float(self.reader.fps)
            self.total = self.reader.frame_count
        self.start_frame = start_frame

    def frames(self) -> Iterator[VideoFrame]:
        if self.reader is not None:
            for frame in self.reader:
                if frame.index >= self.start_frame:
                    yield frame
        elif self.path.is_dir():
            yield from iter_images(self.path, start_index=self.start_frame)
        elif self.start_frame == 0:
            yield VideoFrame(index=0, timestamp=0.0, image=read_image(self.path))

    def file_name(self, index: int) -> str | None:
        return self.files[index].name if self.is_stills else None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _remove_crops_after(workspace: Workspace, staging: Path, sid: str, last_done: int) -> None:
    """Delete crops of this source whose frame is past ``last_done`` (an interrupted tail), and
    the temporary crop files a killed run left (the caller holds the source's lock)."""
    crop_stem = rf"{re.escape(sid)}_f(\d+)_t(\d+)"
    pattern = re.compile(rf"^{crop_stem}\.png$")
    folders = [d for d in (staging, workspace.unknown_dir) if d.is_dir()]
    if workspace.faces_dir.is_dir():
        folders += [d for d in workspace.faces_dir.iterdir() if d.is_dir()]
    for folder in folders:
        for png in folder.glob(f"{sid}_f*.png"):
            m = pattern.match(png.name)
            if m and int(m.group(1)) > last_done:
                png.unlink(missing_ok=True)
        remove_temporaries(folder, crop_stem, ".png")


def _remove_source_outputs(workspace: Workspace, align_path: Path, staging: Path, sid: str) -> None:
    _remove_crops_after(workspace, staging, sid, -1)
    if staging.is_dir():
        shutil.rmtree(staging, ignore_errors=True)
    align_path.unlink(missing_ok=True)
    for sheet in workspace.alignments_dir.glob(f"{sid}.contact.*.png"):
        sheet.unlink(missing_ok=True)


@dataclass
class _Tally:
    """Counts kept while faces are recorded, so the summary never re-reads the file."""

    faces: int = 0
    frames: set = field(default_factory=set)
    tracks: set = field(default_factory=set)
    crops: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    # clustering: track -> staged crop paths (relative), and each track's first frame
    track_crops: dict = field(default_factory=lambda: defaultdict(list))
    first_frame: dict = field(default_factory=dict)

    def add(self, r: FaceRecord) -> None:
        self.faces += 1
        self.frames.add(r.frame)
        self.tracks.add(r.track)
        if r.crop and r.speaker:
            self.crops[r.speaker] += 1
        for flag in r.flags:
            self.flags[flag] += 1
        if r.crop:
            self.track_crops[r.track].append(r.crop)
        self.first_frame.setdefault(r.track, r.frame)

    def as_dict(self, crops: dict[str, int] | None = None) -> dict:
        return {
            "faces": self.faces,
            "frames_with_face": len(self.frames),
            "tracks": len(self.tracks),
            "crops": dict(sorted((crops if crops is not None else self.crops).items())),
            "filtered": dict(sorted(self.flags.items())),
        }


def _fill_summary(summary: ExtractSummary, counts: dict) -> None:
    summary.unknown = int(counts.get("unknown", 0))
    summary.unknown_tracks = int(counts.get("unknown_tracks", 0))
    summary.faces = int(counts.get("faces", 0))
    summary.frames_with_face = int(counts.get("frames_with_face", 0))
    summary.tracks = int(counts.get("tracks", 0))
    summary.crops = dict(counts.get("crops", {}))
    summary.filtered = dict(counts.get("filtered", {}))
    summary.cuts = int(counts.get("cuts", 0))


def extract_source(
    source: str | Path,
    workspace: Workspace,
    pipeline: Pipeline,
    assignment: SpeakerAssignment,
    progress: ProgressFn | None = None,
    force: bool = False,
    max_frames: int | None = None,
    seed: int = 0,
) -> ExtractSummary:
    """Extract one source into ``workspace``; see the module docstring for resume rules.

    ``force`` discards an earlier extraction of this source (crops and alignments).
    ``max_frames`` stops after that many frames (for quick looks; the result is complete).
    """
    source = Path(source)
    if not source.exists():
        raise FaceswapError(f"file not found: {source}")
    sid = source_id(source)
    with output_lock(workspace.alignments_dir / sid):
        legacy = _legacy_alignments(workspace, source)
        if legacy is not None and not (workspace.alignments_dir / f"{sid}.jsonl").exists():
            if force:  # start again under the new name
                old = legacy.stem
                _remove_source_outputs(workspace, legacy, workspace.alignments_dir / f"{old}.staging", old)
            else:
                sid = legacy.stem  # continue (or skip) the version-1 extraction of this file
        return _extract_locked(source, sid, workspace, pipeline, assignment, progress, force,
                               max_frames, seed)


def _extract_locked(
    source: Path,
    sid: str,
    workspace: Workspace,
    pipeline: Pipeline,
    assignment: SpeakerAssignment,
    progress: ProgressFn | None,
    force: bool,
    max_frames: int | None,
    seed: int,
) -> ExtractSummary:
    config = pipeline.extract
    align_path = workspace.alignments_dir / f"{sid}.jsonl"
    staging = workspace.alignments_dir / f"{sid}.staging"
    settings = _settings(config, assignment)
    if max_frames is not None:
        settings["max_frames"] = int(max_frames)
    summary = ExtractSummary(source=source, alignments=align_path)
    fingerprint = source_fingerprint(source)

    # ---- earlier runs ----
    previous: list[FaceRecord] = []
    start_frame = 0
    old_cuts = 0
    replay: tuple[int, int] | None = None
    if align_path.exists():
        if force:
            _remove_source_outputs(workspace, align_path, staging, sid)
        else:
            header = read_header(align_path)
            state = load_state(align_path) if not header.get("complete") else AlignmentsState(header, [], -1)
            if state.header.get("fingerprint", fingerprint) != fingerprint:
                raise FaceswapError(
                    f"{source} changed since it was extracted ({align_path.name}); pass --force "
                    "to extract it again"
                )
            if state.header.get("settings") != settings:
                raise FaceswapError(
                    f"{source.name} was extracted before with other settings or speakers "
                    f"({align_path.name}); pass --force to extract it again"
                )
            if state.header.get("complete"):
                summary.skipped = True
                summary.frames = int(state.header.get("frames") or 0)
                _fill_summary(summary, state.header.get("summary", {}))
                summary.contact_sheets = {
                    p.name.split(".contact.")[1][:-4]: p
                    for p in workspace.alignments_dir.glob(f"{sid}.contact.*.png")
                }
                return summary
            previous = state.records
            old_cuts = int(state.progress.get("cuts", 0))
            if "restart" in state.progress and "restart_id" in state.progress:
                replay = (int(state.progress["restart"]), int(state.progress["restart_id"]))
            start_frame = state.last_done + 1
            _remove_crops_after(workspace, staging, sid, state.last_done)
            summary.resumed_from = start_frame

    src = _Source(source, replay[0] if replay else start_frame)
    try:
        return _run(
            src, sid, fingerprint, workspace, pipeline, assignment, settings, previous,
            start_frame, old_cuts, align_path, staging, summary, progress, max_frames, seed,
            replay,
        )
    except WriteError:
        raise  # the disk, not the input: keep what was recorded so the same command resumes
    except FaceswapError:
        # Bad input (corrupt video, no face...): leave nothing of this source behind.
        src.close()
        _remove_source_outputs(workspace, align_path, staging, sid)
        raise
    finally:
        src.close()


def _run(
    src: _Source,
    sid: str,
    fingerprint: str,
    workspace: Workspace,
    pipeline: Pipeline,
    assignment: SpeakerAssignment,
    settings: dict,
    previous: list[FaceRecord],
    start_frame: int,
    old_cuts: int,
    align_path: Path,
    staging: Path,
    summary: ExtractSummary,
    progress: ProgressFn | None,
    max_frames: int | None,
    seed: int,
    replay: tuple[int, int] | None = None,
) -> ExtractSummary:
    """``replay`` = (frame, next track id) where the tracker last started afresh (the first
    frame or a cut) before ``start_frame``: a resumed run tracks again from there without
    recording, so from ``start_frame`` on its tracker state (ids, One Euro filters, MediaPipe's
    video-mode graphs) and so its records and crops are the uninterrupted run's."""
    config = pipeline.extract
    header = make_header(
        source=str(src.path.resolve()),
        source_id=sid,
        fingerprint=fingerprint,
        width=src.width,
        height=src.height,
        fps=src.fps,
        crop_size=config.crop_size,
        padding=config.padding,
        pipeline=pipeline.name,
        settings=settings,
    )
    if previous or start_frame > 0:
        old_header = load_state(align_path).header
        for key in ("width", "height"):
            header[key] = old_header.get(key, header[key])
    done = None
    if start_frame > 0:  # what earlier runs recorded stays recorded, whatever happens next
        done = {"done": start_frame - 1, "cuts": int(old_cuts)}
        if replay is not None:
            done.update(restart=replay[0], restart_id=replay[1])
    write_alignments(align_path, header, previous, done)  # the valid prefix this run grows
    cluster = assignment.mode == "cluster"
    if cluster:
        staging.mkdir(parents=True, exist_ok=True)

    total = src.total if max_frames is None else min(max_frames, src.total or max_frames)
    tally = _Tally()
    for r in previous:
        tally.add(r)
    faces_found = len(previous)
    cuts = int(old_cuts)
    seen_per_track: Counter = Counter(r.track for r in previous)
    if replay is not None:
        restart, first_id = replay
    else:  # an alignments file from before replays were recorded: ids continue, state is new
        restart, first_id = start_frame, max((r.track for r in previous), default=-1) + 1
    restart_id = first_id
    frames_done = start_frame
    t0 = time.perf_counter()
    processed = 0
    last_index = start_frame - 1

    with FaceTracker(config, src.fps or 25.0, first_track_id=first_id) as tracker, \
            AlignmentsAppender(align_path, start_frame - 1) as out:
        if progress:
            progress(frames_done, total, faces_found)
        for frame in src.frames():
            if max_frames is not None and frame.index >= max_frames:
                break
            next_id = tracker.next_track_id
            # A replay starts afresh at the cut the uninterrupted run started afresh at.
            replay_cut = replay is not None and 0 < frame.index == replay[0]
            faces = tracker.update(frame, new_shot=src.is_stills or replay_cut)
            if tracker.last_frame_was_cut:
                restart, restart_id = frame.index, next_id
            if frame.index < start_frame:
                continue  # replayed for the tracker's state only: already recorded
            cuts += int(tracker.last_frame_was_cut and not src.is_stills and frame.index > 0)
            h, w = frame.image.shape[:2]
            names = assignment.speakers_in_frame(faces, w, h)
            for face in faces:
                speaker = names.get(face.track_id)
                face.speaker = speaker
                crop = align_face(frame.image, face, config.crop_size, config.padding)
                quality = assess(face.landmarks, crop.image, config)
                seen = seen_per_track[face.track_id]
                seen_per_track[face.track_id] += 1
                write = (
                    (speaker is not None or cluster)
                    and (quality.ok or not config.skip_filtered)
                    and seen % max(1, config.save_every) == 0
                )
                rel = None
                if write:
                    name = _crop_name(sid, frame.index, face.track_id)
                    if cluster:
                        _write_png(staging / name, crop.image, locked=True)
                        rel = str((staging / name).relative_to(workspace.root))
                    else:
                        dest = workspace.speaker_faces_dir(speaker) / name
                        _write_png(dest, crop.image, locked=True)
                        rel = str(dest.relative_to(workspace.root))
                record = FaceRecord(
                    frame=frame.index, time=frame.timestamp, track=face.track_id,
                    speaker=speaker, landmarks=face.landmarks, matrix=crop.matrix,
                    score=face.score, blur=quality.blur, size=quality.size, yaw=quality.yaw,
                    pitch=quality.pitch, roll=quality.roll, flags=quality.flags, crop=rel,
                    file=src.file_name(frame.index),
                )
                out.append(record)
                tally.add(record)
                faces_found += 1
            last_index = frame.index
            processed += 1
            frames_done = frame.index + 1
            if frame.index % DONE_EVERY == DONE_EVERY - 1:
                out.mark_done(frame.index, cuts=cuts, restart=restart, restart_id=restart_id)
            if progress:
                progress(frames_done, total, faces_found)
        out.mark_done(last_index, sync=True, cuts=cuts, restart=restart, restart_id=restart_id)

    summary.seconds = time.perf_counter() - t0
    summary.frames_per_second = processed / summary.seconds if summary.seconds > 0 else 0.0
    summary.frames = frames_done
    summary.cuts = cuts

    if tally.faces == 0:
        raise FaceswapError(f"no face found in {src.path}")
    crops = None
    fix = None
    names: dict[int, str] = {}
    # A folder of images under one --speaker name is a domain (any people), not one person.
    if cluster or (assignment.mode == "single" and not src.is_stills):
        names = _name_tracks(tally, assignment, workspace, sid, summary, seed, config.padding)
    if names:
        crops = Counter()
        for track, paths in tally.track_crops.items():
            if names.get(track) and names[track] != UNKNOWN:
                crops[names[track]] += len(paths)

        def fix(face: dict) -> dict:
            name = names.get(face["track"], face.get("speaker") if not cluster else None)
            face["speaker"] = None if name == UNKNOWN else name
            if face.get("crop"):
                file = Path(face["crop"]).name
                folder = workspace.unknown_dir if name == UNKNOWN else \
                    workspace.speaker_faces_dir(name) if name else None
                face["crop"] = str(folder.relative_to(workspace.root) / file) if folder else None
            return face

    counts = tally.as_dict(crops)
    counts["cuts"] = cuts
    counts["unknown"] = summary.unknown
    counts["unknown_tracks"] = summary.unknown_tracks
    header["complete"] = True
    header["frames"] = frames_done
    header["summary"] = counts
    finalize_alignments(align_path, header, fix)
    if cluster:
        shutil.rmtree(staging, ignore_errors=True)
    _fill_summary(summary, counts)
    return summary


def _staged_or_moved(workspace: Workspace, rel: str) -> Path:
    """A staged crop, or where an interrupted naming step already moved it."""
    path = workspace.root / rel
    if path.exists():
        return path
    for moved in [*workspace.faces_dir.glob(f"*/{path.name}"),
                  *workspace.unknown_dir.glob(path.name)]:
        return moved
    return path


def _name_tracks(
    tally: _Tally,
    assignment: SpeakerAssignment,
    workspace: Workspace,
    sid: str,
    summary: ExtractSummary,
    seed: int,
    padding: float,
) -> dict[int, str]:
    """Who each track with crops is, by identity (``faces.assign.group_tracks``): the
    speakers' groups, or ``UNKNOWN`` (a moderator, the audience, a passer-by). Moves each
    crop to ``faces/<speaker>/`` or ``unknown/``, writes a contact sheet per group, and
    counts the unknown in ``summary``. Safe to repeat after an interruption: crops already
    moved are found in their new place.

    ``--speakers A,B``: every group is named. ``--speaker NAME``: NAME is the dominant
    person (the group on screen in the most frames); other people's tracks are set aside. Returns
    track id -> name ({} when a single-speaker source has one track: nothing to decide)."""
    tracks = {t: p for t, p in tally.track_crops.items() if p}
    if assignment.mode == "single" and len(tracks) <= 1:
        return {}
    from faceswap_gan.models.gate import SAME_PERSON, identity_embedder

    embed = identity_embedder(padding)
    features: dict[int, np.ndarray] = {}
    for track, paths in tracks.items():
        # A few crops spread over the track describe it; reading every crop back is wasteful.
        pick = paths[:: max(1, len(paths) // 12)][:12]
        crops = np.stack([_read_png(_staged_or_moved(workspace, p)) for p in pick])
        features[track] = embed(crops).mean(axis=0)
    first = {t: tally.first_frame[t] for t in features}
    frames = {t: {_crop_frame(p) for p in paths} for t, paths in tracks.items()}
    names = group_tracks(features, frames, first, assignment.names, SAME_PERSON[embed.kind],
                         seed=seed)
    sheets: dict[str, list[Path]] = defaultdict(list)
    for track, paths in tracks.items():
        speaker = names.get(track)
        folder = workspace.unknown_dir if speaker == UNKNOWN else workspace.speaker_faces_dir(speaker)
        for rel in paths:
            current = _staged_or_moved(workspace, rel)
            dest = folder / current.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if current.exists() and current != dest:
                os.replace(current, dest)
            sheets[speaker].append(dest)
    summary.unknown = len(sheets.get(UNKNOWN, []))
    summary.unknown_tracks = sum(1 for t in tracks if names.get(t) == UNKNOWN)
    for speaker, paths in sheets.items():
        if assignment.mode == "single" and speaker != UNKNOWN:
            continue  # one speaker's sheet tells nothing; the others' shows who was set aside
        # Spread over the whole source so every track of the group shows.
        paths.sort()
        step = max(1, len(paths) // CONTACT_SHEET_MAX)
        crops_shown = [_read_png(p) for p in paths[::step][:CONTACT_SHEET_MAX]]
        path = workspace.alignments_dir / f"{sid}.contact.{speaker}.png"
        _write_png(path, contact_sheet(crops_shown))
        summary.contact_sheets[speaker] = path
    return names
