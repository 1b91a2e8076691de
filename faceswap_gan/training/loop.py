"""The loop around any training step: resume, progress, metrics, previews, checkpoints.

``train(request)`` is what ``faceswap train`` runs. It resumes from the step folder when one
exists (the same command continues where it stopped), runs until the stage has done
``steps`` steps in all (or, with ``seconds``, has trained that long in all), saves every
``checkpoint_every`` steps and on Ctrl-C, and stops with a FaceswapError, keeping the last
good checkpoint, when a loss turns NaN or infinite or the trainer's own check fails.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from faceswap_gan.config import Pipeline, load_pipeline, pipeline_from_dict
from faceswap_gan.device import CoreShare
from faceswap_gan.errors import FaceswapError
from faceswap_gan.models.checkpoint import (
    StageCheckpoint,
    base_meta,
    has_stage,
    logs_dir,
    model_lock,
    read_meta,
    read_stage,
    save_stage,
    spec_from_meta,
    stage_dir,
)
from faceswap_gan.models.networks import NetworkSpec
from faceswap_gan.training import ddp, previews
from faceswap_gan.training.data import FaceSet, choose_speakers, load_faces
from faceswap_gan.training.expression import crop_keypoints
from faceswap_gan.training.step1 import Step1Trainer
from faceswap_gan.training.step2 import Step2Trainer
from faceswap_gan.training.step3 import Step3Trainer
from faceswap_gan.training.trainer import Trainer
from faceswap_gan.workspace import Workspace

STAGES = (1, 2, 3)


@dataclass
class TrainProgress:
    """Sent after every step: where the stage is, its speed and its last losses."""

    stage: int
    step: int
    total: int  # by time: the step the run is expected to end at, at the present rate
    steps_per_s: float
    losses: dict[str, float]
    seconds_left: float | None = None  # by time: what is left of the stage's budget


@dataclass
class TrainRequest:
    workspace: Workspace
    stage: int  # 1, 2 or 3
    model_dir: Path
    pipeline: Pipeline | None = None  # None: the checkpoint's own settings, else the default preset
    steps: int | None = None  # total steps for the stage (None: the pipeline's)
    seconds: float | None = None  # train by time: the stage's budget in all, resumed runs included
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
        if ctx.is_main:  # one run per model; what killed runs left is removed under the claim
            request.model_dir.parent.mkdir(parents=True, exist_ok=True)
            claim: contextlib.AbstractContextManager = model_lock(request.model_dir)
        else:
            claim = contextlib.nullcontext()
        with claim:
            summary = _train(request, device, ctx, report)
    except BaseException:
        ddp.shutdown(ctx, clean=False)
        raise
    ddp.shutdown(ctx)
    return summary


def _train(request: TrainRequest, device: torch.device, ctx: ddp.DistContext,
           report: Callable[[str | TrainProgress | TrainSummary], None]) -> TrainSummary:
    build = {1: _build_step1, 2: _build_step2, 3: _build_step3}[request.stage]
    trainer, pipeline, existing, meta_extra = build(request, device, ctx, report)
    start, spent = 0, 0.0
    if existing is not None:  # the one resume path: the step's own checkpoint
        trainer.load(existing, stage_dir(request.model_dir, request.stage))
        start = int(existing.meta["step"])
        spent = float(existing.meta.get("train_seconds", 0.0))
    total = request.steps if request.steps is not None else stage_config(pipeline, request.stage).steps
    if total < 1:
        raise FaceswapError(f"--steps must be at least 1, got {total}")
    return _run(request, trainer, pipeline, start, total, spent, meta_extra, ctx, report)


def _pipeline_for(request: TrainRequest, meta: dict | None) -> Pipeline:
    return request.pipeline if request.pipeline is not None else _pipeline_for_meta(meta)


def model_pipeline(model_dir: Path, pipeline: Pipeline | None) -> Pipeline:
    """The settings a run on this model uses: the given ones, else step 1's stored ones, else
    the default preset."""
    if pipeline is not None:
        return pipeline
    return _pipeline_for_meta(read_meta(stage_dir(model_dir, 1)) if has_stage(model_dir, 1) else None)


def _pipeline_for_meta(meta: dict | None) -> Pipeline:
    """The settings a checkpoint was trained with, else the default preset."""
    if meta is not None and "pipeline" in meta:
        return pipeline_from_dict(meta.get("preset", "checkpoint"), meta["pipeline"])
    return load_pipeline(None)


def pending_stages(model_dir: Path, pipeline: Pipeline | None,
                   budgets: dict[int, float] | None = None) -> list[int]:
    """The steps `faceswap train` with no --step runs: from the first one not finished on.

    A step is finished when its checkpoint has reached the pipeline's step count (with
    ``budgets``, stage -> seconds: has trained that long) and, for steps 2 and 3, was fit to
    the present earlier steps; a step with 0 steps is left out.
    """
    pipeline = model_pipeline(model_dir, pipeline)
    wanted = [s for s in STAGES if stage_config(pipeline, s).steps > 0]
    metas: dict[int, dict] = {}
    for stage in wanted:
        if not has_stage(model_dir, stage):
            return wanted[wanted.index(stage):]
        metas[stage] = read_meta(stage_dir(model_dir, stage))  # the JSON only, not the weights
        m = metas[stage]
        fresh = all(m.get(f"step{k}_step") == metas[k]["step"] for k in metas if k < stage)
        if budgets is not None:
            done = float(m.get("train_seconds", 0.0)) >= budgets.get(stage, 0.0) * TIME_TOLERANCE
        else:
            done = int(m["step"]) >= stage_config(pipeline, stage).steps
        if not fresh or not done:
            return wanted[wanted.index(stage):]
    return []


# A stage trained by time counts as done within this fraction of its budget (the last step
# and the checkpoint overshoot or undershoot it by a little).
TIME_TOLERANCE = 0.98


def time_budgets(pipeline: Pipeline, minutes: float, stages: list[int] | None = None) -> dict[int, float]:
    """`train --minutes N`: seconds for each step, N split by the steps' ``time_share`` in the
    pipeline over the steps it has (or over ``stages``: e.g. one step given with --step)."""
    stages = stages or [s for s in STAGES if stage_config(pipeline, s).steps > 0]
    shares = {s: stage_config(pipeline, s).time_share for s in stages}
    total = sum(shares.values()) or 1.0
    return {s: 60.0 * minutes * share / total for s, share in shares.items()}


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


def _build_step1(
    request: TrainRequest, device: torch.device, ctx: ddp.DistContext, report: Callable[[str], None]
) -> tuple[Trainer, Pipeline, StageCheckpoint | None, dict[str, Any]]:
    """Step 1, and its own checkpoint when there is one to resume."""
    model_dir = request.model_dir
    ws = request.workspace
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
    trainer = Step1Trainer(spec, pipeline, faces, device, seed, ctx)
    return trainer, pipeline, existing, {"seed": seed}


def _build_step2(
    request: TrainRequest, device: torch.device, ctx: ddp.DistContext, report: Callable[[str], None]
) -> tuple[Trainer, Pipeline, StageCheckpoint | None, dict[str, Any]]:
    """Step 2 from step 1's G and D; its own checkpoint unless step 1 moved on since."""
    model_dir = request.model_dir
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
    return trainer, pipeline, existing, {"seed": seed, "step1_step": s1.meta["step"]}


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


