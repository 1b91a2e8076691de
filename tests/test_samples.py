from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import mediapipe as mp
import numpy as np
import pytest
from helpers import CLIP_SIZE, run_cli
from scipy.spatial import Delaunay

from faceswap_gan.synthetic.footage import (
    generate_sample_set,
    plan_debate,
    render_plan,
    render_speaker_clip,
    truth_plan,
)
from faceswap_gan.synthetic.mesh import PoseParams, signed_areas
from faceswap_gan.synthetic.portraits import analyse_portrait, default_portraits
from faceswap_gan.synthetic.record import load_landmarks
from faceswap_gan.synthetic.render import Framing, SpeakerRenderer
from faceswap_gan.synthetic.truth import SwapTruthRenderer, swap_mask
from faceswap_gan.synthetic.warp import warp_image

SIZE = CLIP_SIZE
FPS = 15


@pytest.fixture(scope="module")
def portraits():
    return default_portraits()


@pytest.fixture(scope="module")
def sample_set(tmp_path_factory, portraits):
    out = tmp_path_factory.mktemp("samples")
    return generate_sample_set(out, portraits=portraits, seconds=2.0, debate_seconds=6.0,
                               size=SIZE, fps=FPS, seed=1, workers=1)


@pytest.fixture(scope="module")
def analysed(portraits):
    return {name: analyse_portrait(name, image) for name, image in portraits.items()}


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _record(path: Path) -> dict:
    return json.loads(path.read_text())


def _faces_per_frame(images, landmarks, every=2):
    """Detector hits and mesh re-detection error (fraction of the eye distance) per frame."""
    hits, errors, tried = 0, [], 0
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det, \
            mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                            max_num_faces=1) as mesh:
        for i in range(0, len(images), every):
            image = images[i]
            h, w = image.shape[:2]
            tried += 1
            hits += bool(det.process(image).detections)
            result = mesh.process(image)
            if result.multi_face_landmarks:
                found = np.array([[p.x * w, p.y * h] for p in result.multi_face_landmarks[0].landmark])
                truth = landmarks[i, 0]
                iod = np.linalg.norm(truth[468] - truth[473])
                errors.append(np.linalg.norm(found - truth, axis=1).mean() / iod)
    return hits / tried, np.array(errors), tried


def test_default_portraits_are_rgb_photos(portraits):
    assert list(portraits) == ["speaker_a", "speaker_b"]
    for image in portraits.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert min(image.shape[:2]) >= 256


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["speaker_a", "speaker_b", "debate", "debate_truth"])
def test_faces_are_detected_and_landmarks_agree(sample_set, clip):
    video = sample_set.out_dir / f"{clip}.mp4"
    rate, errors, tried = _faces_per_frame(_frames(video), load_landmarks(sample_set.landmarks[clip]))
    assert rate >= 0.95, f"{clip}: face found in {rate:.0%} of {tried} frames"
    assert len(errors) >= 0.95 * tried
    assert errors.mean() < 0.05, f"{clip}: mean landmark error {errors.mean():.3f} of the eye distance"


