"""``faceswap train [--step 1|2|3]``: the conditional GAN, the encoder, then (ours) both
fine-tuned together; with no --step, every step the pipeline has that is not done yet."""

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
from faceswap_gan.workspace import Workspace, resolve_workspace


def resolve_model_dir(workspace: Workspace, model: str) -> Path:
    """--model NAME is workspace/models/NAME; anything with a path separator is a folder path."""
    if "/" in model or "\\" in model or model.startswith("."):
        return Path(model).expanduser().resolve()
    return workspace.model_dir(model)


@click.command(
    "train",
    epilog="""\b
Examples:
  faceswap train                               # every step not done yet (1, 2, then 3)
  faceswap train --step 1                      # the conditional GAN on workspace/faces/*
  faceswap train --step 2                      # then the encoder, G frozen
  faceswap train --step 3                      # then E and G fine-tuned on real crops
  faceswap train --step 1 --pipeline paper --model paper --steps 20000
  faceswap train --step 1 --speakers alice,bob --device cuda
  torchrun --nproc_per_node 2 -m faceswap_gan.training.ddp --step 1
Re-running the same command resumes from the last checkpoint; Ctrl-C saves one.""",
)
@click.option("--step", "stage", type=click.IntRange(1, 3), default=None,
              help="1: conditional GAN G/D over all speakers; 2: encoder E with G frozen; "
                   "3: E and G fine-tuned together on real crops [default: every step not done].")
@pipeline_option
@workspace_option
@click.option("--model", default="default", show_default=True, metavar="NAME|PATH",
              help="Model name under workspace/models/, or a folder path.")
@click.option("--steps", type=int, default=None,
              help="Total steps for this stage, counting steps already done [default: the pipeline's].")
@device_option
@seed_option
@click.option("--speakers", default=None, metavar="A,B",
              help="Train on these speakers only [default: every speaker with crops].")
def command(
    stage: int | None, pipeline: str | None, workspace: str | None, model: str, steps: int | None,
    device: str, seed: int, speakers: str | None,
) -> None:
    """Train step 1 (conditional GAN G(z, c) and D), step 2 (encoder E) or step 3 (E and G
    fine-tuned together) on the extracted faces.

    Weights go to workspace/models/NAME/step1|step2|step3 (safetensors + JSON), previews, a
    metrics log and a loss curve to workspace/models/NAME/logs/. Without --pipeline a resumed
    run or a later step uses the settings step 1 was trained with.
    """
    # Imported here so `faceswap train --help` stays fast.
    from faceswap_gan.device import resolve_device
    from faceswap_gan.training.loop import TrainRequest, pending_stages, train

    if steps is not None and steps < 1:
        raise FaceswapError(f"--steps must be at least 1, got {steps}")
    if steps is not None and stage is None:
        raise FaceswapError("--steps needs --step: it is the total of one step")
    if pipeline is not None:
        ws, preset = open_run(workspace, pipeline)
    else:
        ws, preset = resolve_workspace(workspace), None
    names = [s.strip() for s in speakers.split(",") if s.strip()] if speakers else None
    model_dir = resolve_model_dir(ws, model)
    stages = [stage] if stage is not None else pending_stages(model_dir, preset)
    if not stages:
        console().print(f"every step of {model_dir} is done; pass --step N --steps M to train longer")
    for s in stages:
        request = TrainRequest(
            workspace=ws, stage=s, model_dir=model_dir, pipeline=preset,
            steps=steps, device=resolve_device(device), seed=seed, speakers=names,
        )
        train(request, console())

