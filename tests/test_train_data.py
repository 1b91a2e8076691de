"""Training crops from real portraits (helpers.write_portrait_crops), and the loading and
batching of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import write_portrait_crops

from faceswap_gan.errors import FaceswapError
from faceswap_gan.training.data import (
    balanced_labels,
    choose_speakers,
    load_faces,
    sample_batch,
    step_rng,
)
from faceswap_gan.workspace import resolve_workspace


def test_load_faces_resizes_and_labels_in_sorted_order(tmp_path: Path) -> None:
    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=48, count=5)
    speakers = choose_speakers(ws, None)
    assert speakers == ["astronaut", "hopper"]
    notices: list[str] = []
    faces = load_faces(ws, speakers, 32, report=notices.append)
    assert faces.images.shape == (10, 3, 32, 32) and faces.images.dtype == torch.uint8
    assert notices == ["crops of another size than the model's 32 px (10 at 48 px) are resized to "
                       "it; extract again with this preset for crops made at 32 px"]
    load_faces(ws, speakers, 48, report=notices.append)
    assert len(notices) == 1  # crops of the model's size: nothing to say
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