@pytest.mark.slow
def test_truth_matches_debate_frame_for_frame(sample_set):
    debate, truth = _record(sample_set.record), _record(sample_set.records["debate_truth"])
    assert truth["truth_of"] == "debate" and debate["truth_of"] is None
    assert debate["frame_count"] == truth["frame_count"] == len(debate["frames"]) == 6 * FPS
    assert debate["shots"] == truth["shots"] and debate["cuts"] == truth["cuts"]
    swap = debate["swap"]
    assert swap == {"speaker_a": "speaker_b", "speaker_b": "speaker_a"}
    lm_debate = load_landmarks(sample_set.landmarks["debate"])
    lm_truth = load_landmarks(sample_set.landmarks["debate_truth"])
    for fd, ft in zip(debate["frames"], truth["frames"]):
        assert fd["index"] == ft["index"] and fd["time"] == ft["time"] and fd["shot"] == ft["shot"]
        for a, b in zip(fd["faces"], ft["faces"]):
            assert b["speaker"] == swap[a["speaker"]] == a["truth_speaker"] == b["truth_speaker"]
            assert a["motion_of"] == b["motion_of"] == a["speaker"]
            for key in ("yaw", "pitch", "roll", "mouth", "blink", "iod", "side"):
                assert a[key] == b[key], key
    # Same placement: the eye midpoints coincide and the eye distances agree.
    eyes_d = (lm_debate[:, 0, 468] + lm_debate[:, 0, 473]) / 2
    eyes_t = (lm_truth[:, 0, 468] + lm_truth[:, 0, 473]) / 2
    iod_d = np.linalg.norm(lm_debate[:, 0, 468] - lm_debate[:, 0, 473], axis=1)
    iod_t = np.linalg.norm(lm_truth[:, 0, 468] - lm_truth[:, 0, 473], axis=1)
    assert (np.linalg.norm(eyes_d - eyes_t, axis=1) / iod_d).max() < 0.03
    assert np.abs(iod_d / iod_t - 1).max() < 0.1
    # And the videos agree in timing.
    with av.open(str(sample_set.debate)) as a, av.open(str(sample_set.truth)) as b:
        times_a = [f.pts * f.time_base for f in a.decode(video=0)]
        times_b = [f.pts * f.time_base for f in b.decode(video=0)]
    assert times_a == times_b and len(times_a) == 6 * FPS


@pytest.mark.slow
def test_truth_replaces_only_the_inner_face(sample_set):
    """Outside the render's mask the truth is the debate (up to codec noise); inside it is not."""
    lm = load_landmarks(sample_set.landmarks["debate"])
    assert np.array_equal(lm, load_landmarks(sample_set.landmarks["debate_truth"]))
    debate, truth = _frames(sample_set.debate), _frames(sample_set.truth)
    outside, inside = [], []
    for i in range(0, len(debate), 5):
        mask = swap_mask(lm[i, 0], SIZE)
        iod = np.linalg.norm(lm[i, 0, 468] - lm[i, 0, 473])
        # Leave a band around the mask: x264's blocks there see the changed face too.
        band = cv2.dilate((mask > 0).astype(np.uint8), np.ones((3, 3), np.uint8),
                          iterations=round(0.3 * iod))
        # x264 turns the same sensor noise into ~1.5 levels of difference; 5x5 means average it out.
        diff = np.abs(cv2.blur(debate[i], (5, 5)).astype(np.int16)
                      - cv2.blur(truth[i], (5, 5)).astype(np.int16))
        outside.append(diff[band == 0].mean())
        inside.append(diff[mask > 0.9].mean())
    assert max(outside) < 1.0, outside
    assert min(inside) > 8.0, inside


