"""``faceswap train [--step 1|2|3]``: the conditional GAN, the encoder, then (ours) both
fine-tuned together; with no --step, every step the pipeline has that is not done yet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from faceswap_gan.commands.common import (
    console,
    core_share,
    device_option,
    open_run,
    pipeline_option,
    seed_option,
    workspace_option,
)
from faceswap_gan.errors import FaceswapError
from faceswap_gan.workspace import Workspace, resolve_workspace

if TYPE_CHECKING:
    from rich.table import Table

    from faceswap_gan.training.loop import TrainSummary


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
  faceswap train --minutes 60                  # steps 1-3 by time: an hour split as the preset says
  faceswap train --step 1 --pipeline paper --model paper --steps 20000
  faceswap train --step 1 --speakers alice,bob --device cuda
  torchrun --nproc_per_node 2 -m faceswap_gan.cli train --step 1
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
@click.option("--minutes", type=float, default=None,
              help="Train by time: N minutes in all, counting time already trained, split over "
                   "the steps by the pipeline's time_share (with --step: all to that step).")
@device_option
@seed_option
@click.option("--speakers", default=None, metavar="A,B",
              help="Train on these speakers only [default: every speaker with crops].")
def command(
    stage: int | None, pipeline: str | None, workspace: str | None, model: str, steps: int | None,
    minutes: float | None, device: str, seed: int, speakers: str | None,
) -> None:
    """Train step 1 (conditional GAN G(z, c) and D), step 2 (encoder E) or step 3 (E and G
    fine-tuned together) on the extracted faces.

    Weights go to workspace/models/NAME/step1|step2|step3 (safetensors + JSON), previews, a
    metrics log and a loss curve to workspace/models/NAME/logs/. Without --pipeline a resumed
    run or a later step uses the settings step 1 was trained with.
    """
    # Imported here so `faceswap train --help` stays fast.
    from faceswap_gan.device import resolve_device
    from faceswap_gan.training.loop import (
        TrainRequest,
        model_pipeline,
        pending_stages,
        time_budgets,
        train,
    )

    if steps is not None and steps < 1:
        raise FaceswapError(f"--steps must be at least 1, got {steps}")
    if steps is not None and stage is None:
        raise FaceswapError("--steps needs --step: it is the total of one step")
    if minutes is not None and (steps is not None or not minutes > 0):
        raise FaceswapError("--minutes must be a number above 0, and cannot go with --steps")
    if pipeline is not None:
        ws, preset = open_run(workspace, pipeline)
    else:
        ws, preset = resolve_workspace(workspace), None
    names = [s.strip() for s in speakers.split(",") if s.strip()] if speakers else None
    model_dir = resolve_model_dir(ws, model)
    budgets = None
    if minutes is not None:
        budgets = time_budgets(model_pipeline(model_dir, preset), minutes, [stage] if stage else None)
    stages = [stage] if stage is not None else pending_stages(model_dir, preset, budgets)
    if not stages:
        more = "a larger --minutes" if budgets else "--step N --steps M"
        console().print(f"every step of {model_dir} is done; pass {more} to train longer")
    for s in stages:
        with TrainDisplay(console()) as display:
            request = TrainRequest(
                workspace=ws, stage=s, model_dir=model_dir, pipeline=preset, steps=steps,
                seconds=budgets[s] if budgets else None,
                device=resolve_device(device), seed=seed, speakers=names, report=display,
                cores=core_share(),
            )
            train(request)
    # The speaker gate render uses to leave other people's faces alone (rank 0 only under
    # torchrun: one fit is enough).
    if stages and os.environ.get("RANK", "0") == "0":
        from faceswap_gan.models.gate import refit_gate

        try:
            console().print(refit_gate(ws, model_dir))
        except FaceswapError as exc:
            console().print(f"[yellow]warning:[/] no speaker gate fitted: {exc}")


class TrainDisplay:
    """Draws what a training step reports: notices, a progress bar, the summary table."""

    def __init__(self, out: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = out
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"), console=out,
        )
        self.task = None

    def __enter__(self) -> TrainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.task is not None:  # a never-started bar would still print a blank line
            self.bar.stop()

    def __call__(self, event: object) -> None:
        from faceswap_gan.training.loop import TrainProgress, TrainSummary

        if isinstance(event, str):
            self.console.print(event)
        elif isinstance(event, TrainProgress):
            losses = " ".join(f"{k}={v:.3f}" for k, v in list(event.losses.items())[:4])
            if self.task is None:  # started at the first step: an error before it prints alone
                self.bar.start()
                self.task = self.bar.add_task(f"step {event.stage}", total=event.total,
                                              completed=event.step, rate="", losses="")
            rate = f"{event.steps_per_s:.2f} steps/s"
            if event.seconds_left is not None:
                rate += f", {event.seconds_left / 60:.1f} min left"
            self.bar.update(self.task, completed=event.step, total=event.total, rate=rate, losses=losses)
        elif isinstance(event, TrainSummary):
            self._stop()
            self.console.print(summary_table(event))


def summary_table(s: TrainSummary) -> Table:
    from rich.table import Table

    table = Table(title=f"step {s.stage} {'interrupted' if s.interrupted else 'done'}", show_header=False)
    table.add_row("steps", f"{s.end_step} / {s.total_steps} (this run: {s.end_step - s.start_step})")
    table.add_row("time", f"{s.seconds:.1f} s, {s.images_per_s:.1f} images/s")
    for k, v in s.losses.items():
        table.add_row(k, f"{v:.4f}")
    table.add_row("checkpoint", str(s.checkpoint))
    table.add_row("previews", str(s.metrics.parent / "previews"))
    return table
