"""`faceswap eval` without ground truth (real footage): identity by the classifier and, where
dlib is installed, by a pretrained embedding; the rest against the source clip."""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
from helpers import write_eval_clip

from faceswap_gan.cli import main
from faceswap_gan.evaluation.judge import (
    PREDICTOR_FILE,
    RESNET_FILE,
    judge_unavailable,
    model_files,
)
from faceswap_gan.video.reader import VideoReader

pytestmark = pytest.mark.slow  # every test scores the eval footage

HAS_JUDGE = judge_unavailable() is None


@pytest.fixture(scope="module")
def footage(eval_footage, tmp_path_factory):
    """The eval footage and the source with its faces' detail blurred away (blurred)."""
    with VideoReader(eval_footage["clip"]) as reader:
        blurred = [cv2.GaussianBlur(f.image, (0, 0), 2.0) for f in reader]
    folder = tmp_path_factory.mktemp("blurred")
    return {**eval_footage, "blurred": write_eval_clip(folder / "blurred.mp4", blurred)}


def _eval(footage, *extra):
    main([
        "eval", "--clip", str(footage["clip"]), "--no-truth",
        "--speaker-clip", f"speaker_a={footage['speaker_a']}",
        "--speaker-clip", f"speaker_b={footage['speaker_b']}",
        "--workspace", str(footage["workspace"]), *extra,
    ])


@pytest.fixture(scope="module")
def reports(footage):
    """The truth clip (a perfect swap), the untouched clip and a blurred clip, scored
    against the source alone."""
    out, strip = footage["workspace"] / "nt.json", footage["workspace"] / "nt.png"
    _eval(footage, "--rendered", str(footage["truth"]), "--rendered", str(footage["clip"]),
          "--rendered", str(footage["blurred"]), "--judge-every", "2",
          "--json", str(out), "--strip", str(strip))
    return json.loads(out.read_text())["reports"], strip


def test_a_perfect_swap_reaches_every_target_without_a_truth(reports):
    perfect = reports[0][0]
    assert perfect["truth"] is None
    assert perfect["reference"]["identity_acc"] == "source"
    assert perfect["reference"]["sharpness_ratio"] == "source"
    overall = perfect["overall"]
    # Each source face's speaker is voted over its track, the target is the other one.
    assert set(perfect["per_speaker"]) == {"speaker_a", "speaker_b"}
    assert overall["identity_acc"] >= 0.95 and overall["source_vote_share"] >= 0.95
    assert overall["ssim"] is None and overall["truth_identity_acc"] is None  # no truth
    assert overall["pose_err_deg"] < 5.0  # same sway, another face
    # Every target but the mouth's: over 8 frames the mouth barely moves, so how far the swap
    # follows it (a correlation) is noise; the untouched clip follows it exactly.
    assert all(t["met"] and t["reference"] == "source" for k, t in perfect["targets"].items()
               if k != "mouth_corr")
    assert {"identity_acc", "sharpness_ratio", "grid_ratio", "mouth_corr"} <= set(perfect["targets"])
    assert reports[0][1]["overall"]["mouth_corr"] == pytest.approx(1.0)


def test_the_untouched_clip_keeps_the_source_faces(reports):
    untouched = reports[0][1]["overall"]
    assert untouched["identity_acc"] <= 0.05
    assert untouched["sharpness_ratio"] == pytest.approx(1.0)
    assert untouched["pose_err_deg"] == 0.0 and untouched["mouth_err"] == 0.0
    assert untouched["jitter_ratio"] == 1.0 and untouched["flicker_ratio"] == 1.0
    assert untouched["outside_diff"] == pytest.approx(0.0, abs=0.5)
    assert not reports[0][1]["targets"]["identity_acc"]["met"]


def test_a_blurred_face_fails_sharpness(reports):
    blurred = reports[0][2]
    assert blurred["overall"]["sharpness_ratio"] < 0.5
    assert not blurred["targets"]["sharpness_ratio"]["met"]
    assert blurred["overall"]["pose_err_deg"] < 2.0  # blur keeps the pose


def test_strip_has_no_truth_row(reports):
    _, strip = reports
    assert cv2.imread(str(strip)).shape[0] == 4 * 160 + 3 * 4  # source and three swaps


