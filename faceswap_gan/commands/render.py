"""``faceswap render``: swap the faces in a video, keep its audio, mark it synthetic."""

from __future__ import annotations

import os
from pathlib import Path

import click

from faceswap_gan.commands.common import (
    Rate,
    console,
    device_option,
    model_options,
    open_run,
    pipeline_option,
    with_render_overrides,
    workspace_option,
)
from faceswap_gan.errors import FaceswapError


def parse_assign(text: str | None) -> dict[str, str] | None:
    """``left=A,right=B`` -> {"left": "A", "right": "B"}."""
    if not text:
        return None
    pairs = {}
    for part in text.split(","):
        side, sep, name = part.partition("=")
        if not sep or not name.strip():
            raise FaceswapError(f"--assign takes left=SPEAKER,right=SPEAKER, got '{text}'")
        pairs[side.strip().lower()] = name.strip()
    return pairs


@click.command("render", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--to", "to", default=None, metavar="SPEAKER", help="Every face becomes SPEAKER.")
@click.option("--swap", is_flag=True, help="Each face becomes the other speaker (two-speaker model).")
@click.option("--only", default=None, metavar="SPEAKER",
              help="Swap only SPEAKER's faces (to --to, else to the other speaker).")
@click.option("--assign", default=None, metavar="left=A,right=B",
              help="Who is where, instead of asking the speaker gate or the discriminator.")
@click.option("--all-faces", is_flag=True,
              help="Take every face for a trained speaker (no speaker gate): for footage where "
                   "every face should change.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output .mp4 [default: INPUT.<speaker>.mp4 beside the input].")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--crf", type=click.IntRange(0, 51), default=None,
              help="x264 quality, lower is better [default: the pipeline's, 18].")
@click.option("--preset", default=None, help="x264 preset [default: the pipeline's, veryfast].")
@click.option("--start", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Start this many seconds in.")
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Render only this many frames.")
@click.option("--preview", is_flag=True, help="Write original and swapped side by side.")
@click.option("--watermark", is_flag=True, help="Add a visible 'synthetic' label to every frame.")
@model_options
@workspace_option
@pipeline_option
@device_option(inference=True)
def command(input_path: Path, to: str | None, swap: bool, only: str | None, assign: str | None,
            all_faces: bool, output: Path | None, force: bool, crf: int | None, preset: str | None, start: float,
            frames: int | None, preview: bool, watermark: bool, model_name: str | None,
            color: str | None, seamless: bool | None, sharpen: float | None, workspace: str | None,
            pipeline: str | None, device: str) -> None:
    """Swap the faces in INPUT and write an H.264 MP4 with the input's audio copied unchanged.

    Faces that are none of the model's speakers (a moderator, the audience) are left as they
    were: the model's speaker gate decides per track (fitted at the end of `faceswap train`,
    or now from the workspace's crops when the model folder has none).

    \b
    Examples:
      faceswap render debate.mp4 --swap                  # each debater becomes the other
      faceswap render debate.mp4 --to speaker_b -o out.mp4 --crf 20
      faceswap render debate.mp4 --only speaker_a --start 10 --frames 250 --preview
      faceswap render debate.mp4 --swap --assign left=speaker_a,right=speaker_b
      faceswap render crowd.mp4 --to speaker_b --all-faces   # every face, gate or not
    """

    from faceswap_gan.device import resolve_device
    from faceswap_gan.models.checkpoint import load_face_model
    from faceswap_gan.models.locate import locate_model
    from faceswap_gan.render.pipeline import (
        RenderOptions,
        check_output,
        default_output_path,
        render_video,
    )
    from faceswap_gan.render.target import SwapTarget, resolve
    from faceswap_gan.video.reader import VideoReader

    # Opening decodes the first frame from --start: a bad input fails before anything is made.
    with VideoReader(input_path, start=start, max_frames=frames):
        pass
    ws, preset_cfg = open_run(workspace, pipeline)
    target = SwapTarget(to=to, swap=swap, only=only, assign=parse_assign(assign),
                        all_faces=all_faces)
    if output is None:
        output = default_output_path(input_path, target, preview)
        if not os.access(output.parent, os.W_OK):
            output = ws.renders_dir / output.name
    check_output(input_path, output, force)
    preset_cfg = with_render_overrides(preset_cfg, color, seamless, sharpen)

    dev = resolve_device(device)
    model_path = locate_model(ws, model_name)
    model = load_face_model(model_path, dev, need_encoder=True)
    resolved = resolve(target, model)  # before the gate is fitted: a typo fails at once
    out = console()
    if not all_faces:
        from faceswap_gan.models.gate import ensure_gate

        notice = ensure_gate(ws, model_path, model, progress=lambda text: out.print(text + " ..."))
        if notice:
            out.print(f"[yellow]note:[/] {notice}")
    options = RenderOptions(start=start, max_frames=frames, preview=preview, watermark=watermark,
                            crf=crf, preset=preset, overwrite=force,
                            model_name=model_path.stem if model_path.is_file() else model_path.name)
    summary = _render_with_progress(out, input_path, output, model, preset_cfg, resolved, dev,
                                    options, render_video)
    _print_summary(out, summary, model_path)


def _render_with_progress(out, input_path, output, model, pipeline, target, dev, options,
                          render_video):  # type: ignore[no-untyped-def]
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]render"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[fps]:.1f} frames/s"),
               TextColumn("{task.fields[faces]} faces swapped"), TimeRemainingColumn())
    # Started on the first report, so an input that fails to open shows no empty bar.
    bar = Progress(*columns, console=out, transient=False)
    state: dict = {}
    rate = Rate()
    rate(0)  # from the start of the run: the first report comes after a whole chunk

    def progress(p):  # type: ignore[no-untyped-def]
        if not state:
            bar.start()
            state["task"] = bar.add_task("render", total=p.total, fps=0.0, faces=0)
        bar.update(state["task"], completed=p.frames, total=p.total, fps=rate(p.frames),
                   faces=p.faces_swapped)

    try:
        return render_video(input_path, output, model, pipeline, target, dev, options, progress)
    finally:
        if state:
            bar.stop()


def _print_summary(out, summary, model_path: Path) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    if summary.faces_seen == 0:
        note = "passed through unchanged" if summary.passthrough else "frames written unchanged"
        out.print(f"[yellow]warning:[/] no faces found; {note}")
    table = Table(title="render", show_header=False)
    table.add_row("output", str(summary.output))
    table.add_row("model", str(model_path))
    table.add_row("frames", f"{summary.frames} ({summary.fps:.1f} frames/s)")
    table.add_row("faces swapped", f"{summary.faces_swapped} of {summary.faces_seen}")
    for why, n in sorted(summary.faces_left.items()):
        table.add_row("faces left alone", f"{n}: {why}")
    table.add_row("speaker gate", summary.gate or "none (every face taken for a speaker)")
    table.add_row("shot cuts", str(summary.cuts))
    table.add_row("audio", "copied" if summary.has_audio else "none in the input")
    if summary.track_speakers:
        table.add_row("tracks", ", ".join(f"{k}: {v}" for k, v in sorted(summary.track_speakers.items())))
    out.print(table)
