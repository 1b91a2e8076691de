"""Options every command shares, and how they become a Workspace and a Pipeline."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from faceswap_gan.config import COLOR_MODES, Pipeline, load_pipeline
from faceswap_gan.workspace import Workspace, resolve_workspace

F = TypeVar("F", bound=Callable[..., Any])


def workspace_option(func: F) -> F:
    return click.option(
        "--workspace",
        type=click.Path(file_okay=False),
        default=None,
        help="Workspace folder [default: $FACESWAP_WORKSPACE or ./workspace].",
    )(func)


def pipeline_option(func: F) -> F:
    return click.option(
        "--pipeline",
        default=None,
        metavar="NAME|PATH",
        help="Pipeline preset: paper, debate (default), tiny, or a .toml file.",
    )(func)


def device_option(func: F | None = None, *, inference: bool = False) -> Any:
    """--device, and --threads: how many CPU threads torch may use (applied when parsed).

    ``inference``: a command that runs E and G beside tracking and encoding (render,
    translate) defaults to ``device.INFERENCE_THREADS`` threads."""
    if func is None:
        return lambda f: device_option(f, inference=inference)
    default = "1 (the other cores track and encode)" if inference else "the CPUs this process may use"
    func = click.option(
        "--threads",
        type=int,
        default=None,
        expose_value=False,
        callback=functools.partial(_apply_threads, inference=inference),
        help=f"CPU threads for torch [default: $FACESWAP_THREADS, else {default}].",
    )(func)
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        help="auto (CUDA when present), cpu or cuda.",
    )(func)


def _apply_threads(ctx: click.Context, param: click.Parameter, value: int | None,
                   inference: bool = False) -> None:
    if ctx.resilient_parsing:  # shell completion: run nothing
        return
    from faceswap_gan.device import INFERENCE_THREADS, CoreShare, set_cpu_threads  # imports torch

    if inference:
        set_cpu_threads(value, default=INFERENCE_THREADS)
        return
    share = CoreShare()
    set_cpu_threads(value, share=share)
    if share.entry is not None:  # the threads follow other runs: train refreshes them
        ctx.meta[CORE_SHARE] = share


CORE_SHARE = "faceswap_gan.core_share"  # click context meta key: the run's device.CoreShare


def core_share() -> Any:
    """The running command's ``device.CoreShare`` when its threads are shared, else None."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(CORE_SHARE)


def seed_option(func: F) -> F:
    return click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")(func)


def open_run(workspace: str | None, pipeline: str | None) -> tuple[Workspace, Pipeline]:
    """Resolve the shared options; raises FaceswapError on a bad preset or workspace."""
    preset = load_pipeline(pipeline)
    return resolve_workspace(workspace), preset


def console() -> Console:
    """Progress and tables go to stderr so stdout stays clean for scripts."""
    return Console(stderr=True)


def with_render_overrides(preset: Pipeline, color: str | None, seamless: bool | None,
                          sharpen: float | None = None) -> Pipeline:
    """The preset with the blend options given on the command line (None: keep the preset's)."""
    given = {"color": color, "seamless": seamless, "sharpen": sharpen}
    render = dataclasses.replace(preset.render, **{k: v for k, v in given.items() if v is not None})
    return dataclasses.replace(preset, render=render)


class Rate:
    """Items per second for a progress bar, counted from the first report: 0 until time has
    passed, so the first update never shows an absurd figure, and a resumed run's starting
    count is not taken for its speed. Call it with the count done so far."""

    def __init__(self) -> None:
        self._start: tuple[float, int] | None = None

    def __call__(self, done: int) -> float:
        now = time.perf_counter()
        if self._start is None:
            self._start = (now, done)
            return 0.0
        t0, n0 = self._start
        return (done - n0) / (now - t0) if now > t0 else 0.0


def model_options(func: F) -> F:
    """--model, --color, --seamless, --sharpen: which model renders, how its faces are blended."""
    func = click.option("--model", "model_name", default=None, metavar="NAME|PATH",
                        help="Model folder name in the workspace, a model folder or an exported "
                             ".safetensors file [default: workspace model 'default', else the "
                             "sample model].")(func)
    func = click.option("--color", type=click.Choice(COLOR_MODES), default=None,
                        help="Colour correction [default: the pipeline's render.color].")(func)
    func = click.option("--seamless/--no-seamless", default=None,
                        help="Poisson (seamless) clone instead of a feathered blend.")(func)
    func = click.option("--sharpen", type=click.FloatRange(0, 3), default=None, metavar="AMOUNT",
                        help="Unsharp mask on the enlarged face, e.g. 1.0 [default: the "
                             "pipeline's render.sharpen, 0 = off].")(func)
    return func
