"""Plain helpers and constants shared by the tests (fixtures are in conftest.py).

Import what you need (``from helpers import CPU, write_clip``); pytest puts tests/ on the
path. Everything here works on real data: the two public-domain portraits that ship with
scikit-image and matplotlib (``default_portraits``), clips encoded with PyAV, MediaPipe
meshes, models trained through the real CLI.

- constants: REPO, SAMPLE_MODEL, TINY_PRESET, CPU, CLIP_SIZE, CLIP_FPS, ...
- ``write_clip``: the one clip writer (H.264 MP4 from RGB frames, optional audio)
- portraits and placing them in frames: ``portraits``, ``astronaut``, ``hopper``,
  ``placement``, ``compose``, ``portrait_frame``, ``mesh_landmarks``
- footage with ground truth: ``single_speaker_clip``, ``cuts_clip``, ``split_clip`` (extract),
  ``make_eval_footage`` (eval), ``write_portrait_clip``, ``write_vfr_clip`` (render)
- training data and models: ``write_portrait_crops``, ``write_face_folders``, ``train_tiny_model``
- the CLI in-process: ``run_cli``, ``eval_cli``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from faceswap_gan.synthetic.portraits import default_portraits

REPO = Path(__file__).resolve().parents[1]
SAMPLE_MODEL = REPO / "samples" / "sample_model.safetensors"
TINY_PRESET = REPO / "pipelines" / "tiny.toml"
CPU = torch.device("cpu")

CLIP_SIZE = (320, 180)  # (w, h) of the small clips: render's portrait clip, the sample sets
CLIP_FPS = 25
CLIP_FRAMES = 40  # the portrait clip: 1.6 s, a shot of one portrait, a cut, a shot of the other
AUDIO_RATE = 16000

EXTRACT_SIZE = (640, 360)  # the extract tests' clips with exact ground truth
EVAL_PANEL = 128  # side of each speaker's panel in the eval footage


# -- the clip writer --------------------------------------------------------------------


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    fps: int = CLIP_FPS,
    *,
    crf: int = 18,
    preset: str = "ultrafast",
    faststart: bool = False,
    rotation: int = 0,
    pts: list[int] | None = None,
    durations: list[int] | None = None,
    time_base: Fraction | None = None,
    audio: np.ndarray | None = None,
    audio_rate: int = AUDIO_RATE,
) -> Path:
    """RGB uint8 frames to an H.264 (yuv420p) MP4 with PyAV, independently of the project's
    writer (so the reader tests read files it did not write). Returns ``path``.

    ``faststart`` puts the index first (a truncated copy still opens; without it a truncated
    copy has no index). ``rotation`` sets the display matrix. ``pts`` (in ``time_base``,
    default 1/fps) gives each frame its own timestamp, ``durations`` its duration: variable
    frame rates. ``audio``: mono float samples in [-1, 1], AAC at ``audio_rate``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        tb = time_base or Fraction(1) / Fraction(fps)
        stream.time_base = tb
        stream.codec_context.time_base = tb
        stream.options = {"crf": str(crf), "preset": preset}
        if rotation:
            stream.set_display_rotation(rotation)
        sound = None
        if audio is not None:
            sound = out.add_stream("aac", rate=audio_rate, layout="mono")
            sound.time_base = Fraction(1, audio_rate)
            sound.bit_rate = 96_000
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts, frame.time_base = (i if pts is None else int(pts[i])), tb
            if durations is not None:
                frame.duration = int(durations[i])
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            _encode_audio(out, sound, np.asarray(audio, np.float32).reshape(-1), audio_rate)
    return path


def _encode_audio(out: av.container.OutputContainer, stream: av.AudioStream,
                  samples: np.ndarray, rate: int) -> None:
    """Whole AAC frames (the last one padded with silence), timestamps in samples."""
    size = stream.codec_context.frame_size or 1024
    samples = np.clip(samples, -1.0, 1.0)
    for start in range(0, len(samples), size):
        chunk = samples[start:start + size]
        chunk = np.pad(chunk, (0, size - len(chunk)))
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


