"""``render_video``: the staged swap of a whole video.

    decode (thread) -> track (thread; face mesh on every ``render.mesh_every``-th frame, the
    frames between interpolated) -> chunk of frames -> align the faces that may change
    -> who each track is (speaker gate, else D) -> E, G on the chunk's crops (one torch
    thread on a CPU) -> colour, mask + blend inside each face's box -> encode (thread)
    + the input's audio packets copied into the output beside the video

Frames are processed in chunks of ``render.batch_size`` frames: the crops of a chunk go
through the networks together, and the chunk is the look-ahead used to decide who a new
track is (``TrackJudge``: the gate's scores, or D's class head, over its first frames).
Whom each face becomes is ``render/target.py``'s: names are resolved to labels once. Memory
is bounded by the chunk and the queues, not by the clip length.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceswap_gan import __version__
from faceswap_gan.config import ExtractConfig, Pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces.track import FaceTracker, track_stream
from faceswap_gan.faces.types import TrackedFace
from faceswap_gan.fileio import check_writable, output_lock
from faceswap_gan.models.checkpoint import FaceModel
from faceswap_gan.models.gate import (
    TRACK_FRAMES,
    TRACK_STRIDE,
    GateModel,
    TrackVerdict,
    early_verdict,
    verdict,
)
from faceswap_gan.models.inference import Translator
from faceswap_gan.render.swap import FaceJob, FaceSwapper
from faceswap_gan.render.target import ResolvedTarget, SwapTarget, resolve
from faceswap_gan.render.temporal import TemporalSmoother
from faceswap_gan.render.watermark import add_watermark
from faceswap_gan.video.frames import VideoFrame
from faceswap_gan.video.remux import SwapVideoWriter, copy_streams
from faceswap_gan.video.threads import BackgroundIterator, ThreadedSink

log = logging.getLogger(__name__)

ProgressFn = Callable[["RenderProgress"], None]


@dataclass
class RenderOptions:
    start: float = 0.0  # seconds into the input
    max_frames: int | None = None
    preview: bool = False  # original and swapped side by side
    watermark: bool = False
    crf: int | None = None  # None: the pipeline's render.crf
    preset: str | None = None  # None: the pipeline's render.x264_preset
    overwrite: bool = False
    model_name: str = ""  # recorded in the output's metadata
    use_autocast: bool = True


@dataclass
class RenderProgress:
    frames: int
    total: int | None
    faces_swapped: int


@dataclass
class RenderSummary:
    output: Path
    frames: int
    faces_seen: int
    faces_swapped: int
    cuts: int
    seconds: float
    has_audio: bool
    passthrough: bool  # no face in the video: the input was copied unchanged
    track_speakers: dict[int, str] = field(default_factory=dict)  # "unknown": not a speaker
    stage_seconds: dict[str, float] = field(default_factory=dict)  # main-thread time per stage
    faces_left: dict[str, int] = field(default_factory=dict)  # reason -> faces left as they were
    gate: str | None = None  # the speaker gate's embedding; None: every face taken for a speaker

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def default_output_path(input_path: Path, target: SwapTarget, preview: bool = False) -> Path:
    """``clip.speaker_b.mp4`` beside the input (``clip.swapped.mp4`` for --swap)."""
    suffix = ".preview" if preview else ""
    return input_path.with_name(f"{input_path.stem}.{target.describe()}{suffix}.mp4")


def check_output(input_path: Path, output_path: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output render could not write (``fileio.check_writable``)
    or one that is not an MP4."""
    check_writable(output_path, overwrite, source=input_path)
    if output_path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise FaceswapError(f"output must be an .mp4 file, got {output_path.name}")


def extract_config_for(model: FaceModel, pipeline: Pipeline) -> ExtractConfig:
    """The pipeline's tracking settings with the crop the model was trained on (size, padding):
    a face aligned differently from the training crops would not be the face E learned."""
    return dataclasses.replace(pipeline.extract, crop_size=int(model.size), padding=model.padding)


UNKNOWN_TRACK = "unknown"  # RenderSummary.track_speakers of a track that is nobody's


