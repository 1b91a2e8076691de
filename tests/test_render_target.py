"""Whom each face becomes: names resolved to the model's labels once (render/target.py), and
the track decisions render takes from the speaker gate (render/pipeline.TrackJudge)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CPU, SAMPLE_MODEL

from faceswap_gan.errors import FaceswapError
from faceswap_gan.models.checkpoint import load_face_model
from faceswap_gan.models.gate import EARLY_ACCEPT, EARLY_REJECT, TRACK_FRAMES, GateModel
from faceswap_gan.render.pipeline import TrackJudge
from faceswap_gan.render.target import (
    LEFT_NO_SIDE,
    LEFT_NOT_CHOSEN,
    LEFT_TARGET,
    LEFT_UNKNOWN,
    SwapTarget,
    resolve,
)


@pytest.fixture(scope="module")
def model():
    return load_face_model(SAMPLE_MODEL, CPU)


def test_names_become_labels_once(model) -> None:
    a, b = model.speakers.index("speaker_a"), model.speakers.index("speaker_b")
    target = resolve(SwapTarget(only="speaker_a", assign={"left": "speaker_b", "right": "speaker_a"}),
                     model)
    assert (target.to, target.only, target.sides) == (None, a, {"left": b, "right": a})
    assert target.side_speaker(10.0, 640) == b and target.side_speaker(600.0, 640) == a
    assert resolve(SwapTarget(to="speaker_b"), model).to == b


@pytest.mark.parametrize("target, message", [
    (SwapTarget(), "say whom to swap to"),
    (SwapTarget(to="nobody"), "unknown speaker 'nobody' (this model knows: speaker_a, speaker_b)"),
    (SwapTarget(swap=True, to="speaker_a"), "--swap cannot be combined"),
    (SwapTarget(only="speaker_a", to="speaker_a"), "would change nothing"),
    (SwapTarget(swap=True, assign={"top": "speaker_a"}), "--assign takes left=SPEAKER,right=SPEAKER"),
    (SwapTarget(swap=True, assign={"left": "nobody"}), "unknown speaker 'nobody'"),
])
def test_impossible_targets_fail_before_any_work(model, target, message) -> None:
    with pytest.raises(FaceswapError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(target, model)


def test_each_face_gets_its_label_or_the_reason_it_stays(model) -> None:
    a, b = model.speakers.index("speaker_a"), model.speakers.index("speaker_b")
    to_b = resolve(SwapTarget(to="speaker_b"), model)
    assert to_b.label_for(a) == (b, None)
    assert to_b.label_for(b) == (None, LEFT_TARGET)
    assert to_b.label_for(a, known=False) == (None, LEFT_UNKNOWN)
    swap = resolve(SwapTarget(swap=True), model)
    assert swap.label_for(a) == (b, None) and swap.label_for(b) == (a, None)
    assert swap.label_for(None) == (None, LEFT_UNKNOWN)
    only_a = resolve(SwapTarget(only="speaker_a"), model)
    assert only_a.label_for(a) == (b, None) and only_a.label_for(b) == (None, LEFT_NOT_CHOSEN)
    sides = resolve(SwapTarget(swap=True, assign={"left": "speaker_a"}), model)
    assert sides.label_for(sides.side_speaker(600.0, 640)) == (None, LEFT_NO_SIDE)


class _Job:
    """What TrackJudge reads of a render job: the track and the crop (here a 1-d embedding)."""

    def __init__(self, track_id: int, value: float) -> None:
        self.track_id = track_id
        self.crop = type("Crop", (), {"image": np.full((1,), value, np.float32)})


def test_clear_tracks_are_decided_on_their_first_crop_doubtful_ones_on_more() -> None:
    """Speaker 0 at 0, speaker 1 at 10, threshold 2 (distance over a spread of 1): a face at
    0.5 is speaker 0 at once, one at 50 nobody at once; one at 3 waits for more frames."""
    gate = GateModel("test", np.array([[0.0], [10.0]], np.float32), np.ones(2, np.float32), 2.0)
    embedded: list[float] = []

    def embed(crops: np.ndarray) -> np.ndarray:
        embedded.extend(crops.ravel().tolist())
        return crops.reshape(len(crops), 1)

    judge = TrackJudge(2, gate, embed=embed)
    assert 0.5 <= EARLY_ACCEPT * 2.0 and 50 >= EARLY_REJECT * 2.0
    judge.add([_Job(1, 0.5), _Job(2, 50.0), _Job(3, 3.0)])
    assert judge.decided(1).speaker == 0 and judge.decided(1).known
    assert not judge.decided(2).known and judge.decided(3) is None
    judge.add([_Job(t, v) for t, v in ((1, 0.5), (2, 50.0), (3, 1.0))] * (TRACK_FRAMES - 1))
    assert embedded.count(0.5) == 1 and embedded.count(50.0) == 1  # nothing more asked of them
    # Track 3: every 3rd of its first frames embedded, then decided on their mean.
    assert 1 < len([v for v in embedded if v in (3.0, 1.0)]) < TRACK_FRAMES
    assert judge.verdict(3).speaker == 0 and judge.verdict(3).known
