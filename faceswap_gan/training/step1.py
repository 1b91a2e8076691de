"""Step 1: the auxiliary-classifier conditional GAN G(z, c) / D over all speakers.

One training step = one D update on a class-balanced batch of real crops and as many fakes,
then ``g_steps_per_d`` G updates on fresh z (the paper: 2). Losses: real/fake BCE (or hinge)
plus the class cross-entropy, for D on real crops and for G on its fakes.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from faceswap_gan.config import Pipeline
from faceswap_gan.device import amp_dtype, autocast
from faceswap_gan.models.checkpoint import (
    StageCheckpoint,
    ema_or,
    load_module,
    module_tensors,
    optimizer_tensors,
    restore_optimizer,
)
from faceswap_gan.models.images import from_network, to_network
from faceswap_gan.models.networks import NetworkSpec, build_networks
from faceswap_gan.training import losses
from faceswap_gan.training.data import (
    FaceSet,
    augment,
    balanced_labels,
    sample_batch,
    sample_z,
    step_rng,
)
from faceswap_gan.training.ddp import DistContext, average_gradients, broadcast_module
from faceswap_gan.training.ema import update_ema


class Step1Trainer:
    stage = 1

    def __init__(
        self,
        spec: NetworkSpec,
        pipeline: Pipeline,
        faces: FaceSet,
        device: torch.device,
        seed: int,
        dist: DistContext | None = None,
    ) -> None:
        # a copy: a caller changing its Pipeline later must not change a running trainer
        self.spec, self.cfg, self.faces = spec, copy.deepcopy(pipeline.train1), faces
        self.device, self.seed, self.dist = device, seed, dist or DistContext()
        dist = self.dist
        self.batch = max(1, self.cfg.batch_size // dist.world_size)
        self.dtype = amp_dtype(device, self.cfg.amp, training=True)
        self.memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        init = torch.Generator().manual_seed(seed)
        g, d, _ = build_networks(spec, generator=init)
        self.g = g.to(device, memory_format=self.memory_format)
        self.d = d.to(device, memory_format=self.memory_format)
        broadcast_module(self.g, dist)
        broadcast_module(self.d, dist)
        self.g_ema = None
        if self.cfg.ema_decay > 0:
            self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False)
        betas = (self.cfg.beta1, self.cfg.beta2)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=self.cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=self.cfg.lr, betas=betas)
        # Fixed z for previews: the same pose/expression rendered for every speaker.
        self.preview_z = sample_z(8, spec.z_dim, torch.Generator().manual_seed(seed + 1), device)

    @property
    def images_per_step(self) -> int:
        return self.batch * self.dist.world_size

    def _fake(self, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = sample_z(self.batch, self.spec.z_dim, rng, self.device)
        c = balanced_labels(self.batch, self.spec.n_classes, rng).to(self.device)
        return z, c, self.g(z, c)

    def train_step(self, step: int) -> dict[str, float]:
        rng = step_rng(self.seed, step, self.dist.rank)
        real_u8, labels = sample_batch(self.faces, self.batch, rng)
        labels = labels.to(self.device)
        x = augment(to_network(real_u8, self.device), rng, self.cfg.augment_flip, self.cfg.augment_light)
        x = x.contiguous(memory_format=self.memory_format)
        kind = self.cfg.loss

        # D: real crops vs G's fakes, plus the class of the real crops.
        self.d.requires_grad_(True)
        with autocast(self.device, self.dtype):
            with torch.no_grad():
                _, _, fake = self._fake(rng)
            real_adv, real_cls = self.d(x)
            fake_adv, _ = self.d(fake)
            d_adv = losses.d_adversarial(real_adv, fake_adv, kind)
            d_cls = losses.class_loss(real_cls, labels)
            loss_d = d_adv + d_cls
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        average_gradients(self.d.parameters(), self.dist)
        self.opt_d.step()

        # G: fool D and be classified as the asked-for speaker; D's weights stay fixed here.
        self.d.requires_grad_(False)
        g_adv_sum = g_cls_sum = 0.0
        for _ in range(self.cfg.g_steps_per_d):
            with autocast(self.device, self.dtype):
                _, c, fake = self._fake(rng)
                fake_adv, fake_cls = self.d(fake)
                g_adv = losses.g_adversarial(fake_adv, kind)
                g_cls = losses.class_loss(fake_cls, c)
                loss_g = g_adv + g_cls
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            average_gradients(self.g.parameters(), self.dist)
            self.opt_g.step()
            self._update_ema()
            g_adv_sum += g_adv.item()
            g_cls_sum += g_cls.item()
        self.d.requires_grad_(True)

        acc = (real_cls.argmax(1) == labels).float().mean()
        n = max(1, self.cfg.g_steps_per_d)
        return {
            "loss_d": loss_d.item(),
            "d_adv": d_adv.item(),
            "d_cls": d_cls.item(),
            "g_adv": g_adv_sum / n,
            "g_cls": g_cls_sum / n,
            "d_real_class_acc": acc.item(),
        }

    def _update_ema(self) -> None:
        if self.g_ema is not None:
            update_ema(self.g_ema, self.g, self.cfg.ema_decay)

    # -- checkpoint ---------------------------------------------------------------------------

    def weights(self) -> dict[str, torch.Tensor]:
        out = {**module_tensors("generator", self.g), **module_tensors("discriminator", self.d)}
        if self.g_ema is not None:
            out.update(module_tensors("generator_ema", self.g_ema))
        return out

    def train_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tg, ig = optimizer_tensors("opt_g", self.opt_g)
        td, id_ = optimizer_tensors("opt_d", self.opt_d)
        return {**tg, **td}, {"opt_g": ig, "opt_d": id_}

    def load(self, ckpt: StageCheckpoint, where) -> None:
        load_module(self.g, "generator", ckpt.weights, where)
        load_module(self.d, "discriminator", ckpt.weights, where)
        if self.g_ema is not None:
            load_module(self.g_ema, ema_or("generator", ckpt.weights), ckpt.weights, where)
        restore_optimizer("opt_g", self.opt_g, ckpt.state, ckpt.meta["optimizers"]["opt_g"])
        restore_optimizer("opt_d", self.opt_d, ckpt.state, ckpt.meta["optimizers"]["opt_d"])
        # Optimizer hyper-parameters come from the pipeline in use now (a resumed run may change lr).
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = self.cfg.lr
                group["betas"] = (self.cfg.beta1, self.cfg.beta2)

    # -- preview ------------------------------------------------------------------------------

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        """(n_speakers, 8, S, S, 3) uint8: a row per speaker from the same eight z."""
        g = self.g_ema if self.g_ema is not None else self.g
        was_training = g.training
        g.eval()
        rows = []
        for label in range(self.spec.n_classes):
            c = torch.full((self.preview_z.shape[0],), label, dtype=torch.int64, device=self.device)
            rows.append(from_network(g(self.preview_z, c)))
        g.train(was_training)
        return np.stack(rows)

