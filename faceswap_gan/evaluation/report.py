"""Turn eval results into the JSON report and the PNG strip (``commands/eval.py`` draws
the table from the report)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceswap_gan.evaluation.evaluate import EvalResult, FaceScore, StabilitySums
from faceswap_gan.evaluation.judge import MODEL_NAME
from faceswap_gan.fileio import atomic_path, write_json_atomic

REPORT_VERSION = 1

# What the swap is compared with -> name -> (comparison, threshold): the targets.
# "truth": the sample debate clip, scored against its ground truth. "source": real footage,
# no truth, scored against the source clip itself.
TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    "truth": {
        "identity_acc": (">=", 0.95),
        "pose_err_deg": ("<=", 2.0),
        "ssim": (">=", 0.8),
        "mouth_err_over_floor": ("<=", 0.02),
        "jitter_ratio": ("<=", 1.1),
    },
    "source": {
        "identity_acc": (">=", 0.9),
        "identity_emb_acc": (">=", 0.9),  # only where the pretrained embedding ran
        "mouth_corr": (">=", 0.8),
        "pose_err_deg": ("<=", 3.0),
        "sharpness_ratio": (">=", 0.5),
        "grid_ratio": ("<=", 1.5),  # that sharpness is texture, not a grid or checkerboard
        "jitter_ratio": ("<=", 1.2),
    },
}
_JUDGE_KEYS = ("identity_emb_acc", "emb_dist_target", "emb_dist_source")

# Measures that compare the swap with the reference (the truth, or the source without one);
# the rest are compared with the source whatever the reference. Counts have neither.
_VS_REFERENCE = (
    "identity_acc", "identity_emb_acc", "emb_dist_target", "emb_dist_source", "pose_err_deg",
    "yaw_err_deg", "pitch_err_deg", "roll_err_deg", "mouth_err", "mouth_corr", "eye_err", "jitter_ratio",
    "flicker_ratio", "found_rate",
)
_TRUTH_ONLY = ("mouth_err_floor", "mouth_err_over_floor", "ssim", "psnr", "truth_identity_acc")
_VS_SOURCE = ("sharpness_ratio", "grid_ratio", "outside_diff", "source_vote_share")


def references(reference: str) -> dict[str, str]:
    """Measure -> "truth" or "source": what it was compared with, given the run's reference."""
    out = {key: reference for key in _VS_REFERENCE}
    if reference == "truth":
        out.update({key: "truth" for key in _TRUTH_ONLY})
    out.update({key: "source" for key in _VS_SOURCE})
    return out


def summarise(faces: Sequence[FaceScore], stability: StabilitySums) -> dict[str, Any]:
    """The metric keys over a set of face scores (all, or one speaker's)."""
    found = [f for f in faces if f.found]
    embedded = [f for f in faces if f.emb_ok is not None]
    with_truth = [f for f in faces if f.truth_ok is not None]
    voted = [f for f in faces if f.source_pred]

    def mean(values: list[float]) -> float:
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    def share(items: list[FaceScore], ok: Callable[[FaceScore], Any]) -> float:
        return sum(bool(ok(f)) for f in items) / len(items) if items else math.nan

    yaw, pitch, roll = (mean([getattr(f, k) for f in found]) for k in ("yaw_err", "pitch_err", "roll_err"))
    n = len(faces)
    return {
        # A reference face with no face at its place in the swap counts as a miss.
        "identity_acc": share(list(faces), lambda f: f.identity_ok),
        "identity_emb_acc": share(embedded, lambda f: f.emb_ok),
        "emb_dist_target": mean([f.emb_dists.get(f.speaker, math.nan) for f in embedded if f.found]),
        "emb_dist_source": mean([f.emb_dists.get(f.source_speaker, math.nan)
                                 for f in embedded if f.found]),
        "pose_err_deg": mean([(f.yaw_err + f.pitch_err + f.roll_err) / 3 for f in found]),
        "yaw_err_deg": yaw,
        "pitch_err_deg": pitch,
        "roll_err_deg": roll,
        "mouth_err": mean([f.mouth_err for f in found]),
        "mouth_err_floor": mean([f.mouth_floor for f in faces]),
        "mouth_err_over_floor": mean([f.mouth_err - f.mouth_floor for f in found]),
        "mouth_corr": mouth_correlation(found),
        "eye_err": mean([f.eye_err for f in found]),
        "ssim": mean([f.ssim for f in found]),
        "psnr": mean([f.psnr for f in found]),
        "sharpness_ratio": mean([f.sharpness for f in found]),
        "grid_ratio": mean([f.grid for f in found]),
        "jitter_ratio": stability.jitter_ratio(),
        "flicker_ratio": stability.flicker_ratio(),
        "found_rate": len(found) / n if n else math.nan,
        "truth_identity_acc": share(with_truth, lambda f: f.truth_ok),
        "source_vote_share": share(voted, lambda f: f.source_pred == f.source_speaker),
        "faces": n,
    }