class TrackJudge:
    """Who each track is, decided once from its first ``frames`` frames and then kept for the
    whole track (so a track never flips mid-shot).

    Evidence per track: the speaker gate's scores (``models/gate.py``; the nearest speaker,
    and whether the mean score is within the gate's threshold), else D's class
    log-probabilities summed. Only every ``stride``-th frame's crop is looked at: neighbouring
    frames are near-duplicates, and an embedding can cost 100 ms a crop (dlib on a CPU); and
    a track whose first crops leave no doubt is decided on them (``gate.early_verdict``).
    Render collects evidence one chunk ahead of what it blends, so a track is decided on up to
    ``frames`` of its frames even when it starts at a chunk's end.
    """

    def __init__(self, n_speakers: int, gate: GateModel | None = None,
                 embed: Callable[[np.ndarray], np.ndarray] | None = None,
                 classify: Callable[[np.ndarray], np.ndarray] | None = None,
                 frames: int = TRACK_FRAMES, stride: int = TRACK_STRIDE) -> None:
        self.n = n_speakers
        self.gate, self.embed, self.classify = gate, embed, classify
        self.frames, self.stride = frames, max(1, stride)
        self._scores: dict[int, list[np.ndarray]] = {}
        self._votes: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}
        self._decided: dict[int, TrackVerdict] = {}

    def wants(self, track_id: int) -> bool:
        return track_id not in self._decided and self._counts.get(track_id, 0) < self.frames

    def add(self, jobs: list[FaceJob]) -> None:
        """Evidence from the crops of ``jobs`` (only tracks that still want it)."""
        chosen: list[FaceJob] = []
        for job in jobs:
            if self.wants(job.track_id):
                seen = self._counts.get(job.track_id, 0)
                self._counts[job.track_id] = seen + 1
                if seen % self.stride == 0:
                    chosen.append(job)
        if not chosen:
            return
        if self.gate is not None and self.embed is not None:
            # Each track's first crop here first: a clear one decides it, the rest then go
            # unembedded (a chunk can hold all of a new track's first frames).
            firsts = {job.track_id: job for job in reversed(chosen)}
            self._embed(list(firsts.values()))
            self._embed([job for job in chosen if job.track_id not in self._decided
                         and firsts[job.track_id] is not job])
        elif self.classify is not None:
            crops = np.stack([j.crop.image for j in chosen])
            probs = self.classify(crops)
            for job, p in zip(chosen, probs):
                self._votes[job.track_id] = self._votes.get(job.track_id, np.zeros(self.n)) \
                    + np.log(np.clip(p, 1e-6, 1.0))

    def _embed(self, jobs: list[FaceJob]) -> None:
        """The gate's scores of the jobs' crops, kept per track; a track left in no doubt is
        decided now (``gate.early_verdict``)."""
        if not jobs or self.gate is None or self.embed is None:
            return
        scores = self.gate.scores(self.embed(np.stack([j.crop.image for j in jobs])))
        for job, row in zip(jobs, scores):
            self._scores.setdefault(job.track_id, []).append(row)
        for track_id in {job.track_id for job in jobs}:
            early = early_verdict(self.gate, np.stack(self._scores[track_id]))
            if early is not None:
                self._decided[track_id] = early

    def decided(self, track_id: int) -> TrackVerdict | None:
        """The track's decision if it was taken, without taking it."""
        return self._decided.get(track_id)

    def verdict(self, track_id: int) -> TrackVerdict:
        """The track's decision, taken now from the evidence so far and then kept."""
        if track_id in self._decided:
            return self._decided[track_id]
        if self.gate is not None:
            rows = self._scores.get(track_id)
            decided = verdict(self.gate, np.stack(rows) if rows else np.zeros((0, self.n)))
        else:
            votes = self._votes.get(track_id)
            decided = TrackVerdict(None if votes is None else int(np.argmax(votes)), True,
                                   float("nan"))
        if track_id in self._scores or track_id in self._votes or self.gate is None:
            self._decided[track_id] = decided
        return decided


@dataclass
class _FrameWork:
    frame: VideoFrame
    faces: list[TrackedFace]
    cut: bool


