"""The independent identity classifier: which speaker does a face look like?

A small CNN trained on real aligned crops of each speaker, never on the GAN's outputs and
unrelated to its discriminator, so it can judge a swap. Crops are cut by ``identity_crop``
(a similarity transform from five mesh points to a fixed template) and only the inner face
is shown to the network (a fixed ellipse), because a swap replaces the face but keeps the
source's hair and background. Augmentation (flips, colour jitter, small shifts and
rotations) makes it key on identity rather than on pose or lighting.

Cached as ``<eval dir>/identity_<hash>.safetensors`` (weights) beside
``identity_<hash>.json`` (version, speakers, sizes, held-out accuracy); never pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces import mesh_indices as mi
from faceswap_gan.faces.align import crop_template, eye_centers, template_eye_centers, umeyama
from faceswap_gan.fileio import atomic_path, write_json_atomic

CLASSIFIER_VERSION = 2  # 2: a tighter inner-face ellipse and per-crop colour standardisation
INPUT_SIZE = 48  # side of the crops the network sees

# Template positions (fractions of the crop side) of: right eye centre, left eye centre,
# nose tip, right mouth corner, left mouth corner; a frontal face fills the crop.
_TEMPLATE = np.array(
    [[0.34, 0.38], [0.66, 0.38], [0.50, 0.56], [0.37, 0.74], [0.63, 0.74]], dtype=np.float64
)


def identity_crop(image: np.ndarray, landmarks: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Aligned (size, size, 3) RGB crop of the face whose mesh is ``landmarks``."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    src = np.vstack([eye_centers(pts), pts[[mi.NOSE_TIP, *mi.MOUTH_CORNERS]]])
    matrix = umeyama(src, _TEMPLATE * size)
    return cv2.warpAffine(
        np.ascontiguousarray(image), matrix, (size, size),
        flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE,
    )


def identity_crops_from_aligned(crops: np.ndarray, padding: float) -> np.ndarray:
    """Aligned crops (``faces/align.py``: any size, this padding) cut as ``identity_crop``
    cuts faces, without a mesh: the two templates' eye centres and mouth corners give one
    fixed similarity. (N, S, S, 3) -> (N, INPUT_SIZE, INPUT_SIZE, 3)."""
    crops = np.asarray(crops)
    if len(crops) == 0:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    size = crops.shape[1]
    src = np.vstack([template_eye_centers(size, padding), crop_template(size, padding)[5:7]])
    dst = np.vstack([_TEMPLATE[0:2], _TEMPLATE[3:5]]) * INPUT_SIZE
    m = umeyama(src, dst)
    return np.stack([cv2.warpAffine(np.ascontiguousarray(c), m, (INPUT_SIZE, INPUT_SIZE),
                                    flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
                     for c in crops])


def inner_face_mask(size: int) -> np.ndarray:
    """(size, size) float32 ellipse over brows, eyes, nose, mouth and chin; 0 elsewhere.

    Inside the region a face swap replaces: a wider ellipse reaches the source's forehead,
    hair and cheek edges, which a swap keeps, and the classifier then names the source."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    inside = ((xx - 0.5) / 0.26) ** 2 + ((yy - 0.6) / 0.34) ** 2 <= 1.0
    return inside.astype(np.float32)


