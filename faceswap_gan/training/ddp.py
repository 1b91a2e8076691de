"""Data-parallel training over several processes (GPUs or nodes) launched by ``torchrun``.

Every rank builds the same networks from the same seed, draws its own share of each batch
(its rank is part of the per-step seed) and averages gradients with an all-reduce before each
optimizer step, so all ranks hold identical weights. Only rank 0 writes checkpoints, previews
and logs. gloo on CPU, nccl on CUDA.

    torchrun --nproc_per_node 2 -m faceswap_gan.cli train --step 1 --pipeline tiny

(``faceswap train`` also detects torchrun's WORLD_SIZE/RANK variables by itself.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun set up; returns the context and this rank's device."""
    if not launched_by_torchrun():
        return DistContext(), device
    ctx = DistContext(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ctx, device


def shutdown(ctx: DistContext, clean: bool = True) -> None:
    """Leave the process group. After a clean run every rank waits for the others first: a
    rank tearing gloo down while rank 0 still writes previews can abort the process
    ("terminate called without an active exception"). After an error, no barrier: the other
    ranks may be waiting in another collective, and torchrun stops them."""
    if ctx.enabled and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def average_gradients(params: Iterable[nn.Parameter], ctx: DistContext) -> None:
    """All-reduce the gradients as one flat buffer (one message per optimizer step)."""
    if not ctx.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def broadcast_module(module: nn.Module, ctx: DistContext) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    if not ctx.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def mean_across_ranks(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if not ctx.enabled:
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / ctx.world_size


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
