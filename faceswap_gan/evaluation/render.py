"""Render the swap eval scores, with ``faceswap render --swap`` semantics.

The render is kept in ``workspace/eval/`` and reused while it is newer than the model and
the clip, so an interrupted or repeated eval does not render again.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from faceswap_gan.config import Pipeline
from faceswap_gan.device import resolve_device
from faceswap_gan.workspace import Workspace


def render_swap(clip: Path, output: Path, workspace: Workspace, model: str | None,
                pipeline: Pipeline, device: str, console: Console) -> Path:
    """Swap each speaker in ``clip`` to the other with ``model``; returns the video's path."""
    from faceswap_gan.models.checkpoint import load_face_model
    from faceswap_gan.models.locate import locate_model
    from faceswap_gan.render.pipeline import RenderOptions, SwapTarget, render_video

    model_path = locate_model(workspace, model)
    if _fresh(output, [clip, model_path]):
        console.print(f"reusing {output}")
        return output
    torch_device = resolve_device(device)
    face_model = load_face_model(model_path, torch_device)
    with Progress(
        TextColumn(f"rendering {clip.name}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=True,
    ) as bar:
        task = bar.add_task("render", total=None)
        render_video(
            clip, output, face_model, pipeline, SwapTarget(swap=True), torch_device,
            RenderOptions(overwrite=True, model_name=str(model or model_path.name)),
            progress=lambda p: bar.update(task, completed=p.frames, total=p.total),
        )
    return output


def _fresh(output: Path, inputs: list[Path]) -> bool:
    """True when ``output`` exists and is newer than every input (files or folders)."""
    if not output.is_file():
        return False
    newest = 0.0
    for path in inputs:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        newest = max([newest] + [p.stat().st_mtime for p in files])
    return output.stat().st_mtime > newest
