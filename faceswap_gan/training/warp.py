"""Random warps of E's input for step 3: a random affine plus a smooth random grid warp.

The target of step 3's reconstruction is the unwarped crop, so E cannot copy the face's
pixels through: it must read pose and expression, while the speaker's own output blocks
of G supply the identity (the training trick of deepfakes' autoencoders). All random
numbers come from the step's CPU generator, so a resumed run warps exactly as before.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# At strength 1: rotation, scale, shift (fraction of the crop) of the affine part, and the
# displacement of the smooth grid (fraction of the crop) at its control points.
MAX_ROTATION_DEG = 10.0
MAX_SCALE = 0.05
MAX_SHIFT = 0.05
GRID_POINTS = 5
GRID_DISPLACEMENT = 0.04


def random_warp(x: torch.Tensor, rng: torch.Generator, strength: float) -> torch.Tensor:
    """(N, C, H, W) images warped by a random affine and a smooth random grid each."""
    if strength <= 0:
        return x
    n = x.shape[0]
    angle = (torch.rand(n, generator=rng) * 2 - 1) * math.radians(MAX_ROTATION_DEG) * strength
    scale = 1 + (torch.rand(n, generator=rng) * 2 - 1) * MAX_SCALE * strength
    shift = (torch.rand(n, 2, generator=rng) * 2 - 1) * 2 * MAX_SHIFT * strength  # grid units: [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # A coarse random displacement field, upsampled smoothly to every pixel.
    coarse = (torch.rand(n, 2, GRID_POINTS, GRID_POINTS, generator=rng) * 2 - 1) * 2 * GRID_DISPLACEMENT * strength
    dense = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=True)
    grid = grid + dense.permute(0, 2, 3, 1)
    grid = grid.to(device=x.device, dtype=x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
