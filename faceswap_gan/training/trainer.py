"""What every training step shares, once: its settings, device and precision, the networks it
trains (with their EMA copies) and the frozen ones it reads, its optimizers, what goes into
a checkpoint and how a checkpoint is resumed, a batch of real crops, and D's update.

A step file (step1.py, step2.py, step3.py) holds only what its step learns: it builds its
networks through ``train_net``/``frozen``/``adam`` and writes ``train_step`` and ``preview``;
the loss terms live in losses.py. The loop (loop.py) drives any of them the same way.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from faceswap_gan.device import amp_dtype, autocast
from faceswap_gan.models.checkpoint import (
    StageCheckpoint,
    ema_or,
    load_module,
    module_tensors,
    optimizer_tensors,
    restore_optimizer,
)
from faceswap_gan.models.images import to_network
from faceswap_gan.models.networks import NetworkSpec
from faceswap_gan.training import losses
from faceswap_gan.training.data import FaceSet, augment, sample_batch
from faceswap_gan.training.ddp import DistContext, average_gradients, broadcast_module
from faceswap_gan.training.ema import update_ema


class Trainer:
    """The base of the three steps. ``cfg`` is the step's section of the pipeline
    ([train1], [train2] or [train3]); it is copied, so a caller changing its Pipeline later
    cannot change a running trainer."""

    stage = 0

    def __init__(self, spec: NetworkSpec, cfg: Any, faces: FaceSet, device: torch.device,
                 seed: int, dist: DistContext | None = None) -> None:
        self.spec, self.cfg, self.faces = spec, copy.deepcopy(cfg), faces
        self.device, self.seed, self.dist = device, seed, dist or DistContext()
        self.batch = max(1, self.cfg.batch_size // self.dist.world_size)
        self.dtype = amp_dtype(device, self.cfg.amp, training=True)
        self.memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        self.trained: dict[str, nn.Module] = {}  # checkpoint prefix -> a network this step trains
        self.emas: dict[str, nn.Module] = {}  # prefix -> its EMA copy (saved as <prefix>_ema)
        self.optimizers: dict[str, tuple[torch.optim.Optimizer, float]] = {}  # name -> (opt, lr)
        # Fraction of the run done, set by the loop before each step (by steps, or by time
        # with `train --minutes`): schedules such as step 3's warp-off read it.
        self.progress = 0.0

    @property
    def images_per_step(self) -> int:
        return self.batch * self.dist.world_size

    # -- building --------------------------------------------------------------------------------

    def train_net(self, prefix: str, net: nn.Module, ema: bool = False) -> nn.Module:
        """A network this step trains and saves under ``prefix`` (and its EMA copy)."""
        net = net.to(self.device, memory_format=self.memory_format).train()
        broadcast_module(net, self.dist)
        self.trained[prefix] = net
        if ema:
            self.emas[prefix] = copy.deepcopy(net).eval().requires_grad_(False)
        return net

    def frozen(self, net: nn.Module) -> nn.Module:
        """A network this step reads but never changes (eval mode: what inference will run)."""
        return net.to(self.device, memory_format=self.memory_format).eval().requires_grad_(False)

    def adam(self, name: str, params: Any, lr: float) -> torch.optim.Optimizer:
        opt = torch.optim.Adam(params, lr=lr, betas=(self.cfg.beta1, self.cfg.beta2))
        self.optimizers[name] = (opt, lr)
        return opt

    def ema_or_net(self, prefix: str) -> nn.Module:
        """The EMA copy of a trained network when kept (previews, inference), else the network."""
        return self.emas.get(prefix, self.trained[prefix])

    # -- the steps' common parts -----------------------------------------------------------------

    def real_batch(self, rng: torch.Generator, flip: bool, light: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """A class-balanced batch of real crops in [-1, 1] on the device, augmented, and labels."""
        real_u8, labels = sample_batch(self.faces, self.batch, rng)
        x = augment(to_network(real_u8, self.device), rng, flip, light)
        return x.contiguous(memory_format=self.memory_format), labels.to(self.device)

    def descend(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter]) -> None:
        """One optimizer step on ``loss`` (gradients averaged across ranks under torchrun)."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(params, self.dist)
        opt.step()

    def update_discriminator(self, d: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                             labels: torch.Tensor, fake: torch.Tensor, kind: str) -> dict[str, Any]:
        """D: real crops against ``fake`` (real/fake loss), and the class of the real crops."""
        with autocast(self.device, self.dtype):
            real_adv, real_cls = d(x)
            fake_adv, _ = d(fake.detach())
            d_adv = losses.d_adversarial(real_adv, fake_adv, kind)
            d_cls = losses.class_loss(real_cls, labels)
            loss_d = d_adv + d_cls
        self.descend(opt, loss_d, list(d.parameters()))
        return {"loss_d": loss_d.item(), "d_adv": d_adv.item(), "d_cls": d_cls.item(),
                "d_real_class_acc": (real_cls.argmax(1) == labels).float().mean().item()}

    def update_emas(self, decay: float) -> None:
        for prefix, ema in self.emas.items():
            update_ema(ema, self.trained[prefix], decay)

    # -- what a step is --------------------------------------------------------------------------

    def train_step(self, step: int) -> dict[str, float]:
        raise NotImplementedError

    def preview(self) -> np.ndarray:
        raise NotImplementedError

    def check(self, window: dict[str, float]) -> str | None:
        """Called at each log step with the mean of the last log window's metrics: a message
        when training has gone wrong in a way more steps will not mend (the loop stops on it,
        keeping the checkpoint), else None."""
        return None

    # -- checkpoint --------------------------------------------------------------------------------

    def weights(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for prefix, net in self.trained.items():
            out.update(module_tensors(prefix, net))
        for prefix, ema in self.emas.items():
            out.update(module_tensors(f"{prefix}_ema", ema))
        return out

    def train_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors: dict[str, torch.Tensor] = {}
        info: dict[str, Any] = {}
        for name, (opt, _lr) in self.optimizers.items():
            t, i = optimizer_tensors(name, opt)
            tensors.update(t)
            info[name] = i
        return tensors, info

    def load(self, ckpt: StageCheckpoint, where: Path) -> None:
        """Resume from this step's own checkpoint. Optimizer hyper-parameters come from the
        pipeline in use now (a resumed run may change the learning rate)."""
        for prefix, net in self.trained.items():
            load_module(net, prefix, ckpt.weights, where)
        for prefix, ema in self.emas.items():
            load_module(ema, ema_or(prefix, ckpt.weights), ckpt.weights, where)
        stored = ckpt.meta["optimizers"]
        for name, (opt, lr) in self.optimizers.items():
            if name in stored:  # an optimizer added since (a new network) starts fresh
                restore_optimizer(name, opt, ckpt.state, stored[name])
            for group in opt.param_groups:
                group["lr"] = lr
                group["betas"] = (self.cfg.beta1, self.cfg.beta2)


def dead_code(window: dict[str, float], max_saturated: float, stage: int) -> str | None:
    """Steps 2 and 3 stop when most of E's code sits at the edge of G's prior: a dead code
    draws the speaker's average face whatever the input, and more steps do not bring it back."""
    share = window.get("z_saturated")
    if share is None or share <= max_saturated:
        return None
    return (
        f"step {stage} stopped: {share:.0%} of the encoder's code components sit at +-1, where "
        f"they no longer follow the face (train{stage}.max_saturated is {max_saturated:g}); "
        "use model.z_bound = \"tanh\" with a prior_weight, or a lower learning rate"
    )