@pytest.mark.skipif(not HAS_JUDGE, reason=f"pretrained embedding unavailable: {judge_unavailable()}")
def test_pretrained_embedding_tells_the_swap_from_the_source(reports):
    perfect, untouched = reports[0][0], reports[0][1]
    assert perfect["judge"] == {"model": "dlib_face_recognition_resnet_model_v1", "every": 2}
    assert perfect["overall"]["identity_emb_acc"] == 1.0
    assert untouched["overall"]["identity_emb_acc"] == 0.0
    # dlib's scale: one person's faces lie within about 0.6 of each other.
    assert perfect["overall"]["emb_dist_target"] < 0.4 < perfect["overall"]["emb_dist_source"]
    assert perfect["targets"]["identity_emb_acc"]["met"]
    # Only the public-domain 5-point predictor and ResNet are used, never the 68-point model.
    assert [p.name for p in model_files()] == [PREDICTOR_FILE, RESNET_FILE]


def test_target_names_who_every_face_becomes_and_a_missing_dlib_is_one_line(
        footage, monkeypatch, tmp_path, capsys):
    """--target speaker_b: the left face (speaker_a) should become speaker_b, the right one
    stay speaker_b; the truth clip swapped both, so half are right. Without dlib (hidden
    here) the embedding is skipped with a note in the table."""
    monkeypatch.setitem(sys.modules, "dlib", None)  # as if dlib-bin were not installed
    out = tmp_path / "target.json"
    _eval(footage, "--rendered", str(footage["truth"]), "--target", "speaker_b",
          "--json", str(out), "--strip", str(tmp_path / "s.png"))
    report = json.loads(out.read_text())
    assert report["target"] == "speaker_b"
    assert set(report["per_speaker"]) == {"speaker_b"}
    assert report["overall"]["identity_acc"] == pytest.approx(0.5)
    assert report["judge"]["model"] is None and "dlib is not installed" in report["judge"]["note"]
    assert report["overall"]["identity_emb_acc"] is None
    assert "identity_emb_acc" not in report["targets"]
    err = capsys.readouterr().err
    assert "pretrained embedding skipped: dlib is not installed" in err and "Traceback" not in err


@pytest.mark.parametrize("extra,message", [
    (["--target", "nobody"], "the identity classifier can only learn speaker_a, speaker_b"),
    (["--speaker-clip", "speaker_c=SPEAKER_A"], "pass --target NAME"),
    (["--truth", "TRUTH"], "either --truth or --no-truth"),
])
def test_bad_no_truth_input_is_a_one_line_error(footage, capsys, extra, message):
    extra = [e.replace("SPEAKER_A", str(footage["speaker_a"])).replace("TRUTH", str(footage["truth"]))
             for e in extra]
    with pytest.raises(SystemExit) as exit_info:
        _eval(footage, "--rendered", str(footage["clip"]), *extra)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sharpness_ratio_is_also_reported_with_a_truth(footage, tmp_path):
    """The truth path adds the (source-referenced) sharpness and the mouth error's no-swap
    floor: the untouched clip scores exactly the floor."""
    out = tmp_path / "t.json"
    main(["eval", "--clip", str(footage["clip"]), "--truth", str(footage["truth"]),
          "--rendered", str(footage["clip"]), "--judge-every", "0",
          "--speaker-clip", f"speaker_a={footage['speaker_a']}",
          "--speaker-clip", f"speaker_b={footage['speaker_b']}",
          "--workspace", str(footage["workspace"]), "--json", str(out),
          "--strip", str(tmp_path / "s.png")])
    report = json.loads(out.read_text())
    overall = report["overall"]
    assert report["reference"]["ssim"] == "truth" and report["reference"]["sharpness_ratio"] == "source"
    assert overall["sharpness_ratio"] == pytest.approx(1.0)
    assert overall["mouth_err_floor"] > 0
    assert overall["mouth_err_over_floor"] == pytest.approx(0.0, abs=1e-9)
    assert np.isclose(overall["mouth_err"], overall["mouth_err_floor"])
    assert report["judge"] == {"model": None, "note": "turned off (--judge-every 0)"}
