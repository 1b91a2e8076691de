"""Time the default sample set and measure how well MediaPipe re-finds the rendered faces.

    .venv/bin/python benchmarks/samples.py [--seconds 30 --debate-seconds 20 --every 3]

Prints seconds to generate (note the machine's load: the number scales with free cores),
then per clip: the face detector's hit rate and the mean / 95th-percentile distance
between re-detected and rendered landmarks, in eye distances.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import mediapipe as mp
import numpy as np

from faceswap_gan.faces import mesh_indices as mi
from faceswap_gan.synthetic.footage import generate_sample_set
from faceswap_gan.synthetic.record import load_landmarks


def redetect(video: Path, landmarks: np.ndarray, every: int) -> tuple[float, np.ndarray, int]:
    hits, errors, tried = 0, [], 0
    with av.open(str(video)) as container, \
            mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det, \
            mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                            max_num_faces=4) as mesh:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every:
                continue
            image = frame.to_ndarray(format="rgb24")
            h, w = image.shape[:2]
            tried += 1
            found_faces = det.process(image).detections or []
            expected = int(np.isfinite(landmarks[i, :, 0, 0]).sum())
            hits += min(len(found_faces), expected) / max(expected, 1)
            result = mesh.process(image)
            for truth in landmarks[i]:
                if not np.isfinite(truth).all() or not result.multi_face_landmarks:
                    continue
                iod = np.linalg.norm(truth[mi.RIGHT_IRIS_CENTER] - truth[mi.LEFT_IRIS_CENTER])
                best = min(
                    (np.array([[p.x * w, p.y * h] for p in face.landmark]) for face in result.multi_face_landmarks),
                    key=lambda lm: np.linalg.norm(lm[mi.NOSE_TIP] - truth[mi.NOSE_TIP]),
                )
                errors.append(np.linalg.norm(best - truth, axis=1).mean() / iod)
    return hits / max(tried, 1), np.array(errors), tried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--debate-seconds", type=float, default=20.0)
    parser.add_argument("--layout", default="cuts")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--every", type=int, default=3, help="check every Nth frame")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        start = time.perf_counter()
        samples = generate_sample_set(Path(tmp), seconds=args.seconds, debate_seconds=args.debate_seconds,
                                      layout=args.layout, workers=args.workers)
        elapsed = time.perf_counter() - start
        frames = round((2 * args.seconds + 2 * args.debate_seconds) * 30)
        print(f"generate default set: {elapsed:.1f} s for {frames} frames "
              f"({1000 * elapsed / frames:.1f} ms/frame), {os.cpu_count()} cores, "
              f"load average before {load:.1f}")
        print(f"{'clip':<14}{'frames':>8}{'detected':>10}{'lm mean':>9}{'lm p95':>8}")
        for clip, lm_path in samples.landmarks.items():
            rate, errors, tried = redetect(samples.out_dir / f"{clip}.mp4", load_landmarks(lm_path), args.every)
            print(f"{clip:<14}{tried:>8}{rate:>10.1%}{errors.mean():>9.3f}{np.percentile(errors, 95):>8.3f}")


if __name__ == "__main__":
    main()
