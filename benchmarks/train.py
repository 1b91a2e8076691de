"""Training throughput at the `paper` preset: ours (Step1Trainer/Step2Trainer with the
pipeline's speed settings) against a plain eager fp32 PyTorch loop of the same networks,
in the same run on the same data. Prints images/s (real crops per second for step 1,
generated samples per second for step 2).

    .venv/bin/python benchmarks/train.py [--device cpu|cuda] [--steps 5] [--batch 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceswap_gan.config import load_pipeline
from faceswap_gan.device import resolve_device
from faceswap_gan.models.checkpoint import StageCheckpoint, module_tensors
from faceswap_gan.models.networks import NetworkSpec, build_networks
from faceswap_gan.training.data import FaceSet
from faceswap_gan.training.step1 import Step1Trainer
from faceswap_gan.training.step2 import Step2Trainer


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pipeline", default="paper")
    ap.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--speakers", type=int, default=3)
    args = ap.parse_args()
    device = resolve_device(args.device)
    pipeline = load_pipeline(args.pipeline)
    if args.batch:
        pipeline.train1.batch_size = pipeline.train2.batch_size = args.batch
    spec = NetworkSpec.from_config(pipeline.model, args.speakers)
    faces = faces_for(spec.size, args.speakers)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    b1, b2 = pipeline.train1.batch_size, pipeline.train2.batch_size
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"pipeline={pipeline.name} size={spec.size} batch={b1} speakers={args.speakers}")

    variants = [(True, True), (True, False), (False, True), (False, False)]
    step1 = {"plain eager fp32": plain_step1(spec, b1, device, faces)}
    for amp, cl in variants:
        pipeline.train1.amp, pipeline.train1.channels_last = amp, cl
        step1[f"ours amp={amp} channels_last={cl}"] = Step1Trainer(spec, pipeline, faces, device, seed=0).train_step
    t1 = measure(step1, args.rounds, args.steps, sync)

    g, d, _ = build_networks(spec, generator=torch.Generator().manual_seed(0))
    ckpt = StageCheckpoint({}, {**module_tensors("generator", g), **module_tensors("discriminator", d)}, {})
    step2 = {"plain eager fp32 (paper loss)": plain_step2(spec, b2, device)}
    for amp, cl in variants:
        pipeline.train2.amp, pipeline.train2.channels_last = amp, cl
        pipeline.train2.recon_weight = 0.0
        step2[f"ours amp={amp} channels_last={cl}"] = Step2Trainer(
            spec, pipeline, faces, ckpt, Path("."), device, seed=0).train_step
    pipeline.train2.recon_weight = 1.0
    for amp, cl in ((True, True), (False, False)):
        pipeline.train2.amp, pipeline.train2.channels_last = amp, cl
        step2[f"ours amp={amp} channels_last={cl} +recon"] = Step2Trainer(
            spec, pipeline, faces, ckpt, Path("."), device, seed=0).train_step
    t2 = measure(step2, args.rounds, args.steps, sync)

    # Does bf16 keep the numbers right? The same first steps in fp32 and in bf16.
    drift = {}
    for amp in (False, True):
        pipeline.train1.amp = amp
        t = Step1Trainer(spec, pipeline, faces, device, seed=0)
        drift[amp] = [t.train_step(i) for i in range(3)]
    worst = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-3)
                for a, b in zip(drift[False], drift[True]) for k in ("loss_d", "g_adv", "g_cls"))

    print(f"{'stage':6} {'variant':42} {'images/s':>9} {'vs plain':>9}")
    for stage, times, batch in (("step1", t1, b1), ("step2", t2, b2)):
        base = next(iter(times.values()))
        for name, t in times.items():
            print(f"{stage:6} {name:42} {batch / t:9.1f} {base / t:8.2f}x")
    print(f"bf16 vs fp32 step-1 losses over 3 steps: worst relative difference {worst:.4f}")


if __name__ == "__main__":
    main()
