"""`faceswap extract` end to end on generated footage with known ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import (
    astronaut,
    compose,
    cuts_clip,
    hopper,
    placement,
    run_cli,
    single_speaker_clip,
    split_clip,
    write_clip,
)

from faceswap_gan.config import load_pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.extract.pipeline import extract_source, source_id
from faceswap_gan.faces import mesh_indices as mi
from faceswap_gan.faces.align import eye_centers, template_eye_centers, transform_points
from faceswap_gan.faces.alignments import load_state, read_alignments
from faceswap_gan.faces.assign import SpeakerAssignment
from faceswap_gan.faces.detect import FaceDetector, MeshFitter
from faceswap_gan.faces.track import FaceTracker, track_stream
from faceswap_gan.video.reader import VideoReader
from faceswap_gan.workspace import Workspace


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    return {
        "single": single_speaker_clip(root / "single.mp4", frames=60),
        "cuts": cuts_clip(root / "cuts.mp4", shot_frames=16, shots=4),
        "split": split_clip(root / "split.mp4", frames=24),
    }


@pytest.fixture(scope="session")
def reference_landmarks():
    """Meshes of the still portraits (what each frame's face is a warped copy of)."""
    out = {}
    with FaceDetector() as det, MeshFitter() as mesh:
        for name, img in (("astronaut", astronaut()), ("hopper", hopper())):
            out[name] = mesh.fit(img, det.detect(img)[0])
    return out


def _truth_points(clip, frame: int, ref: dict, indices=None) -> dict[str, np.ndarray]:
    """Where each speaker's reference landmarks are in ``frame`` (x, y)."""
    return {name: transform_points(m, ref[name]) for name, m in clip.placements[frame]}


def _speaker_of(record, clip, ref) -> str:
    """The true speaker of a recorded face: the one whose true eyes are nearest."""
    eyes = eye_centers(record.landmarks).mean(axis=0)
    truth = _truth_points(clip, record.frame, ref)
    return min(truth, key=lambda n: np.linalg.norm(eye_centers(truth[n]).mean(axis=0) - eyes))


@pytest.fixture(scope="session")
def single_run(clips, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws_single"))
    pipeline = load_pipeline("debate")
    summary = extract_source(clips["single"].path, ws, pipeline, SpeakerAssignment.single("astro"))
    return ws, pipeline, summary


def test_single_speaker_faces_in_almost_every_frame(single_run, clips):
    ws, pipeline, summary = single_run
    header, records = read_alignments(summary.alignments)
    frames = clips["single"].frames
    assert header["complete"] and header["frames"] == frames and header["version"] == 2
    assert len({r.frame for r in records}) >= 0.95 * frames
    assert {r.track for r in records} == {0}  # one track through a shot with no cut
    assert summary.cuts == 0
    crops = sorted((ws.root / "faces" / "astro").glob("*.png"))
    assert len(crops) == summary.crops["astro"] == sum(1 for r in records if r.crop)
    assert len(crops) >= 0.9 * frames
    img = cv2.imread(str(crops[0]))
    assert img.shape == (pipeline.extract.crop_size,) * 2 + (3,)
    assert all((ws.root / r.crop).is_file() for r in records if r.crop)


def test_eye_centres_land_on_the_template(single_run, clips, reference_landmarks):
    """True eye centres (the still portrait's, moved with the known placement) -> crop."""
    ws, pipeline, summary = single_run
    _, records = read_alignments(summary.alignments)
    size, pad = pipeline.extract.crop_size, pipeline.extract.padding
    target = template_eye_centers(size, pad)
    errors = []
    for r in records:
        truth = _truth_points(clips["single"], r.frame, reference_landmarks)["astronaut"]
        in_crop = transform_points(r.matrix, eye_centers(truth))
        errors.append(np.linalg.norm(in_crop - target, axis=1).max())
    errors = np.array(errors)
    assert np.median(errors) < 1.0, errors
    assert errors.max() < 2.0, errors


def test_one_euro_reduces_landmark_jitter(clips, reference_landmarks):
    """Jitter = frame-to-frame change of the landmark error against the true positions."""
    pipeline = load_pipeline("debate")
    clip = clips["single"]
    raw_err, smooth_err = [], []
    with VideoReader(clip.path) as reader, FaceTracker(pipeline.extract, float(reader.fps)) as tracker:
        for frame in reader:
            faces = tracker.update(frame)
            if len(faces) != 1:
                continue
            truth = _truth_points(clip, frame.index, reference_landmarks)["astronaut"]
            raw_err.append(tracker.last_raw_landmarks[faces[0].track_id][:, :2] - truth)
            smooth_err.append(faces[0].landmarks[:, :2] - truth)
    jitter_raw = np.linalg.norm(np.diff(raw_err, axis=0), axis=2).mean()
    jitter_smooth = np.linalg.norm(np.diff(smooth_err, axis=0), axis=2).mean()
    assert jitter_smooth < 0.8 * jitter_raw, (jitter_raw, jitter_smooth)


def test_cuts_found_where_the_clip_has_them(clips):
    clip = clips["cuts"]
    pipeline = load_pipeline("debate")
    found, ids = [], {}
    with VideoReader(clip.path) as reader, FaceTracker(pipeline.extract, float(reader.fps)) as tracker:
        for frame in reader:
            faces = tracker.update(frame)
            if tracker.last_frame_was_cut:
                found.append(frame.index)
            ids[frame.index] = {f.track_id for f in faces}
    assert found == clip.cuts
    shots = np.split(np.arange(clip.frames), clip.cuts)
    per_shot = [set().union(*(ids[i] for i in shot)) for shot in shots]
    assert all(len(s) == 1 for s in per_shot), per_shot  # one id within a shot
    assert len(set().union(*per_shot)) == len(shots)  # a new id after every cut


@pytest.mark.parametrize("name", ["single", "cuts"])
def test_frames_between_meshes_follow_the_face(clips, reference_landmarks, name):
    """render meshes every other frame (render.mesh_every = 2): the frames between take
    landmarks interpolated from their neighbours. Their eyes sit as near the true eyes as on
    meshed frames, and every cut is still found where it is, with a new track after it."""
    clip = clips[name]
    pipeline = load_pipeline("debate")
    meshed, between, cuts, ids, order = [], [], [], {}, []
    with VideoReader(clip.path) as reader, FaceTracker(pipeline.extract, float(reader.fps)) as tracker:
        seen_by_mesh: list[int] = []
        update = tracker.update
        tracker.update = lambda frame, **kw: seen_by_mesh.append(frame.index) or update(frame, **kw)
        for frame, faces, cut in track_stream(reader, tracker, mesh_every=2):
            order.append(frame.index)
            if cut:
                cuts.append(frame.index)
            ids[frame.index] = {f.track_id for f in faces}
            if len(faces) != 1:
                continue
            truth = next(iter(_truth_points(clip, frame.index, reference_landmarks).values()))
            error = np.linalg.norm(eye_centers(faces[0].landmarks) - eye_centers(truth), axis=1).max()
            (meshed if frame.index in seen_by_mesh else between).append(error)
    assert order == list(range(clip.frames))  # every frame, in order, once
    assert cuts == clip.cuts
    shots = np.split(np.arange(clip.frames), clip.cuts)
    assert all(len(set().union(*(ids[i] for i in shot))) == 1 for shot in shots)
    assert len(between) >= 0.3 * clip.frames, (len(meshed), len(between))
    assert np.median(between) < np.median(meshed) + 1.0, (np.median(meshed), np.median(between))
    assert np.max(between) < 4.0, np.max(between)


def test_split_screen_assigns_by_position(clips, reference_landmarks, tmp_path):
    ws = Workspace(tmp_path)
    clip = clips["split"]
    assignment = SpeakerAssignment.parse_positions("left=astronaut,right=hopper")
    summary = extract_source(clip.path, ws, load_pipeline("tiny"), assignment)
    _, records = read_alignments(summary.alignments)
    assert len(records) >= 2 * 0.95 * clip.frames
    assert all(r.speaker == _speaker_of(r, clip, reference_landmarks) for r in records)
    assert summary.crops.keys() == {"astronaut", "hopper"}


@pytest.mark.slow
def test_clustering_names_speakers_in_order_of_appearance(clips, reference_landmarks, tmp_path):
    ws = Workspace(tmp_path)
    clip = clips["cuts"]
    summary = extract_source(
        clip.path, ws, load_pipeline("tiny"), SpeakerAssignment.clusters(["first", "second"])
    )
    _, records = read_alignments(summary.alignments)
    truth_name = {"astronaut": "first", "hopper": "second"}  # the astronaut's shot comes first
    assert records and all(
        r.speaker == truth_name[_speaker_of(r, clip, reference_landmarks)] for r in records
    )
    for name in ("first", "second"):
        crops = list((ws.root / "faces" / name).glob("*.png"))
        assert len(crops) == summary.crops[name] > 0
        sheet = cv2.imread(str(summary.contact_sheets[name]))
        assert sheet is not None and sheet.shape[0] >= 64
    assert not list(ws.alignments_dir.glob("*.staging"))


def test_image_folder_is_a_domain(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for n, (img, side) in enumerate([(astronaut(), 300), (hopper(), 260), (astronaut(), 200)]):
        m = placement(img, 240, 200, side)
        frame = compose((480, 400), [(img, m)], (90, 90, 90))
        cv2.imwrite(str(photos / f"p{n}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    ws = Workspace(tmp_path / "ws")
    summary = extract_source(photos, ws, load_pipeline("tiny"), SpeakerAssignment.single("female"))
    header, records = read_alignments(summary.alignments)
    assert header["complete"] and summary.crops == {"female": 3}
    assert sorted(r.file for r in records) == ["p0.jpg", "p1.jpg", "p2.jpg"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["single", "cuts"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(clips, tmp_path, name):
    """Stopped at frame 37 (last done marker: 24), then resumed: the dataset is the one an
    uninterrupted run makes, record for record and crop for crop (the resumed run tracks again
    from the last fresh start, frame 0 or the cut at 16, so ids and smoothing continue)."""
    ws = Workspace(tmp_path / "resumed")
    clip = clips[name]
    pipeline = load_pipeline("tiny")
    assignment = SpeakerAssignment.single("astro")

    def stop_midway(done: int, total, faces: int) -> None:
        if done == 37:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_source(clip.path, ws, pipeline, assignment, progress=stop_midway)
    state = load_state(ws.alignments_dir / f"{source_id(clip.path)}.jsonl")
    assert not state.header["complete"] and 0 < state.last_done < 37
    summary = extract_source(clip.path, ws, pipeline, assignment)
    assert summary.resumed_from == state.last_done + 1
    header, records = read_alignments(summary.alignments)
    frames = [r.frame for r in records]
    assert header["complete"] and frames == sorted(set(frames)) and len(frames) >= 0.95 * clip.frames
    faces = ws.root / "faces" / "astro"
    # In the cuts clip the astronaut is the dominant person: Hopper's crops go to unknown/.
    on_disk = {p.name for p in faces.glob("*.png")} | {p.name for p in (ws.root / "unknown").glob("*.png")}
    assert on_disk == {Path(r.crop).name for r in records if r.crop}  # no orphans, none missing
    assert not list(faces.glob(".*"))  # no temp files left

    straight = Workspace(tmp_path / "straight")
    reference = extract_source(clip.path, straight, pipeline, assignment)
    _, expected = read_alignments(reference.alignments)
    assert summary.cuts == reference.cuts == len(clip.cuts)
    assert [(r.frame, r.track, r.crop) for r in records] == \
           [(r.frame, r.track, r.crop) for r in expected]
    for got, want in zip(records, expected):
        assert np.array_equal(got.landmarks, want.landmarks) and np.array_equal(got.matrix, want.matrix)
    for r in records:
        if r.crop:
            assert (ws.root / r.crop).read_bytes() == (straight.root / r.crop).read_bytes()

    again = extract_source(clip.path, ws, pipeline, assignment)
    assert again.skipped and again.crops == summary.crops
    with pytest.raises(FaceswapError, match="--force"):
        extract_source(clip.path, ws, pipeline, SpeakerAssignment.single("other"))


def test_sources_with_one_stem_never_collide(tmp_path, capsys):
    """Two different files named a5.mp4 in two folders, and two names that sanitise alike: each
    is extracted under its own name, --force on one keeps the other's crops, a file changed in
    place is never skipped, and a second run on a source that is being extracted fails."""
    from faceswap_gan.fileio import output_lock

    pipeline, astro = load_pipeline("tiny"), SpeakerAssignment.single("astro")
    ws = Workspace(tmp_path / "ws")
    a = single_speaker_clip(tmp_path / "clips" / "a5.mp4", frames=6, seed=1).path
    b = single_speaker_clip(tmp_path / "clips" / "other" / "a5.mp4", frames=6, seed=2).path
    first = extract_source(a, ws, pipeline, astro)
    second = extract_source(b, ws, pipeline, astro)
    assert not second.skipped and second.alignments != first.alignments
    assert first.crops == second.crops == {"astro": 6}

    def crops_of(summary) -> set[str]:
        return {Path(r.crop).name for r in read_alignments(summary.alignments)[1] if r.crop}

    of_a, of_b = crops_of(first), crops_of(second)
    on_disk = {p.name for p in (ws.root / "faces" / "astro").glob("*.png")}
    assert len(of_a) == len(of_b) == 6 and not of_a & of_b and on_disk == of_a | of_b
    header = read_alignments(second.alignments)[0]
    assert header["source_id"] == source_id(b) and header["source"] == str(b.resolve())

    again = extract_source(a, ws, pipeline, astro, force=True)  # must not touch b's crops
    assert not again.skipped and of_b <= {p.name for p in (ws.root / "faces" / "astro").glob("*.png")}

    with output_lock(ws.alignments_dir / source_id(b)):  # as a concurrent run holds it
        with pytest.raises(FaceswapError, match="being written by another faceswap run"):
            extract_source(b, ws, pipeline, astro)

    b.write_bytes(a.read_bytes())  # another file at the same path
    with pytest.raises(FaceswapError, match="changed since it was extracted.*--force"):
        extract_source(b, ws, pipeline, astro)

    d1, d2 = tmp_path / "débat.mp4", tmp_path / "dèbat.mp4"
    d1.write_bytes(a.read_bytes())
    d2.write_bytes(a.read_bytes())
    code, err = run_cli(["extract", str(d1), str(d2), "--speaker", "deb", "--workspace",
                         str(ws.root), "--pipeline", "tiny"], capsys, stdout=False)
    assert code == 0 and "skipped" not in err, err
    assert len(list((ws.root / "faces" / "deb").glob("*.png"))) == 12


def test_version_1_alignments_are_still_read_and_continued(clips, tmp_path):
    """A workspace from before source ids: alignments/<stem>.jsonl, header version 1."""
    ws = Workspace(tmp_path)
    clip = clips["split"].path
    pipeline, main_face = load_pipeline("tiny"), SpeakerAssignment.single("main")
    done = extract_source(clip, ws, pipeline, main_face, max_frames=4)
    lines = done.alignments.read_text().splitlines()
    header = json.loads(lines[0])
    header.update(version=1, source=str(clip))
    del header["source_id"], header["fingerprint"]
    legacy = ws.alignments_dir / "split.jsonl"
    legacy.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    done.alignments.unlink()
    old_header, records = read_alignments(legacy)
    assert old_header["version"] == 1 and len(records) == len(lines) - 1
    again = extract_source(clip, ws, pipeline, main_face, max_frames=4)
    assert again.skipped and again.alignments == legacy and again.crops == done.crops


def test_cli_extract_and_bad_inputs(clips, tmp_path, capsys):
    ws = tmp_path / "ws"
    code, err = run_cli(["extract", str(clips["split"].path), "--speaker", "main", "--workspace",
                         str(ws), "--pipeline", "tiny", "--max-frames", "5"], capsys, stdout=False)
    assert code == 0 and "main" in err and "Traceback" not in err
    assert len(list((ws / "faces" / "main").glob("*.png"))) == 5

    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello\n" * 100)
    blank = write_clip(tmp_path / "blank.mp4", [np.full((180, 320, 3), 40 + i, np.uint8) for i in range(12)])
    # Faces in the first half, then the file ends: crops get written before the error shows.
    truncated = single_speaker_clip(tmp_path / "truncated.mp4", frames=40, faststart=True).path
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    bad = {
        "not found": ["extract", str(tmp_path / "missing.mp4"), "--speaker", "a"],
        "not a video": ["extract", str(not_video), "--speaker", "a"],
        "no face found": ["extract", str(blank), "--speaker", "a"],
        "truncated video at frame": ["extract", str(truncated), "--speaker", "a"],
        "unknown pipeline": ["extract", str(blank), "--speaker", "a", "--pipeline", "nope"],
        "exactly one of": ["extract", str(blank)],
    }
    for message, args in bad.items():
        bad_ws = tmp_path / f"ws_{message.replace(' ', '_')}"
        code, err = run_cli(args + ["--workspace", str(bad_ws)], capsys, stdout=False)
        assert code == 1, (message, err)
        assert err.strip().splitlines()[-1].startswith("error:") and message in err, err
        assert "Traceback" not in err
        left = [p for p in bad_ws.rglob("*") if p.is_file()] if bad_ws.exists() else []
        assert left == [], left  # nothing half-written
    split = ws / "alignments" / f"{source_id(clips['split'].path)}.jsonl"
    assert json.loads(split.read_text().splitlines()[0])["complete"]
    assert mi.NUM_LANDMARKS == 478
