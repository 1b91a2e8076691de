"""Training crops from real portraits, and the loading/batching of them.

``write_portrait_crops`` is shared by the other training tests: it cuts jittered face crops
(small random shifts, scales and brightness) from two public-domain portraits that ship with
scikit-image and matplotlib, one speaker per portrait.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceswap_gan.errors import FaceswapError
from faceswap_gan.training.data import (
    balanced_labels,
    choose_speakers,
    load_faces,
    sample_batch,
    step_rng,
)
from faceswap_gan.workspace import resolve_workspace

# Face centre (x, y) and half-size in pixels in each portrait.
PORTRAITS = {
    "astronaut": (235, 110, 75),
    "hopper": (262, 228, 88),
}


def portrait(name: str) -> np.ndarray:
    from faceswap_gan.synthetic.portraits import default_portraits

    return default_portraits()["speaker_a" if name == "astronaut" else "speaker_b"]


def write_portrait_crops(faces_dir: Path, size: int = 32, count: int = 12, seed: int = 0,
                         speakers: tuple[str, ...] = ("astronaut", "hopper")) -> None:
    rng = np.random.default_rng(seed)
    for speaker in speakers:
        image = portrait(speaker)
        cx, cy, half = PORTRAITS[speaker]
        out = faces_dir / speaker
        out.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            h = half * rng.uniform(0.9, 1.1)
            x, y = cx + rng.uniform(-6, 6), cy + rng.uniform(-6, 6)
            src = np.float32([[x - h, y - h], [x + h, y - h], [x - h, y + h]])
            dst = np.float32([[0, 0], [size, 0], [0, size]])
            crop = cv2.warpAffine(image, cv2.getAffineTransform(src, dst), (size, size),
                                  flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
            crop = np.clip(crop.astype(np.float32) * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)
            cv2.imwrite(str(out / f"{i:04d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))


def test_load_faces_resizes_and_labels_in_sorted_order(tmp_path: Path) -> None:
    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=48, count=5)
    speakers = choose_speakers(ws, None)
    assert speakers == ["astronaut", "hopper"]
    faces = load_faces(ws, speakers, 32)
    assert faces.images.shape == (10, 3, 32, 32) and faces.images.dtype == torch.uint8
    assert faces.labels.tolist() == [0] * 5 + [1] * 5
    # The two portraits really differ: astronaut crops are darker on average than Hopper's? at
    # least their mean colours differ clearly.
    m0 = faces.images[faces.labels == 0].float().mean(dim=(0, 2, 3))
    m1 = faces.images[faces.labels == 1].float().mean(dim=(0, 2, 3))
    assert (m0 - m1).abs().max() > 10


def test_batches_are_class_balanced_and_reproducible(tmp_path: Path) -> None:
    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=4)
    faces = load_faces(ws, ["astronaut", "hopper"], 32)
    images, labels = sample_batch(faces, 9, step_rng(3, 7))
    assert sorted(labels.tolist()).count(0) in (4, 5)
    # each image comes from its label's pool
    for img, lab in zip(images, labels):
        pool = faces.images[faces.labels == lab]
        assert any(torch.equal(img, p) for p in pool)
    again, labels2 = sample_batch(faces, 9, step_rng(3, 7))
    assert torch.equal(images, again) and torch.equal(labels, labels2)
    other, _ = sample_batch(faces, 9, step_rng(3, 8))
    assert not torch.equal(images, other)
    assert balanced_labels(8, 3, step_rng(0, 0)).bincount().tolist() in ([3, 3, 2], [3, 2, 3], [2, 3, 3])


def test_too_few_or_unknown_speakers_are_user_errors(tmp_path: Path) -> None:
    ws = resolve_workspace(tmp_path / "ws")
    with pytest.raises(FaceswapError, match="at least two speakers"):
        choose_speakers(ws, None)
    write_portrait_crops(ws.faces_dir, size=32, count=2, speakers=("astronaut",))
    (ws.faces_dir / "empty").mkdir()
    with pytest.raises(FaceswapError, match="at least two speakers"):
        choose_speakers(ws, None)
    with pytest.raises(FaceswapError, match="no crops for speaker"):
        choose_speakers(ws, ["astronaut", "empty"])
    with pytest.raises(FaceswapError, match="no crops in"):
        load_faces(ws, ["astronaut", "empty"], 32)
