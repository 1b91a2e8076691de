"""The loop around either training step: resume, progress, metrics, previews, checkpoints.

``train(request)`` is what ``faceswap train`` runs. It resumes from the step folder when one
exists (the same command continues where it stopped), runs until the stage has done
``steps`` steps in all, saves every ``checkpoint_every`` steps and on Ctrl-C, and stops with a
FaceswapError, keeping the last good checkpoint, when a loss turns NaN or infinite.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch

from faceswap_gan.config import Pipeline, load_pipeline, pipeline_from_dict
from faceswap_gan.device import CoreShare
from faceswap_gan.errors import FaceswapError
from faceswap_gan.models.checkpoint import (
    base_meta,
    has_stage,
    logs_dir,
    read_meta,
    read_stage,
    save_stage,
    spec_from_meta,
    stage_dir,
)
from faceswap_gan.models.networks import NetworkSpec
from faceswap_gan.training import ddp, previews
from faceswap_gan.training.data import FaceSet, choose_speakers, load_faces
from faceswap_gan.training.step1 import Step1Trainer
from faceswap_gan.training.step2 import Step2Trainer
from faceswap_gan.training.step3 import Step3Trainer
from faceswap_gan.workspace import Workspace

Trainer = Union[Step1Trainer, Step2Trainer, Step3Trainer]
STAGES = (1, 2, 3)


@dataclass
class TrainProgress:
    """Sent after every step: where the stage is, its speed and its last losses."""

    stage: int
    step: int
    total: int
    steps_per_s: float
    losses: dict[str, float]


@dataclass
class TrainRequest:
    workspace: Workspace
    stage: int  # 1, 2 or 3
    model_dir: Path
    pipeline: Pipeline | None = None  # None: the checkpoint's own settings, else the default preset
    steps: int | None = None  # total steps for the stage (None: the pipeline's)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    speakers: list[str] | None = None
    # What the run reports, for the caller to show: notices (str), TrainProgress after each
    # step, and the TrainSummary at the end (also when interrupted). Only rank 0 reports.
    report: Callable[[str | TrainProgress | TrainSummary], None] | None = None
    # CPU threads shared with other faceswap runs (device.CoreShare): re-divided between steps.
    cores: CoreShare | None = None


@dataclass
class TrainSummary:
    stage: int
    model_dir: Path
    start_step: int  # where this run began (0, or the step resumed from)
    end_step: int  # the step the stage is at now (saved)
    total_steps: int
    losses: dict[str, float]  # of the last step run
    images_per_s: float
    seconds: float
    interrupted: bool
    checkpoint: Path
    metrics: Path


def train(request: TrainRequest) -> TrainSummary:
    if request.stage not in STAGES:
        raise FaceswapError(f"--step must be 1, 2 or 3, got {request.stage}")
    ctx, device = ddp.init_from_env(request.device)

    def report(event: str | TrainProgress | TrainSummary) -> None:
        if request.report is not None and ctx.is_main:
            request.report(event)

    try:
        trainer, pipeline, start, meta_extra = _prepare(request, device, ctx, report)
        total = request.steps if request.steps is not None else stage_config(pipeline, request.stage).steps
        if total < 1:
            raise FaceswapError(f"--steps must be at least 1, got {total}")
        summary = _run(request, trainer, pipeline, start, total, meta_extra, ctx, report)
    except BaseException:
        ddp.shutdown(ctx, clean=False)
        raise
    ddp.shutdown(ctx)
    return summary


def _pipeline_for(request: TrainRequest, meta: dict | None) -> Pipeline:
    return request.pipeline if request.pipeline is not None else _pipeline_for_meta(meta)


def _pipeline_for_meta(meta: dict | None) -> Pipeline:
    """The settings a checkpoint was trained with, else the default preset."""
    if meta is not None and "pipeline" in meta:
        return pipeline_from_dict(meta.get("preset", "checkpoint"), meta["pipeline"])
    return load_pipeline(None)


def pending_stages(model_dir: Path, pipeline: Pipeline | None) -> list[int]:
    """The steps `faceswap train` with no --step runs: from the first one not finished on.

    A step is finished when its checkpoint has reached the pipeline's step count (and, for
    steps 2 and 3, was fit to the present earlier steps); a step with 0 steps is left out.
    """
    meta = read_meta(stage_dir(model_dir, 1)) if has_stage(model_dir, 1) else None
    pipeline = pipeline or _pipeline_for_meta(meta)
    wanted = [s for s in STAGES if stage_config(pipeline, s).steps > 0]
    metas: dict[int, dict] = {}
    for stage in wanted:
        if not has_stage(model_dir, stage):
            return wanted[wanted.index(stage):]
        metas[stage] = read_meta(stage_dir(model_dir, stage))  # the JSON only, not the weights
        m = metas[stage]
        fresh = all(m.get(f"step{k}_step") == metas[k]["step"] for k in metas if k < stage)
        if not fresh or int(m["step"]) < stage_config(pipeline, stage).steps:
            return wanted[wanted.index(stage):]
    return []


def stage_config(pipeline: Pipeline, stage: int):
    """The pipeline's settings of one training step ([train1], [train2] or [train3])."""
    return {1: pipeline.train1, 2: pipeline.train2, 3: pipeline.train3}[stage]


