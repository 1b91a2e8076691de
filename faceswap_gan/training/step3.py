"""Step 3 (ours): E and G fine-tuned together on real crops, starting from steps 1 and 2.

One step, on a class-balanced batch of real crops x with speakers c:
- reconstruction: G(E(warp(x)), c) ~ x, L1 + (1 - SSIM), weighted toward eyes and mouth. The
  input is randomly warped and the target is not, so E must read pose and expression while
  the speaker's own output blocks of G draw the identity (deepfakes' autoencoder trick);
  the last ``warp_off`` of the steps see unwarped input, for sharpness;
- translation: G(E(x), c') for another speaker c' must look real to D and be classified as
  c' by D's class head (adversarial + auxiliary class loss, ``adv_weight``); optionally its
  code must come back, E(G(E(x), c')) ~ E(x) (``cycle_weight``);
- D (from step 1) keeps learning: real crops against translations, and the class of real crops;
- ours, for a code that follows the face and not who it is: ``prior_weight`` keeps E's code
  where its bound passes a gradient (``z_saturated``, ``z_spread`` in the metrics), and with
  ``code_weight`` a code discriminator C learns the speaker from the code while E learns to
  leave it guessing (``code_acc`` near 1 / speakers), so each speaker's output blocks see in
  training the codes of every speaker they will see at swap time; with ``expression_weight``
  a translation must open its mouth and eyes as far as its source (training/expression.py).
EMA copies of E and G (``ema_decay``) are what previews and inference use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from faceswap_gan.config import Pipeline
from faceswap_gan.device import autocast
from faceswap_gan.faces.align import crop_template
from faceswap_gan.models.checkpoint import StageCheckpoint, ema_or, load_module, stage_dir
from faceswap_gan.models.images import to_network
from faceswap_gan.models.networks import (
    CodeDiscriminator,
    Discriminator,
    Encoder,
    Generator,
    NetworkSpec,
    _seeded,
    bound_z,
    code_stats,
    init_weights,
)
from faceswap_gan.training import losses
from faceswap_gan.training.data import FaceSet, step_rng
from faceswap_gan.training.ddp import DistContext
from faceswap_gan.training.expression import KEYPOINT_LR, KeypointRegressor, expression
from faceswap_gan.training.previews import preview_indices, translation_tiles
from faceswap_gan.training.trainer import Trainer, dead_code
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


class Step3Trainer(Trainer):
    stage = 3

    def __init__(self, spec: NetworkSpec, pipeline: Pipeline, faces: FaceSet, step1: StageCheckpoint,
                 step2: StageCheckpoint, model_dir: Path, device: torch.device, seed: int,
                 dist: DistContext | None = None) -> None:
        super().__init__(spec, pipeline.train3, faces, device, seed, dist)
        self.loss_kind = pipeline.train1.loss
        # D's class loss on translations: its own weight, else adv_weight's (as before it had one).
        self.class_weight = self.cfg.class_weight if self.cfg.class_weight >= 0 else self.cfg.adv_weight
        g, d, e = Generator(spec), Discriminator(spec), Encoder(spec)
        # Errors name the folder the misfitting weights came from.
        step1_dir, step2_dir = stage_dir(model_dir, 1), stage_dir(model_dir, 2)
        load_module(g, ema_or("generator", step1.weights), step1.weights, step1_dir)
        load_module(d, "discriminator", step1.weights, step1_dir)
        load_module(e, "encoder", step2.weights, step2_dir)
        ema = self.cfg.ema_decay > 0
        self.g = self.train_net("generator", g, ema=ema)
        self.e = self.train_net("encoder", e, ema=ema)
        self.d = self.train_net("discriminator", d)
        self.opt_ge = self.adam("opt_ge", [*self.g.parameters(), *self.e.parameters()], self.cfg.lr)
        self.opt_d = self.adam("opt_d", self.d.parameters(), self.cfg.lr_d)
        self.code_d = None
        if self.cfg.code_weight > 0:
            with _seeded(torch.Generator().manual_seed(seed + 4)):
                code_d = CodeDiscriminator(spec)
                init_weights(code_d)
            self.code_d = self.train_net("code_discriminator", code_d)
            self.opt_code = self.adam("opt_code", self.code_d.parameters(), self.cfg.lr_d)
        self.regressor = None
        if self.cfg.expression_weight > 0 and faces.keypoints is not None:
            known = (~torch.isnan(faces.keypoints).any(dim=(1, 2))).nonzero().squeeze(1)
            if len(known) >= self.batch:  # else the loop has said why the term is off
                with _seeded(torch.Generator().manual_seed(seed + 5)):
                    regressor = KeypointRegressor(spec.size)
                self.regressor = self.train_net("keypoint_regressor", regressor)
                self.opt_r = self.adam("opt_r", self.regressor.parameters(), KEYPOINT_LR)
                self.known = known
        self.weight = focus_weight_map(spec.size, pipeline.extract.padding, self.cfg.focus_weight).to(device)
        self.preview_index = preview_indices(faces, seed + 3)

    def warp_strength(self) -> float:
        return 0.0 if self.progress >= 1.0 - self.cfg.warp_off else self.cfg.warp

    def train_step(self, step: int) -> dict[str, float]:
        rng = step_rng(self.seed, step, self.dist.rank)
        cfg = self.cfg
        x, labels = self.real_batch(rng, cfg.augment_flip, cfg.augment_light)
        x_in = random_warp(x, rng, self.warp_strength()).contiguous(memory_format=self.memory_format)
        shift = torch.randint(1, self.spec.n_classes, labels.shape, generator=rng).to(self.device)
        target = (labels + shift) % self.spec.n_classes
        out: dict[str, float] = {}

        if self.regressor is not None:
            out.update(self._fit_regressor(rng))
        # E and G: reconstruct the unwarped crop; translations must read as their target.
        self.d.requires_grad_(False)
        if self.code_d is not None:
            self.code_d.requires_grad_(False)
        with autocast(self.device, self.dtype):
            raw = self.e.raw(x_in)
            z = bound_z(raw, self.spec.z_bound)
            loss, parts = losses.weighted_recon(x, self.g(z, labels), self.weight, cfg.l1_weight,
                                                cfg.ssim_weight)
            out.update(parts)
            out.update(code_stats(z))
            if cfg.prior_weight > 0:
                loss = loss + cfg.prior_weight * losses.z_prior(raw)
            if self.code_d is not None:
                blind = losses.code_blind(self.code_d(z))
                loss = loss + cfg.code_weight * blind
            judged = cfg.adv_weight > 0 or self.class_weight > 0
            x_tr = self.g(z, target) if judged or cfg.cycle_weight > 0 else None
            if judged:
                adv, cls = self.d(x_tr)
                g_adv = losses.g_adversarial(adv, self.loss_kind)
                g_cls = losses.class_loss(cls, target)
                loss = loss + cfg.adv_weight * g_adv + self.class_weight * g_cls
                out["g_adv"], out["g_cls"] = g_adv.item(), g_cls.item()
                out["translate_acc"] = (cls.argmax(1) == target).float().mean().item()
            if cfg.cycle_weight > 0:
                cycle = losses.latent_cycle(self.e(x_tr), z.detach())
                loss = loss + cfg.cycle_weight * cycle
                out["cycle"] = cycle.item()
            if self.regressor is not None:
                # R's first steps place points anywhere: the term comes in over 10-25% of the run.
                ramp = min(max((self.progress - 0.1) / 0.15, 0.0), 1.0)
                self.regressor.eval()
                follow = losses.expression_error(expression(self.regressor(x_tr)),
                                                 expression(self.regressor(x)).detach())
                self.regressor.train()
                loss = loss + ramp * cfg.expression_weight * follow
                out["expression"] = follow.item()
        self.descend(self.opt_ge, loss, [*self.g.parameters(), *self.e.parameters()])
        self.update_emas(cfg.ema_decay)
        self.d.requires_grad_(True)

        # D: real crops against the translations just made, and the class of real crops.
        if judged:
            out.update(self.update_discriminator(self.d, self.opt_d, x, labels, x_tr, self.loss_kind))
        # C: who the (detached) code came from.
        if self.code_d is not None:
            self.code_d.requires_grad_(True)
            with autocast(self.device, self.dtype):
                logits = self.code_d(z.detach())
                code_ce = losses.class_loss(logits, labels)
            self.descend(self.opt_code, code_ce, list(self.code_d.parameters()))
            out["code_acc"] = (logits.argmax(1) == labels).float().mean().item()
        return {"loss": loss.item(), **out}

    def _fit_regressor(self, rng: torch.Generator) -> dict[str, float]:
        """One step of R on real crops whose keypoints extract recorded."""
        pick = self.known[torch.randint(len(self.known), (self.batch,), generator=rng)]
        x = to_network(self.faces.images[pick], self.device).contiguous(memory_format=self.memory_format)
        target = self.faces.keypoints[pick].to(self.device)
        self.regressor.requires_grad_(True)
        with autocast(self.device, self.dtype):
            error = (self.regressor(x).float() - target).abs().mean()
        self.descend(self.opt_r, error, list(self.regressor.parameters()))
        self.regressor.requires_grad_(False)
        return {"keypoint_l1": error.item()}

    def check(self, window: dict[str, float]) -> str | None:
        return dead_code(window, self.cfg.max_saturated, self.stage)

    def preview(self) -> np.ndarray:
        return translation_tiles(self.ema_or_net("encoder"), self.ema_or_net("generator"), self.faces,
                                 self.preview_index, self.device)
