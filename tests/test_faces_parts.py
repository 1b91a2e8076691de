"""The reusable face stages one by one: mesh indices, reader, One Euro, alignment, formats."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from helpers import write_clip

from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces import mesh_indices as mi
from faceswap_gan.faces.align import (
    alignment_matrix,
    crop_template,
    eye_centers,
    template_eye_centers,
    transform_points,
    umeyama,
    warp_crop_to_frame,
)
from faceswap_gan.faces.alignments import (
    AlignmentsAppender,
    FaceRecord,
    load_state,
    make_header,
    read_alignments,
    write_alignments,
)
from faceswap_gan.faces.assign import SpeakerAssignment, cluster_tracks
from faceswap_gan.faces.smooth import OneEuroFilter
from faceswap_gan.video.reader import VideoReader, iter_images

# ---- mesh indices ------------------------------------------------------------------------


def _edges(polygon: tuple[int, ...]) -> set[frozenset[int]]:
    return {frozenset((a, b)) for a, b in zip(polygon, polygon[1:] + polygon[:1])}


@pytest.mark.parametrize(
    "polygon, name",
    [
        (mi.FACE_OVAL, "FACEMESH_FACE_OVAL"),
        (mi.LEFT_EYE, "FACEMESH_LEFT_EYE"),
        (mi.RIGHT_EYE, "FACEMESH_RIGHT_EYE"),
        (mi.LEFT_IRIS, "FACEMESH_LEFT_IRIS"),
        (mi.RIGHT_IRIS, "FACEMESH_RIGHT_IRIS"),
    ],
)
def test_polygons_match_mediapipe_connections(polygon, name):
    from mediapipe.python.solutions import face_mesh_connections as conn

    assert _edges(polygon) == {frozenset(e) for e in getattr(conn, name)}


def test_lips_match_mediapipe_connections():
    from mediapipe.python.solutions import face_mesh_connections as conn

    ours = _edges(mi.LIPS_OUTER) | _edges(mi.LIPS_INNER)
    theirs = {frozenset(e) for e in conn.FACEMESH_LIPS}
    assert ours == theirs  # two closed loops, outer and inner
    brows = {frozenset(e) for e in conn.FACEMESH_LEFT_EYEBROW | conn.FACEMESH_RIGHT_EYEBROW}
    assert {i for e in brows for i in e} == set(mi.EYEBROWS)


# ---- reader ------------------------------------------------------------------------------


def test_reader_rotation_timestamps_and_limits(tmp_path):
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, :32] = 255  # white on the left of the stored picture
    path = write_clip(tmp_path / "rot.mp4", [img] * 10, fps=10, rotation=90)
    with VideoReader(path) as reader:
        assert (reader.width, reader.height, reader.rotation) == (32, 64, 90)
        frames = list(reader)
    assert len(frames) == 10
    assert frames[0].image.shape == (64, 32, 3)
    # 90 degrees counter-clockwise: the stored left half ends up at the bottom.
    assert frames[0].image[48:, :, 0].mean() > 200 and frames[0].image[:16, :, 0].mean() < 50
    assert [f.index for f in frames] == list(range(10))
    assert np.allclose([f.timestamp for f in frames], np.arange(10) / 10, atol=1e-3)
    with VideoReader(path, start=0.5, max_frames=3) as reader:
        later = list(reader)
    assert [round(f.timestamp, 2) for f in later] == [0.5, 0.6, 0.7]


def test_reader_keeps_variable_frame_timestamps(tmp_path):
    pts = [0, 1, 2, 5, 6, 10]  # gaps: a variable frame rate (time base 1/10)
    path = write_clip(tmp_path / "vfr.mp4", [np.full((32, 32, 3), p * 20, np.uint8) for p in pts],
                      fps=10, pts=pts)
    with VideoReader(path) as reader:
        times = [round(f.timestamp, 3) for f in reader]
    assert times == [p / 10 for p in pts]


def test_reader_bad_inputs(tmp_path):
    with pytest.raises(FaceswapError, match="not found"):
        VideoReader(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(FaceswapError, match="not a video"):
        VideoReader(text)
    audio = tmp_path / "tone.m4a"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        samples = (np.sin(np.arange(16000) / 5) * 3000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(FaceswapError, match="no video stream"):
        VideoReader(audio)


def test_reader_truncated_video(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8) for i in range(30)]
    path = write_clip(tmp_path / "full.mp4", frames)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    with pytest.raises(FaceswapError, match="not a video|corrupt|truncated"):
        with VideoReader(cut) as reader:
            list(reader)
    # Index first (faststart): the demuxer just stops early; the declared count catches it.
    fast = write_clip(tmp_path / "fast.mp4", frames, faststart=True)
    with VideoReader(fast) as reader:
        assert len(list(reader)) == 30
    data = fast.read_bytes()
    fast.write_bytes(data[: len(data) // 2])
    with pytest.raises(FaceswapError, match=r"truncated video at frame \d+"):
        with VideoReader(fast) as reader:
            list(reader)


def test_iter_images_sorted_and_skips_unreadable(tmp_path, caplog):
    import cv2

    for name in ("b.png", "a.jpg"):
        cv2.imwrite(str(tmp_path / name), np.full((20, 30, 3), 128, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "readme.txt").write_text("ignored")
    frames = list(iter_images(tmp_path))
    assert [f.index for f in frames] == [0, 1]  # a.jpg, b.png; broken.png (index 2) skipped
    assert frames[0].image.shape == (20, 30, 3)
    assert "broken.png" in caplog.text


# ---- One Euro ----------------------------------------------------------------------------


def test_one_euro_removes_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    t = np.arange(200) / 25.0
    still = 100 + rng.normal(0, 1.0, (200, 5, 2))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    smooth = np.stack([f(x, ti) for x, ti in zip(still, t)])
    jitter_raw = np.abs(np.diff(still, axis=0)).mean()
    jitter_smooth = np.abs(np.diff(smooth, axis=0)).mean()
    assert jitter_smooth < 0.3 * jitter_raw
    # A fast ramp (200 px/s): lag stays small thanks to beta.
    ramp = 200 * t
    f.reset()
    out = np.array([f(np.array([x]), ti)[0] for x, ti in zip(ramp, t)])
    assert abs(out[-1] - ramp[-1]) < 10
    assert out.shape == ramp.shape


# ---- alignment ---------------------------------------------------------------------------


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (7, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    m = umeyama(src, dst, weights=rng.uniform(0.5, 2, 7))
    assert np.allclose(m[:, :2], scale * rot, atol=1e-9) and np.allclose(m[:, 2], shift, atol=1e-7)


@pytest.mark.parametrize("crop_size", [32, 64, 128, 256])
def test_template_eyes_are_level_and_centred(crop_size):
    eyes = template_eye_centers(crop_size, 0.25)
    assert eyes[0, 1] == pytest.approx(eyes[1, 1])
    assert (eyes[0, 0] + eyes[1, 0]) / 2 == pytest.approx(crop_size / 2)
    tpl = crop_template(crop_size, 0.25)
    assert np.all((tpl > 0) & (tpl < crop_size))
    # More padding = the face is smaller in the crop.
    assert np.ptp(crop_template(crop_size, 0.6)[:, 0]) < np.ptp(tpl[:, 0])


def test_alignment_of_template_points_is_exact_and_pastes_back():
    size = 64
    tpl = crop_template(size, 0.25)
    landmarks = np.zeros((478, 3), np.float32)
    # A face that is the template scaled x3, rotated 20 degrees and moved into a frame.
    a = np.radians(20)
    m_true = 3 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    landmarks[list(mi.ALIGN_POINTS), :2] = tpl @ m_true.T + [200, 120]
    m = alignment_matrix(landmarks, size, 0.25)
    back = transform_points(m, landmarks[list(mi.ALIGN_POINTS)])
    assert np.abs(back - tpl).max() < 1e-3
    crop = np.full((size, size, 3), 200, np.uint8)
    warped, mask = warp_crop_to_frame(crop, m, (360, 640))
    assert warped.shape == (360, 640, 3) and mask.shape == (360, 640)
    inside = landmarks[mi.NOSE_BRIDGE, :2]
    x, y = int(inside[0]), int(inside[1])
    assert mask[y, x] == pytest.approx(1.0) and warped[y, x, 0] == 200
    assert mask[5, 5] == 0.0 and mask.sum() == pytest.approx(size * size * 9, rel=0.05)
    assert eye_centers(landmarks).shape == (2, 2)


# ---- alignments file ---------------------------------------------------------------------


def _record(frame: int, track: int = 0) -> FaceRecord:
    lm = np.random.default_rng(frame).uniform(0, 300, (478, 3)).astype(np.float32)
    return FaceRecord(frame=frame, time=frame / 25, track=track, speaker="a", landmarks=lm,
                      matrix=np.eye(2, 3), score=0.9, blur=55.5, crop=f"faces/a/{frame}.png")


def test_alignments_roundtrip_and_resume_prefix(tmp_path):
    path = tmp_path / "clip.jsonl"
    header = make_header(source="clip.mp4", width=640, height=360, fps=25.0, crop_size=64,
                         padding=0.25, pipeline="debate")
    write_alignments(path, header, [])
    with AlignmentsAppender(path) as out:
        for f in range(3):
            out.append(_record(f))
        out.mark_done(2)
        out.append(_record(3))  # not followed by a done marker: an interrupted frame
    with path.open("a") as fh:
        fh.write('{"frame": 4, "ti')  # a half-written line
    state = load_state(path)
    assert state.last_done == 2 and [r.frame for r in state.records] == [0, 1, 2]
    first = json.loads(path.read_text().splitlines()[0])
    assert first["format"] == "faceswap_gan.alignments" and first["version"] == 2
    rec = state.records[1]
    assert rec.landmarks.shape == (478, 3)
    assert np.abs(rec.landmarks - _record(1).landmarks).max() <= 0.005 + 1e-4
    header["complete"] = True
    write_alignments(path, header, state.records)
    head, records = read_alignments(path)
    assert head["complete"] and len(records) == 3


def test_alignments_rejects_other_files(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"format": "something else"}\n')
    with pytest.raises(FaceswapError, match="not a faceswap_gan alignments"):
        load_state(bad)
    newer = tmp_path / "y.jsonl"
    newer.write_text('{"format": "faceswap_gan.alignments", "version": 99}\n')
    with pytest.raises(FaceswapError, match="version 99"):
        load_state(newer)


# ---- assignment --------------------------------------------------------------------------


def test_assignment_parsing():
    a = SpeakerAssignment.parse_positions("left=alice, right=bob")
    assert a.mode == "position" and a.names == ("alice", "bob") and a.positions == ("left", "right")
    for bad in ("left=alice,up=bob", "alice", "left=a,top=b", "left=a b"):
        with pytest.raises(FaceswapError):
            SpeakerAssignment.parse_positions(bad)
    with pytest.raises(FaceswapError, match="bad speaker name"):
        SpeakerAssignment.single("../escape")
    with pytest.raises(FaceswapError, match="twice"):
        SpeakerAssignment.clusters(["a", "a"])


def test_cluster_tracks_names_groups_by_first_appearance():
    rng = np.random.default_rng(0)
    feats = {0: rng.normal(5, 0.1, 8), 1: rng.normal(-5, 0.1, 8), 2: rng.normal(5, 0.1, 8),
             3: rng.normal(-5, 0.1, 8)}
    first = {0: 10, 1: 0, 2: 50, 3: 70}
    names = cluster_tracks(feats, first, ["first", "second"])
    assert names == {1: "first", 3: "first", 0: "second", 2: "second"}