def _check_same_spec(spec: NetworkSpec, meta: dict, where: Path) -> None:
    stored = spec_from_meta(meta, where).to_dict()  # a spec stored before a field was added
    if spec.to_dict() != stored:
        diff = ", ".join(
            f"{k} {stored.get(k)} -> {v}" for k, v in spec.to_dict().items() if stored.get(k) != v
        )
        raise FaceswapError(
            f"checkpoint of another architecture at {where} ({diff}); resume with the pipeline "
            "it was trained with, or pick a new --model"
        )


def _prepare(
    request: TrainRequest, device: torch.device, ctx: ddp.DistContext, report: Callable[[str], None]
) -> tuple[Trainer, Pipeline, int, dict[str, Any]]:
    model_dir = request.model_dir
    ws = request.workspace
    if request.stage == 1:
        existing = read_stage(model_dir, 1) if has_stage(model_dir, 1) else None
        pipeline = _pipeline_for(request, existing.meta if existing else None)
        if existing is not None:
            speakers = list(existing.meta["speakers"])
            if request.speakers and sorted(set(request.speakers)) != speakers:
                raise FaceswapError(
                    f"the model at {model_dir} is trained on {', '.join(speakers)}; it cannot "
                    "change speakers (pick a new --model)"
                )
            choose_speakers(ws, speakers)
            seed = int(existing.meta.get("seed", request.seed))
        else:
            speakers = choose_speakers(ws, request.speakers)
            seed = request.seed
        spec = NetworkSpec.from_config(pipeline.model, len(speakers))
        if existing is not None:
            _check_same_spec(spec, existing.meta, stage_dir(model_dir, 1))
        faces = load_faces(ws, speakers, spec.size, report=report)
        trainer: Trainer = Step1Trainer(spec, pipeline, faces, device, seed, ctx)
        start = 0
        if existing is not None:
            trainer.load(existing, stage_dir(model_dir, 1))
            start = int(existing.meta["step"])
        return trainer, pipeline, start, {"seed": seed}

    if request.stage == 3:
        return _prepare_step3(request, device, ctx, report)
    if not has_stage(model_dir, 1):
        raise FaceswapError(f"no step-1 checkpoint at {model_dir}; run `faceswap train --step 1` first")
    s1 = read_stage(model_dir, 1, with_state=False)
    spec = spec_from_meta(s1.meta, stage_dir(model_dir, 1))
    existing = read_stage(model_dir, 2) if has_stage(model_dir, 2) else None
    if existing is not None and existing.meta.get("step1_step") != s1.meta["step"]:
        report(
            f"step 1 moved on (step {s1.meta['step']}) since this encoder was fit to step "
            f"{existing.meta.get('step1_step')}: training the encoder again from scratch"
        )
        existing = None
    pipeline = _pipeline_for(request, existing.meta if existing else s1.meta)
    _check_same_spec(NetworkSpec.from_config(pipeline.model, spec.n_classes), s1.meta, stage_dir(model_dir, 1))
    faces = _model_faces(request, s1.meta, spec, 2, report)
    seed = int(existing.meta.get("seed", request.seed)) if existing else request.seed
    trainer = Step2Trainer(spec, pipeline, faces, s1, stage_dir(model_dir, 1), device, seed, ctx)
    start = 0
    if existing is not None:
        trainer.load(existing, stage_dir(model_dir, 2))
        start = int(existing.meta["step"])
    return trainer, pipeline, start, {"seed": seed, "step1_step": s1.meta["step"]}


