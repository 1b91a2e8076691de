"""Sample footage with ground truth: per-speaker training clips, a debate and its perfect swap.

Stages: portraits -> (per clip) a plan: every frame's faces with pose, mouth, blink and
camera framing, the clip's lighting and audio -> render: warp each face, light, add
noise, encode (video + AAC) -> record JSON + landmarks NPZ beside the clip.

The debate's ground truth is the same plan with each face's inner face exchanged
(speaker_a <-> speaker_b; with more speakers each is replaced by the next in order), as a
face swap would: the target's face (brows to chin) on the source's head and background
(samples/truth.py), with the same noise, pose, mouth, blinks, light and placement.

With ``others`` (a third person: ``faceswap samples --moderator``) the debate also shows
people who are none of the speakers, as real debates do: reaction shots of the moderator and
audience cutaways (two of them side by side, smaller) cut into the speakers' turns, or a
third panel between the speakers in split layout. The truth leaves those faces as they are.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.fileio import write_json_atomic
from faceswap_gan.synthetic.animate import (
    Lighting,
    NoiseBank,
    apply_lighting,
    lighting,
    speaker_motion,
)
from faceswap_gan.synthetic.audio import AUDIO_RATE, mouth_from_envelope, synth_speech
from faceswap_gan.synthetic.mesh import PoseParams
from faceswap_gan.synthetic.portraits import (
    Portrait,
    analyse_portrait,
    default_portraits,
    portrait_fingerprint,
)
from faceswap_gan.synthetic.record import (
    GENERATOR,
    RECORD_VERSION,
    round_floats,
    write_landmarks,
    write_record,
)
from faceswap_gan.synthetic.render import Framing, SpeakerRenderer
from faceswap_gan.synthetic.truth import SwapTruthRenderer
from faceswap_gan.video.writer import VideoWriter

LAYOUTS = ("cuts", "split")
MANIFEST = "samples.json"
# Framing in face terms: eye distance as a fraction of the frame height, eye line height.
SPEAKER_IOD = 0.16
CLOSEUP_IOD = 0.21
EYE_LINE = 0.42
SHOT_SECONDS = (2.0, 5.0)
# Samples favour encode speed: at CRF 18, superfast is twice as fast as veryfast for files
# about twice the size (a 30 s 640x360 clip is ~4 MB).
X264_PRESET = "superfast"

Progress = Callable[[str, int, int], None]  # (clip name, frames done, frames total)


@dataclass
class FacePlan:
    """One face in one frame: whose motion, whose portrait, where."""

    slot: int
    speaker: str  # identity drawn in the main clip (owner of the motion, head and background)
    shown: str  # identity of the face in this clip (== speaker, or the swap's in the truth clip)
    pose: PoseParams
    framing: Framing
    panel: tuple[int, int]  # x0, width of the panel the face is drawn in
    side: str | None = None
    role: str = "speaker"  # "speaker", or for people who are none: "moderator", "audience"


@dataclass
class ClipPlan:
    name: str
    size: tuple[int, int]
    fps: int
    layout: str  # "single", "cuts" or "split"
    frames: list[list[FacePlan]]
    frame_shot: list[int]
    shots: list[dict[str, Any]]
    light: Lighting
    audio: np.ndarray
    noise_seed: int
    speakers: list[str]
    swap: dict[str, str] = field(default_factory=dict)
    truth_of: str | None = None
    seed: int = 0
    others: list[str] = field(default_factory=list)  # drawn people who are none of the speakers

    @property
    def faces_per_frame(self) -> int:
        return max((len(f) for f in self.frames), default=0)


@dataclass
class ClipFiles:
    video: Path
    record: Path
    landmarks: Path


@dataclass
class SampleSet:
    speakers: list[str]
    speaker_clips: dict[str, Path]
    debate: Path
    truth: Path
    record: Path  # debate.json
    records: dict[str, Path]  # every clip's record, by clip name
    landmarks: dict[str, Path]  # every clip's landmarks NPZ, by clip name
    out_dir: Path
    others: list[str] = field(default_factory=list)  # people in the debate who are no speaker


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator for one purpose; independent of the order clips are made in."""
    parts = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        parts.append(zlib.crc32(key.encode()) if isinstance(key, str) else int(key))
    return np.random.default_rng(parts)


