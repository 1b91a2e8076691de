"""``faceswap samples``: talking-head sample footage with ground truth for every swap."""

from __future__ import annotations

import time
from pathlib import Path

import click

from faceswap_gan.commands.common import console, seed_option, workspace_option
from faceswap_gan.errors import FaceswapError


def parse_size(value: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` -> (width, height)."""
    width, sep, height = value.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = None
    if not sep or size is None:
        raise FaceswapError(f"--size wants WIDTHxHEIGHT such as 640x360, got '{value}'")
    if min(size) < 64 or max(size) > 4096:
        raise FaceswapError(f"--size must be between 64 and 4096 pixels a side, got {value}")
    return size


@click.command(
    "samples",
    epilog="""\b
Examples:
  faceswap samples                                    # default set into workspace/samples
  faceswap samples --seconds 10 --debate-seconds 8 --size 320x180
  faceswap samples out/ --layout split --seed 3
  faceswap samples --portrait alice=alice.jpg --portrait bob=bob.png
  faceswap samples --moderator                        # + moderator and audience cutaways
  faceswap samples --moderator carol.jpg --layout split
""",
)
@click.argument("out", required=False, type=click.Path(file_okay=False))
@click.option("--portrait", "portraits", multiple=True, metavar="NAME=PATH",
              help="A speaker's still photo; give two or more [default: the astronaut and "
                   "Grace Hopper as speaker_a and speaker_b].")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Length of each speaker's training clip.")
@click.option("--debate-seconds", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Length of the debate clip and its ground truth.")
@click.option("--size", default="640x360", show_default=True, metavar="WxH",
              help="Frame size of every clip.")
@click.option("--fps", type=click.IntRange(min=1), default=30, show_default=True, help="Frames per second.")
@click.option("--layout", type=click.Choice(["cuts", "split"]), default="cuts", show_default=True,
              help="Debate layout: close-ups with hard cuts, or speakers side by side.")
@click.option("--moderator", "moderator", is_flag=False, flag_value="", default=None,
              metavar="[PATH]",
              help="Add a third person who is none of the speakers: the debate cuts to them "
                   "(moderator reaction shots, audience cutaways; a middle panel in split "
                   "layout) and the truth leaves them alone. PATH: their photo [default: "
                   "scikit-image's cameraman].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Clips rendered in parallel [default: up to 2, one per CPU core].")
@seed_option
@workspace_option
def command(out: str | None, portraits: tuple[str, ...], seconds: float, debate_seconds: float,
            size: str, fps: int, layout: str, moderator: str | None, workers: int | None,
            seed: int, workspace: str | None) -> None:
    """Generate talking-head sample footage, with ground truth for every swap.

    Writes OUT/<speaker>.mp4 (training clips), OUT/debate.mp4, OUT/debate_truth.mp4
    (the debate with identities exchanged: what a perfect swap outputs) and beside each
    a <clip>.json record and <clip>_landmarks.npz. With --moderator the debate also shows
    a third person (the record's faces say each one's role). OUT defaults to the workspace's
    samples folder. A set already there with the same settings is reused.
    """
    from faceswap_gan.fileio import check_writable
    from faceswap_gan.synthetic.footage import MANIFEST, generate_sample_set
    from faceswap_gan.synthetic.portraits import (
        DEFAULT_MODERATOR,
        default_third_portrait,
        load_portrait,
        parse_portrait_option,
    )
    from faceswap_gan.workspace import resolve_workspace

    frame_size = parse_size(size)
    images = None
    if portraits:
        images = {}
        for option in portraits:
            name, path = parse_portrait_option(option)
            if name in images:
                raise FaceswapError(f"speaker '{name}' given twice")
            images[name] = load_portrait(path)
        if len(images) < 2:
            raise FaceswapError("give at least two --portrait NAME=PATH (a swap needs two speakers)")
    others = None
    if moderator is not None:
        photo = load_portrait(moderator) if moderator else default_third_portrait()
        others = {DEFAULT_MODERATOR: photo}
    out_dir = Path(out) if out else resolve_workspace(workspace).samples_dir
    check_writable(out_dir / MANIFEST)  # a folder that cannot be written fails before the work

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    con = console()
    started = time.perf_counter()
    with Progress(TextColumn("{task.description:<14}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=con, transient=False) as bar:
        tasks: dict[str, int] = {}

        def progress(clip: str, done: int, total: int) -> None:
            if clip not in tasks:
                tasks[clip] = bar.add_task(clip, total=total)
            bar.update(tasks[clip], completed=done)

        sample_set = generate_sample_set(
            out_dir, portraits=images, seconds=seconds, debate_seconds=debate_seconds,
            size=frame_size, fps=fps, layout=layout, seed=seed, progress=progress,
            workers=workers, others=others,
        )
    elapsed = time.perf_counter() - started

    from rich.table import Table

    table = Table(title=f"Sample footage in {sample_set.out_dir} ({elapsed:.1f} s)")
    table.add_column("clip")
    table.add_column("video")
    table.add_column("record")
    for name, video in [*sample_set.speaker_clips.items(), ("debate", sample_set.debate),
                        ("debate_truth", sample_set.truth)]:
        table.add_row(name, video.name, sample_set.records[name].name)
    con.print(table)
    click.echo(str(sample_set.out_dir))