def _model_faces(request: TrainRequest, meta: dict, spec: NetworkSpec, stage: int,
                 report: Callable[[str], None]) -> FaceSet:
    """Crops of the model's speakers (or the requested subset), labelled in the model's order."""
    model_speakers = list(meta["speakers"])
    wanted = request.speakers or model_speakers
    unknown = [s for s in wanted if s not in model_speakers]
    if unknown:
        raise FaceswapError(
            f"unknown speaker(s) {', '.join(unknown)}: the model knows {', '.join(model_speakers)}"
        )
    present = [s for s in sorted(set(wanted)) if s in request.workspace.speakers()]
    if not present:
        raise FaceswapError(
            f"step {stage} needs crops of the model's speakers in {request.workspace.faces_dir} "
            f"({', '.join(model_speakers)}); none found"
        )
    return load_faces(request.workspace, present, spec.size, label_order=model_speakers,
                      report=report)


def _prepare_step3(
    request: TrainRequest, device: torch.device, ctx: ddp.DistContext, report: Callable[[str], None]
) -> tuple[Trainer, Pipeline, int, dict[str, Any]]:
    """Step 3 starts from steps 1 and 2 (E fit to this G); it restarts when either moved on."""
    model_dir = request.model_dir
    if not has_stage(model_dir, 2):
        raise FaceswapError(f"no step-2 checkpoint at {model_dir}; run `faceswap train --step 2` first")
    s1 = read_stage(model_dir, 1, with_state=False)
    s2 = read_stage(model_dir, 2, with_state=False)
    if s2.meta.get("step1_step") != s1.meta["step"]:
        raise FaceswapError(
            f"the encoder at {stage_dir(model_dir, 2)} was fit to an older step 1; "
            "run `faceswap train --step 2` again first"
        )
    spec = spec_from_meta(s1.meta, stage_dir(model_dir, 1))
    existing = read_stage(model_dir, 3) if has_stage(model_dir, 3) else None
    fit_to = {"step1_step": s1.meta["step"], "step2_step": s2.meta["step"]}
    if existing is not None and any(existing.meta.get(k) != v for k, v in fit_to.items()):
        report("steps 1 or 2 moved on since step 3 was trained: training step 3 again from them")
        existing = None
    pipeline = _pipeline_for(request, existing.meta if existing else s2.meta)
    _check_same_spec(NetworkSpec.from_config(pipeline.model, spec.n_classes), s1.meta, stage_dir(model_dir, 1))
    faces = _model_faces(request, s1.meta, spec, 3, report)
    seed = int(existing.meta.get("seed", request.seed)) if existing else int(s2.meta.get("seed", request.seed))
    trainer = Step3Trainer(spec, pipeline, faces, s1, s2, model_dir, device, seed, ctx)
    start = 0
    if existing is not None:
        trainer.load(existing, stage_dir(model_dir, 3))
        start = int(existing.meta["step"])
    return trainer, pipeline, start, {"seed": seed, **fit_to}


