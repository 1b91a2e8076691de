"""Shared by tests/test_render.py and tests/test_translate.py: real portraits, a short clip of
them with audio, and a tiny model trained for a few steps on their aligned crops."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from faceswap_gan.video.writer import VideoWriter

CLIP_SIZE = (320, 180)
CLIP_FPS = 25
CLIP_FRAMES = 40  # 1.6 s: a shot of one portrait, a cut, a shot of the other
AUDIO_RATE = 16000


def portraits() -> dict[str, np.ndarray]:
    from faceswap_gan.synthetic.portraits import default_portraits

    return default_portraits()


def mesh_landmarks(image: np.ndarray) -> np.ndarray:
    """The portrait's 478-point mesh in pixels (the library's MediaPipe call)."""
    from faceswap_gan.synthetic.portraits import find_face_mesh

    landmarks = find_face_mesh(image)
    assert landmarks is not None, "no face in the portrait"
    return landmarks


def portrait_frame(image: np.ndarray, size: tuple[int, int], shift: float) -> np.ndarray:
    """The portrait placed in a (w, h) frame with its face well inside, panned by ``shift`` px."""
    w, h = size
    scale = h / image.shape[0] * 1.1
    m = np.array([[scale, 0, (w - image.shape[1] * scale) / 2 + shift],
                  [0, scale, -0.03 * h]], dtype=np.float64)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def write_clip(path: Path, size: tuple[int, int] = CLIP_SIZE, frames: int = CLIP_FRAMES,
               audio: bool = True, blank: bool = False) -> Path:
    """speaker_a's portrait panning for half the clip, a cut, then speaker_b's; a tone as audio."""
    faces = portraits()
    w, h = size
    with VideoWriter(path, w, h, CLIP_FPS, audio_rate=AUDIO_RATE if audio else None) as writer:
        for i in range(frames):
            if blank:
                image = np.full((h, w, 3), (40 + i, 90, 140), np.uint8)
            else:
                who = "speaker_a" if i < frames // 2 else "speaker_b"
                image = portrait_frame(faces[who], size, shift=1.5 * (i % (frames // 2)) - 15)
            writer.write(image)
        if audio:
            t = np.arange(int(AUDIO_RATE * frames / CLIP_FPS)) / AUDIO_RATE
            writer.write_audio(0.2 * np.sin(2 * np.pi * 330 * t) * (1 + 0.5 * np.sin(3 * t)))
    return path


def write_vfr_clip(path: Path, frames: int = 30, size: tuple[int, int] = CLIP_SIZE,
                   seed: int = 0) -> list[Fraction]:
    """speaker_a panning, at a variable frame rate: gaps of 20 to 100 ms between frames, as
    phones and screen recorders write. Timestamps are set directly (time base 1/1000), and each
    frame's duration is its gap; returns every frame's time in seconds."""
    import av

    gaps = np.random.default_rng(seed).integers(20, 101, frames)
    pts = np.concatenate([[0], np.cumsum(gaps)[:-1]])
    face = portraits()["speaker_a"]
    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = tb
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for i, (p, gap) in enumerate(zip(pts, gaps)):
            frame = av.VideoFrame.from_ndarray(portrait_frame(face, size, shift=i - 15), format="rgb24")
            frame.pts, frame.time_base, frame.duration = int(p), tb, int(gap)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return [Fraction(int(p), 1000) for p in pts]


def write_face_folders(workspace: Path, crop_size: int = 32, per_speaker: int = 12) -> None:
    """Aligned crops of each portrait under small random warps, as `faceswap extract` would."""
    from faceswap_gan.faces.align import align_face
    from faceswap_gan.faces.types import TrackedFace

    rng = np.random.default_rng(0)
    for speaker, image in portraits().items():
        folder = workspace / "faces" / speaker
        folder.mkdir(parents=True, exist_ok=True)
        landmarks = mesh_landmarks(image)
        for i in range(per_speaker):
            angle, scale = rng.uniform(-8, 8), rng.uniform(0.9, 1.1)
            m = cv2.getRotationMatrix2D((256.0, 256.0), angle, scale)
            m[:, 2] += rng.uniform(-10, 10, 2)
            warped = cv2.warpAffine(image, m, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            lm = landmarks.copy()
            lm[:, :2] = lm[:, :2] @ m[:, :2].T + m[:, 2]
            face = TrackedFace(0, 0.0, 0, np.array([0, 0, 1, 1], float), 1.0, lm)
            crop = align_face(warped, face, crop_size, 0.25).image
            cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))


def train_tiny_model(workspace: Path) -> Path:
    """Steps 1 and 2 of the `tiny` preset for a few steps through the CLI; the model folder."""
    from faceswap_gan.cli import main

    write_face_folders(workspace)
    for step in ("1", "2"):
        try:
            main(["train", "--step", step, "--pipeline", "tiny", "--steps", "4",
                  "--workspace", str(workspace), "--device", "cpu"])
        except SystemExit as exc:
            assert exc.code in (0, None), f"train --step {step} failed"
    return workspace / "models" / "default"


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """Run `faceswap ARGS` in-process; (exit code, stderr + stdout)."""
    from faceswap_gan.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.err + captured.out
