"""``render_video``: the staged swap of a whole video.

    decode (thread) -> track + align (per frame) -> chunk of frames -> E, G on batches of crops
    -> inverse warp, colour, mask + blend (per face, inside its box) -> encode (thread)
    + the input's audio packets copied into the output beside the video

Frames are processed in chunks of ``render.batch_size`` frames: the crops of a chunk go
through the networks together, and the chunk is the look-ahead used to decide which speaker
a new track is (D's class head averaged over the track's crops so far). Memory is bounded
by the chunk and the queues, not by the clip length.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceswap_gan import __version__
from faceswap_gan.config import ExtractConfig, Pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces.types import TrackedFace
from faceswap_gan.render.swap import FaceJob, FaceSwapper
from faceswap_gan.render.temporal import TemporalSmoother
from faceswap_gan.render.watermark import add_watermark
from faceswap_gan.video.frames import VideoFrame
from faceswap_gan.video.remux import SwapVideoWriter, copy_streams
from faceswap_gan.video.threads import BackgroundIterator, ThreadedSink

log = logging.getLogger(__name__)

ProgressFn = Callable[["RenderProgress"], None]


@dataclass
class SwapTarget:
    """Which faces become whom.

    - ``to`` alone: every face becomes ``to``;
    - ``swap``: each face becomes the other speaker of a two-speaker model;
    - ``only``: only faces of that speaker are swapped (to ``to``, else to the other speaker).

    The speaker of a face comes from ``assign`` (``{"left": A, "right": B}``, by which half
    of the frame the face is in) or else from D's class head, averaged over its track.
    """

    to: str | None = None
    swap: bool = False
    only: str | None = None
    assign: dict[str, str] | None = None

    def describe(self) -> str:
        if self.swap:
            return "swapped"
        return self.to or f"not_{self.only}"

    @property
    def needs_speakers(self) -> bool:
        """Whether the speaker of each face must be known (not for plain --to)."""
        return self.swap or self.only is not None


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
    track_speakers: dict[int, str] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # main-thread time per stage

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def default_output_path(input_path: Path, target: SwapTarget, preview: bool = False) -> Path:
    """``clip.speaker_b.mp4`` beside the input (``clip.swapped.mp4`` for --swap)."""
    suffix = ".preview" if preview else ""
    return input_path.with_name(f"{input_path.stem}.{target.describe()}{suffix}.mp4")


def check_output(input_path: Path, output_path: Path, overwrite: bool) -> None:
    if output_path.resolve() == input_path.resolve():
        raise FaceswapError(f"the output {output_path} is the input; choose another with -o")
    if output_path.exists() and not overwrite:
        raise FaceswapError(f"{output_path} exists; use --force to replace it")
    if output_path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise FaceswapError(f"output must be an .mp4 file, got {output_path.name}")


def extract_config_for(model: object, pipeline: Pipeline) -> ExtractConfig:
    """The pipeline's tracking settings with the crop the model was trained on (size, padding):
    a face aligned differently from the training crops would not be the face E learned."""
    meta = getattr(model, "meta", {}) or {}
    stored = (meta.get("pipeline") or {}).get("extract") or {}
    padding = stored.get("padding", pipeline.extract.padding)
    return dataclasses.replace(pipeline.extract, crop_size=int(model.size),  # type: ignore[attr-defined]
                               padding=float(padding))


def check_target(model: object, target: SwapTarget) -> None:
    """Reject impossible targets before any decoding starts."""
    speakers = list(model.speakers)  # type: ignore[attr-defined]
    chosen = [bool(target.to), target.swap, bool(target.only)]
    if not any(chosen):
        raise FaceswapError(f"say whom to swap to: --to SPEAKER, --swap or --only SPEAKER "
                            f"(speakers: {', '.join(speakers)})")
    if target.swap and (target.to or target.only):
        raise FaceswapError("--swap cannot be combined with --to or --only")
    for name in (target.to, target.only, *(target.assign or {}).values()):
        if name:
            model.label_of(name)
    if (target.swap or (target.only and not target.to)) and len(speakers) != 2:
        raise FaceswapError(
            f"--swap/--only without --to needs a two-speaker model; this one has "
            f"{len(speakers)} ({', '.join(speakers)}): use --to SPEAKER"
        )
    if target.only and target.to == target.only:
        raise FaceswapError(f"--only {target.only} --to {target.to} would change nothing")
    for side in target.assign or {}:
        if side not in ("left", "right"):
            raise FaceswapError(f"--assign takes left=SPEAKER,right=SPEAKER, got '{side}'")


class SpeakerVotes:
    """Who each track is: D's class log-probabilities summed over the track's first crops."""

    def __init__(self, n_speakers: int, enough: int = 12) -> None:
        self.n = n_speakers
        self.enough = enough  # crops after which a track's speaker is settled (D runs no more)
        self._sums: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}

    def wants(self, track_id: int) -> bool:
        return self._counts.get(track_id, 0) < self.enough

    def add(self, track_id: int, probs: np.ndarray) -> None:
        self._sums[track_id] = self._sums.get(track_id, np.zeros(self.n)) + np.log(
            np.clip(probs, 1e-6, 1.0))
        self._counts[track_id] = self._counts.get(track_id, 0) + 1

    def speaker(self, track_id: int) -> int | None:
        votes = self._sums.get(track_id)
        return None if votes is None else int(np.argmax(votes))

    def forget_except(self, live: set[int]) -> None:
        for track_id in list(self._sums):
            if track_id not in live:
                del self._sums[track_id]
                self._counts.pop(track_id, None)


@dataclass
class _FrameWork:
    frame: VideoFrame
    faces: list[TrackedFace]
    cut: bool


class _Chooser:
    """Maps each face of a chunk to a target label, or None to leave it alone."""

    def __init__(self, model: object, target: SwapTarget, translator: object, width: int) -> None:
        self.model, self.target, self.translator, self.width = model, target, translator, width
        self.speakers = list(model.speakers)  # type: ignore[attr-defined]
        self.votes = SpeakerVotes(len(self.speakers))
        self.to_label = model.label_of(target.to) if target.to else None
        self.only_label = model.label_of(target.only) if target.only else None

    def speaker_of(self, face: TrackedFace) -> int | None:
        if self.target.assign:
            cx = 0.5 * (face.box[0] + face.box[2])
            name = self.target.assign.get("left" if cx < self.width / 2 else "right")
            return None if name is None else self.speakers.index(name)
        return self.votes.speaker(face.track_id)

    def vote(self, jobs: list[FaceJob]) -> None:
        if not self.target.needs_speakers or self.target.assign:
            return
        jobs = [job for job in jobs if self.votes.wants(job.track_id)]
        if not jobs:
            return
        crops = np.stack([j.crop.image for j in jobs])
        probs = self.translator.classify(crops)
        for job, p in zip(jobs, probs):
            self.votes.add(job.track_id, p)

    def label_for(self, face: TrackedFace) -> int | None:
        if not self.target.needs_speakers:
            return self.to_label
        current = self.speaker_of(face)
        if current is None:
            return None
        other = 1 - current if len(self.speakers) == 2 else None
        if self.target.swap:
            return other
        if current != self.only_label:
            return None
        return self.to_label if self.to_label is not None else other


def render_video(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    model: object,
    pipeline: Pipeline,
    target: SwapTarget,
    device: torch.device,
    options: RenderOptions | None = None,
    progress: ProgressFn | None = None,
) -> RenderSummary:
    """Swap the faces in ``input_path`` and write ``output_path`` (H.264, audio copied).

    ``model`` is a loaded ``FaceModel``. Raises FaceswapError for bad input; on any failure
    or interruption nothing is left at ``output_path``.
    """
    from faceswap_gan.faces.track import FaceTracker
    from faceswap_gan.models.inference import Translator
    from faceswap_gan.video.reader import VideoReader

    options = options or RenderOptions()
    input_path, output_path = Path(input_path), Path(output_path)
    check_output(input_path, output_path, options.overwrite)
    check_target(model, target)
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
        chooser = _Chooser(model, target, translator, w)
        start_time = first.timestamp if options.start > 0 else 0.0
        end_time = None
        if options.max_frames is not None:
            end_time = start_time + options.max_frames / float(reader.fps)
        metadata = synthetic_metadata(options.model_name, target)
        writer = SwapVideoWriter(
            output_path, w * 2 if options.preview else w, h, reader.fps,
            crf=cfg.crf if options.crf is None else options.crf,
            preset=options.preset or cfg.x264_preset,
            audio_source=input_path, start=start_time, end=end_time, metadata=metadata,
        )
        sink = ThreadedSink(writer.write, depth=2 * max(1, cfg.batch_size))
        try:
            with FaceTracker(extract, float(reader.fps)) as tracker:
                # Tracking runs one chunk ahead on its own thread (MediaPipe releases the GIL),
                # overlapping the networks and the blend of the previous chunk.
                track_clock = _StageClock()
                tracked = BackgroundIterator(
                    _track(_chain(first, frames), tracker, track_clock),
                    depth=2 * max(1, cfg.batch_size), name="track")
                chunk: list[_FrameWork] = []

                def flush() -> None:
                    _render_chunk(chunk, swapper, chooser, sink, options, counts, track_speakers,
                                  stages)
                    chunk.clear()
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
                            flush()
                    if chunk:
                        flush()
                finally:
                    tracked.close()
                stages.seconds.update({f"{k} (thread)": v for k, v in track_clock.seconds.items()})
            with stages("encode"):
                sink.close()
                has_audio = writer.has_audio
                writer.close()
        except BaseException:
            with _suppress():
                sink.close()
            writer._abort()
            raise

    passthrough = False
    if counts["seen"] == 0 and options.start == 0 and options.max_frames is None \
            and not options.preview:
        # Nothing to swap anywhere: give back the input's own streams, not a re-encode.
        log.warning("no faces found in %s; the video was passed through unchanged", input_path)
        copy_streams(input_path, output_path, metadata={"comment": "faceswap_gan: no faces found, unchanged"})
        passthrough = True
    return RenderSummary(
        output=output_path, frames=counts["frames"], faces_seen=counts["seen"],
        faces_swapped=counts["swapped"], cuts=counts["cuts"],
        seconds=time.perf_counter() - started, has_audio=has_audio, passthrough=passthrough,
        track_speakers=track_speakers, stage_seconds=dict(stages.seconds),
    )


def _render_chunk(
    chunk: list[_FrameWork],
    swapper: FaceSwapper,
    chooser: _Chooser,
    sink: ThreadedSink,
    options: RenderOptions,
    counts: dict[str, int],
    track_speakers: dict[int, str],
    stages: _StageClock,
) -> None:
    # Align every face of the chunk, then let D vote on who each track is.
    prepared: list[tuple[int, FaceJob]] = []
    with stages("align"):
        _prepare(chunk, swapper, prepared)
    counts["seen"] += len(prepared)
    with stages("classify"):
        chooser.vote([job for _, job in prepared])
    jobs: list[tuple[int, FaceJob]] = []
    for slot, job in prepared:
        label = chooser.label_for(job.crop.face)
        speaker = chooser.speaker_of(job.crop.face)
        if speaker is not None:
            track_speakers[job.track_id] = chooser.speakers[speaker]
        if label is not None:
            job.label = label
            jobs.append((slot, job))
    with stages("networks"):
        generated = swapper.generate([job for _, job in jobs])
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
            sink.put(image, work.frame.timestamp)
        counts["frames"] += 1


def _track(frames, tracker, clock: _StageClock):  # type: ignore[no-untyped-def]
    """(frame, faces, cut) for each frame, on the tracking thread."""
    for frame in frames:
        with clock("track"):
            faces = tracker.update(frame)
        yield _FrameWork(frame, faces, tracker.last_frame_was_cut)


def _prepare(chunk: list[_FrameWork], swapper: FaceSwapper,
             prepared: list[tuple[int, FaceJob]]) -> None:
    for slot, work in enumerate(chunk):
        first_face = True
        for face in work.faces:
            job = swapper.prepare(work.frame.image, face, label=-1)
            job.reset = work.cut and first_face
            first_face = False
            prepared.append((slot, job))


def synthetic_metadata(model_name: str, target: SwapTarget) -> dict[str, str]:
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


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True