@contextmanager
def _stop_on_sigint() -> Iterator[dict[str, bool]]:
    """Turn Ctrl-C into a flag checked between steps, so a checkpoint is never taken mid-step."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag["stop"]:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _save(
    trainer: Trainer, request: TrainRequest, pipeline: Pipeline, step: int, extra: dict, ctx: ddp.DistContext,
    last_good: int | None,
) -> None:
    if ctx.is_main:
        weights = trainer.weights()
        bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise FaceswapError(_nan_message(request.stage, step, bad[:1], last_good))
        tensors, optimizers = trainer.train_state()
        meta = base_meta(trainer.spec, trainer.faces.speakers, request.stage, step)
        meta.update(preset=pipeline.name, pipeline=pipeline.to_dict(), optimizers=optimizers,
                    world_size=ctx.world_size, **extra)
        save_stage(stage_dir(request.model_dir, request.stage), weights, tensors, meta)
    ddp.barrier(ctx)


def _nan_message(stage: int, step: int, what: list[str], last_good: int | None) -> str:
    kept = (f"the last good checkpoint (step {last_good}) is kept" if last_good
            else "no checkpoint was written")
    return (
        f"step {stage} stopped at step {step}: {', '.join(what)} became NaN or infinite; {kept}. "
        "Try a lower learning rate, or check the crops"
    )


def _run(
    request: TrainRequest, trainer: Trainer, pipeline: Pipeline, start: int, total: int,
    extra: dict, ctx: ddp.DistContext, report: Callable[[TrainProgress | TrainSummary], None],
) -> TrainSummary:
    stage = request.stage
    cfg = stage_config(pipeline, stage)
    if isinstance(trainer, Step3Trainer):
        trainer.total_steps = total
    logs = logs_dir(request.model_dir, stage)
    metrics = logs / "metrics.jsonl"
    main = ctx.is_main
    if main:
        logs.mkdir(parents=True, exist_ok=True)
        previews.truncate_metrics(metrics, start)
    last_losses: dict[str, float] = {}
    last_saved = start or None
    t0 = time.perf_counter()
    window_t, window_start = t0, start
    step = start
    interrupted = False
    with _stop_on_sigint() as flag:
        while step < total:
            if request.cores is not None:
                request.cores.refresh()
            losses = trainer.train_step(step)
            # One message keeps every rank's losses and stop decision the same.
            packed = torch.tensor([*losses.values(), float(flag["stop"])], dtype=torch.float64,
                                  device=trainer.device if ctx.enabled else "cpu")  # nccl: CUDA only
            packed = ddp.mean_across_ranks(packed, ctx)
            losses = dict(zip(losses, packed[:-1].tolist()))
            stop = packed[-1].item() > 0
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise FaceswapError(_nan_message(stage, step + 1, bad, last_saved))
            step += 1
            last_losses = losses
            elapsed = time.perf_counter() - t0
            rate = (step - start) / elapsed if elapsed > 0 else 0.0
            report(TrainProgress(stage, step, total, rate, losses))
            if main and (step % cfg.log_every == 0 or step == total):
                now = time.perf_counter()
                ips = (step - window_start) * trainer.images_per_step / max(now - window_t, 1e-9)
                window_t, window_start = now, step
                previews.append_metrics(metrics, {
                    "step": step, "time": time.time(), "elapsed_s": round(elapsed, 3),
                    "images_per_s": round(ips, 2), **losses,
                })
            if step % cfg.checkpoint_every == 0 or step == total or stop:
                _save(trainer, request, pipeline, step, extra, ctx, last_saved)
                last_saved = step
            if main and (step % cfg.preview_every == 0 or step == total or stop):
                tiles = trainer.preview()
                previews.write_png(logs / "previews" / f"step_{step:07d}.png", previews.grid_image(tiles))
                previews.loss_curve(metrics, logs / "loss.png", f"step {stage} ({pipeline.name})")
            if stop:
                interrupted = True
                break
    seconds = time.perf_counter() - t0
    summary = TrainSummary(
        stage=stage, model_dir=request.model_dir, start_step=start, end_step=step, total_steps=total,
        losses=last_losses, images_per_s=(step - start) * trainer.images_per_step / max(seconds, 1e-9),
        seconds=seconds, interrupted=interrupted, checkpoint=stage_dir(request.model_dir, stage),
        metrics=metrics,
    )
    report(summary)
    if interrupted:
        raise KeyboardInterrupt
    return summary