# Tracks shorter than this many faces say nothing about following over time.
MIN_TRACK_FACES = 5


def mouth_correlation(faces: Sequence[FaceScore]) -> float:
    """Does the swapped mouth open and close with the reference's: Pearson's r of the two
    mouth openings over time, each centred on its own track's mean (so a speaker's or shot's
    usual opening does not count, only the movement), pooled over tracks."""
    tracks: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for f in faces:
        if not (math.isnan(f.ref_mouth) or math.isnan(f.swap_mouth)):
            tracks.setdefault((f.speaker, f.track), []).append((f.ref_mouth, f.swap_mouth))
    ref, swap = [], []
    for pairs in tracks.values():
        if len(pairs) >= MIN_TRACK_FACES:
            values = np.asarray(pairs, dtype=np.float64)
            values -= values.mean(axis=0)
            ref.append(values[:, 0])
            swap.append(values[:, 1])
    if not ref:
        return math.nan
    a, b = np.concatenate(ref), np.concatenate(swap)
    denominator = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else math.nan


def build_report(result: EvalResult, model: str | None = None,
                 judge_note: str | None = None) -> dict[str, Any]:
    """The JSON report (version 1); NaN (nothing to measure) becomes null.

    ``judge_note``: why the pretrained embedding did not run, when it did not.
    """
    total = StabilitySums()
    for sums in result.stability.values():
        for k in vars(total):
            setattr(total, k, getattr(total, k) + getattr(sums, k))
    judged = result.judge_every > 0
    overall = summarise(result.faces, total)
    overall["outside_diff"] = float(np.mean(result.outside_diff)) if result.outside_diff else math.nan
    overall["frames"] = result.frames
    per_speaker = {}
    for speaker in sorted({f.speaker for f in result.faces}):
        faces = [f for f in result.faces if f.speaker == speaker]
        per_speaker[speaker] = summarise(faces, result.stability.get(speaker, StabilitySums()))
    refs = references(result.reference)
    targets = {}
    for name, (op, threshold) in TARGETS[result.reference].items():
        if name in _JUDGE_KEYS and not judged:
            continue  # the optional judge is not installed: no target to miss
        value = overall[name]
        targets[name] = {"target": f"{op} {threshold:g}", "value": value,
                         "met": met(value, op, threshold), "reference": refs.get(name)}
    if judged:
        judge: dict[str, Any] = {"model": MODEL_NAME, "every": result.judge_every}
    else:
        judge = {"model": None, "note": judge_note or "not run"}
    return _clean({
        "version": REPORT_VERSION,
        "clip": str(result.clip),
        "truth": str(result.truth) if result.truth is not None else None,
        "rendered": str(result.rendered),
        "model": model,
        "target": result.target,
        "classifier_heldout_acc": result.classifier_accuracy,
        "judge": judge,
        "cuts": result.cuts,
        "reference": refs,
        "overall": overall,
        "per_speaker": per_speaker,
        "targets": targets,
    })


def write_report_json(path: Path, reports: Sequence[dict[str, Any]]) -> None:
    """One report as-is; several (a comparison) as {"version", "reports": [...]}."""
    data = reports[0] if len(reports) == 1 else {"version": REPORT_VERSION, "reports": list(reports)}
    write_json_atomic(path, data)


def write_strip(path: Path, results: Sequence[EvalResult], names: Sequence[str]) -> None:
    """PNG: a row of source frames, one row per swap, a row of truth frames (when there is a
    truth), labelled."""
    first = results[0]
    rows = [("source", [s for _, s, _, _ in first.strip])]
    for name, result in zip(names, results):
        rows.append((f"swapped: {name}" if len(results) > 1 else "swapped", [w for _, _, w, _ in result.strip]))
    if first.truth is not None:
        rows.append(("truth", [t for _, _, _, t in first.strip if t is not None]))
    if not rows[0][1]:
        return
    gap = 4  # white gutters between frames and rows, so neighbouring frames do not merge
    lines = []
    for label, images in rows:
        cells = []
        for image in images:
            cells += [image, np.full((image.shape[0], gap, 3), 255, np.uint8)]
        line = np.hstack(cells[:-1]).copy()
        cv2.putText(line, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(line, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        lines.append(line)
    width = max(line.shape[1] for line in lines)
    padded = []
    for line in lines:
        padded += [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255),
                   np.full((gap, width, 3), 255, np.uint8)]
    image = np.vstack(padded[:-1])
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {path}")


def met(value: Any, op: str, threshold: float) -> bool:
    """Whether ``value`` meets a target (``op`` is ">=" or "<="); nothing measured misses."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value >= threshold if op == ">=" else value <= threshold)


def _clean(value: Any) -> Any:
    """NaN -> None and numpy scalars -> Python, recursively, so the JSON is strict."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