class _Chooser:
    """Maps each face to a target label, or to None and the reason it is left alone.

    Who a face is now: ``--assign``'s side of the frame, else the track's verdict (the gate's,
    or D's class head when the target needs speakers and there is no gate); a plain ``--to``
    without a gate asks nobody and takes every face."""

    def __init__(self, target: ResolvedTarget, translator: Translator, width: int,
                 gate: GateModel | None = None, embed: Callable | None = None) -> None:
        self.target, self.width = target, width
        self.gated = gate is not None
        classify = None
        if not self.gated and target.needs_speakers and not target.assigned:
            classify = translator.classify
        self.judge = TrackJudge(len(target.speakers), gate, embed, classify,
                                stride=TRACK_STRIDE if self.gated else 1)
        self.collects = self.gated or classify is not None
        self.asks_who = self.gated or target.needs_speakers

    def vote(self, jobs: list[FaceJob]) -> None:
        if self.collects:
            self.judge.add(jobs)

    def speaker_of(self, face: TrackedFace) -> int | None:
        if self.target.assigned:
            return self.target.side_speaker(0.5 * (face.box[0] + face.box[2]), self.width)
        if not self.collects:
            return None
        return self.judge.verdict(face.track_id).speaker

    def known(self, face: TrackedFace) -> bool:
        return not self.gated or self.judge.verdict(face.track_id).known

    def needs_crop(self, face: TrackedFace) -> bool:
        """Whether the face may be swapped or its track still waits for a verdict; asks
        nothing of an undecided track (its verdict waits for the look-ahead's evidence)."""
        if self.collects and self.judge.decided(face.track_id) is None:
            return True
        return self.label_for(face)[0] is not None

    def label_for(self, face: TrackedFace) -> tuple[int | None, str | None]:
        """(target label, None), or (None, why the face is left as it was)."""
        if not self.asks_who:
            return self.target.to, None
        return self.target.label_for(self.speaker_of(face), self.known(face))


def render_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    model: FaceModel,
    pipeline: Pipeline,
    target: SwapTarget | ResolvedTarget,
    device: torch.device,
    options: RenderOptions | None = None,
    progress: ProgressFn | None = None,
) -> RenderSummary:
    """Swap the faces in ``input_path`` and write ``output_path`` (H.264, audio copied).

    ``target`` may come already resolved (``render.target.resolve``, as the command does to
    fail before loading anything else). Raises FaceswapError for bad input, and when another
    run is writing ``output_path`` (the run holds ``fileio.output_lock`` on it); on any failure
    or interruption nothing is left at ``output_path``.
    """
    options = options or RenderOptions()
    input_path, output_path = Path(input_path), Path(output_path)
    check_output(input_path, output_path, options.overwrite)
    if isinstance(target, SwapTarget):
        target = resolve(target, model)
    with output_lock(output_path, overwrite=options.overwrite):
        return _render_locked(input_path, output_path, model, pipeline, target, device, options,
                              progress)