class IdentityNet(nn.Module):
    """Four strided conv blocks, global average pool, one linear layer."""

    def __init__(self, num_speakers: int, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(4):
            out = width * (2 ** min(i, 2))
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_speakers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


@dataclass
class IdentityClassifier:
    """A trained IdentityNet with the speaker names its outputs stand for."""

    net: IdentityNet
    speakers: list[str]
    heldout_accuracy: float
    device: torch.device

    def predict_proba(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, speakers) probabilities for aligned crops from ``identity_crop``."""
        if len(crops) == 0:
            return np.zeros((0, len(self.speakers)), dtype=np.float32)
        self.net.eval()
        with torch.no_grad(), _one_thread():
            x = _to_tensor(np.stack(crops)).to(self.device)
            return torch.softmax(self.net(x), dim=1).cpu().numpy()

    def predict(self, crops: Sequence[np.ndarray]) -> list[str]:
        """The most likely speaker for each crop."""
        return [self.speakers[i] for i in self.predict_proba(crops).argmax(axis=1)]

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, features) L2-normalised pooled features before the last layer: a face
        embedding (the speaker gate's fallback, models/gate.py)."""
        if len(crops) == 0:
            return np.zeros((0, self.net.head.in_features), dtype=np.float32)
        self.net.eval()
        with torch.no_grad(), _one_thread():
            x = _to_tensor(np.stack([_resize(c) for c in crops])).to(self.device)
            f = self.net.features(x).mean(dim=(2, 3))
            return torch.nn.functional.normalize(f, dim=1).cpu().numpy()


def train_identity_classifier(
    crops: Mapping[str, Sequence[np.ndarray]],
    device: torch.device,
    seed: int = 0,
    steps: int = 300,
    batch_size: int = 32,
    heldout_fraction: float = 0.2,
) -> IdentityClassifier:
    """Train on each speaker's crops; the last ``heldout_fraction`` of each is held out.

    Holding out the end of each list (not a random sample) keeps near-duplicate
    neighbouring video frames out of the held-out score.
    """
    speakers = sorted(crops)
    if len(speakers) < 2:
        raise FaceswapError("the identity classifier needs crops of at least two speakers")
    train_x, train_y, test_x, test_y = [], [], [], []
    for label, name in enumerate(speakers):
        items = [_resize(c) for c in crops[name]]
        if len(items) < 2:
            raise FaceswapError(f"the identity classifier needs at least 2 crops of '{name}'")
        n_test = max(1, round(len(items) * heldout_fraction))
        train_x += items[:-n_test]
        train_y += [label] * (len(items) - n_test)
        test_x += items[-n_test:]
        test_y += [label] * n_test
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = IdentityNet(len(speakers)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    x_all, y_all = np.stack(train_x), np.array(train_y)
    # Balanced batches: each speaker equally often, however many crops it has.
    by_label = [np.flatnonzero(y_all == k) for k in range(len(speakers))]
    net.train()
    with _one_thread():
        _fit(net, opt, x_all, y_all, by_label, batch_size, steps, rng, device)
    clf = IdentityClassifier(net, speakers, float("nan"), device)
    predicted = clf.predict_proba(test_x).argmax(axis=1)
    clf.heldout_accuracy = float((predicted == np.array(test_y)).mean())
    return clf


def _fit(net: IdentityNet, opt: torch.optim.Optimizer, x_all: np.ndarray, y_all: np.ndarray,
         by_label: list[np.ndarray], batch_size: int, steps: int, rng: np.random.Generator,
         device: torch.device) -> None:
    for _ in range(steps):
        idx = np.concatenate([rng.choice(ix, batch_size // len(by_label)) for ix in by_label])
        batch = augment(x_all[idx], rng)
        x = _to_tensor(batch).to(device)
        y = torch.as_tensor(y_all[idx], device=device)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch's CPU ops on one thread for the block, then restore the setting.

    This net is so small that intra-op threads only add overhead; on a busy machine their
    spin-waiting made each training step 20x slower (measured: ~800 ms vs ~35 ms).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random flips, small shifts/rotations/scales and colour jitter of (N, S, S, 3) crops."""
    n, size = batch.shape[0], batch.shape[1]
    out = np.empty(batch.shape, dtype=np.float32)
    flips = rng.random(n) < 0.5
    for i in range(n):
        crop = batch[i, :, ::-1] if flips[i] else batch[i]
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-8, 8),
                                         rng.uniform(0.93, 1.07))
        matrix[:, 2] += rng.uniform(-0.05, 0.05, size=2) * size
        out[i] = cv2.warpAffine(np.ascontiguousarray(crop), matrix, (size, size),
                                borderMode=cv2.BORDER_REPLICATE)
    # Colour jitter for the whole batch at once: saturation, contrast, brightness and tint.
    grey = out.mean(axis=3, keepdims=True)
    out = grey + (out - grey) * rng.uniform(0.7, 1.3, size=(n, 1, 1, 1))
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    out = (out - mean) * rng.uniform(0.8, 1.2, size=(n, 1, 1, 1)) + mean
    out = out * rng.uniform(0.75, 1.25, size=(n, 1, 1, 1)) * rng.uniform(0.9, 1.1, size=(n, 1, 1, 3))
    out += rng.uniform(-15, 15, size=(n, 1, 1, 1))
    out += rng.normal(0.0, 3.0, size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def crops_hash(crops: Mapping[str, Sequence[np.ndarray]], steps: int, seed: int) -> str:
    """Content hash of the training crops and settings: the cache key."""
    h = hashlib.sha1(f"v{CLASSIFIER_VERSION}:{INPUT_SIZE}:{steps}:{seed}".encode())
    for name in sorted(crops):
        h.update(name.encode())
        for crop in crops[name]:
            h.update(np.ascontiguousarray(crop).tobytes())
    return h.hexdigest()[:16]


def save_identity_classifier(clf: IdentityClassifier, directory: Path, key: str) -> Path:
    """Write weights (safetensors) and a JSON sidecar, both atomically; returns the weights path."""
    from safetensors.torch import save_file

    directory = Path(directory)
    weights = directory / f"identity_{key}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in clf.net.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    write_json_atomic(directory / f"identity_{key}.json", {
        "version": CLASSIFIER_VERSION,
        "speakers": clf.speakers,
        "input_size": INPUT_SIZE,
        "heldout_accuracy": clf.heldout_accuracy,
    })
    return weights


def load_identity_classifier(directory: Path, key: str, device: torch.device) -> IdentityClassifier | None:
    """The cached classifier for ``key``, or None when there is none (or it is unreadable)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = Path(directory) / f"identity_{key}.safetensors"
    meta_path = Path(directory) / f"identity_{key}.json"
    if not (weights.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("version") != CLASSIFIER_VERSION or meta.get("input_size") != INPUT_SIZE:
            return None
        net = IdentityNet(len(meta["speakers"]))
        net.load_state_dict(load_file(str(weights)))
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError):
        return None  # a damaged cache is retrained, not fatal
    return IdentityClassifier(net.to(device), list(meta["speakers"]),
                              float(meta["heldout_accuracy"]), device)


def cached_identity_classifier(
    crops: Mapping[str, Sequence[np.ndarray]],
    directory: Path,
    device: torch.device,
    seed: int = 0,
    steps: int = 300,
) -> IdentityClassifier:
    """Load the classifier for exactly these crops from the cache, or train and cache it."""
    key = crops_hash(crops, steps, seed)
    clf = load_identity_classifier(directory, key, device)
    if clf is None:
        clf = train_identity_classifier(crops, device, seed=seed, steps=steps)
        save_identity_classifier(clf, directory, key)
    return clf


def _to_tensor(batch: np.ndarray) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> float (N, 3, S, S): each channel standardised inside the inner
    face, outside it zeroed. Standardising removes skin tone and light, which a swap's colour
    correction takes from the source: identity is judged by the face's structure."""
    mask = torch.from_numpy(inner_face_mask(batch.shape[1]))
    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() / 255.0
    area = mask.sum()
    mean = (x * mask).sum(dim=(2, 3), keepdim=True) / area
    std = (((x - mean) * mask) ** 2).sum(dim=(2, 3), keepdim=True).div(area).sqrt()
    return (x - mean) / (std + 0.02) * mask


def _resize(crop: np.ndarray) -> np.ndarray:
    if crop.shape[0] == INPUT_SIZE and crop.shape[1] == INPUT_SIZE:
        return crop
    return cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
