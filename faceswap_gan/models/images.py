"""The networks' image convention, in one place: RGB in [-1, 1], channels first.

The library passes images as uint8 RGB, (N, H, W, 3) numpy arrays everywhere; training keeps
its crops as one uint8 (N, 3, S, S) tensor. These are the only conversions to and from what
G, D and E see.
"""

from __future__ import annotations

import numpy as np
import torch


def to_network(images: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, 3, S, S) tensor, or (N, S, S, 3) numpy array -> float (N, 3, S, S) in [-1, 1]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


def from_network(x: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) in [-1, 1] -> (N, S, S, 3) uint8 RGB numpy array."""
    x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()
