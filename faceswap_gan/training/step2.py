"""Step 2: fit the encoder E with step 1's G frozen.

The paper's loss: MSE between z and E(G(z, c)) on fresh samples z ~ U[-1, 1]. Ours, when
``recon_weight`` > 0: also |x - G(E(x), c_x)| on real crops (and, with ``feature_weight``, the
same distance in D's trunk features), so E fits the footage it will see at render time;
``prior_weight`` keeps E's code where its bound into G's prior still passes a gradient
(``z_saturated`` and ``z_spread`` in the metrics say whether the code is alive).
G and D stay in eval mode: E learns the generator that inference will run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from faceswap_gan.config import Pipeline
from faceswap_gan.device import autocast
from faceswap_gan.models.checkpoint import StageCheckpoint, ema_or, load_module
from faceswap_gan.models.networks import (
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
from faceswap_gan.training.data import FaceSet, balanced_labels, sample_z, step_rng
from faceswap_gan.training.ddp import DistContext
from faceswap_gan.training.previews import preview_indices, translation_tiles
from faceswap_gan.training.trainer import Trainer, dead_code


class Step2Trainer(Trainer):
    stage = 2

    def __init__(self, spec: NetworkSpec, pipeline: Pipeline, faces: FaceSet, step1: StageCheckpoint,
                 step1_dir: Path, device: torch.device, seed: int, dist: DistContext | None = None) -> None:
        super().__init__(spec, pipeline.train2, faces, device, seed, dist)
        g, d = Generator(spec), Discriminator(spec)
        load_module(g, ema_or("generator", step1.weights), step1.weights, step1_dir)
        load_module(d, "discriminator", step1.weights, step1_dir)
        self.g, self.d = self.frozen(g), self.frozen(d)
        with _seeded(torch.Generator().manual_seed(seed + 2)):
            e = Encoder(spec)
            init_weights(e)
        self.e = self.train_net("encoder", e)
        self.opt = self.adam("opt_e", self.e.parameters(), self.cfg.lr)
        self.preview_index = preview_indices(faces, seed + 3)

    def train_step(self, step: int) -> dict[str, float]:
        rng = step_rng(self.seed, step, self.dist.rank)
        z = sample_z(self.batch, self.spec.z_dim, rng, self.device)
        c = balanced_labels(self.batch, self.spec.n_classes, rng).to(self.device)
        cfg = self.cfg
        out: dict[str, float] = {}
        with autocast(self.device, self.dtype):
            with torch.no_grad():
                fake = self.g(z, c).contiguous(memory_format=self.memory_format)
            z_mse = losses.z_error(self.e(fake), z)
            loss = z_mse
            if cfg.recon_weight > 0 or cfg.feature_weight > 0 or cfg.translate_weight > 0:
                x, labels = self.real_batch(rng, flip=False, light=False)
                raw = self.e.raw(x)
                z_real = bound_z(raw, self.spec.z_bound)
                out.update(code_stats(z_real))
                if cfg.prior_weight > 0:
                    loss = loss + cfg.prior_weight * losses.z_prior(raw)
                x_rec = self.g(z_real, labels)
                recon = losses.pixel_recon(x, x_rec)
                out["recon_l1"] = recon.item()
                if cfg.recon_weight > 0:
                    loss = loss + cfg.recon_weight * recon
                if cfg.feature_weight > 0:
                    feat = losses.pixel_recon(self.d.features(x), self.d.features(x_rec))
                    out["recon_feat"] = feat.item()
                    loss = loss + cfg.feature_weight * feat
                if cfg.translate_weight > 0:
                    # The translation must read as its target speaker to D's class head, so E
                    # cannot hide the source identity in z.
                    shift = torch.randint(1, self.spec.n_classes, labels.shape, generator=rng)
                    target = (labels + shift.to(self.device)) % self.spec.n_classes
                    _, class_logits = self.d(self.g(z_real, target))
                    translate = losses.class_loss(class_logits, target)
                    out["translate_ce"] = translate.item()
                    loss = loss + cfg.translate_weight * translate
        self.descend(self.opt, loss, list(self.e.parameters()))
        return {"loss": loss.item(), "z_mse": z_mse.item(), **out}

    def check(self, window: dict[str, float]) -> str | None:
        return dead_code(window, self.cfg.max_saturated, self.stage)

    def preview(self) -> np.ndarray:
        return translation_tiles(self.e, self.g, self.faces, self.preview_index, self.device)


@torch.no_grad()
def z_error(encoder: Encoder, generator: Generator, n: int, seed: int, device: torch.device) -> float:
    """Held-out z error of E in eval mode: mean (E(G(z, c)) - z)^2 over n fresh samples."""
    rng = torch.Generator().manual_seed(seed)
    z = sample_z(n, generator.spec.z_dim, rng, device)
    c = balanced_labels(n, generator.spec.n_classes, rng).to(device)
    was = encoder.training, generator.training
    encoder.eval()
    generator.eval()
    err = losses.z_error(encoder(generator(z, c)), z).item()
    encoder.train(was[0])
    generator.train(was[1])
    return err

