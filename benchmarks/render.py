"""Render speed and memory on the 640x360 sample debate clip, beside the decode+encode floor.

    .venv/bin/python benchmarks/render.py [--seconds 10] [--long 60] [--workdir DIR]

Prints, for the same clip in the same run:
- floor: plain PyAV decode + libx264 encode (same CRF and preset), no face work: render
  cannot beat it;
- render --to and --swap (the latter adds D's class head per crop): frames/s, and the
  time spent per stage;
- peak resident memory of a whole render of a short and a long clip (each in its own
  process), which should not grow with the clip's length;
- what temporal smoothing removes: the swap's frame-to-frame flicker with the z and
  colour smoothing off and on.

The model is samples/sample_model.safetensors when it exists, else freshly initialised
networks of the debate preset (same architecture, so the same cost per crop).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SAMPLE_MODEL = REPO / "samples" / "sample_model.safetensors"


def sample_clip(workdir: Path, seconds: float) -> Path:
    from faceswap_gan.synthetic.footage import generate_sample_set

    folder = workdir / f"debate_{int(seconds)}s"
    sample = generate_sample_set(folder, seconds=1, debate_seconds=seconds, size=(640, 360),
                                 fps=30, layout="cuts", seed=0)
    return sample.debate


def bench_model(device: torch.device):  # type: ignore[no-untyped-def]
    from faceswap_gan.config import load_pipeline
    from faceswap_gan.models.checkpoint import FaceModel, load_face_model
    from faceswap_gan.models.networks import NetworkSpec, build_networks

    if SAMPLE_MODEL.is_file():
        return load_face_model(SAMPLE_MODEL, device), "sample model"
    pipeline = load_pipeline("debate")
    spec = NetworkSpec.from_config(pipeline.model, n_classes=2)
    g, d, e = build_networks(spec, encoder=True, generator=torch.Generator().manual_seed(0))
    for net in (g, d, e):
        net.to(device).eval().requires_grad_(False)
    model = FaceModel(g, e, d, ["speaker_a", "speaker_b"], spec.size, spec.z_dim, {})
    return model, "untrained debate-preset networks (no sample model yet)"


def floor(clip: Path, out: Path, crf: int, preset: str) -> float:
    """frames/s of decode -> RGB -> encode with the same settings and nothing else."""
    t0 = time.perf_counter()
    n = 0
    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vin.thread_type = "AUTO"
        vout = dst.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.options = {"crf": str(crf), "preset": preset}
        for frame in src.decode(vin):
            image = frame.to_ndarray(format="rgb24")
            new = av.VideoFrame.from_ndarray(image, format="rgb24")
            new.pts = n
            for packet in vout.encode(new):
                dst.mux(packet)
            n += 1
        for packet in vout.encode(None):
            dst.mux(packet)
    return n / (time.perf_counter() - t0)


def render_once(clip: Path, out: Path, target, pipeline, model, device,  # type: ignore[no-untyped-def]
                max_frames: int | None = None):
    from faceswap_gan.render.pipeline import RenderOptions, render_video

    return render_video(clip, out, model, pipeline, target, device,
                        RenderOptions(overwrite=True, model_name="bench", max_frames=max_frames))


class FlickerMeter:
    """The swap's frame-to-frame change in the aligned crop, with the face's motion taken out.

    The input is tracked once; every rendered output is cut into crops with the input's
    alignment matrices, so D_t = output crop - input crop is what the swap added to the face
    in frame t. Flicker = median over frames of mean |D_t - D_(t-1)| inside the face mask
    (frames after a shot cut skipped).
    """

    def __init__(self, clip: Path, model, pipeline, frames: int) -> None:  # type: ignore[no-untyped-def]
        from faceswap_gan.faces.align import alignment_matrix, warp_face
        from faceswap_gan.faces.track import FaceTracker
        from faceswap_gan.render.mask import crop_face_mask
        from faceswap_gan.render.pipeline import extract_config_for
        from faceswap_gan.video.reader import VideoReader

        self.warp = warp_face
        extract = extract_config_for(model, pipeline)
        self.size = extract.crop_size
        self.faces: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None] = []
        with VideoReader(clip, max_frames=frames) as reader, \
                FaceTracker(extract, float(reader.fps)) as tracker:
            for frame in reader:
                faces = tracker.update(frame)
                if len(faces) != 1:
                    self.faces.append(None)
                    continue
                m = alignment_matrix(faces[0].landmarks, self.size, extract.padding)
                mask = crop_face_mask(faces[0].landmarks, m, self.size) > 0.5
                crop = warp_face(frame.image, m, self.size).astype(np.int16)
                self.faces.append((m, mask, crop, tracker.last_frame_was_cut))

    def __call__(self, rendered: Path) -> float:
        values, prev = [], None
        with av.open(str(rendered)) as c:
            for face, frame in zip(self.faces, c.decode(video=0)):
                if face is None:
                    prev = None
                    continue
                m, mask, src, cut = face
                out = self.warp(frame.to_ndarray(format="rgb24"), m, self.size).astype(np.int16)
                d = out - src
                if prev is not None and not cut:
                    values.append(float(np.abs(d - prev)[mask].mean()))
                prev = d
        return float(np.median(values)) if values else float("nan")


def child(clip: Path, out: Path) -> None:
    """One render in this process; prints frames/s and this process's peak memory as JSON."""
    from faceswap_gan.config import load_pipeline
    from faceswap_gan.render.pipeline import SwapTarget

    device = torch.device("cpu")
    model, _ = bench_model(device)
    summary = render_once(clip, out, SwapTarget(to="speaker_b"), load_pipeline("debate"), model, device)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": summary.frames, "fps": summary.fps, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--long", type=float, default=60)
    parser.add_argument("--workdir", type=Path, default=REPO / "workspace" / "bench_render")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from faceswap_gan.config import load_pipeline
    from faceswap_gan.render.pipeline import SwapTarget

    device = torch.device("cpu")
    args.workdir.mkdir(parents=True, exist_ok=True)
    clip = sample_clip(args.workdir, args.seconds)
    pipeline = load_pipeline("debate")
    model, model_name = bench_model(device)
    cfg = pipeline.render
    print(f"clip: {clip} (640x360, {args.seconds:g} s at 30 fps); model: {model_name}; "
          f"torch threads {torch.get_num_threads()}")

    # Warm-up: the first calls build oneDNN kernels and MediaPipe graphs; not per-frame cost.
    render_once(clip, args.workdir / "warmup.mp4", SwapTarget(to="speaker_b"), pipeline, model,
                device, max_frames=30)
    fps_floor = floor(clip, args.workdir / "floor.mp4", cfg.crf, cfg.x264_preset)
    print(f"floor  decode+encode (crf {cfg.crf}, {cfg.x264_preset}): {fps_floor:6.1f} frames/s")
    for name, target in (("--to", SwapTarget(to="speaker_b")), ("--swap", SwapTarget(swap=True))):
        s = render_once(clip, args.workdir / f"render{name}.mp4", target, pipeline, model, device)
        print(f"render {name:<6} {s.fps:6.1f} frames/s  ({s.frames} frames, {s.faces_swapped} "
              f"faces swapped, {100 * s.fps / fps_floor:.0f}% of the floor)")
        stages = ", ".join(f"{k} {v:.1f}" for k, v in s.stage_seconds.items())
        print(f"       seconds per stage: {stages}")

    # What temporal smoothing removes (on the first 3 s of the clip).
    frames = 90
    meter = FlickerMeter(clip, model, pipeline, frames)
    for label, z, c in (("off", 0.0, 0.0), ("z only", cfg.z_smoothing, 0.0),
                        ("colour only", 0.0, cfg.color_smoothing),
                        ("both (default)", cfg.z_smoothing, cfg.color_smoothing)):
        p = replace(pipeline, render=replace(cfg, z_smoothing=z, color_smoothing=c))
        out = args.workdir / f"smooth_{z}_{c}.mp4"
        render_once(clip, out, SwapTarget(to="speaker_b"), p, model, device, max_frames=frames)
        print(f"flicker, smoothing {label:<15} {meter(out):6.2f} "
              "(median |frame-to-frame change of the swap| in the aligned face, 0-255)")

    # Peak memory, each clip length in its own process.
    for seconds in (args.seconds, args.long):
        long_clip = sample_clip(args.workdir, seconds)
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(long_clip), str(args.workdir / "mem.mp4")],
            capture_output=True, text=True, check=True)
        data = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"memory {seconds:4.0f} s clip: peak {data['peak_mb']:.0f} MB resident, "
              f"{data['fps']:.1f} frames/s over {data['frames']} frames")


if __name__ == "__main__":
    main()
