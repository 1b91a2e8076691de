"""Turn eval results into the JSON report, the on-screen table and the PNG strip."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from faceswap_gan.evaluation.evaluate import EvalResult, FaceScore, StabilitySums
from faceswap_gan.fileio import atomic_path, write_json_atomic

REPORT_VERSION = 1

# name -> (comparison, threshold): the targets on the sample debate clip.
TARGETS: dict[str, tuple[str, float]] = {
    "identity_acc": (">=", 0.95),
    "pose_err_deg": ("<=", 3.0),
    "ssim": (">=", 0.75),
    "jitter_ratio": ("<=", 1.2),
}

# Row order and format of the table: key -> (label, format).
_ROWS: dict[str, tuple[str, str]] = {
    "identity_acc": ("identity (target speaker)", "{:.1%}"),
    "pose_err_deg": ("pose error, deg", "{:.2f}"),
    "yaw_err_deg": ("  yaw", "{:.2f}"),
    "pitch_err_deg": ("  pitch", "{:.2f}"),
    "roll_err_deg": ("  roll", "{:.2f}"),
    "mouth_err": ("mouth opening error (IOD)", "{:.3f}"),
    "eye_err": ("eye opening error", "{:.3f}"),
    "ssim": ("face SSIM", "{:.3f}"),
    "psnr": ("face PSNR, dB", "{:.1f}"),
    "outside_diff": ("change outside face (0-255)", "{:.2f}"),
    "jitter_ratio": ("landmark jitter / truth's", "{:.2f}"),
    "flicker_ratio": ("face flicker / truth's", "{:.2f}"),
    "found_rate": ("faces found in swap", "{:.1%}"),
    "truth_identity_acc": ("classifier on truth faces", "{:.1%}"),
    "faces": ("faces scored", "{:d}"),
    "frames": ("frames", "{:d}"),
}


def summarise(faces: Sequence[FaceScore], stability: StabilitySums) -> dict[str, Any]:
    """The metric keys over a set of face scores (all, or one speaker's)."""
    found = [f for f in faces if f.found]

    def mean(values: list[float]) -> float:
        values = [v for v in values if not math.isnan(v)]
        return float(np.mean(values)) if values else math.nan

    yaw, pitch, roll = (mean([getattr(f, k) for f in found]) for k in ("yaw_err", "pitch_err", "roll_err"))
    n = len(faces)
    return {
        # A truth face with no face at its place in the swap counts as a miss.
        "identity_acc": sum(f.identity_ok for f in faces) / n if n else math.nan,
        "pose_err_deg": mean([(f.yaw_err + f.pitch_err + f.roll_err) / 3 for f in found]),
        "yaw_err_deg": yaw,
        "pitch_err_deg": pitch,
        "roll_err_deg": roll,
        "mouth_err": mean([f.mouth_err for f in found]),
        "eye_err": mean([f.eye_err for f in found]),
        "ssim": mean([f.ssim for f in found]),
        "psnr": mean([f.psnr for f in found]),
        "jitter_ratio": stability.jitter_ratio(),
        "flicker_ratio": stability.flicker_ratio(),
        "found_rate": len(found) / n if n else math.nan,
        "truth_identity_acc": sum(f.truth_ok for f in faces) / n if n else math.nan,
        "faces": n,
    }


def build_report(result: EvalResult, model: str | None = None) -> dict[str, Any]:
    """The JSON report (version 1); NaN (nothing to measure) becomes null."""
    total = StabilitySums()
    for sums in result.stability.values():
        for k in vars(total):
            setattr(total, k, getattr(total, k) + getattr(sums, k))
    overall = summarise(result.faces, total)
    overall["outside_diff"] = float(np.mean(result.outside_diff)) if result.outside_diff else math.nan
    overall["frames"] = result.frames
    per_speaker = {}
    for speaker in sorted({f.speaker for f in result.faces}):
        faces = [f for f in result.faces if f.speaker == speaker]
        per_speaker[speaker] = summarise(faces, result.stability.get(speaker, StabilitySums()))
    targets = {}
    for name, (op, threshold) in TARGETS.items():
        value = overall[name]
        met = (value >= threshold if op == ">=" else value <= threshold) if not math.isnan(value) else False
        targets[name] = {"target": f"{op} {threshold:g}", "value": value, "met": bool(met)}
    return _clean({
        "version": REPORT_VERSION,
        "clip": str(result.clip),
        "truth": str(result.truth),
        "rendered": str(result.rendered),
        "model": model,
        "classifier_heldout_acc": result.classifier_accuracy,
        "cuts": result.cuts,
        "overall": overall,
        "per_speaker": per_speaker,
        "targets": targets,
    })


def write_report_json(path: Path, reports: Sequence[dict[str, Any]]) -> None:
    """One report as-is; several (a comparison) as {"version", "reports": [...]}."""
    data = reports[0] if len(reports) == 1 else {"version": REPORT_VERSION, "reports": list(reports)}
    write_json_atomic(path, data)


def report_table(reports: Sequence[dict[str, Any]], names: Sequence[str]) -> Table:
    """One report: overall and per-speaker columns. Several: one column per report."""
    table = Table(title="faceswap eval", show_lines=False)
    table.add_column("metric")
    if len(reports) == 1:
        report = reports[0]
        columns = [("overall", report["overall"])] + list(report["per_speaker"].items())
    else:
        columns = [(name, r["overall"]) for name, r in zip(names, reports)]
    for title, _ in columns:
        table.add_column(title, justify="right")
    table.add_column("target", justify="right")
    for key, (label, fmt) in _ROWS.items():
        cells = []
        for _, values in columns:
            cells.append(_cell(values.get(key), fmt, key, values))
        target = TARGETS.get(key)
        table.add_row(label, *cells, f"{target[0]} {target[1]:g}" if target else "")
    return table


def print_reports(console: Console, reports: Sequence[dict[str, Any]], names: Sequence[str]) -> None:
    console.print(report_table(reports, names))
    for name, report in zip(names, reports):
        met = [k for k, t in report["targets"].items() if t["met"]]
        missed = [k for k, t in report["targets"].items() if not t["met"]]
        prefix = f"{name}: " if len(reports) > 1 else ""
        console.print(
            f"{prefix}targets met: {', '.join(met) or 'none'}"
            + (f"; missed: {', '.join(missed)}" if missed else "")
        )


def write_strip(path: Path, results: Sequence[EvalResult], names: Sequence[str]) -> None:
    """PNG: a row of source frames, one row per swap, a row of truth frames, labelled."""
    first = results[0]
    rows = [("source", [s for _, s, _, _ in first.strip])]
    for name, result in zip(names, results):
        rows.append((f"swapped: {name}" if len(results) > 1 else "swapped", [w for _, _, w, _ in result.strip]))
    rows.append(("truth", [t for _, _, _, t in first.strip]))
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


def _cell(value: Any, fmt: str, key: str, values: dict[str, Any]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = fmt.format(value)
    target = TARGETS.get(key)
    if target is None:
        return text
    op, threshold = target
    ok = value >= threshold if op == ">=" else value <= threshold
    return f"[green]{text}[/green]" if ok else f"[red]{text}[/red]"


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