def _build_step3(
    request: TrainRequest, device: torch.device, ctx: ddp.DistContext, report: Callable[[str], None]
) -> tuple[Trainer, Pipeline, StageCheckpoint | None, dict[str, Any]]:
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
    if pipeline.train3.expression_weight > 0:
        faces.keypoints = crop_keypoints(request.workspace, faces.files, spec.size)
        known = int((~torch.isnan(faces.keypoints).any(dim=(1, 2))).sum())
        if known < pipeline.train3.batch_size:
            report(f"only {known} crops have the landmarks extract records (crops copied in by "
                   "hand have none): step 3 trains without the expression term")
    seed = int(existing.meta.get("seed", request.seed)) if existing else int(s2.meta.get("seed", request.seed))
    trainer = Step3Trainer(spec, pipeline, faces, s1, s2, model_dir, device, seed, ctx)
    return trainer, pipeline, existing, {"seed": seed, **fit_to}


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


class _Window:
    """Means of the metrics over the steps since the last log line."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.n = 0

    def add(self, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            if math.isfinite(v):
                self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def take(self) -> dict[str, float]:
        means = {k: v / max(self.n, 1) for k, v in self.sums.items()}
        self.sums, self.n = {}, 0
        return means


def _run(
    request: TrainRequest, trainer: Trainer, pipeline: Pipeline, start: int, total: int, spent: float,
    extra: dict, ctx: ddp.DistContext, report: Callable[[TrainProgress | TrainSummary], None],
) -> TrainSummary:
    """Steps from ``start`` to ``total`` (or, with ``request.seconds``, until the stage has
    trained that long, ``spent`` seconds of it in earlier runs)."""
    stage = request.stage
    cfg = stage_config(pipeline, stage)
    budget = request.seconds
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
    window = _Window()
    step = start
    interrupted = False

    def trained() -> float:  # seconds this stage has trained, earlier runs included
        return spent + time.perf_counter() - t0

    def finished() -> bool:
        return trained() >= budget if budget is not None else step >= total

    saved_seconds = spent

    def save() -> None:
        nonlocal last_saved, saved_seconds
        saved_seconds = trained()
        times = {"train_seconds": round(saved_seconds, 3)}
        if budget is not None:
            times["budget_seconds"] = round(budget, 3)
        _save(trainer, request, pipeline, step, {**extra, **times}, ctx, last_saved)
        last_saved = step

    with _stop_on_sigint() as flag:
        while not finished():
            if request.cores is not None:
                request.cores.refresh()
            trainer.progress = trained() / budget if budget is not None else step / total
            losses = trainer.train_step(step)
            # One message keeps every rank's losses and stop decisions the same.
            time_up = budget is not None and trained() >= budget
            packed = torch.tensor([*losses.values(), float(flag["stop"]), float(time_up)],
                                  dtype=torch.float64,
                                  device=trainer.device if ctx.enabled else "cpu")  # nccl: CUDA only
            packed = ddp.mean_across_ranks(packed, ctx)
            losses = dict(zip(losses, packed[:-2].tolist()))
            stop = packed[-2].item() > 0
            last = packed[-1].item() > 0 or (budget is None and step + 1 >= total)
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                raise FaceswapError(_nan_message(stage, step + 1, bad, last_saved))
            step += 1
            last_losses = losses
            window.add(losses)
            elapsed = time.perf_counter() - t0
            rate = (step - start) / elapsed if elapsed > 0 else 0.0
            left = max(budget - trained(), 0.0) if budget is not None else None
            expected = step + int(rate * left) if left is not None else total
            report(TrainProgress(stage, step, max(expected, step), rate, losses, left))
            problem = None
            if step % cfg.log_every == 0 or last:
                now = time.perf_counter()
                ips = (step - window_start) * trainer.images_per_step / max(now - window_t, 1e-9)
                window_t, window_start = now, step
                means = window.take()
                if main:
                    previews.append_metrics(metrics, {
                        "step": step, "time": time.time(), "elapsed_s": round(elapsed, 3),
                        "images_per_s": round(ips, 2), **losses,
                    })
                problem = trainer.check(means)
            if step % cfg.checkpoint_every == 0 or last or stop or problem:
                save()
            if main and (step % cfg.preview_every == 0 or last or stop or problem):
                tiles = trainer.preview()
                previews.write_png(logs / "previews" / f"step_{step:07d}.png", previews.grid_image(tiles))
                previews.loss_curve(metrics, logs / "loss.png", f"step {stage} ({pipeline.name})")
            if problem:
                raise FaceswapError(f"{problem} (checkpoint of step {step} kept)")
            if stop:
                interrupted = True
                break
            if last:
                break
        # Time ran out during the last step's save or previews: the checkpoint must say it is done.
        if step != start and (step != last_saved or (budget is not None and saved_seconds < budget)):
            save()
    seconds = time.perf_counter() - t0
    summary = TrainSummary(
        stage=stage, model_dir=request.model_dir, start_step=start, end_step=step,
        total_steps=step if budget is not None else total,
        losses=last_losses, images_per_s=(step - start) * trainer.images_per_step / max(seconds, 1e-9),
        seconds=seconds, interrupted=interrupted, checkpoint=stage_dir(request.model_dir, stage),
        metrics=metrics,
    )
    report(summary)
    if interrupted:
        raise KeyboardInterrupt
    return summary
