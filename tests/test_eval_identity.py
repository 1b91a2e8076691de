"""The independent identity classifier on real crops of the two shipped portraits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import CPU, write_face_folders

from faceswap_gan.evaluation.identity import (
    cached_identity_classifier,
    crops_hash,
    identity_crop,
    inner_face_mask,
    load_identity_classifier,
    train_identity_classifier,
)
from faceswap_gan.evaluation.landmarks import FaceMeshes
from faceswap_gan.synthetic.portraits import default_portraits

pytestmark = pytest.mark.slow  # MediaPipe views of the portraits and a classifier trained on them


def _views(image: np.ndarray, n: int, seed: int, meshes: FaceMeshes) -> list[np.ndarray]:
    """Crops of ``image`` re-photographed: turned, scaled, shifted and re-lit, then re-meshed."""
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    crops = []
    while len(crops) < n:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-12, 12), rng.uniform(0.8, 1.1))
        m[:, 2] += rng.uniform(-25, 25, 2)
        view = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        view = np.clip(view * rng.uniform(0.8, 1.15), 0, 255).astype(np.uint8)
        faces = meshes(view)
        if faces:
            crops.append(identity_crop(view, faces[0]))
    return crops


@pytest.fixture(scope="module")
def crops():
    portraits = default_portraits()
    with FaceMeshes() as meshes:
        train = {name: _views(img, 16, seed=1, meshes=meshes) for name, img in portraits.items()}
        test = {name: _views(img, 8, seed=2, meshes=meshes) for name, img in portraits.items()}
    return train, test


@pytest.fixture(scope="module")
def classifier(crops):
    return train_identity_classifier(crops[0], CPU, steps=120)


def test_crops_are_aligned_faces(crops):
    train, _ = crops
    a = train["speaker_a"]
    assert a[0].shape == (48, 48, 3) and a[0].dtype == np.uint8
    # Aligned: the same face cut from differently turned photos lines up closely.
    grey = [cv2.cvtColor(c, cv2.COLOR_RGB2GRAY).astype(float) for c in a[:6]]
    mask = inner_face_mask(48) > 0
    spread = np.mean([np.abs(g - grey[0])[mask].mean() for g in grey[1:]])
    other = np.abs(cv2.cvtColor(train["speaker_b"][0], cv2.COLOR_RGB2GRAY) - grey[0])[mask].mean()
    assert spread < 0.6 * other  # the inner face only: the two faces differ less than their hair


def test_classifier_is_accurate_on_held_out_views(crops, classifier):
    _, test = crops
    assert classifier.heldout_accuracy >= 0.9
    for name, items in test.items():
        predicted = classifier.predict(items)
        accuracy = np.mean([p == name for p in predicted])
        assert accuracy >= 0.9, (name, predicted)


def test_a_swap_to_the_wrong_speaker_fails_identity(crops, classifier):
    _, test = crops
    # Asked to become speaker_b, a face that stayed speaker_a is judged not to be speaker_b.
    predicted = classifier.predict(test["speaker_a"])
    assert np.mean([p == "speaker_b" for p in predicted]) <= 0.1


def test_classifier_ignores_hair_and_background(crops, classifier):
    """Only the inner face decides: a crop whose surroundings are the other speaker's
    (what a swap produces: new face, old hair) is still named by its face."""
    _, test = crops
    mask = inner_face_mask(48)[..., None] > 0
    mixed = [np.where(mask, a, b) for a, b in zip(test["speaker_a"], test["speaker_b"])]
    assert np.mean([p == "speaker_a" for p in classifier.predict(mixed)]) >= 0.9


def test_cache_round_trip(tmp_path, crops):
    train, test = crops
    clf = cached_identity_classifier(train, tmp_path, CPU, steps=20)
    key = crops_hash(train, 20, 0)
    assert (tmp_path / f"identity_{key}.safetensors").is_file()
    assert (tmp_path / f"identity_{key}.json").is_file()
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob(".*"))
    loaded = load_identity_classifier(tmp_path, key, CPU)
    assert loaded is not None and loaded.speakers == clf.speakers
    np.testing.assert_allclose(
        loaded.predict_proba(test["speaker_a"]), clf.predict_proba(test["speaker_a"]), atol=1e-5
    )
    # Different crops, different key: no stale classifier is reused.
    assert crops_hash({k: v[:-1] for k, v in train.items()}, 20, 0) != key
    # A damaged cache is retrained rather than trusted.
    (tmp_path / f"identity_{key}.safetensors").write_bytes(b"garbage")
    assert load_identity_classifier(tmp_path, key, CPU) is None


def test_crops_from_extracted_face_folders_look_like_crops_from_frames(tmp_path, classifier):
    """workspace/faces/<speaker>/ crops (32 px, as extract writes them) are re-meshed and cut
    the classifier's way: a classifier trained on frames names them right."""
    from faceswap_gan.evaluation.crops import folder_crops

    write_face_folders(tmp_path, crop_size=32, per_speaker=6)
    crops = folder_crops({s: tmp_path / "faces" / s for s in ("speaker_a", "speaker_b")})
    for name, items in crops.items():
        assert len(items) >= 5 and items[0].shape == (48, 48, 3)
        assert np.mean([p == name for p in classifier.predict(items)]) >= 0.8