def _detail(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Fine grey-level texture inside ``where``, normalised: blind to tone and contrast."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    values = (grey - cv2.GaussianBlur(grey, (0, 0), 2.0))[where]
    return (values - values.mean()) / values.std()


def _onto(image: np.ndarray, landmarks: np.ndarray, to: np.ndarray, size) -> np.ndarray:
    """``image``'s face moved from its ``landmarks`` onto the mesh ``to`` (shape-free texture)."""
    triangles = Delaunay(to).simplices
    return warp_image(image, landmarks.astype(np.float64), to.astype(np.float64), triangles,
                      np.zeros(len(to)), np.sign(signed_areas(to, triangles)), size, np.eye(2, 3))


@pytest.mark.parametrize("source, target", [("speaker_a", "speaker_b"), ("speaker_b", "speaker_a")])
def test_truth_face_is_the_target_on_the_source_head(analysed, source, target):
    renderers = {name: SpeakerRenderer(p) for name, p in analysed.items()}
    swap = SwapTruthRenderer(renderers[source], renderers[target])
    framing = Framing(SIZE[0] / 2, 0.42 * SIZE[1], 0.2 * SIZE[1])
    for pose in (PoseParams(), PoseParams(18, 8, 5, 0.3, 0.0), PoseParams(-19, -6, -8, 0.05, 1.0)):
        truth = swap.render(pose, framing, SIZE)
        head = renderers[source].render(pose, framing, SIZE)
        face = renderers[target].render(pose, framing, SIZE)
        # Drawn on the source's mesh, with the source's pixels wherever the mask is 0.
        assert np.array_equal(truth.landmarks, head.landmarks)
        outside = swap_mask(truth.landmarks, SIZE) == 0
        assert np.array_equal(truth.image[outside], head.image[outside])
        # Inside, the texture is the target's: compare both faces on the target's own mesh.
        inner = swap_mask(face.landmarks, SIZE) > 0.99
        reference = _detail(face.image, inner)
        as_truth = np.mean(_detail(_onto(truth.image, truth.landmarks, face.landmarks, SIZE), inner) * reference)
        as_source = np.mean(_detail(_onto(head.image, head.landmarks, face.landmarks, SIZE), inner) * reference)
        assert as_truth > 0.6 and as_truth - as_source > 0.3, (pose, as_truth, as_source)


def test_truth_clip_is_deterministic(tmp_path, analysed):
    plan = truth_plan(plan_debate(list(analysed), 1.0, SIZE, FPS, "cuts", seed=3))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = render_plan(plan, analysed, tmp_path / "a")
    b = render_plan(plan, analysed, tmp_path / "b")
    assert a.record.read_bytes() == b.record.read_bytes()
    assert np.array_equal(load_landmarks(a.landmarks), load_landmarks(b.landmarks))
    assert all(np.array_equal(x, y) for x, y in zip(_frames(a.video), _frames(b.video)))


@pytest.mark.slow
def test_debate_cuts_between_speakers(sample_set):
    debate = _record(sample_set.record)
    shots = debate["shots"]
    assert len(shots) >= 2 and shots[0]["start"] == 0 and shots[-1]["end"] == debate["frame_count"]
    for before, after in zip(shots, shots[1:]):
        assert before["end"] == after["start"] and before["speaker"] != after["speaker"]
    for shot in shots[:-1]:
        assert 2 * FPS <= shot["end"] - shot["start"] <= 5 * FPS
    # A hard cut changes the picture far more than the motion inside a shot does.
    frames = _frames(sample_set.debate)
    change = [np.abs(frames[i].astype(int) - frames[i - 1].astype(int)).mean() for i in range(1, len(frames))]
    cut_changes = [change[c - 1] for c in debate["cuts"]]
    inside = [c for i, c in enumerate(change, start=1) if i not in debate["cuts"]]
    assert min(cut_changes) > 2 * max(inside)


@pytest.mark.slow
def test_clips_decode_with_audio_and_records(sample_set):
    for name in [*sample_set.speakers, "debate", "debate_truth"]:
        record = _record(sample_set.records[name])
        assert record["version"] == 1 and record["fps"] == FPS and record["size"] == list(SIZE)
        landmarks = load_landmarks(sample_set.landmarks[name])
        assert landmarks.dtype == np.float32
        assert landmarks.shape == (record["frame_count"], 1, 478, 2)
        with av.open(str(sample_set.out_dir / record["video"])) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            audio = container.streams.audio[0]
            assert audio.codec_context.name == "aac"
            sound = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio)])
            container.seek(0)
            frames = sum(1 for _ in container.decode(video=0))
        assert frames == record["frame_count"]
        seconds = record["frame_count"] / FPS
        assert abs(len(sound) / record["audio_rate"] - seconds) < 0.3
        assert np.abs(sound).max() > 0.1  # somebody speaks
        for frame in record["frames"]:
            for face in frame["faces"]:
                x0, y0, x1, y1 = face["box"]
                assert 0 < x1 - x0 < SIZE[0] and 0 < y1 - y0 < SIZE[1]
                assert abs(face["yaw"]) <= 20.5 and abs(face["pitch"]) <= 10.5
                assert abs(face["roll"]) <= 10.5 and 0 <= face["blink"] <= 1


@pytest.mark.slow
def test_mouth_follows_the_voice(sample_set):
    """Loud stretches of the audio are the stretches with an open mouth."""
    record = _record(sample_set.records["speaker_a"])
    with av.open(str(sample_set.speaker_clips["speaker_a"])) as container:
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    rate = record["audio_rate"]
    hop = rate // FPS
    loudness = np.array([np.sqrt(np.mean(sound[i * hop:(i + 1) * hop] ** 2))
                         for i in range(record["frame_count"])])
    mouth = np.array([f["faces"][0]["mouth"] for f in record["frames"]])
    assert mouth.max() > 0.2 and mouth.min() < 0.05
    assert np.corrcoef(loudness, mouth)[0, 1] > 0.5