# -- portraits ----------------------------------------------------------------------------


def portraits() -> dict[str, np.ndarray]:
    """speaker_a (the astronaut) and speaker_b (Grace Hopper), RGB."""
    return default_portraits()


def astronaut() -> np.ndarray:
    return portraits()["speaker_a"][:400, 60:460].copy()  # 400 x 400, head and shoulders


def hopper() -> np.ndarray:
    return portraits()["speaker_b"][60:480, 40:460].copy()  # 420 x 420 around the face


def mesh_landmarks(image: np.ndarray) -> np.ndarray:
    """The portrait's 478-point mesh in pixels (the library's MediaPipe call)."""
    from faceswap_gan.synthetic.portraits import find_face_mesh

    landmarks = find_face_mesh(image)
    assert landmarks is not None, "no face in the portrait"
    return landmarks


def placement(portrait: np.ndarray, cx: float, cy: float, side: float, angle: float = 0.0) -> np.ndarray:
    """(2, 3) portrait pixels -> frame pixels: portrait centre to (cx, cy), width to ``side``."""
    h, w = portrait.shape[:2]
    s = side / w
    c, sn = np.cos(np.radians(angle)) * s, np.sin(np.radians(angle)) * s
    return np.array([[c, -sn, cx - c * w / 2 + sn * h / 2], [sn, c, cy - sn * w / 2 - c * h / 2]])


