"""eval refuses videos of unequal length before it scores anything, when the containers say."""

from __future__ import annotations

import pytest
from helpers import CPU, write_portrait_clip

from faceswap_gan.errors import FaceswapError
from faceswap_gan.evaluation.evaluate import evaluate_videos
from faceswap_gan.evaluation.identity import IdentityClassifier, IdentityNet


def test_unequal_lengths_are_refused_before_scoring(tmp_path):
    clip = write_portrait_clip(tmp_path / "clip.mp4", frames=12, audio=False)
    rendered = write_portrait_clip(tmp_path / "clip.swapped.mp4", frames=8, audio=False)
    truth = write_portrait_clip(tmp_path / "clip_truth.mp4", frames=12, audio=False)
    classifier = IdentityClassifier(IdentityNet(2), ["speaker_a", "speaker_b"], 0.0, CPU)
    scored: list[int] = []
    with pytest.raises(FaceswapError, match="same frames; they have clip.mp4 12, "
                                            "clip.swapped.mp4 8, clip_truth.mp4 12"):
        evaluate_videos(clip, truth, rendered, classifier,
                        progress=lambda done, total: scored.append(done))
    assert scored == []  # not one frame was scored first
