"""Render speed and memory on the 640x360 sample debate clip, beside the decode+encode floor.

    .venv/bin/python benchmarks/render.py [--seconds 10] [--long 60] [--quick] [--json FILE]
                                          [--device cpu|cuda] [--workdir DIR]

Prints, for the same clip in the same run:
- floor: plain PyAV decode + libx264 encode (same CRF and preset), no face work: render
  cannot beat it;
- render --to and --swap, and --to with the face mesh on every frame (render.mesh_every = 1):
  frames/s, the ratio to the floor, and the time spent per stage (main thread; the tracking
  thread's own time as "track (thread)"), with torch's threads set as `faceswap render` sets
  them;
- peak resident memory of a whole render of a short and a long clip (each in its own
  process), which should not grow with the clip's length;
- what temporal smoothing removes: the swap's frame-to-frame flicker with the z and
  colour smoothing off and on, and with the face mesh on every frame instead of every other;
- with --json FILE, all of it for scripts: floor_fps, render_fps, ratio, stage_seconds (the
  default `render --to`), and the same per run under "to", "swap", "to_mesh_every_frame"
  and "to_fp32" (E and G in fp32, as on a CPU without bf16 hardware).

The model is samples/sample_model.safetensors when it exists, else freshly initialised
networks of the debate preset (same architecture, so the same cost per crop).
"""

from __future__ import annotations

import argparse
import json
import os
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
                max_frames: int | None = None, autocast: bool = True):
    from faceswap_gan.render.pipeline import RenderOptions, render_video

    return render_video(clip, out, model, pipeline, target, device,
                        RenderOptions(overwrite=True, model_name="bench", max_frames=max_frames,
                                      use_autocast=autocast))


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


def child(clip: Path, out: Path, device_name: str) -> None:
    """One render in this process; prints frames/s and this process's peak memory as JSON."""
    from faceswap_gan.config import load_pipeline
    from faceswap_gan.render.target import SwapTarget

    device = setup_device(device_name)
    model, _ = bench_model(device)
    summary = render_once(clip, out, SwapTarget(to="speaker_b"), load_pipeline("debate"), model, device)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": summary.frames, "fps": summary.fps, "peak_mb": peak_mb}))


def setup_device(name: str) -> torch.device:
    """The device and torch threads exactly as `faceswap render` sets them."""
    from faceswap_gan.device import INFERENCE_THREADS, resolve_device, set_cpu_threads

    set_cpu_threads(None, default=INFERENCE_THREADS)
    return resolve_device(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--long", type=float, default=60, help="0: skip the memory runs")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--quick", action="store_true",
                        help="speed only: no flicker table, no memory runs")
    parser.add_argument("--workdir", type=Path, default=REPO / "workspace" / "bench_render")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return

    from faceswap_gan.config import load_pipeline
    from faceswap_gan.device import cpu_name
    from faceswap_gan.render.target import SwapTarget

    device = setup_device(args.device)
    args.workdir.mkdir(parents=True, exist_ok=True)
    clip = sample_clip(args.workdir, args.seconds)
    pipeline = load_pipeline("debate")
    model, model_name = bench_model(device)
    cfg = pipeline.render
    gate = getattr(model, "gate", None)
    report: dict = {
        "clip": f"sample debate, 640x360, {args.seconds:g} s at 30 fps", "model": model_name,
        "device": str(device), "cpu": cpu_name(), "torch_threads": torch.get_num_threads(),
        "cores": os.cpu_count(), "gate": None if gate is None else gate.usable().kind,
    }
    print(f"clip: {clip} ({report['clip']}); model: {model_name}; device {device}; "
          f"CPU {report['cpu']}; torch threads {report['torch_threads']}")

    # Warm-up: the first calls build oneDNN kernels and MediaPipe graphs; not per-frame cost.
    render_once(clip, args.workdir / "warmup.mp4", SwapTarget(to="speaker_b"), pipeline, model,
                device, max_frames=30)
    fps_floor = floor(clip, args.workdir / "floor.mp4", cfg.crf, cfg.x264_preset)
    report["floor_fps"] = fps_floor
    print(f"floor  decode+encode (crf {cfg.crf}, {cfg.x264_preset}): {fps_floor:6.1f} frames/s")
    every_frame = replace(pipeline, render=replace(cfg, mesh_every=1))
    runs = {"to": ("--to", SwapTarget(to="speaker_b"), pipeline, True),
            "swap": ("--swap", SwapTarget(swap=True), pipeline, True),
            "to_mesh_every_frame": ("--to, mesh on every frame", SwapTarget(to="speaker_b"),
                                    every_frame, True),
            # E and G as a CPU without bf16 hardware runs them (amp_dtype picks fp32 there).
            "to_fp32": ("--to, networks in fp32", SwapTarget(to="speaker_b"), pipeline, False)}
    for key, (name, target, p, amp) in runs.items():
        s = render_once(clip, args.workdir / f"render_{key}.mp4", target, p, model, device,
                        autocast=amp)
        report[key] = {"render_fps": s.fps, "ratio": s.fps / fps_floor, "frames": s.frames,
                       "faces_swapped": s.faces_swapped, "stage_seconds": s.stage_seconds}
        print(f"render {name:<26} {s.fps:6.1f} frames/s  ({s.frames} frames, {s.faces_swapped} "
              f"faces swapped, {s.fps / fps_floor:.2f}x the floor)")
        stages = ", ".join(f"{k} {v:.2f}" for k, v in s.stage_seconds.items())
        print(f"       seconds per stage: {stages}")
    # The headline numbers the issue asks for: the default `render --to`.
    report.update(render_fps=report["to"]["render_fps"], ratio=report["to"]["ratio"],
                  stage_seconds=report["to"]["stage_seconds"])

    if not args.quick:
        # What temporal smoothing and mesh interpolation do to flicker (first 3 s of the clip).
        frames = 90
        meter = FlickerMeter(clip, model, pipeline, frames)
        report["flicker"] = {}
        for label, z, c, every in (("off", 0.0, 0.0, cfg.mesh_every),
                                   ("z only", cfg.z_smoothing, 0.0, cfg.mesh_every),
                                   ("colour only", 0.0, cfg.color_smoothing, cfg.mesh_every),
                                   ("both (default)", cfg.z_smoothing, cfg.color_smoothing, cfg.mesh_every),
                                   ("both, mesh every frame", cfg.z_smoothing, cfg.color_smoothing, 1)):
            p = replace(pipeline, render=replace(cfg, z_smoothing=z, color_smoothing=c, mesh_every=every))
            out = args.workdir / f"smooth_{z}_{c}_{every}.mp4"
            # --swap: every face changes (the clip opens on speaker_b, whom --to would keep).
            render_once(clip, out, SwapTarget(swap=True), p, model, device, max_frames=frames)
            report["flicker"][label] = meter(out)
            print(f"flicker, smoothing {label:<23} {report['flicker'][label]:6.2f} "
                  "(median |frame-to-frame change of the swap| in the aligned face, 0-255)")

    if not args.quick and args.long > 0:
        # Peak memory, each clip length in its own process.
        report["memory"] = {}
        for seconds in (args.seconds, args.long):
            long_clip = sample_clip(args.workdir, seconds)
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(long_clip), str(args.workdir / "mem.mp4"),
                 args.device], capture_output=True, text=True, check=True)
            data = json.loads(result.stdout.strip().splitlines()[-1])
            report["memory"][f"{seconds:g}s"] = data
            print(f"memory {seconds:4.0f} s clip: peak {data['peak_mb']:.0f} MB resident, "
                  f"{data['fps']:.1f} frames/s over {data['frames']} frames")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