def _render_locked(
    input_path: Path,
    output_path: Path,
    model: FaceModel,
    pipeline: Pipeline,
    target: ResolvedTarget,
    device: torch.device,
    options: RenderOptions,
    progress: ProgressFn | None,
) -> RenderSummary:
    from faceswap_gan.video.reader import VideoReader

    cfg = pipeline.render
    extract = extract_config_for(model, pipeline)
    translator = Translator(model, device, autocast=options.use_autocast,
                            batch_size=max(1, cfg.batch_size))
    smoother = TemporalSmoother(cfg.z_smoothing, cfg.color_smoothing)
    swapper = FaceSwapper(translator, extract.crop_size, extract.padding, cfg, smoother)
    started = time.perf_counter()
    counts = {"frames": 0, "seen": 0, "swapped": 0, "cuts": 0}
    stages = _StageClock()
    track_speakers: dict[int, str] = {}
    faces_left: dict[str, int] = {}
    whole = options.start == 0 and options.max_frames is None and not options.preview
    gate, embed, gate_kind = _gate_for(model, target)

    reader = VideoReader(input_path, start=options.start, max_frames=options.max_frames)
    with reader:
        total = reader.frame_count
        if total is not None and options.start > 0 and options.max_frames is None:
            total = max(0, total - int(options.start * float(reader.fps)))
        frames = iter(reader)
        first = next(frames, None)
        if first is None:
            raise FaceswapError(f"no frames in {input_path} from {options.start:g} s")
        h, w = first.image.shape[:2]
        chooser = _Chooser(target, translator, w, gate, embed)
        start_time = first.timestamp if options.start > 0 else 0.0
        end_time = None
        if options.max_frames is not None:
            end_time = start_time + options.max_frames / float(reader.fps)
        metadata = synthetic_metadata(options.model_name, target)
        # The source's time base: every frame keeps its own pts and duration (VFR too).
        writer = SwapVideoWriter(
            output_path, w * 2 if options.preview else w, h, reader.fps,
            crf=cfg.crf if options.crf is None else options.crf,
            preset=options.preset or cfg.x264_preset,
            audio_source=input_path, start=start_time, end=end_time, metadata=metadata,
            time_base=reader.time_base, locked=True,
        )
        sink: ThreadedSink | None = None
        try:  # from here on a failure or a signal (SIGTERM, Ctrl-C) leaves no file behind
            sink = ThreadedSink(writer.write, depth=2 * max(1, cfg.batch_size))
            with FaceTracker(extract, float(reader.fps)) as tracker:
                # Tracking runs one chunk ahead on its own thread (MediaPipe releases the GIL),
                # overlapping the networks and the blend of the previous chunk.
                track_clock = _StageClock()
                tracked = BackgroundIterator(
                    _track(_chain(first, frames), tracker, track_clock, cfg.mesh_every),
                    depth=2 * max(1, cfg.batch_size), name="track")
                chunk: list[_FrameWork] = []
                # The chunk being blended waits until the next one is aligned and has voted,
                # so a track that starts near a chunk's end is still decided on its first
                # frames (TrackJudge.enough), not on one or two.
                ready: list[tuple[list[_FrameWork], list[_Face]]] = []

                def advance(last: bool = False) -> None:
                    if chunk:
                        ready.append((list(chunk), _prepare_chunk(chunk, swapper, chooser,
                                                                  counts, stages)))
                        chunk.clear()
                    while len(ready) > (0 if last else 1):
                        done, prepared = ready.pop(0)
                        _render_chunk(done, prepared, swapper, chooser, sink, options, counts,
                                      track_speakers, faces_left, stages)
                        if progress is not None:
                            progress(RenderProgress(counts["frames"], total, counts["swapped"]))

                try:
                    while True:
                        with stages("wait for tracking"):
                            work = next(tracked, None)
                        if work is None:
                            break
                        counts["cuts"] += int(work.cut and work.frame.index > first.index)
                        chunk.append(work)
                        if len(chunk) >= max(1, cfg.batch_size):
                            advance()
                    advance(last=True)
                finally:
                    tracked.close()
                stages.seconds.update({f"{k} (thread)": v for k, v in track_clock.seconds.items()})
            with stages("encode"):
                sink.close()
                has_audio = writer.has_audio
                passthrough = counts["seen"] == 0 and whole
                if passthrough:
                    writer._abort()  # nothing to swap anywhere: the input's own streams instead
                else:
                    writer.close()
        except BaseException:
            if sink is not None:
                with contextlib.suppress(BaseException):  # the first error is the one to raise
                    sink.close()
            writer._abort()
            raise

    if passthrough:
        log.warning("no faces found in %s; the video was passed through unchanged", input_path)
        copy_streams(input_path, output_path, locked=True,
                     metadata={"comment": "faceswap_gan: no faces found, unchanged"})
    return RenderSummary(
        output=output_path, frames=counts["frames"], faces_seen=counts["seen"],
        faces_swapped=counts["swapped"], cuts=counts["cuts"],
        seconds=time.perf_counter() - started, has_audio=has_audio, passthrough=passthrough,
        track_speakers=track_speakers, stage_seconds=dict(stages.seconds),
        faces_left=faces_left, gate=gate_kind,
    )


def _gate_for(model: FaceModel, target: ResolvedTarget) -> tuple[GateModel | None, Callable | None, str | None]:
    """(gate model, crop embedder, embedding name) when faces are gated, else Nones: with
    ``--all-faces``, or when the model has no gate (every face is then a speaker)."""
    speaker_gate = model.gate
    if target.all_faces or speaker_gate is None:
        return None, None, None
    try:
        chosen = speaker_gate.usable()
        embed = speaker_gate.embedder(chosen.kind)
    except FaceswapError as exc:
        log.warning("speaker gate not used: %s", exc)
        return None, None, None
    return chosen, embed, chosen.kind


