"""The swap on real faces: train on two real people, swap a cut of held-out footage, score it.

    .venv/bin/python benchmarks/real_pair.py --workspace WS [--pair obama,lieu] [--pipeline debate]
        [--model NAME] [--minutes N | --steps1 N --steps2 N --steps3 N]
        [--stage cut|extract|train|render|eval|all]

Reads the clips in ../shared/real (see its README; never copied into the project). Each
clip's last HOLDOUT_SECONDS are held out: the training crops come from the rest, and the
test "debate" is a cut between the two people's held-out parts (the first person, then the
second, 256x256 at 25 fps with their audio). `--pair reagan,lieu` is the pair colour cannot
flatter (similar skin tone). The swap is scored by `faceswap eval` without ground truth (there is none for
a real swap): identity by a classifier trained on the training crops (and by dlib's
pretrained face embedding when installed), expression, pose and flicker against the source,
and sharpness against the source. Every step is a real `faceswap` command, printed first.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "real"
HOLDOUT_SECONDS = 5.0
CUT_SIZE = 256
CUT_FPS = 25
AUDIO_RATE = 16000
# Each person's clips; the training part of each is everything but its last seconds, and the
# held-out cut takes the first clip's last seconds.
PEOPLE = {
    "obama": ("obama_address_450.mp4", "obama_weekly_256.mp4"),
    "lieu": ("lieu_256.mp4",),
    "reagan": ("reagan_256.mp4",),
}


def run_cli(*args: str) -> None:
    print("$ faceswap " + " ".join(shlex.quote(a) for a in args), flush=True)
    result = subprocess.run([sys.executable, "-m", "faceswap_gan.cli", *args])
    if result.returncode != 0:
        sys.exit(f"'faceswap {args[0]}' failed (exit {result.returncode})")


def clip_info(path: Path) -> tuple[int, Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = stream.frames or int(float(stream.duration * stream.time_base) * stream.average_rate)
        return frames, Fraction(stream.average_rate)


def held_out_frames(path: Path) -> int:
    _, fps = clip_info(path)
    return int(round(HOLDOUT_SECONDS * float(fps)))


def _tail(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """The last HOLDOUT_SECONDS of a clip: RGB frames at CUT_SIZE and mono float audio."""
    frames_total, fps = clip_info(path)
    start_t = frames_total / float(fps) - HOLDOUT_SECONDS
    frames: list[np.ndarray] = []
    audio: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= start_t - 1e-3:
                image = frame.to_ndarray(format="rgb24")
                frames.append(cv2.resize(image, (CUT_SIZE, CUT_SIZE), interpolation=cv2.INTER_AREA))
    with av.open(str(path)) as container:
        if container.streams.audio:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            for frame in container.decode(audio=0):
                if frame.time is not None and frame.time >= start_t:
                    for out in resampler.resample(frame):
                        audio.append(out.to_ndarray().reshape(-1))
    n = int(round(HOLDOUT_SECONDS * CUT_FPS))
    samples = np.concatenate(audio) if audio else np.zeros(0, np.float32)
    want = int(HOLDOUT_SECONDS * AUDIO_RATE)
    samples = np.pad(samples[:want], (0, max(0, want - len(samples))))
    return frames[-n:], samples


def make_cut(out: Path, people: list[str]) -> Path:
    """The held-out cut, written once."""
    from faceswap_gan.video.writer import VideoWriter

    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(out, CUT_SIZE, CUT_SIZE, CUT_FPS, audio_rate=AUDIO_RATE) as writer:
        for person in people:
            frames, audio = _tail(REAL / PEOPLE[person][0])
            for image in frames:
                writer.write(image)
            writer.write_audio(audio)
    print(f"cut: {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--pipeline", default="debate")
    parser.add_argument("--pair", default="obama,lieu",
                        help=f"two of {', '.join(PEOPLE)}, comma-separated")
    parser.add_argument("--model", default="real")
    parser.add_argument("--minutes", type=float, default=None,
                        help="train by time (faceswap train --minutes) instead of step counts")
    parser.add_argument("--steps1", type=int, default=None)
    parser.add_argument("--steps2", type=int, default=None)
    parser.add_argument("--steps3", type=int, default=None)
    parser.add_argument("--stage", default="all",
                        choices=["cut", "extract", "train", "render", "eval", "all"])
    args = parser.parse_args(argv)
    if not REAL.is_dir():
        sys.exit(f"no real footage at {REAL} (see the developers' guide)")
    people = args.pair.split(",")
    if len(people) != 2 or any(p not in PEOPLE for p in people):
        sys.exit(f"--pair must name two of {', '.join(PEOPLE)}")
    ws = Path(args.workspace).resolve()
    common = ["--workspace", str(ws)]
    cut = ws / "real" / "heldout_cut.mp4"
    stages = ["cut", "extract", "train", "render", "eval"] if args.stage == "all" else [args.stage]
    if "cut" in stages:
        make_cut(cut, people)
    if "extract" in stages:
        pipe = ["--pipeline", args.pipeline]
        for speaker in people:
            for clip in PEOPLE[speaker]:
                path = REAL / clip
                frames, _ = clip_info(path)
                run_cli("extract", str(path), "--speaker", speaker,
                        "--max-frames", str(frames - held_out_frames(path)), *pipe, *common)
    if "train" in stages and args.minutes is not None:
        run_cli("train", "--model", args.model, "--pipeline", args.pipeline,
                "--minutes", f"{args.minutes:g}", *common)
    elif "train" in stages:
        model = ["--model", args.model]
        for step, steps in ((1, args.steps1), (2, args.steps2), (3, args.steps3)):
            if steps == 0:
                continue
            extra = ["--steps", str(steps)] if steps else []
            pipe = ["--pipeline", args.pipeline] if step == 1 else []
            run_cli("train", "--step", str(step), *model, *pipe, *extra, *common)
    rendered = ws / "real" / f"heldout_cut.{args.model}.swapped.mp4"
    if "render" in stages:
        run_cli("render", str(cut), "--swap", "--model", args.model, "-o", str(rendered),
                "--force", *common)
    if "eval" in stages:
        run_cli("eval", "--clip", str(cut), "--rendered", str(rendered), "--model", args.model,
                "--json", str(ws / "eval" / f"real_{args.model}.json"),
                "--strip", str(ws / "eval" / f"real_{args.model}_strip.png"), *common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
