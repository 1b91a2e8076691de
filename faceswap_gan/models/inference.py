"""Batched inference on a trained model: encode crops to z, generate a speaker's face from z,
translate crops to another speaker, classify crops with D's class head.

Crops are numpy uint8 RGB (N, S, S, 3) in and out, like everywhere in the library.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from faceswap_gan.device import amp_dtype, autocast
from faceswap_gan.errors import FaceswapError
from faceswap_gan.models.checkpoint import FaceModel
from faceswap_gan.models.images import from_network, to_network


class Translator:
    def __init__(self, model: FaceModel, device: torch.device, autocast: bool = True,
                 batch_size: int = 64) -> None:
        self.model = model
        self.device = torch.device(device)
        self.amp = amp_dtype(self.device, autocast)
        self.batch_size = batch_size
        for net in (model.generator, model.encoder, model.discriminator):
            if net is not None:
                net.to(self.device).eval().requires_grad_(False)

    @property
    def speakers(self) -> list[str]:
        return list(self.model.speakers)

    def label_of(self, speaker: str) -> int:
        return self.model.label_of(speaker)

    def _amp(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.amp)

    def _check_crops(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        s = self.model.size
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[1:] != (s, s, 3) or crops.dtype != np.uint8:
            raise FaceswapError(
                f"crops must be uint8 RGB of shape (N, {s}, {s}, 3) for this model, got "
                f"{crops.dtype} {crops.shape}"
            )
        return crops

    def _labels(self, labels: np.ndarray | int, n: int) -> np.ndarray:
        labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), (n,))
        bad = labels[(labels < 0) | (labels >= len(self.model.speakers))]
        if bad.size:
            raise FaceswapError(
                f"speaker label {int(bad[0])} out of range (the model has {len(self.model.speakers)} "
                f"speakers: {', '.join(self.model.speakers)})"
            )
        return labels

    @torch.inference_mode()
    def encode(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, z_dim) float32."""
        if self.model.encoder is None:
            raise FaceswapError("this model has no encoder; run `faceswap train --step 2` first")
        crops = self._check_crops(crops)
        out = []
        for i in range(0, len(crops), self.batch_size):
            with self._amp():
                z = self.model.encoder(to_network(crops[i:i + self.batch_size], self.device)).float()
            out.append(z.cpu())  # E applies the model's bound into G's prior itself
        return torch.cat(out).numpy() if out else np.zeros((0, self.model.z_dim), np.float32)

    @torch.inference_mode()
    def generate(self, z: np.ndarray, labels: np.ndarray | int) -> np.ndarray:
        """(N, z_dim) float and N labels (or one for all) -> (N, S, S, 3) uint8."""
        z = np.asarray(z, dtype=np.float32).reshape(-1, self.model.z_dim)
        labels = self._labels(labels, len(z))
        out = []
        for i in range(0, len(z), self.batch_size):
            zt = torch.from_numpy(np.ascontiguousarray(z[i:i + self.batch_size])).to(self.device)
            ct = torch.from_numpy(np.array(labels[i:i + self.batch_size])).to(self.device)
            with self._amp():
                out.append(from_network(self.model.generator(zt, ct)))
        s = self.model.size
        return np.concatenate(out) if out else np.zeros((0, s, s, 3), np.uint8)

    def translate(self, crops: np.ndarray, target_labels: np.ndarray | int) -> np.ndarray:
        """G(E(x), target): each crop's pose and expression as the target speaker."""
        crops = self._check_crops(crops)
        return self.generate(self.encode(crops), self._labels(target_labels, len(crops)))

    @torch.inference_mode()
    def classify(self, crops: np.ndarray) -> np.ndarray:
        """(N, n_speakers) probabilities from D's auxiliary class head."""
        crops = self._check_crops(crops)
        out = []
        for i in range(0, len(crops), self.batch_size):
            with self._amp():
                _, logits = self.model.discriminator(to_network(crops[i:i + self.batch_size], self.device))
            out.append(torch.softmax(logits.float(), dim=1).cpu())
        n = len(self.model.speakers)
        return torch.cat(out).numpy() if out else np.zeros((0, n), np.float32)
