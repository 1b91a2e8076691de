"""Extract speed and memory on sample speaker clips: frames/s and peak RSS, 10 s vs 60 s.

    .venv/bin/python benchmarks/extract.py [--seconds 10 60] [--size 640x360] [--clips DIR]

Each extraction runs in a fresh child process so its peak RSS is its own. Memory is "flat in
the clip's length" when the 60 s peak is close to the 10 s peak. Also prints the One Euro
jitter reduction against the clip's rendered ground-truth landmarks.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_clip(clips: Path, seconds: int, size: tuple[int, int], fps: int) -> Path:
    from faceswap_gan.synthetic.footage import render_speaker_clip
    from faceswap_gan.synthetic.portraits import default_portraits

    path = clips / f"speaker_{seconds}s_{size[0]}x{size[1]}.mp4"
    if not path.exists():
        portrait = next(iter(default_portraits().items()))
        t0 = time.perf_counter()
        render_speaker_clip(portrait[1], path, seconds=seconds, size=size, fps=fps, seed=1,
                            name=portrait[0])
        print(f"  made {path.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def run_one(clip: Path) -> dict:
    """One extraction in this process (called in a child)."""
    from faceswap_gan.config import load_pipeline
    from faceswap_gan.extract.pipeline import extract_source
    from faceswap_gan.faces.assign import SpeakerAssignment
    from faceswap_gan.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp))
        t0 = time.perf_counter()
        summary = extract_source(clip, ws, load_pipeline("debate"), SpeakerAssignment.single("bench"))
        wall = time.perf_counter() - t0
    return {
        "frames": summary.frames,
        "with_face": summary.frames_with_face,
        "fps_loop": summary.frames_per_second,  # decode..write, without model start-up
        "fps_total": summary.frames / wall,  # including MediaPipe start-up and the final rewrite
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def jitter(clip: Path) -> dict:
    """Landmark jitter against the rendered truth, raw mesh vs One Euro smoothed."""
    import numpy as np

    from faceswap_gan.config import load_pipeline
    from faceswap_gan.faces.track import FaceTracker
    from faceswap_gan.synthetic.record import load_landmarks
    from faceswap_gan.video.reader import VideoReader

    truth = load_landmarks(clip.with_name(clip.stem + "_landmarks.npz"))
    raw = []
    with VideoReader(clip) as reader, FaceTracker(load_pipeline("debate").extract, float(reader.fps)) as tracker:
        for frame in reader:
            faces = tracker.update(frame)
            if len(faces) != 1 or np.isnan(truth[frame.index, 0]).any():
                raw.append(None)
                continue
            t = truth[frame.index, 0]
            raw.append((tracker.last_raw_landmarks[faces[0].track_id][:, :2] - t, faces[0].landmarks[:, :2] - t))
    steps_raw, steps_smooth = [], []
    for a, b in zip(raw, raw[1:]):
        if a is None or b is None:
            continue
        steps_raw.append(np.linalg.norm(b[0] - a[0], axis=1).mean())
        steps_smooth.append(np.linalg.norm(b[1] - a[1], axis=1).mean())
    errors = [np.linalg.norm(e[1], axis=1).mean() for e in raw if e is not None]
    r, s = float(np.mean(steps_raw)), float(np.mean(steps_smooth))
    return {"jitter_raw_px": r, "jitter_smooth_px": s, "reduction": 1 - s / r,
            "mean_error_px": float(np.mean(errors))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, nargs="+", default=[10, 60])
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--clips", type=Path, default=Path(tempfile.gettempdir()) / "faceswap_bench_clips")
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    w, h = (int(v) for v in args.size.lower().split("x"))
    args.clips.mkdir(parents=True, exist_ok=True)
    print(f"extract benchmark: {w}x{h} @ {args.fps} fps sample speaker clips, pipeline 'debate'")
    print(f"{'clip':>6} {'frames':>7} {'face%':>6} {'fps loop':>9} {'fps total':>10} {'peak RSS MB':>12}")
    for seconds in args.seconds:
        clip = make_clip(args.clips, seconds, (w, h), args.fps)
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(clip)], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            raise SystemExit(out.returncode)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{seconds:>5}s {res['frames']:>7} {100 * res['with_face'] / res['frames']:>6.1f} "
              f"{res['fps_loop']:>9.1f} {res['fps_total']:>10.1f} {res['peak_rss_mb']:>12.0f}")
    clip = make_clip(args.clips, args.seconds[0], (w, h), args.fps)
    j = jitter(clip)
    print(f"One Euro on {clip.name}: jitter {j['jitter_raw_px']:.3f} -> {j['jitter_smooth_px']:.3f} px/frame "
          f"({100 * j['reduction']:.0f}% less), mean landmark error {j['mean_error_px']:.2f} px")


if __name__ == "__main__":
    main()