def _check_settings(seconds: float, size: tuple[int, int], fps: int) -> None:
    if not seconds > 0:
        raise FaceswapError(f"clip length must be positive, got {seconds} s")
    w, h = size
    if w < 64 or h < 64:
        raise FaceswapError(f"frame size must be at least 64x64, got {w}x{h}")
    if not 1 <= fps <= 120:
        raise FaceswapError(f"fps must be between 1 and 120, got {fps}")


# -- plans ---------------------------------------------------------------------------------

def plan_speaker_clip(name: str, seconds: float, size: tuple[int, int], fps: int,
                      seed: int) -> ClipPlan:
    """A single speaker talking to the camera (training footage)."""
    _check_settings(seconds, size, fps)
    w, h = size
    n = max(1, round(seconds * fps))
    motion = speaker_motion(_rng(seed, "motion", name), n, fps)
    speech = synth_speech(_rng(seed, "voice", name), n / fps)
    mouth = mouth_from_envelope(speech.envelope_at(np.arange(n) / fps))
    base_iod = SPEAKER_IOD * min(h, w * 9 / 16)
    frames = []
    for i in range(n):
        framing = Framing(w / 2 + motion.drift_x[i] * w, EYE_LINE * h + motion.drift_y[i] * h,
                          base_iod * motion.zoom[i])
        pose = PoseParams(motion.yaw[i], motion.pitch[i], motion.roll[i], mouth[i], motion.blink[i])
        frames.append([FacePlan(0, name, name, pose, framing, (0, w))])
    return ClipPlan(
        name=name, size=size, fps=fps, layout="single", frames=frames, frame_shot=[0] * n,
        shots=[{"index": 0, "start": 0, "end": n, "speaker": name, "layout": "single"}],
        light=lighting(_rng(seed, "light", name), n, fps), audio=speech.samples,
        noise_seed=int(_rng(seed, "noise", name).integers(2**31)), speakers=[name], seed=seed,
    )


def _turns(rng: np.random.Generator, n: int, fps: int, speakers: list[str]) -> list[tuple[int, int, str]]:
    """Alternating turns of 2-5 s covering ``n`` frames (one turn if n is under 4 s)."""
    shortest, longest = (round(v * fps) for v in SHOT_SECONDS)
    turns: list[tuple[int, int, str]] = []
    start, current = 0, speakers[int(rng.integers(len(speakers)))]
    while start < n:
        remaining = n - start
        length = round(rng.uniform(*SHOT_SECONDS) * fps)
        if remaining <= longest or remaining < 2 * shortest:
            length = remaining  # the last turn takes what is left
        elif remaining - length < shortest:
            length = remaining - shortest  # leave room for a full last turn
        turns.append((start, start + length, current))
        others = [s for s in speakers if s != current]
        current = others[int(rng.integers(len(others)))]
        start += length
    return turns


def swap_mapping(speakers: list[str]) -> dict[str, str]:
    """Who replaces whom in the ground truth: a <-> b, or each by the next in order."""
    return {s: speakers[(i + 1) % len(speakers)] for i, s in enumerate(speakers)}


CUTAWAY_SECONDS = (1.0, 1.6)
# A reaction shot frames the head less tightly than a speaker's close-up: a face turned
# away (the default third portrait is a 3/4 view) has a short eye distance for its size.
OTHER_ZOOM = 0.6


