"""``faceswap eval``: measure a swap against ground truth, or against the source without one.

``evaluation.run.run_eval`` does the work and draws nothing; ``EvalDisplay`` here shows what it
reports: notices, a bar while a candidate renders or is scored, and the reports' table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from faceswap_gan.commands.common import (
    console,
    device_option,
    open_run,
    pipeline_option,
    seed_option,
    workspace_option,
)
from faceswap_gan.errors import FaceswapError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from faceswap_gan.evaluation.run import EvalProgress, EvalSummary


def _speaker_clip(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Path]:
    clips: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter(f"expected NAME=PATH, got '{value}'")
        clips[name] = Path(path)
    return clips


@click.command(
    "eval",
    epilog="""\b
Examples:
  faceswap eval --clip workspace/samples/debate.mp4 --truth workspace/samples/debate_truth.mp4
  faceswap eval --clip debate.mp4 --truth debate_truth.mp4 --rendered debate_swapped.mp4 --json report.json
  faceswap eval --clip debate.mp4 --truth debate_truth.mp4 --model paper_run --model debate_run
  faceswap eval --clip interview.mp4 --rendered interview_swapped.mp4 \\
      --speaker-clip alice=alice.mp4 --speaker-clip bob=bob.mp4        # real footage, no truth
""",
)
@click.option("--clip", "clip", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The source clip that was (or will be) swapped.")
@click.option("--truth", "truth", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Ground truth: the same performance with the identities exchanged "
                   "[default: the sample set's truth clip beside --clip; none: score against "
                   "the source].")
@click.option("--no-truth", "no_truth", is_flag=True,
              help="Score against the source even where a truth clip exists (as for real "
                   "footage).")
@click.option("--target", "target", default=None, metavar="NAME",
              help="Without a truth: the speaker every face should become [default: with two "
                   "speakers, each face's other speaker].")
@click.option("--judge-every", "judge_every", type=click.IntRange(min=0), default=3,
              show_default=True, metavar="N",
              help="Pretrained identity embedding (dlib, when installed: pip install "
                   "'faceswap_gan[judge]') on every Nth frame's faces; 0 = off.")
@click.option("--rendered", "rendered", type=click.Path(dir_okay=False, path_type=Path),
              multiple=True, help="An already swapped video to score (repeat to compare); "
                                  "skips rendering.")
@click.option("--model", "models", multiple=True, metavar="NAME|PATH",
              help="Render --clip with this model (--swap) and score it; repeat to compare.")
@click.option("--recipe", "recipes", multiple=True, metavar="NAME|PATH",
              help="Render with this pipeline preset's render settings; repeat to compare "
                   "recipes with one model.")
@click.option("--speaker-clip", "speaker_clips", multiple=True, callback=_speaker_clip,
              metavar="NAME=PATH", help="A clip of one speaker alone, to train the identity "
                                        "classifier [default: the sample set's speaker clips].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON here.")
@click.option("--strip", "strip_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG strip of source / swapped / truth frames [default: workspace/eval/].")
@workspace_option
@pipeline_option
@device_option
@seed_option
def command(
    clip: Path,
    truth: Path | None,
    no_truth: bool,
    target: str | None,
    judge_every: int,
    rendered: tuple[Path, ...],
    models: tuple[str, ...],
    recipes: tuple[str, ...],
    speaker_clips: dict[str, Path],
    json_path: Path | None,
    strip_path: Path | None,
    workspace: str | None,
    pipeline: str | None,
    device: str,
    seed: int,
) -> None:
    """Score a face swap against ground truth, or against the source, per speaker and overall.

    Identity (an independent classifier's verdict on each swapped face, and a pretrained
    embedding's where dlib is installed), head pose and expression error against the truth,
    face SSIM/PSNR, face sharpness and change outside the face against the source, and
    landmark jitter and face flicker relative to the truth's own. Without a truth (real
    footage) pose, expression and stability are measured against the source, and each
    face's target is the other speaker (or --target). Prints a table, writes a PNG strip
    and, with --json, a report for scripts.
    """
    from faceswap_gan.evaluation.run import EvalRequest, run_eval
    from faceswap_gan.fileio import check_writable
    from faceswap_gan.video.reader import VideoReader

    ws, preset = open_run(workspace, pipeline)
    if rendered and (recipes or len(models) > 1):
        raise FaceswapError("with --rendered files, give at most one --model (the one that made "
                            "them, for its code measures) and no --recipe")
    # A bad video or an output that cannot be written fails now, not after the scoring
    # (opening decodes a first frame; run_eval words the missing ones).
    for video in (clip, truth, *rendered, *speaker_clips.values()):
        if video is not None and video.is_file():
            with VideoReader(video):
                pass
    for output in (json_path, strip_path):
        if output is not None:
            check_writable(output)
    with EvalDisplay(console()) as display:
        run_eval(
            EvalRequest(
                clip=clip, truth=truth, rendered=list(rendered), models=list(models),
                recipes=list(recipes), speaker_clips=speaker_clips, json_path=json_path,
                strip_path=strip_path, device=device, seed=seed, no_truth=no_truth,
                target=target, judge_every=judge_every, report=display,
            ),
            ws, preset,
        )


class EvalDisplay:
    """Draws what an eval reports: notices, a passing bar per render and per scoring, and the
    table with each candidate's targets met and missed."""

    def __init__(self, out: Console) -> None:
        self.console = out
        self.bar: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> EvalDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.bar = None

    def __call__(self, event: object) -> None:
        from faceswap_gan.evaluation.run import EvalProgress, EvalSummary

        if isinstance(event, EvalProgress):
            self._progress(event)
            return
        self._stop()
        if isinstance(event, str):
            self.console.print(f"[yellow]{event}[/yellow]" if event.startswith("warning:") else event)
        elif isinstance(event, EvalSummary):
            print_reports(self.console, event)

    def _progress(self, event: EvalProgress) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        if self.bar is None or (event.done == 0 and event.total is None):  # a step's start
            self._stop()
            verb = "rendering" if event.stage == "render" else "scoring"
            self.bar = Progress(TextColumn(f"{verb} {event.name}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(event.stage, total=None)
        self.bar.update(self.task, completed=event.done, total=event.total)


def print_reports(out: Console, summary: EvalSummary) -> None:
    """The table, then each candidate's targets met and missed."""
    reports, names = summary.reports, summary.names
    out.print(report_table(reports, names))
    for name, report in zip(names, reports):
        met = [k for k, t in report["targets"].items() if t["met"]]
        missed = [k for k, t in report["targets"].items() if not t["met"]]
        prefix = f"{name}: " if len(reports) > 1 else ""
        out.print(
            f"{prefix}targets met: {', '.join(met) or 'none'}"
            + (f"; missed: {', '.join(missed)}" if missed else "")
        )


# Row order and format of the table: key -> (label, format).
_ROWS: dict[str, tuple[str, str]] = {
    "identity_acc": ("identity (target speaker)", "{:.1%}"),
    "identity_emb_acc": ("identity, pretrained embedding", "{:.1%}"),
    "emb_dist_target": ("  embedding distance to target", "{:.3f}"),
    "emb_dist_source": ("  embedding distance to source", "{:.3f}"),
    "pose_err_deg": ("pose error, deg", "{:.2f}"),
    "yaw_err_deg": ("  yaw", "{:.2f}"),
    "pitch_err_deg": ("  pitch", "{:.2f}"),
    "roll_err_deg": ("  roll", "{:.2f}"),
    "mouth_err": ("mouth opening error (IOD)", "{:.3f}"),
    "mouth_err_floor": ("  no-swap floor", "{:.3f}"),
    "mouth_err_over_floor": ("  error over the floor", "{:+.3f}"),
    "mouth_corr": ("mouth follows the reference (r)", "{:.2f}"),
    "eye_err": ("eye opening error", "{:.3f}"),
    "ssim": ("face SSIM", "{:.3f}"),
    "psnr": ("face PSNR, dB", "{:.1f}"),
    "sharpness_ratio": ("face sharpness / source's", "{:.2f}"),
    "grid_ratio": ("  grid/checkerboard share / source's", "{:.2f}"),
    "outside_diff": ("change outside face (0-255)", "{:.2f}"),
    "jitter_ratio": ("landmark jitter / reference's", "{:.2f}"),
    "flicker_ratio": ("face flicker / reference's", "{:.2f}"),
    "found_rate": ("faces found in swap", "{:.1%}"),
    "truth_identity_acc": ("classifier on truth faces", "{:.1%}"),
    "source_vote_share": ("classifier agrees with track vote", "{:.1%}"),
    "faces": ("faces scored", "{:d}"),
    "frames": ("frames", "{:d}"),
}


# Rows of the model's code measures (report "code", evaluation/code.py).
_CODE_ROWS: dict[str, tuple[str, str]] = {
    "z_saturated": ("code components at +-1 (dead)", "{:.1%}"),
    "z_spread": ("code spread over faces", "{:.3f}"),
    "g_spread_ratio": ("G's faces over z / crops' spread", "{:.2f}"),
}


def report_table(reports: Sequence[dict[str, Any]], names: Sequence[str]) -> Table:
    """One report: overall and per-speaker columns. Several: one column per report.

    The "vs" column says what each measure was compared with (truth or source); rows no
    report has a value for (SSIM without a truth, say) are left out, and a judge that did
    not run is named in the caption.
    """
    from rich.table import Table

    first = reports[0]
    reference = "truth" if first.get("truth") else "source"
    title = "faceswap eval, against the truth" if reference == "truth" else \
        "faceswap eval, no truth: against the source"
    table = Table(title=title, show_lines=False)
    table.add_column("metric")
    table.add_column("vs")
    if len(reports) == 1:
        columns = [("overall", first["overall"], first)] + [
            (name, values, first) for name, values in first["per_speaker"].items()]
    else:
        columns = [(name, r["overall"], r) for name, r in zip(names, reports)]
    for title, _, _ in columns:
        table.add_column(title, justify="right")
    table.add_column("target", justify="right")
    refs: Mapping[str, str] = first.get("reference", {})
    for key, (label, fmt) in _ROWS.items():
        values = [v.get(key) for _, v, _ in columns]
        if all(v is None for v in values):
            continue
        cells = [_cell(v, fmt, r["targets"].get(key)) for v, (_, _, r) in zip(values, columns)]
        target = first["targets"].get(key)
        table.add_row(label, refs.get(key, ""), *cells, target["target"] if target else "")
    # The model's own measures (eval --model): one value per report, in its first column.
    for key, (label, fmt) in _CODE_ROWS.items():
        values = [(r.get("code") or {}).get(key) if len(reports) > 1 or k == 0 else None
                  for k, (_, _, r) in enumerate(columns)]
        if any(v is not None for v in values):
            table.add_row(label, "model", *[_cell(v, fmt, None) for v in values], "")
    notes = {r["judge"].get("note") for r in reports if not r.get("judge", {}).get("model")}
    if notes - {None}:
        table.caption = f"pretrained embedding skipped: {'; '.join(sorted(notes - {None}))}"
    return table


def _cell(value: Any, fmt: str, target: Mapping[str, Any] | None) -> str:
    from faceswap_gan.evaluation.report import met

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = fmt.format(value)
    if target is None:
        return text
    op, threshold = target["target"].split()
    ok = met(value, op, float(threshold))
    return f"[green]{text}[/green]" if ok else f"[red]{text}[/red]"

