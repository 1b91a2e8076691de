"""Step 1: the auxiliary-classifier conditional GAN G(z, c) / D over all speakers.

One training step = one D update on a class-balanced batch of real crops and as many fakes,
then ``g_steps_per_d`` G updates on fresh z (the paper: 2). Losses: real/fake BCE (or hinge)
plus the class cross-entropy, for D on real crops and for G on its fakes; ours, with
``diversity_weight``, a mode-seeking term so that G's face depends on z (losses.mode_seeking).
``g_spread`` against ``real_spread`` in the metrics says whether it does.
"""

from __future__ import annotations

import numpy as np
import torch

from faceswap_gan.config import Pipeline
from faceswap_gan.device import autocast
from faceswap_gan.models.images import from_network
from faceswap_gan.models.networks import NetworkSpec, build_networks
from faceswap_gan.training import losses
from faceswap_gan.training.data import FaceSet, balanced_labels, sample_z, step_rng
from faceswap_gan.training.ddp import DistContext
from faceswap_gan.training.trainer import Trainer


class Step1Trainer(Trainer):
    stage = 1

    def __init__(self, spec: NetworkSpec, pipeline: Pipeline, faces: FaceSet, device: torch.device,
                 seed: int, dist: DistContext | None = None) -> None:
        super().__init__(spec, pipeline.train1, faces, device, seed, dist)
        g, d, _ = build_networks(spec, generator=torch.Generator().manual_seed(seed))
        self.g = self.train_net("generator", g, ema=self.cfg.ema_decay > 0)
        self.d = self.train_net("discriminator", d)
        self.opt_g = self.adam("opt_g", self.g.parameters(), self.cfg.lr)
        self.opt_d = self.adam("opt_d", self.d.parameters(), self.cfg.lr)
        # Fixed z for previews: the same pose/expression rendered for every speaker.
        self.preview_z = sample_z(8, spec.z_dim, torch.Generator().manual_seed(seed + 1), device)

    def _fake(self, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fakes for balanced speakers; the batch's two halves ask for the same speakers in the
        same order (what the mode-seeking term compares)."""
        z = sample_z(self.batch, self.spec.z_dim, rng, self.device)
        half = balanced_labels(max(1, self.batch // 2), self.spec.n_classes, rng)
        c = torch.cat([half, half])[: self.batch]
        if len(c) < self.batch:
            c = torch.cat([c, balanced_labels(self.batch - len(c), self.spec.n_classes, rng)])
        c = c.to(self.device)
        return z, c, self.g(z, c)

    def train_step(self, step: int) -> dict[str, float]:
        rng = step_rng(self.seed, step, self.dist.rank)
        x, labels = self.real_batch(rng, self.cfg.augment_flip, self.cfg.augment_light)
        kind = self.cfg.loss

        # D: real crops vs G's fakes, plus the class of the real crops.
        self.d.requires_grad_(True)
        with torch.no_grad(), autocast(self.device, self.dtype):
            _, _, fake = self._fake(rng)
        out = self.update_discriminator(self.d, self.opt_d, x, labels, fake, kind)

        # G: fool D and be classified as the asked-for speaker; D's weights stay fixed here.
        self.d.requires_grad_(False)
        sums = {"g_adv": 0.0, "g_cls": 0.0, "g_diversity": 0.0}
        for _ in range(self.cfg.g_steps_per_d):
            with autocast(self.device, self.dtype):
                z, c, fake = self._fake(rng)
                fake_adv, fake_cls = self.d(fake)
                g_adv = losses.g_adversarial(fake_adv, kind)
                g_cls = losses.class_loss(fake_cls, c)
                loss_g = g_adv + g_cls
                if self.cfg.diversity_weight > 0:
                    diversity = losses.mode_seeking(fake, z)
                    loss_g = loss_g + self.cfg.diversity_weight * diversity
                    sums["g_diversity"] += diversity.item()
            self.descend(self.opt_g, loss_g, list(self.g.parameters()))
            self.update_emas(self.cfg.ema_decay)
            sums["g_adv"] += g_adv.item()
            sums["g_cls"] += g_cls.item()
        self.d.requires_grad_(True)

        n = max(1, self.cfg.g_steps_per_d)
        out.update({k: v / n for k, v in sums.items() if k != "g_diversity" or self.cfg.diversity_weight > 0})
        out["g_spread"] = losses.spread(fake.detach(), c)
        out["real_spread"] = losses.spread(x, labels)
        return out

    def check(self, window: dict[str, float]) -> str | None:
        ratio = window.get("g_spread", 1.0) / max(window.get("real_spread", 1.0), 1e-6)
        if self.progress >= 0.5 and ratio < self.cfg.min_spread:
            return (
                f"step 1's generator has collapsed: its faces vary {ratio:.2f}x as much as the "
                f"real crops over z (train1.min_spread is {self.cfg.min_spread:g}), so no encoder "
                "could make it follow a face; train step 1 again with a new --seed or a larger "
                "train1.diversity_weight"
            )
        return None

    @torch.no_grad()
    def preview(self) -> np.ndarray:
        """(n_speakers, 8, S, S, 3) uint8: a row per speaker from the same eight z."""
        g = self.ema_or_net("generator")
        was_training = g.training
        g.eval()
        rows = []
        for label in range(self.spec.n_classes):
            c = torch.full((self.preview_z.shape[0],), label, dtype=torch.int64, device=self.device)
            rows.append(from_network(g(self.preview_z, c)))
        g.train(was_training)
        return np.stack(rows)