@dataclass
class _Face:
    slot: int  # the frame's place in its chunk
    face: TrackedFace
    job: FaceJob | None  # aligned crop; None: the face is left as it is (no crop needed)


def _prepare_chunk(
    chunk: list[_FrameWork],
    swapper: FaceSwapper,
    chooser: _Chooser,
    counts: dict[str, int],
    stages: _StageClock,
) -> list[_Face]:
    """Align the faces that may be swapped or still need a verdict, then let the gate (or D)
    see who each new track is. A face of a decided track that stays as it is gets no crop."""
    faces: list[_Face] = []
    with stages("align"):
        for slot, work in enumerate(chunk):
            reset = work.cut  # a shot cut: the first job of the frame resets the smoothing
            for face in work.faces:
                job = None
                if chooser.needs_crop(face):
                    job = swapper.prepare(work.frame.image, face)
                    job.reset, reset = reset, False
                faces.append(_Face(slot, face, job))
    counts["seen"] += len(faces)
    with stages("classify"):
        chooser.vote([f.job for f in faces if f.job is not None])
    return faces


def _render_chunk(
    chunk: list[_FrameWork],
    faces: list[_Face],
    swapper: FaceSwapper,
    chooser: _Chooser,
    sink: ThreadedSink,
    options: RenderOptions,
    counts: dict[str, int],
    track_speakers: dict[int, str],
    faces_left: dict[str, int],
    stages: _StageClock,
) -> None:
    jobs: list[tuple[int, FaceJob]] = []
    labels: list[int] = []
    for item in faces:
        face = item.face
        label, why = chooser.label_for(face)
        speaker = chooser.speaker_of(face)
        if not chooser.known(face):
            track_speakers[face.track_id] = UNKNOWN_TRACK
        elif speaker is not None:
            track_speakers[face.track_id] = chooser.target.speakers[speaker]
        if label is not None and item.job is not None:
            jobs.append((item.slot, item.job))
            labels.append(label)
        elif why is not None:
            faces_left[why] = faces_left.get(why, 0) + 1
    with stages("networks"):
        generated = swapper.generate([job for _, job in jobs], labels)
    with stages("blend"):
        outputs = [work.frame.image.copy() for work in chunk]
        for (slot, job), crop in zip(jobs, generated):
            counts["swapped"] += int(swapper.paste(outputs[slot], job, crop))
    live = {face.track_id for work in chunk for face in work.faces}
    if swapper.smoother is not None:
        swapper.smoother.forget_except(live)
    for work, image in zip(chunk, outputs):
        if options.watermark:
            add_watermark(image)
        if options.preview:
            image = np.concatenate([work.frame.image, image], axis=1)
        with stages("encode"):  # waiting for the encoder thread when its queue is full
            sink.put(image, work.frame.timestamp, work.frame.duration)
        counts["frames"] += 1


def _track(frames: Iterator[VideoFrame], tracker: FaceTracker, clock: _StageClock,
           mesh_every: int) -> Iterator[_FrameWork]:
    """(frame, faces, cut) for each frame, in order, on the tracking thread."""
    stream = track_stream(frames, tracker, mesh_every)
    while True:
        with clock("track"):
            item = next(stream, None)
        if item is None:
            return
        yield _FrameWork(*item)


def synthetic_metadata(model_name: str, target: SwapTarget | ResolvedTarget) -> dict[str, str]:
    """Container tags that mark the video as synthetic and say what made it."""
    made_by = f"faceswap_gan {__version__}"
    return {
        "comment": f"SYNTHETIC: faces swapped by {made_by}"
                   + (f" with model {model_name}" if model_name else ""),
        "synthetic": "true",
        "faceswap_gan_version": __version__,
        "faceswap_gan_model": model_name,
        "faceswap_gan_target": target.describe(),
    }


def _chain(first: VideoFrame, rest):  # type: ignore[no-untyped-def]
    yield first
    yield from rest


class _StageClock:
    """Accumulates wall time per named stage (main thread only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._name = ""
        self._t0 = 0.0

    def __call__(self, name: str) -> _StageClock:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds[self._name] = self.seconds.get(self._name, 0.0) + time.perf_counter() - self._t0
