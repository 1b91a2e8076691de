"""The speaker gate (models/gate.py) on sample footage with a third person, and in render and
extract: only the speakers' faces are swapped or kept as training data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    CPU,
    GATE_CROP,
    SAMPLE_MODEL,
    fitted_gate,
    run_cli,
    speaker_workspace,
    third_person_set,
    write_portrait_clip,
    write_portrait_crops,
)

from faceswap_gan.config import load_pipeline
from faceswap_gan.evaluation.others import crop_groups, measure_others, plain_reencode
from faceswap_gan.extract.pipeline import extract_source
from faceswap_gan.faces.assign import SpeakerAssignment
from faceswap_gan.models.checkpoint import load_face_model
from faceswap_gan.models.gate import (
    GateModel,
    dlib_unavailable,
    load_gate,
    read_crops,
    save_gate,
    track_means,
)
from faceswap_gan.render.pipeline import RenderOptions, TrackJudge, render_video
from faceswap_gan.render.target import LEFT_TARGET, LEFT_UNKNOWN, SwapTarget
from faceswap_gan.synthetic.footage import render_speaker_clip
from faceswap_gan.synthetic.portraits import default_third_portrait
from faceswap_gan.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    sample = third_person_set(root / "samples")
    ws = speaker_workspace(sample, root / "ws")
    return sample, ws, fitted_gate(ws, sample.speakers)


@pytest.fixture(scope="module")
def stranger(footage, tmp_path_factory):
    """Aligned crops of the third person from a clip of their own."""
    root = tmp_path_factory.mktemp("stranger")
    clip = render_speaker_clip(default_third_portrait(), root / "moderator.mp4", seconds=3,
                               fps=15, name="moderator")
    ws = Workspace(root / "ws")
    extract_source(clip.video, ws, load_pipeline("debate"), SpeakerAssignment.single("moderator"))
    return read_crops(ws.speaker_faces_dir("moderator"), GATE_CROP, 300)


@pytest.fixture(scope="module")
def plain(footage):
    sample = footage[0]
    pipe = load_pipeline("debate")
    return plain_reencode(sample.debate, sample.out_dir / "debate.plain.mp4", pipe.render.crf,
                          pipe.render.x264_preset)


def _render(footage, tmp_path, target, **options):  # type: ignore[no-untyped-def]
    sample, _, gate = footage
    model = load_face_model(SAMPLE_MODEL, CPU)
    model.gate = gate
    out = tmp_path / "out.mp4"
    summary = render_video(sample.debate, out, model, load_pipeline("debate"), target, CPU,
                           RenderOptions(**options))
    return out, summary


def test_gate_accepts_the_speakers_and_rejects_a_third_person(footage, stranger):
    sample, ws, gate = footage
    expected = "identity" if dlib_unavailable() else "dlib"
    assert gate.usable().kind == expected and set(gate.models) >= {"identity"}
    for kind, model in gate.models.items():
        assert model.calibration["heldout_accepted"] >= 0.98, kind
        tracks = track_means(model.scores(gate.embedder(kind)(stranger)).min(axis=1)[:, None])
        assert (tracks[:, 0] > model.threshold).mean() >= 0.98, kind


def test_gate_files_round_trip(footage, tmp_path):
    gate = footage[2]
    save_gate(gate, tmp_path)
    loaded = load_gate(tmp_path)
    assert loaded.speakers == gate.speakers and loaded.to_json() == gate.to_json()
    crops = read_crops(footage[1].speaker_faces_dir("speaker_a"), GATE_CROP, 8)
    assert np.allclose(loaded.embedder("identity")(crops), gate.embedder("identity")(crops), atol=1e-5)
    assert load_gate(tmp_path / "none") is None


def test_track_decision_never_flips():
    """Decided on its first frames, a track keeps its verdict whatever comes later."""
    gate = GateModel("test", np.zeros((2, 1), np.float32), np.ones(2, np.float32), 2.0)
    judge = TrackJudge(2, gate, embed=lambda crops: crops.reshape(len(crops), 1))

    class Job:  # what TrackJudge reads of a render job: the track and the crop
        def __init__(self, value: float) -> None:
            self.track_id = 7
            self.crop = type("Crop", (), {"image": np.full((1,), value, np.float32)})

    judge.add([Job(0.5), Job(1.0)])
    first = judge.verdict(7)
    judge.add([Job(9.0)] * 10)
    assert first.known and judge.verdict(7) == first


def test_render_swaps_the_speakers_and_leaves_the_others(footage, plain, tmp_path):
    sample = footage[0]
    out, summary = _render(footage, tmp_path, SwapTarget(swap=True))
    result = measure_others(out, plain, sample.record)
    assert result.speakers and result.others
    assert result.swapped_rate >= 0.98 and result.untouched_rate >= 0.98, result.as_dict()
    assert summary.faces_left.get(LEFT_UNKNOWN, 0) > 0 and "unknown" in summary.track_speakers.values()
    assert summary.gate == footage[2].usable().kind


def test_all_faces_swaps_everyone(footage, plain, tmp_path):
    sample = footage[0]
    out, summary = _render(footage, tmp_path, SwapTarget(swap=True, all_faces=True))
    result = measure_others(out, plain, sample.record)
    assert summary.gate is None and not summary.faces_left
    assert result.untouched_rate < 0.5, result.as_dict()


def test_to_leaves_the_target_and_strangers_alone(footage, plain, tmp_path):
    sample = footage[0]
    out, summary = _render(footage, tmp_path, SwapTarget(to="speaker_b"))
    record = json.loads(Path(sample.record).read_text())
    shown = [f["speaker"] for fr in record["frames"] for f in fr["faces"]]
    assert summary.faces_left.get(LEFT_TARGET, 0) >= 0.9 * shown.count("speaker_b")
    assert summary.faces_swapped >= 0.98 * shown.count("speaker_a")
    assert summary.faces_swapped <= shown.count("speaker_a")


def test_extract_speakers_puts_the_third_person_in_unknown(footage, tmp_path):
    sample = footage[0]
    ws = Workspace(tmp_path)
    summary = extract_source(sample.debate, ws, load_pipeline("debate"),
                             SpeakerAssignment.clusters(["speaker_a", "speaker_b"]))
    groups = crop_groups(summary.alignments, sample.record)
    moderator = groups.pop("moderator")
    assert moderator.get("unknown", 0) >= 0.95 * sum(moderator.values())
    # Each speaker's crops in one group of their own (named in order of first appearance).
    named = [next(iter(g)) for g in groups.values() if len(g) == 1]
    assert sorted(named) == ["speaker_a", "speaker_b"], groups
    assert summary.unknown == len(list((ws.root / "unknown").glob("*.png"))) > 0
    assert summary.contact_sheets["unknown"].is_file()
    assert ws.speakers() == ["speaker_a", "speaker_b"]


def test_extract_speaker_keeps_the_dominant_person(footage, tmp_path):
    """--speaker on the debate: speaker_b is on screen longest; everyone else is set aside."""
    sample = footage[0]
    summary = extract_source(sample.debate, Workspace(tmp_path), load_pipeline("debate"),
                             SpeakerAssignment.single("main"))
    groups = crop_groups(summary.alignments, sample.record)
    assert set(groups["speaker_b"]) == {"main"}
    assert all(set(g) == {"unknown"} for name, g in groups.items() if name != "speaker_b")
    assert summary.unknown_tracks >= 2 and summary.crops == {"main": groups["speaker_b"]["main"]}


def test_debate_record_says_who_is_where(footage):
    sample = footage[0]
    record = json.loads(Path(sample.record).read_text())
    truth = json.loads(sample.records["debate_truth"].read_text())
    assert record["others"] == ["moderator"] and sample.others == ["moderator"]
    roles = {f["role"] for fr in record["frames"] for f in fr["faces"]}
    assert roles == {"speaker", "moderator", "audience"}
    for fr, tr in zip(record["frames"], truth["frames"]):
        for face, tface in zip(fr["faces"], tr["faces"]):
            if face["role"] != "speaker":  # a perfect swap leaves them as they are
                assert face["truth_speaker"] == tface["speaker"] == face["speaker"] == "moderator"


def test_gate_travels_with_the_model(tmp_path, capsys):
    """`faceswap train` fits the gate into the model folder; the exported file carries it; a
    model file without one renders every face, with a notice; a folder without one gets one."""
    from faceswap_gan.models.checkpoint import export_inference_model
    from faceswap_gan.models.gate import GATE_META, GATE_WEIGHTS, ensure_gate, refit_gate
    from faceswap_gan.training.loop import TrainRequest, train
    from faceswap_gan.workspace import resolve_workspace

    ws = resolve_workspace(tmp_path / "ws")
    write_portrait_crops(ws.faces_dir, size=32, count=10)
    train(TrainRequest(ws, 1, ws.model_dir(), load_pipeline("tiny"), steps=2))
    train(TrainRequest(ws, 2, ws.model_dir(), None, steps=2))
    assert "speaker gate" in refit_gate(ws, ws.model_dir())
    model = load_face_model(ws.model_dir(), CPU)
    assert model.gate is not None and model.gate.speakers == ["astronaut", "hopper"]
    exported = load_face_model(export_inference_model(ws.model_dir(), tmp_path / "m.safetensors"), CPU)
    assert exported.gate.to_json() == model.gate.to_json()

    (ws.model_dir() / GATE_META).unlink()
    (ws.model_dir() / GATE_WEIGHTS).unlink()
    old_file = export_inference_model(ws.model_dir(), tmp_path / "old.safetensors")
    old = load_face_model(old_file, CPU)
    assert old.gate is None and "has no speaker gate" in ensure_gate(ws, old_file, old)
    bare = load_face_model(ws.model_dir(), CPU)
    assert bare.gate is None and "fitted the speaker gate" in ensure_gate(ws, ws.model_dir(), bare)
    assert bare.gate is not None and (ws.model_dir() / GATE_META).is_file()

    clip = write_portrait_clip(tmp_path / "clip.mp4", frames=6)
    code, text = run_cli(["render", str(clip), "--to", "hopper", "--model", str(old_file),
                          "--workspace", str(ws.root), "-o", str(tmp_path / "o.mp4")], capsys)
    assert code == 0 and "no speaker gate" in text and "every face" in text


def test_samples_cli_adds_a_moderator(tmp_path, capsys):
    code, text = run_cli(["samples", str(tmp_path), "--moderator", "--seconds", "1",
                          "--debate-seconds", "12", "--size", "128x72", "--fps", "6",
                          "--seed", "2", "--workers", "1"], capsys)
    assert code == 0, text
    record = json.loads((tmp_path / "debate.json").read_text())
    roles = {f["role"] for fr in record["frames"] for f in fr["faces"]}
    assert record["others"] == ["moderator"] and roles >= {"speaker", "moderator"}
    assert not (tmp_path / "moderator.mp4").exists()  # no training clip for them


def test_eval_leaves_the_moderator_out_of_the_swap_scores(footage):
    """The sample record marks the moderator's and audience's faces; eval scores only the
    speakers' (the others are measured as "left alone" by evaluation/others.py)."""
    from faceswap_gan.evaluation.truth import load_truth_record

    sample = footage[0]
    record = load_truth_record(sample.debate)
    roles = {face.role for faces in record.faces.values() for face in faces}
    assert {"speaker", "moderator"} <= roles
    assert record.speakers() == set(sample.speakers)
    frame, face = next((i, f) for i, faces in sorted(record.faces.items()) for f in faces
                       if f.role == "moderator")
    centre = (face.box[:2] + face.box[2:]) / 2
    assert record.face_at(frame, centre).role == "moderator"