def compose(size: tuple[int, int], layers: list[tuple[np.ndarray, np.ndarray]], bg: tuple[int, int, int]) -> np.ndarray:
    """A (w, h) frame of colour ``bg`` with each (portrait, placement) warped onto it."""
    w, h = size
    frame = np.empty((h, w, 3), dtype=np.uint8)
    frame[:] = bg
    for portrait, m in layers:
        warped = cv2.warpAffine(portrait, m, (w, h), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(np.ones(portrait.shape[:2], np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
        frame[mask > 0] = warped[mask > 0]
    return frame


def portrait_frame(image: np.ndarray, size: tuple[int, int], shift: float) -> np.ndarray:
    """The portrait placed in a (w, h) frame with its face well inside, panned by ``shift`` px."""
    w, h = size
    scale = h / image.shape[0] * 1.1
    m = np.array([[scale, 0, (w - image.shape[1] * scale) / 2 + shift],
                  [0, scale, -0.03 * h]], dtype=np.float64)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


# -- extract footage: portraits placed by a known transform per frame -------------------
# Where every portrait pixel (and so every landmark found on the still portrait) lands in
# each frame is known exactly.


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
        t = i / CLIP_FPS
        m = placement(
            portrait,
            cx=320 + 80 * np.sin(0.8 * t + phase),
            cy=190 + 15 * np.cos(1.1 * t),
            side=300 + 40 * np.sin(0.5 * t),
            angle=8 * np.sin(0.7 * t),
        )
        images.append(compose(EXTRACT_SIZE, [(portrait, m)], (96, 110, 120)))
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
            t = i / CLIP_FPS
            m = placement(portrait, cx=300 + 40 * t + 20 * shot, cy=185, side=300 + 20 * t)
            images.append(compose(EXTRACT_SIZE, [(portrait, m)], bg))
            places.append([(name, m)])
    write_clip(path, images)
    return Clip(path, len(images), places, cuts)


def split_clip(path: Path, frames: int = 30) -> Clip:
    """Split screen: the astronaut on the left half, Grace Hopper on the right."""
    a, b = astronaut(), hopper()
    images, places = [], []
    for i in range(frames):
        t = i / CLIP_FPS
        ma = placement(a, cx=160 + 10 * np.sin(2 * t), cy=190, side=260)
        mb = placement(b, cx=480 - 10 * np.sin(2 * t), cy=190, side=260)
        img = compose(EXTRACT_SIZE, [(a, ma)], (96, 110, 120))
        right = compose(EXTRACT_SIZE, [(b, mb)], (150, 120, 90))
        img[:, EXTRACT_SIZE[0] // 2 :] = right[:, EXTRACT_SIZE[0] // 2 :]
        images.append(img)
        places.append([("astronaut", ma), ("hopper", mb)])
    write_clip(path, images)
    return Clip(path, frames, places, [])


# -- eval footage: a two-panel debate, its truth, one clip per speaker -------------------


def write_eval_clip(path: Path, frames: list[np.ndarray]) -> Path:
    """The eval footage's encoding: 10 fps, CRF 12 (what eval's tests measure against)."""
    return write_clip(path, frames, fps=10, crf=12, preset="veryfast", faststart=True)


def face_panels() -> dict[str, np.ndarray]:
    """Each portrait cut to a square around its face (2x the face's width)."""
    from faceswap_gan.evaluation.landmarks import FaceMeshes

    out = {}
    with FaceMeshes() as meshes:
        for name, image in portraits().items():
            lm = meshes(image)[0]
            (x0, y0), (x1, y1) = lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)
            cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, 1.9 * max(x1 - x0, y1 - y0)
            scale = EVAL_PANEL / side
            m = np.float32([[scale, 0, EVAL_PANEL / 2 - scale * cx],
                            [0, scale, EVAL_PANEL / 2 - scale * cy]])
            out[name] = cv2.warpAffine(image, m, (EVAL_PANEL, EVAL_PANEL),
                                       borderMode=cv2.BORDER_REFLECT)
    return out


def sway(panel: np.ndarray, t: int, phase: float) -> np.ndarray:
    angle = 4.0 * math.sin(0.5 * t + phase)
    m = cv2.getRotationMatrix2D((EVAL_PANEL / 2, EVAL_PANEL / 2), angle,
                                1.0 + 0.03 * math.cos(0.4 * t))
    m[0, 2] += 3.0 * math.sin(0.3 * t + phase)
    return cv2.warpAffine(panel, m, (EVAL_PANEL, EVAL_PANEL), borderMode=cv2.BORDER_REFLECT)


def make_eval_footage(folder: Path, frames: int = 10) -> dict[str, Path]:
    """debate.mp4 (speaker_a left, speaker_b right, each panel swaying a little each frame),
    debate_truth.mp4 (the same sway with the speakers exchanged) and speaker_a.mp4,
    speaker_b.mp4 (each speaker alone, another sway: what the identity classifier learns
    from) in ``folder``; keys clip, truth, speaker_a, speaker_b."""
    panels = face_panels()
    a, b = panels["speaker_a"], panels["speaker_b"]
    source, truth = [], []
    for t in range(frames):
        left, right = (0.0, 1.3)
        source.append(np.hstack([sway(a, t, left), sway(b, t, right)]))
        truth.append(np.hstack([sway(b, t, left), sway(a, t, right)]))
    paths = {
        "clip": write_eval_clip(folder / "debate.mp4", source),
        "truth": write_eval_clip(folder / "debate_truth.mp4", truth),
    }
    for name, panel in panels.items():
        alone = [sway(panel, t, 2.0) for t in range(24)]
        paths[name] = write_eval_clip(folder / f"{name}.mp4", alone)
    return paths


# -- render footage: the portraits panning, with a cut and audio -----------------------


def write_portrait_clip(path: Path, size: tuple[int, int] = CLIP_SIZE, frames: int = CLIP_FRAMES,
                        audio: bool = True, blank: bool = False) -> Path:
    """speaker_a's portrait panning for half the clip, a cut, then speaker_b's; a tone as
    audio. ``blank``: flat colours, no face."""
    faces = portraits()
    w, h = size
    images = []
    for i in range(frames):
        if blank:
            images.append(np.full((h, w, 3), (40 + i, 90, 140), np.uint8))
        else:
            who = "speaker_a" if i < frames // 2 else "speaker_b"
            images.append(portrait_frame(faces[who], size, shift=1.5 * (i % (frames // 2)) - 15))
    tone = None
    if audio:
        t = np.arange(int(AUDIO_RATE * frames / CLIP_FPS)) / AUDIO_RATE
        tone = 0.2 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(3 * t))
    return write_clip(path, images, CLIP_FPS, preset="veryfast", faststart=True, audio=tone)


def write_vfr_clip(path: Path, frames: int = 30, size: tuple[int, int] = CLIP_SIZE,
                   seed: int = 0) -> list[Fraction]:
    """speaker_a panning, at a variable frame rate: gaps of 20 to 100 ms between frames, as
    phones and screen recorders write. Timestamps are set directly (time base 1/1000), and each
    frame's duration is its gap; returns every frame's time in seconds."""
    gaps = np.random.default_rng(seed).integers(20, 101, frames)
    pts = np.concatenate([[0], np.cumsum(gaps)[:-1]])
    face = portraits()["speaker_a"]
    images = [portrait_frame(face, size, shift=i - 15) for i in range(frames)]
    write_clip(path, images, 25, pts=list(pts), durations=list(gaps), time_base=Fraction(1, 1000))
    return [Fraction(int(p), 1000) for p in pts]


# -- training data and a tiny model -----------------------------------------------------

# Face centre (x, y) and half-size in pixels in each portrait, by training-speaker name.
PORTRAIT_FACES = {
    "astronaut": ("speaker_a", 235, 110, 75),
    "hopper": ("speaker_b", 262, 228, 88),
}


def write_portrait_crops(faces_dir: Path, size: int = 32, count: int = 12, seed: int = 0,
                         speakers: tuple[str, ...] = ("astronaut", "hopper")) -> None:
    """faces_dir/<speaker>/NNNN.png: jittered face crops (small random shifts, scales and
    brightness) of the two portraits, one speaker per portrait; no MediaPipe, fast."""
    rng = np.random.default_rng(seed)
    for speaker in speakers:
        key, cx, cy, half = PORTRAIT_FACES[speaker]
        image = portraits()[key]
        out = faces_dir / speaker
        out.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            h = half * rng.uniform(0.9, 1.1)
            x, y = cx + rng.uniform(-6, 6), cy + rng.uniform(-6, 6)
            src = np.float32([[x - h, y - h], [x + h, y - h], [x - h, y + h]])
            dst = np.float32([[0, 0], [size, 0], [0, size]])
            crop = cv2.warpAffine(image, cv2.getAffineTransform(src, dst), (size, size),
                                  flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
            crop = np.clip(crop.astype(np.float32) * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)
            cv2.imwrite(str(out / f"{i:04d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))


def write_face_folders(workspace: Path, crop_size: int = 32, per_speaker: int = 12) -> None:
    """workspace/faces/speaker_a|speaker_b/: aligned crops of each portrait under small random
    warps, as `faceswap extract` would write them (MediaPipe mesh, the library's alignment),
    and an alignments file per speaker recording each crop's mesh and matrix."""
    from faceswap_gan.faces.align import align_face
    from faceswap_gan.faces.alignments import FaceRecord, make_header, write_alignments
    from faceswap_gan.faces.types import TrackedFace

    rng = np.random.default_rng(0)
    (workspace / "alignments").mkdir(parents=True, exist_ok=True)
    for speaker, image in portraits().items():
        folder = workspace / "faces" / speaker
        folder.mkdir(parents=True, exist_ok=True)
        landmarks = mesh_landmarks(image)
        records = []
        for i in range(per_speaker):
            angle, scale = rng.uniform(-8, 8), rng.uniform(0.9, 1.1)
            m = cv2.getRotationMatrix2D((256.0, 256.0), angle, scale)
            m[:, 2] += rng.uniform(-10, 10, 2)
            warped = cv2.warpAffine(image, m, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            lm = landmarks.copy()
            lm[:, :2] = lm[:, :2] @ m[:, :2].T + m[:, 2]
            face = TrackedFace(0, 0.0, 0, np.array([0, 0, 1, 1], float), 1.0, lm)
            aligned = align_face(warped, face, crop_size, 0.25)
            cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(aligned.image, cv2.COLOR_RGB2BGR))
            records.append(FaceRecord(frame=i, time=float(i), track=0, speaker=speaker,
                                      landmarks=lm.astype(np.float32), matrix=aligned.matrix,
                                      score=1.0, blur=100.0, crop=f"faces/{speaker}/{i:04d}.png"))
        header = make_header(source=speaker, source_id=speaker, crop_size=crop_size, padding=0.25,
                             complete=True, frames=per_speaker)
        write_alignments(workspace / "alignments" / f"{speaker}.jsonl", header, records)


def train_tiny_model(workspace: Path) -> Path:
    """Steps 1 and 2 of the `tiny` preset for a few steps through the CLI on
    ``write_face_folders`` crops; the model folder (speakers speaker_a, speaker_b).
    Tests take a copy of the session's one (conftest's ``tiny_workspace``)."""
    from faceswap_gan.cli import main

    write_face_folders(workspace)
    for step in ("1", "2"):
        try:
            main(["train", "--step", step, "--pipeline", "tiny", "--steps", "4",
                  "--workspace", str(workspace), "--device", "cpu"])
        except SystemExit as exc:
            assert exc.code in (0, None), f"train --step {step} failed"
    return workspace / "models" / "default"


# -- the CLI in-process ------------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture, stdout: bool = True) -> tuple[int, str]:
    """Run `faceswap ARGS` in-process; (exit code, stderr + stdout), or stderr alone with
    ``stdout=False``. Returning normally is exit code 0."""
    from faceswap_gan.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.err + captured.out if stdout else captured.err


def eval_cli(footage: dict, *extra: str) -> None:
    """`faceswap eval` on ``make_eval_footage``'s clip and truth with its speaker clips, in
    ``footage["workspace"]``."""
    from faceswap_gan.cli import main

    main([
        "eval", "--clip", str(footage["clip"]), "--truth", str(footage["truth"]),
        "--speaker-clip", f"speaker_a={footage['speaker_a']}",
        "--speaker-clip", f"speaker_b={footage['speaker_b']}",
        "--workspace", str(footage["workspace"]), *extra,
    ])


# -- speaker-gate footage: a third person (moderator) besides the speakers --------------

GATE_CROP = 64  # the sample model's crop size (debate preset)


def third_person_set(root: Path):  # type: ignore[no-untyped-def]
    """Sample set: 3 s speaker clips and a 14 s cuts debate with a moderator in reaction
    shots and an audience cutaway (seed 2: speaker_b on screen 92 frames, speaker_a 78, the
    moderator 40)."""
    from faceswap_gan.synthetic.footage import generate_sample_set
    from faceswap_gan.synthetic.portraits import default_third_portrait

    return generate_sample_set(root, seconds=3, debate_seconds=14, size=CLIP_SIZE, fps=15,
                               layout="cuts", seed=2, workers=1,
                               others={"moderator": default_third_portrait()})


def speaker_workspace(sample, root: Path):  # type: ignore[no-untyped-def]
    """workspace/faces/<speaker>/ from each speaker's own clip, as `faceswap extract` makes it."""
    from faceswap_gan.config import load_pipeline
    from faceswap_gan.extract.pipeline import extract_source
    from faceswap_gan.faces.assign import SpeakerAssignment
    from faceswap_gan.workspace import Workspace

    ws = Workspace(root)
    for name in sample.speakers:
        extract_source(sample.speaker_clips[name], ws, load_pipeline("debate"),
                       SpeakerAssignment.single(name))
    return ws


def fitted_gate(ws, speakers: list[str],  # type: ignore[no-untyped-def]
                kinds: list[str] | None = None):
    """The speaker gate fitted on up to 300 of each speaker's crops in ``ws``."""
    from faceswap_gan.models.gate import fit_gate, read_crops

    crops = {s: read_crops(ws.speaker_faces_dir(s), GATE_CROP, 300) for s in speakers}
    return fit_gate(crops, GATE_CROP, 0.25, kinds=kinds)
