"""Step 2: fit the encoder E with step 1's G frozen.

The paper's loss: MSE between z and E(G(z, c)) on fresh samples z ~ U[-1, 1]. Ours, when
``recon_weight`` > 0: also |x - G(E(x), c_x)| on real crops (and, with ``feature_weight``, the
same distance in D's trunk features), so E fits the footage it will see at render time.
G and D stay in eval mode: E learns the generator that inference will run.
"""

from __future__ import annotations

import copy
from pathlib import Path

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
from faceswap_gan.models.networks import (
    Discriminator,
    Encoder,
    Generator,
    NetworkSpec,
    _seeded,
    init_weights,
)
from faceswap_gan.training import losses
from faceswap_gan.training.data import (
    FaceSet,
    balanced_labels,
    sample_batch,
    sample_z,
    step_rng,
)
from faceswap_gan.training.ddp import DistContext, average_gradients, broadcast_module


class Step2Trainer:
    stage = 2

    def __init__(
        self,
        spec: NetworkSpec,
        pipeline: Pipeline,
        faces: FaceSet,
        step1: StageCheckpoint,
        step1_dir: Path,
        device: torch.device,
        seed: int,
        dist: DistContext | None = None,
    ) -> None:
        self.spec, self.cfg, self.faces = spec, copy.deepcopy(pipeline.train2), faces
        self.device, self.seed, self.dist = device, seed, dist or DistContext()
        dist = self.dist
        self.batch = max(1, self.cfg.batch_size // dist.world_size)
        self.dtype = amp_dtype(device, self.cfg.amp, training=True)
        self.memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        self.g, self.d = Generator(spec), Discriminator(spec)
        load_module(self.g, ema_or("generator", step1.weights), step1.weights, step1_dir)
        load_module(self.d, "discriminator", step1.weights, step1_dir)
        for net in (self.g, self.d):
            net.to(device, memory_format=self.memory_format).eval().requires_grad_(False)
        with _seeded(torch.Generator().manual_seed(seed + 2)):
            self.e = Encoder(spec)
            init_weights(self.e)
        self.e.to(device, memory_format=self.memory_format)
        broadcast_module(self.e, dist)
        self.opt = torch.optim.Adam(self.e.parameters(), lr=self.cfg.lr, betas=(self.cfg.beta1, self.cfg.beta2))
        self.preview_index = preview_indices(faces, seed + 3)

    @property
    def images_per_step(self) -> int:
        return self.batch * self.dist.world_size

    def train_step(self, step: int) -> dict[str, float]:
        rng = step_rng(self.seed, step, self.dist.rank)
        z = sample_z(self.batch, self.spec.z_dim, rng, self.device)
        c = balanced_labels(self.batch, self.spec.n_classes, rng).to(self.device)
        out: dict[str, float] = {}
        with autocast(self.device, self.dtype):
            with torch.no_grad():
                fake = self.g(z, c).contiguous(memory_format=self.memory_format)
            z_mse = losses.z_error(self.e(fake), z)
            loss = z_mse
            if self.cfg.recon_weight > 0 or self.cfg.feature_weight > 0 or self.cfg.translate_weight > 0:
                real_u8, labels = sample_batch(self.faces, self.batch, rng)
                labels = labels.to(self.device)
                x = to_network(real_u8, self.device).contiguous(memory_format=self.memory_format)
                z_real = self.e(x)
                if self.cfg.z_clamp:
                    # G only ever saw z in [-1, 1]; outside it the label loses its grip on identity.
                    z_real = z_real.clamp(-1.0, 1.0)
                x_rec = self.g(z_real, labels)
                recon = losses.pixel_recon(x, x_rec)
                out["recon_l1"] = recon.item()
                if self.cfg.recon_weight > 0:
                    loss = loss + self.cfg.recon_weight * recon
                if self.cfg.feature_weight > 0:
                    feat = losses.pixel_recon(self.d.features(x), self.d.features(x_rec))
                    out["recon_feat"] = feat.item()
                    loss = loss + self.cfg.feature_weight * feat
                if self.cfg.translate_weight > 0:
                    # The translation must read as its target speaker to D's class head, so E
                    # cannot hide the source identity in z.
                    shift = torch.randint(1, self.spec.n_classes, labels.shape, generator=rng)
                    target = (labels + shift.to(self.device)) % self.spec.n_classes
                    _, class_logits = self.d(self.g(z_real, target))
                    translate = losses.class_loss(class_logits, target)
                    out["translate_ce"] = translate.item()
                    loss = loss + self.cfg.translate_weight * translate
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.e.parameters(), self.dist)
        self.opt.step()
        return {"loss": loss.item(), "z_mse": z_mse.item(), **out}

    # -- checkpoint ---------------------------------------------------------------------------

    def weights(self) -> dict[str, torch.Tensor]:
        return module_tensors("encoder", self.e)

    def train_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors, info = optimizer_tensors("opt_e", self.opt)
        return tensors, {"opt_e": info}

    def load(self, ckpt: StageCheckpoint, where) -> None:
        load_module(self.e, "encoder", ckpt.weights, where)
        restore_optimizer("opt_e", self.opt, ckpt.state, ckpt.meta["optimizers"]["opt_e"])
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.lr
            group["betas"] = (self.cfg.beta1, self.cfg.beta2)

    # -- preview ------------------------------------------------------------------------------

    def preview(self) -> np.ndarray:
        return translation_tiles(self.e, self.g, self.faces, self.preview_index, self.device)


def preview_indices(faces: FaceSet, seed: int) -> torch.Tensor:
    """Fixed preview crops: up to two per speaker present, chosen by the seed."""
    pick = torch.Generator().manual_seed(seed)
    index = []
    for c in faces.labels.unique().tolist():
        pool = (faces.labels == c).nonzero().squeeze(1)
        index += pool[torch.randperm(len(pool), generator=pick)[:2]].tolist()
    return torch.tensor(index)


@torch.no_grad()
def translation_tiles(e: Encoder, g: Generator, faces: FaceSet, index: torch.Tensor,
                      device: torch.device) -> np.ndarray:
    """(rows, 2 + n_speakers - 1, S, S, 3): real crop, reconstruction, every other speaker."""
    was_training = e.training, g.training
    e.eval()
    g.eval()
    x = to_network(faces.images[index], device)
    labels = faces.labels[index].to(device)
    z = e(x)
    n_classes = g.spec.n_classes
    outputs = {c: from_network(g(z, torch.full_like(labels, c))) for c in range(n_classes)}
    e.train(was_training[0])
    g.train(was_training[1])
    real = from_network(x)
    rows = []
    for i, own in enumerate(labels.tolist()):
        others = [outputs[c][i] for c in range(n_classes) if c != own]
        rows.append(np.stack([real[i], outputs[own][i], *others]))
    return np.stack(rows)


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
