"""Training crops in memory and class-balanced batches drawn from them.

Crops are small (64 px RGB is 12 KB each), so every speaker's folder is read once into one
uint8 tensor; batches are index draws from a seeded torch.Generator, so a run is reproducible
and a resumed run draws exactly what the uninterrupted run would have drawn.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces.assign import check_speaker_name
from faceswap_gan.workspace import Workspace


@dataclass
class FaceSet:
    images: torch.Tensor  # (N, 3, S, S) uint8 RGB
    labels: torch.Tensor  # (N,) int64, index into speakers
    speakers: list[str]  # label order
    files: list[Path] = field(default_factory=list)  # the crop file of each image
    # (N, K, 2) expression keypoints in crop units, NaN where unknown (training/expression.py)
    keypoints: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def count(self, label: int) -> int:
        return int((self.labels == label).sum())


def choose_speakers(workspace: Workspace, requested: list[str] | None) -> list[str]:
    """Sorted speakers to train on: all with crops, or the requested subset (which must exist)."""
    available = workspace.speakers()
    if requested:
        unknown = [s for s in requested if s not in available]
        if unknown:
            known = ", ".join(available) or "none"
            raise FaceswapError(
                f"no crops for speaker(s) {', '.join(unknown)} in {workspace.faces_dir} "
                f"(speakers with crops: {known})"
            )
        chosen = sorted(set(requested))
    else:
        chosen = available
    for name in chosen:  # the rule extract names speakers by (a model with others will not load)
        check_speaker_name(name)
    if len(chosen) < 2:
        found = ", ".join(chosen) or "none"
        raise FaceswapError(
            f"training needs crops of at least two speakers in {workspace.faces_dir}/<speaker>/ "
            f"(found: {found}); run `faceswap extract ... --speaker NAME` first"
        )
    return chosen


def read_crop(path: Path, size: int, other_sizes: Counter[int] | None = None) -> np.ndarray:
    """One crop as (size, size, 3) uint8 RGB, resized if the file holds another size (counted
    by its side in ``other_sizes`` when given)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FaceswapError(f"cannot read crop {path} (not an image?)")
    if bgr.shape[0] != size or bgr.shape[1] != size:
        if other_sizes is not None:
            other_sizes[int(bgr.shape[0])] += 1
        shrink = bgr.shape[0] > size
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_faces(
    workspace: Workspace, speakers: list[str], size: int, label_order: list[str] | None = None,
    report: Callable[[str], None] | None = None,
) -> FaceSet:
    """Read every speaker's crops; an empty folder is a user error, not a silent skip.

    Labels index ``label_order`` (a trained model's speakers) when given, else ``speakers``.
    Crops of another size than the model's are resized, and ``report`` is told how many.
    """
    order = list(label_order or speakers)
    images: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[Path] = []
    other_sizes: Counter[int] = Counter()
    for speaker in speakers:
        label = order.index(speaker)
        files = sorted(workspace.speaker_faces_dir(speaker).glob("*.png"))
        if not files:
            raise FaceswapError(
                f"no crops in {workspace.speaker_faces_dir(speaker)}; "
                f"run `faceswap extract ... --speaker {speaker}` first"
            )
        for f in files:
            images.append(read_crop(f, size, other_sizes))
            labels.append(label)
            paths.append(f)
    if other_sizes and report is not None:
        found = ", ".join(f"{n} at {side} px" for side, n in sorted(other_sizes.items()))
        report(f"crops of another size than the model's {size} px ({found}) are resized to it; "
               f"extract again with this preset for crops made at {size} px")
    stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return FaceSet(stacked, torch.tensor(labels, dtype=torch.int64), order, paths)


def balanced_labels(batch_size: int, n_classes: int, rng: torch.Generator) -> torch.Tensor:
    """Labels with every class batch_size // n_classes times; the remainder goes to random classes."""
    base = torch.arange(n_classes).repeat_interleave(batch_size // n_classes)
    extra = torch.randperm(n_classes, generator=rng)[: batch_size - base.numel()]
    return torch.cat([base, extra])


def sample_batch(faces: FaceSet, batch_size: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-balanced batch: (uint8 images (B,3,S,S), labels (B,))."""
    # Balance over the speakers that have crops here (step 2 may see a subset of the model's).
    present = faces.labels.unique()
    labels = present[balanced_labels(batch_size, len(present), rng)]
    index = torch.empty(batch_size, dtype=torch.int64)
    for c in present.tolist():
        where = (labels == c).nonzero().squeeze(1)
        pool = (faces.labels == c).nonzero().squeeze(1)
        index[where] = pool[torch.randint(len(pool), (len(where),), generator=rng)]
    return faces.images[index], labels


def augment(
    x: torch.Tensor, rng: torch.Generator, flip: bool, light: bool
) -> torch.Tensor:
    """Random horizontal flips and small brightness/contrast changes on [-1, 1] images.

    Random numbers are drawn on the CPU from ``rng`` so runs are reproducible on any device.
    """
    b = x.shape[0]
    if flip:
        mask = (torch.rand(b, generator=rng) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    if light:
        gain = (1.0 + 0.2 * (torch.rand(b, generator=rng) - 0.5)).to(x.device)  # contrast +-10%
        bias = (0.2 * (torch.rand(b, generator=rng) - 0.5)).to(x.device)  # brightness +-5% of range
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * gain[:, None, None, None] + mean + bias[:, None, None, None]).clamp(-1, 1)
    return x


def sample_z(batch_size: int, z_dim: int, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    """z ~ U[-1, 1], as in the paper."""
    return (torch.rand(batch_size, z_dim, generator=rng) * 2 - 1).to(device)


def step_rng(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator for one training step: derived from (seed, rank, step) alone, so a resumed
    run needs no saved RNG stream to draw exactly what the uninterrupted run drew."""
    state = np.random.SeedSequence([seed % 2**32, rank, step]).generate_state(2, dtype=np.uint32)
    g = torch.Generator()
    g.manual_seed(int(state[0]) << 32 | int(state[1]))
    return g
