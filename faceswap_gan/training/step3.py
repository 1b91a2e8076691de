"""Step 3 (ours): E and G fine-tuned together on real crops, starting from steps 1 and 2.

One step, on a class-balanced batch of real crops x with speakers c:
- reconstruction: G(E(warp(x)), c) ~ x, L1 + (1 - SSIM), weighted toward eyes and mouth. The
  input is randomly warped and the target is not, so E must read pose and expression while
  the speaker's own output blocks of G draw the identity (deepfakes' autoencoder trick);
  the last ``warp_off`` of the steps see unwarped input, for sharpness;
- translation: G(E(x), c') for another speaker c' must look real to D and be classified as
  c' by D's class head (adversarial + auxiliary class loss, ``adv_weight``); optionally its
  code must come back, E(G(E(x), c')) ~ E(x) (``cycle_weight``);
- D (from step 1) keeps learning: real crops against translations, and the class of real crops.
EMA copies of E and G (``ema_decay``) are what previews and inference use.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from faceswap_gan.config import Pipeline
from faceswap_gan.device import amp_dtype, autocast
from faceswap_gan.faces.align import crop_template
from faceswap_gan.models.checkpoint import (
    StageCheckpoint,
    ema_or,
    load_module,
    module_tensors,
    optimizer_tensors,
    restore_optimizer,
    stage_dir,
)
from faceswap_gan.models.images import to_network
from faceswap_gan.models.networks import Discriminator, Encoder, Generator, NetworkSpec
from faceswap_gan.training import losses
from faceswap_gan.training.data import FaceSet, augment, sample_batch, step_rng
from faceswap_gan.training.ddp import DistContext, average_gradients, broadcast_module
from faceswap_gan.training.ema import update_ema
from faceswap_gan.training.step2 import preview_indices, translation_tiles
from faceswap_gan.training.warp import random_warp

# Focus regions in eye units (eye distance = 1): Gaussian sigmas around each eye centre and
# around the mouth (wider than tall, centred a little below the corners: it opens downward).
EYE_SIGMA = 0.28
MOUTH_SIGMA = (0.42, 0.30)
MOUTH_DROP = 0.12


def focus_weight_map(size: int, padding: float, focus: float) -> torch.Tensor:
    """(1, 1, S, S) loss weights: 1 everywhere plus ``focus`` on the eyes and the mouth, placed
    by the alignment template (every crop has its eyes and mouth there)."""
    t = crop_template(size, padding)  # eye corners x4, nose bridge, mouth corners x2
    eye_px = float(np.linalg.norm(t[:2].mean(0) - t[2:4].mean(0)))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    weight = np.ones((size, size))
    for centre in (t[:2].mean(0), t[2:4].mean(0)):
        r2 = ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (EYE_SIGMA * eye_px) ** 2
        weight += focus * np.exp(-0.5 * r2)
    mouth = t[5:7].mean(0) + np.array([0.0, MOUTH_DROP * eye_px])
    r2 = ((xx - mouth[0]) / (MOUTH_SIGMA[0] * eye_px)) ** 2 + ((yy - mouth[1]) / (MOUTH_SIGMA[1] * eye_px)) ** 2
    weight += focus * np.exp(-0.5 * r2)
    return torch.from_numpy(weight.astype(np.float32))[None, None]


class Step3Trainer:
    stage = 3

    def __init__(
        self,
        spec: NetworkSpec,
        pipeline: Pipeline,
        faces: FaceSet,
        step1: StageCheckpoint,
        step2: StageCheckpoint,
        model_dir: Path,
        device: torch.device,
        seed: int,
        dist: DistContext | None = None,
    ) -> None:
        self.spec, self.cfg, self.faces = spec, copy.deepcopy(pipeline.train3), faces
        self.loss_kind = pipeline.train1.loss
        self.z_clamp = pipeline.train2.z_clamp
        self.device, self.seed, self.dist = device, seed, dist or DistContext()
        self.batch = max(1, self.cfg.batch_size // self.dist.world_size)
        self.dtype = amp_dtype(device, self.cfg.amp, training=True)
        self.memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        self.total_steps: int | None = None  # set by the loop: where the warp turns off
        self.g, self.d, self.e = Generator(spec), Discriminator(spec), Encoder(spec)
        # Errors name the folder the misfitting weights came from.
        step1_dir, step2_dir = stage_dir(model_dir, 1), stage_dir(model_dir, 2)
        load_module(self.g, ema_or("generator", step1.weights), step1.weights, step1_dir)
        load_module(self.d, "discriminator", step1.weights, step1_dir)
        load_module(self.e, "encoder", step2.weights, step2_dir)
        for net in (self.g, self.d, self.e):
            net.to(device, memory_format=self.memory_format).train()
            broadcast_module(net, self.dist)
        self.g_ema = self.e_ema = None
        if self.cfg.ema_decay > 0:
            self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False)
            self.e_ema = copy.deepcopy(self.e).eval().requires_grad_(False)
        betas = (self.cfg.beta1, self.cfg.beta2)
        self.opt_ge = torch.optim.Adam([*self.g.parameters(), *self.e.parameters()], lr=self.cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=self.cfg.lr_d, betas=betas)
        self.weight = focus_weight_map(spec.size, pipeline.extract.padding, self.cfg.focus_weight).to(device)
        self.preview_index = preview_indices(faces, seed + 3)

    @property
    def images_per_step(self) -> int:
        return self.batch * self.dist.world_size

    def warp_strength(self, step: int) -> float:
        if self.total_steps is not None and step >= (1.0 - self.cfg.warp_off) * self.total_steps:
            return 0.0
        return self.cfg.warp

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.e(x)
        # G only ever saw z in [-1, 1]; inference clamps too when step 2 did.
        return z.clamp(-1.0, 1.0) if self.z_clamp else z

    def train_step(self, step: int) -> dict[str, float]:
        rng = step_rng(self.seed, step, self.dist.rank)
        real_u8, labels = sample_batch(self.faces, self.batch, rng)
        labels = labels.to(self.device)
        x = augment(to_network(real_u8, self.device), rng, self.cfg.augment_flip, self.cfg.augment_light)
        x = x.contiguous(memory_format=self.memory_format)
        x_in = random_warp(x, rng, self.warp_strength(step)).contiguous(memory_format=self.memory_format)
        shift = torch.randint(1, self.spec.n_classes, labels.shape, generator=rng).to(self.device)
        target = (labels + shift) % self.spec.n_classes
        translate = self.cfg.adv_weight > 0 or self.cfg.cycle_weight > 0
        out: dict[str, float] = {}

        # E and G: reconstruct the unwarped crop; translations must read as their target.
        self.d.requires_grad_(False)
        with autocast(self.device, self.dtype):
            z = self._encode(x_in)
            loss, parts = losses.weighted_recon(
                x, self.g(z, labels), self.weight, self.cfg.l1_weight, self.cfg.ssim_weight
            )
            out.update(parts)
            x_tr = None
            if translate:
                x_tr = self.g(z, target)
            if self.cfg.adv_weight > 0:
                adv, cls = self.d(x_tr)
                g_adv = losses.g_adversarial(adv, self.loss_kind)
                g_cls = losses.class_loss(cls, target)
                loss = loss + self.cfg.adv_weight * (g_adv + g_cls)
                out["g_adv"], out["g_cls"] = g_adv.item(), g_cls.item()
                out["translate_acc"] = (cls.argmax(1) == target).float().mean().item()
            if self.cfg.cycle_weight > 0:
                cycle = losses.latent_cycle(self._encode(x_tr), z.detach())
                loss = loss + self.cfg.cycle_weight * cycle
                out["cycle"] = cycle.item()
        self.opt_ge.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients([*self.g.parameters(), *self.e.parameters()], self.dist)
        self.opt_ge.step()
        if self.g_ema is not None:
            update_ema(self.g_ema, self.g, self.cfg.ema_decay)
            update_ema(self.e_ema, self.e, self.cfg.ema_decay)
        self.d.requires_grad_(True)

        # D: real crops against the translations just made, and the class of real crops.
        if self.cfg.adv_weight > 0:
            with autocast(self.device, self.dtype):
                real_adv, real_cls = self.d(x)
                fake_adv, _ = self.d(x_tr.detach())
                d_adv = losses.d_adversarial(real_adv, fake_adv, self.loss_kind)
                d_cls = losses.class_loss(real_cls, labels)
                loss_d = d_adv + d_cls
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            average_gradients(self.d.parameters(), self.dist)
            self.opt_d.step()
            out["loss_d"] = loss_d.item()
        return {"loss": loss.item(), **out}

    # -- checkpoint ---------------------------------------------------------------------------

    def weights(self) -> dict[str, torch.Tensor]:
        out = {
            **module_tensors("generator", self.g),
            **module_tensors("encoder", self.e),
            **module_tensors("discriminator", self.d),
        }
        if self.g_ema is not None:
            out.update(module_tensors("generator_ema", self.g_ema))
            out.update(module_tensors("encoder_ema", self.e_ema))
        return out

    def train_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        t_ge, i_ge = optimizer_tensors("opt_ge", self.opt_ge)
        t_d, i_d = optimizer_tensors("opt_d", self.opt_d)
        return {**t_ge, **t_d}, {"opt_ge": i_ge, "opt_d": i_d}

    def load(self, ckpt: StageCheckpoint, where: Path) -> None:
        load_module(self.g, "generator", ckpt.weights, where)
        load_module(self.e, "encoder", ckpt.weights, where)
        load_module(self.d, "discriminator", ckpt.weights, where)
        if self.g_ema is not None:
            load_module(self.g_ema, ema_or("generator", ckpt.weights), ckpt.weights, where)
            load_module(self.e_ema, ema_or("encoder", ckpt.weights), ckpt.weights, where)
        restore_optimizer("opt_ge", self.opt_ge, ckpt.state, ckpt.meta["optimizers"]["opt_ge"])
        restore_optimizer("opt_d", self.opt_d, ckpt.state, ckpt.meta["optimizers"]["opt_d"])
        for opt, lr in ((self.opt_ge, self.cfg.lr), (self.opt_d, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
                group["betas"] = (self.cfg.beta1, self.cfg.beta2)

    # -- preview ------------------------------------------------------------------------------

    def preview(self) -> np.ndarray:
        e = self.e_ema if self.e_ema is not None else self.e
        g = self.g_ema if self.g_ema is not None else self.g
        return translation_tiles(e, g, self.faces, self.preview_index, self.device)
