"""`faceswap eval` end to end on tiny real footage (portraits, encoded with PyAV)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers import CPU, eval_cli, write_eval_clip

from faceswap_gan.cli import main

OVERALL_KEYS = {
    "identity_acc", "pose_err_deg", "yaw_err_deg", "pitch_err_deg", "roll_err_deg", "mouth_err",
    "eye_err", "ssim", "psnr", "outside_diff", "jitter_ratio", "flicker_ratio", "frames",
    "sharpness_ratio", "mouth_err_floor", "mouth_err_over_floor", "source_vote_share",
}


@pytest.fixture(scope="module")
def compared(eval_footage):
    """One run scoring two renders side by side: the truth itself, and the unswapped clip."""
    out = eval_footage["workspace"] / "compare.json"
    strip = eval_footage["workspace"] / "strip.png"
    eval_cli(eval_footage, "--rendered", str(eval_footage["truth"]),
             "--rendered", str(eval_footage["clip"]), "--json", str(out), "--strip", str(strip))
    return json.loads(out.read_text()), strip


@pytest.mark.slow
def test_truth_scored_against_itself_is_perfect(compared):
    data, _ = compared
    report = data["reports"][0]
    assert report["version"] == 1
    overall = report["overall"]
    assert OVERALL_KEYS <= set(overall)
    assert overall["frames"] == 8
    assert overall["identity_acc"] == 1.0
    assert overall["pose_err_deg"] == 0.0
    assert overall["mouth_err"] == 0.0 and overall["eye_err"] == 0.0
    assert overall["ssim"] == pytest.approx(1.0)
    assert overall["psnr"] == 100.0
    assert overall["jitter_ratio"] == 1.0 and overall["flicker_ratio"] == 1.0
    assert set(report["per_speaker"]) == {"speaker_a", "speaker_b"}
    assert all(t["met"] for t in report["targets"].values())
    assert report["classifier_heldout_acc"] >= 0.9


@pytest.mark.slow
def test_the_unswapped_clip_fails_identity_and_appearance(compared):
    data, _ = compared
    overall = data["reports"][1]["overall"]
    assert overall["identity_acc"] <= 0.1  # every face is still the source speaker
    assert overall["truth_identity_acc"] >= 0.9  # while the classifier knows the truth faces
    assert overall["ssim"] < 0.6
    assert overall["outside_diff"] == pytest.approx(0.0, abs=0.5)  # nothing was pasted
    targets = data["reports"][1]["targets"]
    assert not targets["identity_acc"]["met"] and not targets["ssim"]["met"]


@pytest.mark.slow
def test_strip_shows_source_swapped_and_truth(compared):
    _, strip = compared
    image = cv2.imread(str(strip))
    assert image is not None
    assert image.shape[0] == 4 * 160 + 3 * 4  # source, two swaps, truth; 4 px gutters


@pytest.mark.slow
def test_a_degraded_render_scores_worse_the_more_it_is_degraded(eval_footage, tmp_path):
    """Noise on the truth: identity stays, SSIM and PSNR fall with the noise level."""
    from faceswap_gan.video.reader import VideoReader

    with VideoReader(eval_footage["truth"]) as reader:
        truth = [f.image for f in reader]
    rng = np.random.default_rng(0)
    args = []
    for sigma in (6, 20):
        noisy = [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in truth]
        args += ["--rendered", str(write_eval_clip(tmp_path / f"noisy_{sigma}.mp4", noisy))]
    out = tmp_path / "noisy.json"
    eval_cli(eval_footage, *args, "--json", str(out), "--strip", str(tmp_path / "s.png"))
    light, heavy = (r["overall"] for r in json.loads(out.read_text())["reports"])
    assert 1.0 > light["ssim"] > heavy["ssim"]
    assert 100.0 > light["psnr"] > heavy["psnr"]
    assert light["identity_acc"] >= 0.9


@pytest.mark.slow
def test_bad_input_is_a_one_line_error(eval_footage, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        eval_cli(eval_footage, "--rendered", str(tmp_path / "missing.mp4"))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "error: rendered video not found" in err and "Traceback" not in err

    short = write_eval_clip(tmp_path / "short.mp4", [np.zeros((128, 256, 3), np.uint8)] * 3)
    with pytest.raises(SystemExit) as exit_info:
        eval_cli(eval_footage, "--rendered", str(short))
    assert exit_info.value.code == 1
    assert "must have the same frames" in capsys.readouterr().err


def test_help_shows_an_example(capsys):
    try:
        main(["eval", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "faceswap eval --clip" in capsys.readouterr().out


@pytest.mark.slow
def test_cuts_are_found_in_the_truth_and_restart_the_temporal_measures(eval_footage, tmp_path):
    """Without a record, a shot cut (here: the light changes colour at once) is found from
    the truth's histograms, and no jitter or flicker term straddles it."""
    from faceswap_gan.evaluation.crops import speaker_crops
    from faceswap_gan.evaluation.evaluate import evaluate_videos
    from faceswap_gan.evaluation.identity import train_identity_classifier
    from faceswap_gan.video.reader import VideoReader

    def relit(path, name):
        with VideoReader(path) as reader:
            frames = [f.image for f in reader]
        tint = np.array([1.3, 0.55, 0.45])
        frames = frames[:4] + [np.clip(f * tint, 0, 255).astype(np.uint8) for f in frames[4:]]
        return write_eval_clip(tmp_path / name, frames)

    clip = relit(eval_footage["clip"], "clip.mp4")
    truth = relit(eval_footage["truth"], "truth.mp4")
    crops = speaker_crops({s: eval_footage[s] for s in ("speaker_a", "speaker_b")},
                          per_speaker=12)
    classifier = train_identity_classifier(crops, CPU, steps=30)
    result = evaluate_videos(clip, truth, truth, classifier, record=None)
    assert result.cuts == [4]
    # Two faces, two shots of four frames: 2 x 2 x (4 - 2) second differences, 2 x 2 x 3 steps.
    assert sum(s.jitter_n for s in result.stability.values()) == 8
    assert sum(s.flicker_n for s in result.stability.values()) == 12
