"""``faceswap extract``: videos or image folders -> aligned face crops per speaker."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from faceswap_gan.commands.common import (
    Rate,
    console,
    open_run,
    pipeline_option,
    seed_option,
    workspace_option,
)
from faceswap_gan.errors import FaceswapError

EXAMPLES = """
\b
Examples:
  faceswap extract workspace/samples/speaker_a.mp4 --speaker speaker_a
  faceswap extract debate.mp4 --assign left=alice,right=bob
  faceswap extract debate.mp4 --speakers alice,bob     # cluster; check the contact sheets
  faceswap extract photos/ --speaker female            # a folder of images as a domain
"""


@click.command(
    "extract",
    help="Detect, track and align the faces in videos or image folders into "
    "workspace/faces/<speaker>/ crops and workspace/alignments/<source>.jsonl.\n" + EXAMPLES,
)
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--speaker", metavar="NAME",
              help="The main (largest) face of each frame is NAME; when the clip shows several "
                   "people, only the dominant one's tracks are kept (others: unknown/).")
@click.option(
    "--assign", "assign", metavar="SIDE=NAME,...",
    help="Name faces by position: left=A,right=B (or top=A,bottom=B) for split screens.",
)
@click.option(
    "--speakers", metavar="A,B,...",
    help="Group faces by identity: the largest groups are these speakers, named in order of "
    "appearance; faces that fit none go to unknown/ (with a contact sheet).",
)
@click.option("--force", is_flag=True, help="Extract again sources that were extracted before.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after N frames per source.")
@workspace_option
@pipeline_option
@seed_option
def command(
    sources: tuple[Path, ...],
    speaker: str | None,
    assign: str | None,
    speakers: str | None,
    force: bool,
    max_frames: int | None,
    workspace: str | None,
    pipeline: str | None,
    seed: int,
) -> None:
    from faceswap_gan.extract.pipeline import extract_source
    from faceswap_gan.faces.assign import SpeakerAssignment
    from faceswap_gan.video.reader import VideoReader, is_image_file

    chosen = [o for o, v in (("--speaker", speaker), ("--assign", assign), ("--speakers", speakers)) if v]
    if len(chosen) != 1:
        raise FaceswapError(
            "say whose faces these are with exactly one of --speaker NAME, "
            "--assign left=A,right=B or --speakers A,B"
        )
    if speaker:
        assignment = SpeakerAssignment.single(speaker)
    elif assign:
        assignment = SpeakerAssignment.parse_positions(assign)
    else:
        assignment = SpeakerAssignment.clusters([n for n in (speakers or "").split(",") if n.strip()])
    for src in sources:  # every source is opened first: a bad one fails before any work
        if not src.exists():
            raise FaceswapError(f"file not found: {src}")
        if src.is_file() and not is_image_file(src):
            with VideoReader(src):
                pass
    ws, preset = open_run(workspace, pipeline)

    out = console()
    summaries = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.1f} frames/s"),
        TextColumn("{task.fields[faces]} faces"),
        TimeRemainingColumn(),
        console=out,
        transient=False,
    ) as bar:
        for src in sources:
            task = bar.add_task(src.name, total=None, rate=0.0, faces=0)

            def report(done: int, total: int | None, faces: int, task: int = task,
                       rate: Rate = Rate()) -> None:
                bar.update(task, completed=done, total=total, rate=rate(done), faces=faces)

            summary = extract_source(
                src, ws, preset, assignment, progress=report, force=force, max_frames=max_frames, seed=seed
            )
            if summary.skipped:
                bar.update(task, completed=summary.frames, total=summary.frames, faces=summary.faces,
                           description=f"{src.name} (already done)")
            summaries.append(summary)

    table = Table(title=f"Extracted into {ws.faces_dir}")
    table.add_column("speaker")
    table.add_column("crops", justify="right")
    table.add_column("sources")
    per_speaker: dict[str, int] = {}
    sources_of: dict[str, list[str]] = {}
    for s in summaries:
        for name, n in s.crops.items():
            per_speaker[name] = per_speaker.get(name, 0) + n
            sources_of.setdefault(name, []).append(s.source.name)
    for name in sorted(per_speaker):
        table.add_row(name, str(per_speaker[name]), ", ".join(sources_of[name]))
    out.print(table)
    for s in summaries:
        flagged = ", ".join(f"{k} {v}" for k, v in s.filtered.items()) or "none"
        note = "already extracted; skipped" if s.skipped else f"{s.frames_per_second:.1f} frames/s"
        if s.resumed_from:
            note += f", resumed at frame {s.resumed_from}"
        out.print(
            f"{s.source.name}: {s.frames} frames, face in {s.frames_with_face}, {s.faces} faces in "
            f"{s.tracks} tracks, {s.cuts} cuts, filtered: {flagged} ({note})"
        )
        if s.unknown_tracks:
            who = "none of the speakers" if len(s.crops) != 1 else f"not {next(iter(s.crops))}"
            out.print(f"  {s.unknown_tracks} other people's tracks ({who}): {s.unknown} crops set "
                      f"aside in {ws.root / 'unknown'}")
        for name, path in s.contact_sheets.items():
            out.print(f"  contact sheet for {name}: {path}")
    if any(s.contact_sheets for s in summaries):
        out.print("Check the contact sheets; rename a faces/<speaker> folder if a group got the wrong name.")