def test_same_seed_same_clip(tmp_path, portraits):
    a = render_speaker_clip(portraits["speaker_b"], tmp_path / "a" / "b.mp4", seconds=1.0, size=SIZE, fps=FPS, seed=5)
    b = render_speaker_clip(portraits["speaker_b"], tmp_path / "b" / "b.mp4", seconds=1.0, size=SIZE, fps=FPS, seed=5)
    c = render_speaker_clip(portraits["speaker_b"], tmp_path / "c" / "b.mp4", seconds=1.0, size=SIZE, fps=FPS, seed=6)
    assert a.record.read_bytes() == b.record.read_bytes()
    assert np.array_equal(load_landmarks(a.landmarks), load_landmarks(b.landmarks))
    assert all(np.array_equal(x, y) for x, y in zip(_frames(a.video), _frames(b.video)))
    assert not np.array_equal(load_landmarks(a.landmarks), load_landmarks(c.landmarks))


@pytest.mark.slow
def test_split_layout_keeps_sides(tmp_path, portraits):
    out = generate_sample_set(tmp_path, portraits=portraits, seconds=0.5, debate_seconds=2.0,
                              size=SIZE, fps=FPS, layout="split", seed=2, workers=1)
    debate, truth = _record(out.record), _record(out.records["debate_truth"])
    lm, lm_truth = load_landmarks(out.landmarks["debate"]), load_landmarks(out.landmarks["debate_truth"])
    assert lm.shape == (2 * FPS, 2, 478, 2) and debate["cuts"] == []
    half = SIZE[0] / 2
    assert (lm[:, 0, :, 0] < half).all() and (lm[:, 1, :, 0] > half).all()
    assert (lm_truth[:, 0, :, 0] < half).all() and (lm_truth[:, 1, :, 0] > half).all()
    for fd, ft in zip(debate["frames"], truth["frames"]):
        assert [f["side"] for f in fd["faces"]] == ["left", "right"]
        assert [f["speaker"] for f in fd["faces"]] == ["speaker_a", "speaker_b"]
        assert [f["speaker"] for f in ft["faces"]] == ["speaker_b", "speaker_a"]
    # Both faces are findable in the frame.
    frame = _frames(out.debate)[FPS]
    with mp.solutions.face_detection.FaceDetection(model_selection=1) as det:
        assert len(det.process(frame).detections or []) == 2


@pytest.mark.slow
def test_existing_set_is_reused(sample_set, portraits):
    before = {p: p.stat().st_mtime_ns for p in sample_set.out_dir.iterdir()}
    again = generate_sample_set(sample_set.out_dir, portraits=portraits, seconds=2.0,
                                debate_seconds=6.0, size=SIZE, fps=FPS, seed=1, workers=1)
    assert again.debate == sample_set.debate
    assert {p: p.stat().st_mtime_ns for p in sample_set.out_dir.iterdir()} == before


def test_cli_refuses_bad_portraits(tmp_path, capsys):
    out = str(tmp_path / "out")
    code, err = run_cli(["samples", out, "--portrait", f"a={tmp_path / 'missing.jpg'}",
                         "--portrait", f"b={tmp_path / 'missing.jpg'}"], capsys, stdout=False)
    assert code == 1 and "error: portrait not found" in err and "Traceback" not in err

    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image")
    code, err = run_cli(["samples", out, "--portrait", f"a={garbage}", "--portrait", f"b={garbage}"],
                        capsys, stdout=False)
    assert code == 1 and "is not a readable image" in err

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 240, 3), 127, np.uint8))
    code, err = run_cli(["samples", out, "--portrait", f"a={blank}", "--portrait", f"b={blank}"],
                        capsys, stdout=False)
    assert code == 1 and "error: no face found" in err

    code, err = run_cli(["samples", out, "--portrait", f"a={blank}"], capsys, stdout=False)
    assert code == 1 and "at least two" in err

    code, err = run_cli(["samples", out, "--size", "big"], capsys, stdout=False)
    assert code == 1 and "WIDTHxHEIGHT" in err
    assert not (tmp_path / "out" / "debate.mp4").exists()
