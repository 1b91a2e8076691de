"""Preview grids and loss curves written while training (PNG, atomically)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from faceswap_gan.fileio import atomic_path, write_bytes_atomic
from faceswap_gan.models.images import from_network, to_network
from faceswap_gan.training.data import FaceSet


def grid_image(tiles: np.ndarray, gap: int = 2, min_tile: int = 64) -> np.ndarray:
    """(rows, cols, S, S, 3) uint8 -> one (H, W, 3) image, small tiles upscaled to min_tile."""
    rows, cols, s = tiles.shape[0], tiles.shape[1], tiles.shape[2]
    scale = max(1, -(-min_tile // s))
    t = s * scale
    out = np.full((rows * (t + gap) + gap, cols * (t + gap) + gap, 3), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            tile = tiles[r, c]
            if scale > 1:
                tile = cv2.resize(tile, (t, t), interpolation=cv2.INTER_NEAREST)
            y, x = gap + r * (t + gap), gap + c * (t + gap)
            out[y:y + t, x:x + t] = tile
    return out


def write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - only on an OpenCV without PNG support
        raise RuntimeError("OpenCV could not encode a PNG")
    write_bytes_atomic(path, data.tobytes())


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a crash ends the log
    return rows


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop log lines past the checkpoint a run resumes from, so the log has no duplicates."""
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def append_metrics(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def loss_curve(metrics: Path, out: Path, title: str) -> None:
    """One line per loss in the metrics log, against step."""
    rows = read_metrics(metrics)
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    skip = {"step", "time", "elapsed_s", "images_per_s", "lr"}
    keys = [k for k in rows[-1] if k not in skip and isinstance(rows[-1][k], (int, float))]
    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    steps = [r["step"] for r in rows]
    for k in keys:
        ax.plot(steps, [r.get(k, float("nan")) for r in rows], label=k, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")


def preview_indices(faces: FaceSet, seed: int) -> torch.Tensor:
    """Fixed preview crops: up to two per speaker present, chosen by the seed."""
    pick = torch.Generator().manual_seed(seed)
    index = []
    for c in faces.labels.unique().tolist():
        pool = (faces.labels == c).nonzero().squeeze(1)
        index += pool[torch.randperm(len(pool), generator=pick)[:2]].tolist()
    return torch.tensor(index)


@torch.no_grad()
def translation_tiles(e: nn.Module, g: nn.Module, faces: FaceSet, index: torch.Tensor,
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
