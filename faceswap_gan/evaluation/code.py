"""Is a model's code alive: what eval reports of the model itself, beside the swap it made.

A swap can only follow its source when E's code varies with the face (not pinned at the edge
of G's prior) and G's face varies with the code. Measured on the crops of the model's own
speakers in the workspace (``faces/<speaker>/``), evenly spaced.
"""

from __future__ import annotations

import numpy as np
import torch

from faceswap_gan.models.checkpoint import FaceModel
from faceswap_gan.models.inference import Translator
from faceswap_gan.models.networks import code_stats
from faceswap_gan.training.data import read_crop
from faceswap_gan.workspace import Workspace


def code_health(model: FaceModel, workspace: Workspace, device: torch.device,
                per_speaker: int = 128, seed: int = 0) -> dict[str, float]:
    """``z_saturated`` and ``z_spread`` of E(x) over the speakers' crops (training's measures,
    ``networks.code_stats``), and ``g_spread_ratio``: how much G's faces for one speaker vary
    over random z, over how much that speaker's crops vary (near 0: G draws one face)."""
    translator = Translator(model, device, autocast=False)
    crops, spreads = [], []
    for speaker in model.speakers:
        files = sorted(workspace.speaker_faces_dir(speaker).glob("*.png"))
        if len(files) < 2:
            continue
        pick = np.linspace(0, len(files) - 1, min(per_speaker, len(files))).round().astype(int)
        own = np.stack([read_crop(files[i], model.size) for i in pick])
        crops.append(own)
        z = torch.rand(len(own), model.z_dim, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        drawn = translator.generate(z.numpy(), model.label_of(speaker))
        spreads.append(_spread(drawn) / max(_spread(own), 1e-6))
    if not crops:
        return {}
    stats = code_stats(torch.from_numpy(translator.encode(np.concatenate(crops))))
    return {**stats, "g_spread_ratio": float(np.mean(spreads))}


def _spread(images: np.ndarray) -> float:
    """Per-pixel standard deviation across images (0-255 scale), averaged."""
    return float(images.astype(np.float32).std(axis=0).mean())
