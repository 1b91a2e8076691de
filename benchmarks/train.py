"""Training throughput of the preset users run (default `debate`): whole steps of our
trainers (data, augmentation, warps, EMA included) for steps 1, 2 and 3, in the preset's
precision and in fp32, beside a plain eager fp32 PyTorch loop of the same networks, in the
same run on the same data. Then, with --concurrent, two step-1 trainings at once in two
processes (each picking its threads as `faceswap train` does: the CPUs divided among the
runs) against one alone, and the same with each run taking every CPU (unshared).

    .venv/bin/python benchmarks/train.py [--pipeline debate] [--device cpu|cuda]
        [--steps 2] [--rounds 3] [--concurrent] [--json out.json]

images/s: real crops per second (steps 1 and 3), generated samples per second (step 2).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceswap_gan.config import load_pipeline
from faceswap_gan.device import CoreShare, cpu_name, resolve_device, set_cpu_threads
from faceswap_gan.models.checkpoint import StageCheckpoint, module_tensors
from faceswap_gan.models.networks import NetworkSpec, build_networks
from faceswap_gan.training.data import FaceSet
from faceswap_gan.training.step1 import Step1Trainer
from faceswap_gan.training.step2 import Step2Trainer
from faceswap_gan.training.step3 import Step3Trainer


def faces_for(size: int, n_speakers: int, per: int = 64) -> FaceSet:
    rng = np.random.default_rng(0)
    # Smooth random images: convolution cost does not depend on content, but keep it image-like.
    base = rng.integers(0, 256, (n_speakers * per, 3, size // 8, size // 8), dtype=np.uint8)
    images = torch.from_numpy(base).float()
    images = F.interpolate(images, size=(size, size), mode="bilinear").to(torch.uint8)
    labels = torch.arange(n_speakers).repeat_interleave(per)
    return FaceSet(images, labels, [f"s{i}" for i in range(n_speakers)])


def measure(fns: dict[str, object], rounds: int, steps: int, sync) -> dict[str, float]:
    """Best seconds per step of each function. Variants are interleaved round by round and
    the best round is kept, so a neighbour's load on a shared machine skews no variant more
    than another."""
    counters = {name: 0 for name in fns}
    best = {name: float("inf") for name in fns}
    for name, fn in fns.items():  # warm-up: oneDNN picks and caches its kernels
        fn(counters[name])
        counters[name] += 1
    for _ in range(rounds):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(steps):
                fn(counters[name])
                counters[name] += 1
            sync()
            best[name] = min(best[name], (time.perf_counter() - t0) / steps)
    return best


def plain_step1(spec: NetworkSpec, batch: int, device: torch.device, faces: FaceSet):
    """The baseline: the textbook eager fp32 loop, same networks, same losses."""
    g, d, _ = build_networks(spec, generator=torch.Generator().manual_seed(0))
    g, d = g.to(device), d.to(device)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits
    images = faces.images.float().div(127.5).sub(1).to(device)
    labels_all = faces.labels.to(device)

    def step(i: int) -> None:
        idx = torch.randint(len(images), (batch,), device=device)
        x, y = images[idx], labels_all[idx]
        z = torch.rand(batch, spec.z_dim, device=device) * 2 - 1
        c = torch.randint(spec.n_classes, (batch,), device=device)
        fake = g(z, c).detach()
        ra, rc = d(x)
        fa, _ = d(fake)
        loss = bce(ra, torch.ones_like(ra)) + bce(fa, torch.zeros_like(fa)) + F.cross_entropy(rc, y)
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        for _ in range(2):
            z = torch.rand(batch, spec.z_dim, device=device) * 2 - 1
            fa, fc = d(g(z, c))
            loss = bce(fa, torch.ones_like(fa)) + F.cross_entropy(fc, c)
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()

    return step


def plain_step2(spec: NetworkSpec, batch: int, device: torch.device):
    g, _, e = build_networks(spec, encoder=True, generator=torch.Generator().manual_seed(0))
    g, e = g.to(device).eval().requires_grad_(False), e.to(device)
    opt = torch.optim.Adam(e.parameters(), 1e-4, betas=(0.5, 0.999))

    def step(i: int) -> None:
        z = torch.rand(batch, spec.z_dim, device=device) * 2 - 1
        c = torch.randint(spec.n_classes, (batch,), device=device)
        with torch.no_grad():
            x = g(z, c)
        loss = F.mse_loss(e(x), z)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def trainers(pipeline, spec: NetworkSpec, faces: FaceSet, device: torch.device, amp: bool) -> dict:
    """Our three trainers' step functions, with the preset's settings (amp on or off)."""
    for cfg in (pipeline.train1, pipeline.train2, pipeline.train3):
        cfg.amp = amp and cfg.amp
    g, d, e = build_networks(spec, encoder=True, generator=torch.Generator().manual_seed(0))
    s1 = StageCheckpoint({}, {**module_tensors("generator", g), **module_tensors("discriminator", d)}, {})
    s2 = StageCheckpoint({}, module_tensors("encoder", e), {})
    out = {1: Step1Trainer(spec, pipeline, faces, device, seed=0).train_step,
           2: Step2Trainer(spec, pipeline, faces, s1, Path("."), device, seed=0).train_step}
    if pipeline.train3.steps > 0:
        t3 = Step3Trainer(spec, pipeline, faces, s1, s2, Path("."), device, seed=0)
        t3.progress = 0.0  # warped input, as for most of a run
        out[3] = t3.train_step
    return out


def step1_worker(pipeline: str, seconds: float, shared: bool) -> float:
    """One step-1 training for ``seconds`` with the threads `faceswap train` would pick
    (``shared``: dividing the CPUs with the other runs and re-dividing between steps, as the
    training loop does; else all usable CPUs, as before): steps/s."""
    share = CoreShare() if shared else None
    set_cpu_threads(share=share)
    p = load_pipeline(pipeline)
    spec = NetworkSpec.from_config(p.model, 2)
    trainer = Step1Trainer(spec, p, faces_for(spec.size, 2), torch.device("cpu"), seed=0)
    trainer.train_step(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if share is not None:
            share.refresh()
        trainer.train_step(n)
        n += 1
    return n / (time.perf_counter() - t0)


def concurrent_ratio(pipeline: str, seconds: float) -> dict:
    """Step-1 steps/s of one training alone, then of each of two run at the same time: with
    the CPUs shared among runs (the default) and with each taking them all (unshared)."""

    def run(k: int, shared: bool) -> list[float]:
        cmd = [sys.executable, __file__, "--pipeline", pipeline, "--worker-seconds", str(seconds)]
        cmd += [] if shared else ["--worker-unshared"]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
        return [float(p.communicate()[0]) for p in procs]

    solo = run(1, True)[0]
    out: dict = {"solo_steps_per_s": solo}
    for name, shared in (("shared", True), ("unshared", False)):
        pair = run(2, shared)
        out[name] = {"concurrent_steps_per_s": pair, "worst_ratio": min(pair) / solo}
    out["worst_ratio"] = out["shared"]["worst_ratio"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pipeline", default="debate")
    ap.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--speakers", type=int, default=2)
    ap.add_argument("--concurrent", action="store_true",
                    help="also run two step-1 trainings at once against one alone")
    ap.add_argument("--concurrent-seconds", type=float, default=60.0)
    ap.add_argument("--json", default=None, help="write the numbers to this file")
    ap.add_argument("--worker-seconds", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-unshared", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_seconds is not None:  # one of --concurrent's processes
        print(step1_worker(args.pipeline, args.worker_seconds, not args.worker_unshared))
        return
    device = resolve_device(args.device)
    threads = set_cpu_threads()
    pipeline = load_pipeline(args.pipeline)
    spec = NetworkSpec.from_config(pipeline.model, args.speakers)
    faces = faces_for(spec.size, args.speakers)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cpu = cpu_name()
    print(f"device={device} cpu={cpu!r} torch={torch.__version__} threads={threads} "
          f"pipeline={pipeline.name} size={spec.size} speakers={args.speakers}")

    variants = {"plain eager fp32 (step 1)": plain_step1(spec, pipeline.train1.batch_size, device, faces),
                "plain eager fp32 (step 2, paper loss)": plain_step2(spec, pipeline.train2.batch_size, device)}
    for amp in (True, False):
        for stage, fn in trainers(load_pipeline(args.pipeline), spec, faces, device, amp).items():
            variants[f"ours step {stage} ({'preset' if amp else 'fp32'})"] = fn
    times = measure(variants, args.rounds, args.steps, sync)
    batch = {1: pipeline.train1.batch_size, 2: pipeline.train2.batch_size, 3: pipeline.train3.batch_size}
    rows = {}
    print(f"{'variant':42} {'steps/s':>8} {'images/s':>9}")
    for name, t in times.items():
        stage = 1 if "step 1" in name else 2 if "step 2" in name else 3
        rows[name] = {"steps_per_s": 1 / t, "images_per_s": batch[stage] / t}
        print(f"{name:42} {1 / t:8.2f} {batch[stage] / t:9.1f}")
    report = {"device": str(device), "cpu": cpu, "threads": threads, "pipeline": pipeline.name,
              "size": spec.size, "variants": rows}
    if args.concurrent:
        report["concurrent"] = concurrent_ratio(args.pipeline, args.concurrent_seconds)
        c = report["concurrent"]
        print(f"step 1 alone {c['solo_steps_per_s']:.2f} steps/s")
        for name in ("shared", "unshared"):
            pair = c[name]["concurrent_steps_per_s"]
            print(f"two at once, CPUs {name:8}: {', '.join(f'{v:.2f}' for v in pair)} steps/s "
                  f"(worst {c[name]['worst_ratio']:.2f}x of alone)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