def _cutaways(rng: np.random.Generator, turns: list[tuple[int, int, str]], fps: int
              ) -> list[tuple[int, int, str | None, str]]:
    """(start, end, speaker or None, role) shots: every second turn ends with a cutaway while
    the speaker goes on talking, alternately to the moderator and to the audience, when the
    turn is long enough to keep 1.5 s of the speaker (the speakers stay on screen longest)."""
    shots: list[tuple[int, int, str | None, str]] = []
    kinds = ("moderator", "audience")
    used = 0
    for k, (a, b, who) in enumerate(turns):
        length = round(rng.uniform(*CUTAWAY_SECONDS) * fps)
        if k % 2 == 0 or b - a - length < round(1.5 * fps):
            shots.append((a, b, who, "speaker"))
            continue
        shots.append((a, b - length, who, "speaker"))
        shots.append((b - length, b, None, kinds[used % 2]))
        used += 1
    return shots


def plan_debate(speakers: list[str], seconds: float, size: tuple[int, int], fps: int,
                layout: str, seed: int, others: list[str] | tuple[str, ...] = ()) -> ClipPlan:
    """Close-ups cut between speakers (``cuts``) or all side by side (``split``).

    ``others``: people who are none of the speakers (the first is the moderator). In cuts
    layout, turns end with cutaways to the moderator or to the audience (two of the others'
    faces side by side, smaller); in split layout the first is a panel between the speakers.
    """
    _check_settings(seconds, size, fps)
    if layout not in LAYOUTS:
        raise FaceswapError(f"unknown layout '{layout}' (use {' or '.join(LAYOUTS)})")
    if len(speakers) < 2:
        raise FaceswapError("a debate needs at least two speakers")
    w, h = size
    n = max(1, round(seconds * fps))
    rng = _rng(seed, "debate", layout)
    turns = _turns(rng, n, fps, speakers)
    samples = round(n / fps * AUDIO_RATE)
    audio = np.zeros(samples, dtype=np.float32)
    motions, mouths = {}, {}
    for s in speakers:
        active = np.zeros(samples, dtype=np.float32)
        for a, b, who in turns:
            if who == s:
                active[int(a / fps * AUDIO_RATE):int(b / fps * AUDIO_RATE)] = 1.0
        speech = synth_speech(_rng(seed, "debate-voice", s), n / fps, active=active)
        audio[: len(speech.samples)] += speech.samples[:samples]
        mouths[s] = mouth_from_envelope(speech.envelope_at(np.arange(n) / fps))
        motions[s] = speaker_motion(_rng(seed, "debate-motion", s), n, fps)
    audio = np.clip(audio, -1, 1)
    # The others listen: their own motion, the mouth nearly closed.
    for o in others:
        for seat in range(2):
            motions[f"{o}#{seat}"] = speaker_motion(_rng(seed, "debate-motion", o, seat), n, fps)
        mouths[o] = mouth_from_envelope(np.zeros(n))

    frames: list[list[FacePlan]] = []
    frame_shot: list[int] = []
    shots: list[dict[str, Any]] = []
    if layout == "cuts":
        shots_cast = _cutaways(rng, turns, fps) if others else \
            [(a, b, who, "speaker") for a, b, who in turns]
        for k, (a, b, who, role) in enumerate(shots_cast):
            # Each shot is its own camera set-up: a close-up with a little variety.
            iod = CLOSEUP_IOD * min(h, w * 9 / 16) * rng.uniform(0.9, 1.12)
            cx = w * (0.5 + rng.uniform(-0.12, 0.12))
            cy = h * EYE_LINE * rng.uniform(0.95, 1.05)
            shown = who if role == "speaker" else others[0]
            if role != "speaker":
                iod *= OTHER_ZOOM
            shot: dict[str, Any] = {"index": k, "start": a, "end": b, "speaker": who,
                                    "layout": "cuts"}
            if role != "speaker":
                shot["role"] = role
            shots.append(shot)
            for i in range(a, b):
                if role == "audience":  # a wide shot of two listeners side by side
                    faces = []
                    for seat in range(2):
                        name = others[seat % len(others)]
                        m = motions[f"{name}#{seat}"]
                        x0, pw = seat * (w // 2), w // 2 if seat == 0 else w - w // 2
                        framing = Framing(pw / 2 + m.drift_x[i] * pw, EYE_LINE * h + m.drift_y[i] * h,
                                          0.75 * SPEAKER_IOD * min(h, pw * 1.4) * m.zoom[i])
                        pose = PoseParams(m.yaw[i], m.pitch[i], m.roll[i], mouths[name][i], m.blink[i])
                        faces.append(FacePlan(seat, name, name, pose, framing, (x0, pw),
                                              role="audience"))
                    frames.append(faces)
                else:
                    m = motions[who] if role == "speaker" else motions[f"{shown}#0"]
                    mouth = mouths[shown][i]
                    framing = Framing(cx + m.drift_x[i] * w, cy + m.drift_y[i] * h, iod * m.zoom[i])
                    pose = PoseParams(m.yaw[i], m.pitch[i], m.roll[i], mouth, m.blink[i])
                    frames.append([FacePlan(0, shown, shown, pose, framing, (0, w), role=role)])
                frame_shot.append(k)
    else:
        cast = list(speakers)
        if others:  # the moderator between the speakers
            cast.insert(len(speakers) // 2, others[0])
        count = len(cast)
        edges = [round(j * w / count) for j in range(count + 1)]
        if count == 2:
            sides = ["left", "right"]
        elif count == 3 and others and len(speakers) == 2:
            sides = ["left", "center", "right"]
        else:
            sides = [f"panel{j}" for j in range(count)]
        shots.append({"index": 0, "start": 0, "end": n, "speaker": None, "layout": "split",
                      "turns": [{"start": a, "end": b, "speaker": who} for a, b, who in turns]})
        for i in range(n):
            faces = []
            for j, s in enumerate(cast):
                pw = edges[j + 1] - edges[j]
                m = motions[s] if s in speakers else motions[f"{s}#0"]
                iod = SPEAKER_IOD * min(h, pw * 1.4)
                framing = Framing(pw / 2 + m.drift_x[i] * pw, EYE_LINE * h + m.drift_y[i] * h,
                                  iod * m.zoom[i])
                pose = PoseParams(m.yaw[i], m.pitch[i], m.roll[i], mouths[s][i], m.blink[i])
                faces.append(FacePlan(j, s, s, pose, framing, (edges[j], pw), sides[j],
                                      role="speaker" if s in speakers else "moderator"))
            frames.append(faces)
            frame_shot.append(0)
    return ClipPlan(
        name="debate", size=size, fps=fps, layout=layout, frames=frames, frame_shot=frame_shot,
        shots=shots, light=lighting(_rng(seed, "debate-light"), n, fps), audio=audio,
        noise_seed=int(_rng(seed, "debate-noise").integers(2**31)), speakers=list(speakers),
        swap=swap_mapping(speakers), seed=seed, others=list(others),
    )


def truth_plan(plan: ClipPlan) -> ClipPlan:
    """The same clip with every face's identity exchanged: what a perfect swap outputs.

    A face whose ``shown`` differs from its ``speaker`` is drawn as a swap (``render_plan``):
    the shown identity's inner face on the speaker's head.
    """
    frames = [[dataclasses.replace(f, shown=plan.swap.get(f.speaker, f.speaker)) for f in faces]
              for faces in plan.frames]
    return dataclasses.replace(plan, name=f"{plan.name}_truth", frames=frames, truth_of=plan.name)


# -- rendering -----------------------------------------------------------------------------

def _face_record(face: FacePlan, landmarks: np.ndarray, swap: dict[str, str]) -> dict[str, Any]:
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    # What a perfect swap puts here: the other speaker; for someone who is none, themselves.
    truth = swap.get(face.speaker) if face.role == "speaker" else face.speaker
    return {
        "slot": face.slot,
        "role": face.role,
        "speaker": face.shown,  # identity drawn in this clip
        "truth_speaker": truth,  # identity drawn here in the ground truth
        "motion_of": face.speaker,  # whose pose, mouth and blinks (the debate's speaker)
        "side": face.side,
        "box": [round_floats(v, 1) for v in (x0, y0, x1, y1)],
        "iod": round_floats(face.framing.iod_px, 2),
        "yaw": round_floats(face.pose.yaw, 2),
        "pitch": round_floats(face.pose.pitch, 2),
        "roll": round_floats(face.pose.roll, 2),
        "mouth": round_floats(face.pose.mouth, 4),
        "blink": round_floats(face.pose.blink, 3),
    }


def drawn_speakers(plan: ClipPlan) -> set[str]:
    """Every portrait a clip draws from: the faces shown and, in a truth clip, the heads."""
    return {name for faces in plan.frames for f in faces for name in (f.speaker, f.shown)}


def clip_files(out_dir: Path, name: str) -> ClipFiles:
    return ClipFiles(out_dir / f"{name}.mp4", out_dir / f"{name}.json",
                     out_dir / f"{name}_landmarks.npz")


def render_plan(plan: ClipPlan, portraits: dict[str, Portrait], out_dir: Path, crf: int = 18,
                progress: Progress | None = None) -> ClipFiles:
    """Render, encode and record one clip; files appear only when complete."""
    files = clip_files(Path(out_dir), plan.name)
    renderers = {name: SpeakerRenderer(portraits[name]) for name in sorted(drawn_speakers(plan))}
    pairs = sorted({(f.speaker, f.shown) for faces in plan.frames for f in faces})
    painters: dict[tuple[str, str], SpeakerRenderer | SwapTruthRenderer] = {
        (s, t): renderers[s] if s == t else SwapTruthRenderer(renderers[s], renderers[t])
        for s, t in pairs
    }
    w, h = plan.size
    n = len(plan.frames)
    slots = plan.faces_per_frame
    all_landmarks = np.full((n, slots, 478, 2), np.nan, dtype=np.float32)
    noise = NoiseBank(np.random.default_rng(plan.noise_seed), w, h)
    frame_records = []
    metadata = {
        "comment": f"faceswap_gan sample clip '{plan.name}' (seed {plan.seed}); ground truth in "
                   f"{files.record.name}",
        "faceswap_clip": plan.name,
        "faceswap_seed": str(plan.seed),
    }
    with VideoWriter(files.video, w, h, plan.fps, crf=crf, preset=X264_PRESET,
                     audio_rate=AUDIO_RATE, metadata=metadata) as writer:
        writer.write_audio(plan.audio)
        for i, faces in enumerate(plan.frames):
            frame = np.zeros((h, w, 3), dtype=np.uint8)
            face_records = []
            for face in faces:
                x0, pw = face.panel
                drawn = painters[face.speaker, face.shown].render(face.pose, face.framing, (pw, h))
                frame[:, x0:x0 + pw] = drawn.image
                lm = drawn.landmarks + np.array([x0, 0], dtype=np.float32)
                all_landmarks[i, face.slot] = lm
                face_records.append(_face_record(face, lm, plan.swap))
            frame = apply_lighting(frame, plan.light, i, noise.pick())
            writer.write(frame)
            frame_records.append({"index": i, "time": round_floats(i / plan.fps, 4),
                                  "shot": plan.frame_shot[i], "faces": face_records})
            if progress is not None:
                progress(plan.name, i + 1, n)
    record = {
        "version": RECORD_VERSION,
        "clip": plan.name,
        "video": files.video.name,
        "fps": plan.fps,
        "size": [w, h],
        "frame_count": n,
        "audio_rate": AUDIO_RATE,
        "layout": plan.layout,
        "truth_of": plan.truth_of,
        "speakers": plan.speakers,
        "others": plan.others,
        "swap": plan.swap,
        "seed": plan.seed,
        "generator": GENERATOR,
        "landmarks": files.landmarks.name,
        "shots": plan.shots,
        "cuts": [s["start"] for s in plan.shots[1:]],
        "frames": frame_records,
    }
    write_landmarks(files.landmarks, all_landmarks)
    write_record(files.record, record)
    return files


# -- public entry points -------------------------------------------------------------------

def _as_portrait(name: str, portrait: np.ndarray | Portrait) -> Portrait:
    if isinstance(portrait, Portrait):
        return portrait
    return analyse_portrait(name, np.asarray(portrait))


def render_speaker_clip(
    portrait: np.ndarray | Portrait,
    out_path: str | os.PathLike,
    seconds: float = 3.0,
    size: tuple[int, int] = (320, 180),
    fps: int = 30,
    seed: int = 0,
    name: str | None = None,
    crf: int = 18,
) -> ClipFiles:
    """One speaker's talking-head clip (plus ``<stem>.json`` and ``<stem>_landmarks.npz``).

    The cheap way for tests to get footage: 3 s at 320x180 takes about a second.
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".mp4":
        raise FaceswapError(f"sample clips are MP4 files; got {out_path.name}")
    name = name or out_path.stem
    portrait = _as_portrait(name, portrait)
    plan = dataclasses.replace(plan_speaker_clip(portrait.name, seconds, size, fps, seed),
                               name=out_path.stem)
    return render_plan(plan, {portrait.name: portrait}, out_path.parent, crf=crf)


def _settings(portraits: dict[str, np.ndarray | Portrait], seconds: float, debate_seconds: float,
              size: tuple[int, int], fps: int, layout: str, seed: int,
              others: dict[str, np.ndarray | Portrait] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if others:  # only when there are any: sets made before keep their settings
        extra["others"] = {
            name: portrait_fingerprint(p.image if isinstance(p, Portrait) else np.asarray(p))
            for name, p in others.items()
        }
    return {
        **extra,
        "version": RECORD_VERSION,
        "generator": GENERATOR,
        "speakers": {
            name: portrait_fingerprint(p.image if isinstance(p, Portrait) else np.asarray(p))
            for name, p in portraits.items()
        },
        "seconds": float(seconds),
        "debate_seconds": float(debate_seconds),
        "size": [int(size[0]), int(size[1])],
        "fps": int(fps),
        "layout": layout,
        "seed": int(seed),
    }


def _render_job(args: tuple[ClipPlan, dict[str, Portrait], Path]) -> ClipFiles:
    plan, portraits, out_dir = args
    return render_plan(plan, portraits, out_dir)


def generate_sample_set(
    out_dir: Path,
    *,
    portraits: dict[str, np.ndarray] | None = None,
    seconds: float = 30.0,
    debate_seconds: float = 20.0,
    size: tuple[int, int] = (640, 360),
    fps: int = 30,
    layout: str = "cuts",
    seed: int = 0,
    progress: Progress | None = None,
    workers: int | None = None,
    others: dict[str, np.ndarray] | None = None,
) -> SampleSet:
    """Write one clip per speaker, ``debate.mp4``, ``debate_truth.mp4`` and their records.

    ``others``: portraits of people who are none of the speakers (e.g. ``{"moderator":
    default_third_portrait()}``): the debate then cuts to them (``plan_debate``), and its
    record says who is where (each face's ``role``; ``others`` lists them). They get no
    training clip.

    A set already in ``out_dir`` with the same settings and portraits (``samples.json``)
    is reused; clips that already exist from an interrupted run with the same settings
    are kept. ``workers`` > 1 renders clips in parallel processes (default: up to 2).
    """
    out_dir = Path(out_dir)
    images = portraits if portraits is not None else default_portraits()
    if len(images) < 2:
        raise FaceswapError(f"need at least two speakers, got {len(images)}")
    if layout not in LAYOUTS:
        raise FaceswapError(f"unknown layout '{layout}' (use {' or '.join(LAYOUTS)})")
    others = dict(others or {})
    for name in [*images, *others]:
        if name in ("debate", "debate_truth") or not name or "/" in name:
            raise FaceswapError(f"'{name}' cannot be a speaker name")
    if set(images) & set(others):
        raise FaceswapError(f"'{sorted(set(images) & set(others))[0]}' is both a speaker and "
                            "someone who is none")
    names = list(images)
    settings = _settings(images, seconds, debate_seconds, size, fps, layout, seed, others)
    _check_settings(min(seconds, debate_seconds), size, fps)

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    previous = None
    if manifest_path.is_file():
        try:
            previous = json.loads(manifest_path.read_text(encoding="utf-8")).get("settings")
        except (OSError, ValueError):
            previous = None
    if previous == settings:
        existing = load_sample_set(out_dir)
        if existing is not None:
            return existing

    analysed = {name: _as_portrait(name, image) for name, image in {**images, **others}.items()}
    plans = [plan_speaker_clip(name, seconds, size, fps, seed) for name in names]
    debate = plan_debate(names, debate_seconds, size, fps, layout, seed, list(others))
    plans += [debate, truth_plan(debate)]
    if previous != settings:
        manifest_path.unlink(missing_ok=True)
        for plan in plans:  # clips made with other settings must not be reused
            for path in dataclasses.astuple(clip_files(out_dir, plan.name)):
                Path(path).unlink(missing_ok=True)
    write_json_atomic_manifest(manifest_path, settings, complete=False)

    todo = [p for p in plans if not all(Path(f).is_file() for f in dataclasses.astuple(clip_files(out_dir, p.name)))]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if workers > 1 and len(todo) > 1:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # MediaPipe's threads make fork unsafe
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            jobs = [(p, {k: analysed[k] for k in drawn_speakers(p)}, out_dir) for p in todo]
            for plan, _ in zip(todo, pool.map(_render_job, jobs)):
                if progress is not None:
                    progress(plan.name, len(plan.frames), len(plan.frames))
    else:
        for plan in todo:
            render_plan(plan, analysed, out_dir, progress=progress)
    write_json_atomic_manifest(manifest_path, settings, complete=True)

    return _sample_set(out_dir, names, {p.name: clip_files(out_dir, p.name) for p in plans},
                       list(others))


def write_json_atomic_manifest(path: Path, settings: dict[str, Any], complete: bool) -> None:
    write_json_atomic(path, {"version": RECORD_VERSION, "complete": complete, "settings": settings})


def load_sample_set(out_dir: Path) -> SampleSet | None:
    """The complete sample set in ``out_dir``, or None when there is none (or it is partial)."""
    out_dir = Path(out_dir)
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not manifest.get("complete"):
        return None
    names = list(manifest["settings"]["speakers"])
    clips = names + ["debate", "debate_truth"]
    files = {c: clip_files(out_dir, c) for c in clips}
    if not all(Path(p).is_file() for f in files.values() for p in dataclasses.astuple(f)):
        return None
    return _sample_set(out_dir, names, files, list(manifest["settings"].get("others") or []))


def _sample_set(out_dir: Path, names: list[str], files: dict[str, Any],
                others: list[str] | None = None) -> SampleSet:
    """The SampleSet over each clip's files (``clip_files``), speakers in ``names`` order."""
    return SampleSet(
        speakers=names,
        speaker_clips={n: files[n].video for n in names},
        debate=files["debate"].video,
        truth=files["debate_truth"].video,
        record=files["debate"].record,
        records={k: v.record for k, v in files.items()},
        landmarks={k: v.landmarks for k, v in files.items()},
        out_dir=out_dir,
        others=list(others or []),
    )
