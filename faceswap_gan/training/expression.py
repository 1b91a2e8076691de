"""Ours, step 3: a translation must open its mouth and eyes as far as its source does.

Nothing else in training asks that of a translation G(E(x), c'): its speaker's output blocks
only ever reconstruct their own speaker's faces. So step 3 also trains a small keypoint
regressor R on the real crops, where extract already stored MediaPipe's mesh for every crop
(alignments: landmarks in frame pixels and the frame -> crop matrix), and asks that the
expression measured by R on a translation equal the one R measures on its source: mouth
opening and the opening of each eye (the same ratios eval measures on the full mesh,
``evaluation.metrics.mouth_opening``/``eye_opening``). Face shape (mouth width, eye spacing)
is left out: it is part of who the face is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceswap_gan.faces.alignments import read_alignments
from faceswap_gan.faces.mesh_indices import (
    INNER_LIP_PAIRS,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LIDS,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LIDS,
)
from faceswap_gan.workspace import Workspace

# The mesh points R regresses, in this order: the eye corners (right outer, inner, left outer,
# inner), the inner-lip pairs (upper, lower), then each eye's lid pairs (upper, lower).
KEYPOINTS: tuple[int, ...] = (
    *RIGHT_EYE_CORNERS, *LEFT_EYE_CORNERS,
    *[i for pair in INNER_LIP_PAIRS for i in pair],
    *[i for pair in RIGHT_EYE_LIDS for i in pair],
    *[i for pair in LEFT_EYE_LIDS for i in pair],
)
KEYPOINT_LR = 1e-3  # R is small and fit from scratch within step 3
_LIPS = 4  # where the inner-lip pairs start in KEYPOINTS
_RIGHT_LIDS = _LIPS + 2 * len(INNER_LIP_PAIRS)
_LEFT_LIDS = _RIGHT_LIDS + 2 * len(RIGHT_EYE_LIDS)


def _pair_gaps(points: torch.Tensor, start: int, n: int) -> torch.Tensor:
    """Mean distance across ``n`` (upper, lower) pairs stored from ``start``."""
    pairs = points[:, start:start + 2 * n].reshape(-1, n, 2, 2)
    return (pairs[:, :, 0] - pairs[:, :, 1]).norm(dim=-1).mean(dim=1)


def expression(points: torch.Tensor) -> torch.Tensor:
    """(N, len(KEYPOINTS), 2) -> (N, 3): mouth opening over the eye distance, and each eye's
    lid gap over its width (eval's definitions on the full mesh)."""
    right_outer, right_inner, left_outer, left_inner = (points[:, i] for i in range(4))
    iod = ((right_outer + right_inner) / 2 - (left_outer + left_inner) / 2).norm(dim=-1).clamp_min(1e-3)
    mouth = _pair_gaps(points, _LIPS, len(INNER_LIP_PAIRS)) / iod
    right = _pair_gaps(points, _RIGHT_LIDS, len(RIGHT_EYE_LIDS)) / (right_outer - right_inner).norm(dim=-1).clamp_min(1e-3)
    left = _pair_gaps(points, _LEFT_LIDS, len(LEFT_EYE_LIDS)) / (left_outer - left_inner).norm(dim=-1).clamp_min(1e-3)
    return torch.stack([mouth, right, left], dim=1)


class KeypointRegressor(nn.Module):
    """R(x) -> (N, len(KEYPOINTS), 2) in crop units (0..1): four stride-2 convolutions and a
    linear layer, small next to E (it only has to place a few points on an aligned face)."""

    def __init__(self, size: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(4):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 3, 2, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(c_in * (size // 16) ** 2, 2 * len(KEYPOINTS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).view(x.shape[0], len(KEYPOINTS), 2) + 0.5


def crop_keypoints(workspace: Workspace, crop_files: Sequence[Path], size: int) -> torch.Tensor:
    """(N, len(KEYPOINTS), 2) float32 in crop units for each crop file, from the alignments
    extract wrote beside them; NaN where a crop has no record (crops added by hand)."""
    wanted = {Path(f).resolve(): i for i, f in enumerate(crop_files)}
    out = np.full((len(crop_files), len(KEYPOINTS), 2), np.nan, np.float32)
    folder = workspace.alignments_dir
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        _header, records = read_alignments(path)
        for record in records:
            if record.crop is None:
                continue
            index = wanted.get((workspace.root / record.crop).resolve())
            if index is None:
                continue
            points = record.landmarks[list(KEYPOINTS), :2].astype(np.float64)
            in_crop = points @ record.matrix[:, :2].T + record.matrix[:, 2]
            out[index] = (in_crop / size).astype(np.float32)
    return torch.from_numpy(out)
