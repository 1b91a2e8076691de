"""Extract on the project's sample footage (faceswap_gan.synthetic), checked against its records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import CLIP_SIZE

from faceswap_gan.config import load_pipeline
from faceswap_gan.extract.pipeline import extract_source
from faceswap_gan.faces.alignments import read_alignments
from faceswap_gan.faces.assign import SpeakerAssignment
from faceswap_gan.faces.track import FaceTracker
from faceswap_gan.video.reader import VideoReader
from faceswap_gan.workspace import Workspace

pytestmark = pytest.mark.slow  # sample sets generated and extracted

footage = pytest.importorskip("faceswap_gan.synthetic.footage")


@pytest.fixture(scope="session")
def sample_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    return {
        layout: footage.generate_sample_set(
            root / layout, seconds=2, debate_seconds=6, size=CLIP_SIZE, fps=25, layout=layout,
            seed=3, workers=1,
        )
        for layout in ("cuts", "split")
    }


def _record(path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def _true_speaker(record: dict, face) -> str:
    """The recorded speaker whose box centre is nearest the extracted face's."""
    faces = record["frames"][face.frame]["faces"]
    centre = face.landmarks[:, :2].mean(axis=0)

    def dist(f):
        x0, y0, x1, y1 = f["box"]
        return np.hypot((x0 + x1) / 2 - centre[0], (y0 + y1) / 2 - centre[1])

    return min(faces, key=dist)["speaker"]


def test_speaker_clip_has_a_face_in_almost_every_frame(sample_sets, tmp_path):
    clip = sample_sets["cuts"].speaker_clips["speaker_a"]
    summary = extract_source(clip, Workspace(tmp_path), load_pipeline("tiny"),
                             SpeakerAssignment.single("speaker_a"))
    header, records = read_alignments(summary.alignments)
    assert len({r.frame for r in records}) >= 0.95 * header["frames"]
    assert header["frames"] == _record(clip)["frame_count"]
    assert len({r.track for r in records}) == 1


def test_cuts_match_the_record(sample_sets):
    debate = sample_sets["cuts"].debate
    record = _record(debate)
    assert record["cuts"], "the sample debate should have cuts"
    found = []
    with VideoReader(debate) as reader, FaceTracker(load_pipeline("debate").extract, 25.0) as tracker:
        for frame in reader:
            tracker.update(frame)
            if tracker.last_frame_was_cut:
                found.append(frame.index)
    assert found == record["cuts"]


def test_clustering_matches_the_record(sample_sets, tmp_path):
    debate = sample_sets["cuts"].debate
    record = _record(debate)
    summary = extract_source(debate, Workspace(tmp_path), load_pipeline("tiny"),
                             SpeakerAssignment.clusters(["first", "second"]))
    _, records = read_alignments(summary.alignments)
    # Groups are named in order of appearance: map the record's speakers the same way.
    order = []
    for frame in record["frames"]:
        for f in frame["faces"]:
            if f["speaker"] not in order:
                order.append(f["speaker"])
    expected = dict(zip(order, ["first", "second"]))
    right = sum(r.speaker == expected[_true_speaker(record, r)] for r in records)
    assert right >= 0.95 * len(records), (right, len(records))
    assert set(summary.contact_sheets) == {"first", "second"}


def test_split_screen_matches_the_record(sample_sets, tmp_path):
    debate = sample_sets["split"].debate
    record = _record(debate)
    sides = {f["side"]: f["speaker"] for fr in record["frames"] for f in fr["faces"]}
    spec = ",".join(f"{side}={name}" for side, name in sides.items())
    summary = extract_source(debate, Workspace(tmp_path), load_pipeline("tiny"),
                             SpeakerAssignment.parse_positions(spec))
    _, records = read_alignments(summary.alignments)
    assert len(records) >= 0.95 * 2 * record["frame_count"]
    assert all(r.speaker == _true_speaker(record, r) for r in records)
