"""Render the swap eval scores, with ``faceswap render --swap`` semantics.

The render is kept in ``workspace/eval/`` and reused while it is newer than the model and
the clip, so an interrupted or repeated eval does not render again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from faceswap_gan.config import Pipeline
from faceswap_gan.device import resolve_device
from faceswap_gan.workspace import Workspace


def render_swap(clip: Path, output: Path, workspace: Workspace, model: str | None,
                pipeline: Pipeline, device: str, notice: Callable[[str], None] | None = None,
                progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Swap each speaker in ``clip`` to the other with ``model``; returns the video's path.

    ``notice`` hears that a fresh render is reused; ``progress(frames_done, frames_total or
    None)`` is called with (0, None) as the render starts, then as it goes."""
    from faceswap_gan.models.checkpoint import load_face_model
    from faceswap_gan.models.locate import locate_model
    from faceswap_gan.render.pipeline import RenderOptions, render_video
    from faceswap_gan.render.target import SwapTarget

    model_path = locate_model(workspace, model)
    if _fresh(output, [clip, model_path]):
        if notice is not None:
            notice(f"reusing {output}")
        return output
    torch_device = resolve_device(device)
    face_model = load_face_model(model_path, torch_device)
    if progress is not None:
        progress(0, None)
    render_video(
        clip, output, face_model, pipeline, SwapTarget(swap=True), torch_device,
        RenderOptions(overwrite=True, model_name=str(model or model_path.name)),
        progress=(lambda p: progress(p.frames, p.total)) if progress is not None else None,
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
