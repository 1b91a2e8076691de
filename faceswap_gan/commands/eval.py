"""``faceswap eval``: measure a swap against ground truth, or against the source without one."""

from __future__ import annotations

from pathlib import Path

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

    ws, preset = open_run(workspace, pipeline)
    if rendered and (models or recipes):
        raise FaceswapError("give either --rendered files or --model/--recipe to render, not both")
    run_eval(
        EvalRequest(
            clip=clip, truth=truth, rendered=list(rendered), models=list(models),
            recipes=list(recipes), speaker_clips=speaker_clips, json_path=json_path,
            strip_path=strip_path, device=device, seed=seed, no_truth=no_truth,
            target=target, judge_every=judge_every,
        ),
        ws, preset, console(),
    )
