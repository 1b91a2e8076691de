"""Eval on the sample generator's footage: its record names targets and cuts, and the
truth, speaker clips and record are found beside the clip without being named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceswap_gan.cli import main
from faceswap_gan.evaluation.truth import load_truth_record, sample_speakers
from faceswap_gan.synthetic.footage import generate_sample_set

pytestmark = pytest.mark.slow  # a sample set generated and scored


@pytest.fixture(scope="module")
def sample_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    return generate_sample_set(folder, seconds=2.5, debate_seconds=6.0, size=(256, 144), fps=8,
                               layout="cuts", workers=1)


def test_record_gives_cuts_and_targets(sample_set):
    record = load_truth_record(sample_set.debate, sample_set.truth)
    data = json.loads(sample_set.record.read_text())
    assert record is not None and record.has_shots
    assert record.cut_frames == set(data["cuts"]) and data["cuts"]
    frame = data["frames"][0]
    face = frame["faces"][0]
    x0, y0, x1, y1 = face["box"]
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    assert record.speaker_at(frame["index"], centre) == face["truth_speaker"]
    assert record.speaker_at(frame["index"], centre + 1000) is None
    assert sample_speakers(sample_set.debate) == ["speaker_a", "speaker_b"]


def test_sample_truth_against_itself_and_the_unswapped_debate(sample_set, tmp_path):
    out = tmp_path / "report.json"
    main(["eval", "--clip", str(sample_set.debate), "--rendered", str(sample_set.truth),
          "--rendered", str(sample_set.debate), "--workspace", str(tmp_path / "ws"),
          "--json", str(out)])
    truth, unswapped = json.loads(out.read_text())["reports"]
    assert truth["truth"] == str(sample_set.truth)  # found beside the clip
    assert truth["cuts"] == json.loads(sample_set.record.read_text())["cuts"]
    assert truth["overall"]["identity_acc"] == 1.0
    assert truth["overall"]["ssim"] == pytest.approx(1.0)
    assert truth["overall"]["pose_err_deg"] == 0.0
    assert truth["overall"]["jitter_ratio"] == 1.0
    assert all(t["met"] for t in truth["targets"].values())
    assert set(truth["per_speaker"]) == {"speaker_a", "speaker_b"}
    # The classifier, trained on the speaker clips, knows the truth's faces.
    assert truth["overall"]["truth_identity_acc"] >= 0.95
    assert unswapped["overall"]["identity_acc"] <= 0.05
    assert unswapped["overall"]["ssim"] < truth["overall"]["ssim"]


def test_speakers_the_classifier_cannot_learn_are_an_error(sample_set, tmp_path, capsys):
    clips = sample_set.speaker_clips
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--clip", str(sample_set.debate), "--rendered", str(sample_set.truth),
              "--speaker-clip", f"x={clips['speaker_a']}", "--speaker-clip", f"y={clips['speaker_b']}",
              "--workspace", str(tmp_path / "ws")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "error: the truth shows" in err and "--speaker-clip" in err
    assert not list((tmp_path / "ws" / "eval").glob("identity_*"))  # failed before training
