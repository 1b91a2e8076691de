"""How far the eval's measurements can be trusted, and how fast it runs. Prints numbers.

On a generated sample set (the record holds the pose and mouth each face was drawn with):
- pose: head_pose() on re-detected meshes against the drawn yaw/pitch/roll (after removing
  each axis's constant offset, since the two use different zero poses), and mouth_opening()
  against the drawn mouth;
- identity classifier: training time and held-out accuracy on real crops;
- the noise floor: the truth re-encoded at a lower quality scored against the truth (what a
  perfect swap loses to compression alone), and eval speed in frames per second.

    .venv/bin/python benchmarks/eval.py [--seconds 8] [--size 320x180] [--fps 15]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from faceswap_gan.evaluation import metrics as M
from faceswap_gan.evaluation.crops import speaker_crops
from faceswap_gan.evaluation.evaluate import evaluate_videos
from faceswap_gan.evaluation.identity import train_identity_classifier
from faceswap_gan.evaluation.landmarks import FaceMeshes
from faceswap_gan.evaluation.report import build_report
from faceswap_gan.evaluation.truth import load_truth_record
from faceswap_gan.synthetic.footage import generate_sample_set
from faceswap_gan.video.reader import VideoReader
from faceswap_gan.video.writer import VideoWriter


def pose_accuracy(clip: Path) -> dict[str, float]:
    record = json.loads(clip.with_suffix(".json").read_text())
    drawn, measured, mouth_drawn, mouth_measured = [], [], [], []
    with VideoReader(clip) as reader, FaceMeshes() as meshes:
        for frame in reader:
            faces = record["frames"][frame.index]["faces"]
            found = meshes(frame.image)
            for face in faces:
                x0, y0, x1, y1 = face["box"]
                centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
                near = [f for f in found if np.linalg.norm(f[:, :2].mean(0) - centre) < (x1 - x0) / 2]
                if not near:
                    continue
                drawn.append((face["yaw"], face["pitch"], face["roll"]))
                measured.append(M.head_pose(near[0]))
                mouth_drawn.append(face["mouth"])
                mouth_measured.append(M.mouth_opening(near[0]))
    d, m = np.array(drawn), np.array(measured)
    out: dict[str, float] = {"faces": float(len(d))}
    for k, name in enumerate(("yaw", "pitch", "roll")):
        for sign in (1, -1):  # the generator may count angles the other way round
            resid = sign * m[:, k] - d[:, k]
            mae = float(np.abs(resid - resid.mean()).mean())
            if sign == 1 or mae < out[f"{name}_mae_deg"]:
                out[f"{name}_mae_deg"] = mae
        out[f"{name}_drawn_std_deg"] = float(d[:, k].std())
        out[f"{name}_corr"] = float(abs(np.corrcoef(d[:, k], m[:, k])[0, 1]))
    resid = np.array(mouth_measured) - np.array(mouth_drawn)
    out["mouth_mae"] = float(np.abs(resid - resid.mean()).mean())
    out["mouth_corr"] = float(np.corrcoef(mouth_drawn, mouth_measured)[0, 1])
    return out


def reencode(src: Path, dst: Path, crf: int) -> Path:
    with VideoReader(src) as reader, \
            VideoWriter(dst, reader.width, reader.height, reader.fps, crf=crf) as writer:
        for frame in reader:
            writer.write(frame.image)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--layout", default="cuts")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        samples = generate_sample_set(folder / "s", seconds=args.seconds, debate_seconds=args.seconds,
                                      size=(w, h), fps=args.fps, layout=args.layout)
        print(f"sample set: {time.perf_counter() - t0:.1f} s")

        for name, value in pose_accuracy(samples.truth).items():
            print(f"pose vs drawn (truth clip): {name} = {value:.3f}")

        t0 = time.perf_counter()
        crops = speaker_crops(samples.speaker_clips)
        t1 = time.perf_counter()
        clf = train_identity_classifier(crops, torch.device("cpu"))
        t2 = time.perf_counter()
        print(f"classifier: {sum(len(c) for c in crops.values())} crops in {t1 - t0:.1f} s, "
              f"trained in {t2 - t1:.1f} s, held-out accuracy {clf.heldout_accuracy:.1%}")

        record = load_truth_record(samples.debate, samples.truth)
        for crf in (18, 28):
            degraded = reencode(samples.truth, folder / f"truth_crf{crf}.mp4", crf)
            t0 = time.perf_counter()
            result = evaluate_videos(samples.debate, samples.truth, degraded, clf, record)
            seconds = time.perf_counter() - t0
            overall = build_report(result)["overall"]
            print(f"truth re-encoded at crf {crf} vs truth: " + ", ".join(
                f"{k}={overall[k]:.3f}" for k in ("identity_acc", "pose_err_deg", "mouth_err",
                                                  "ssim", "psnr", "jitter_ratio", "flicker_ratio")))
            print(f"  eval speed: {result.frames / seconds:.1f} frames/s "
                  f"({result.frames} frames, {len(result.faces)} faces)")


if __name__ == "__main__":
    main()
