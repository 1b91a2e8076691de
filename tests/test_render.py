"""`faceswap render` end to end on a short clip of real portraits with a tiny trained model."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import (
    CLIP_FPS,
    CLIP_FRAMES,
    CLIP_SIZE,
    CPU,
    SAMPLE_MODEL,
    portrait_frame,
    portraits,
    run_cli,
    write_portrait_clip,
    write_vfr_clip,
)

from faceswap_gan.config import load_pipeline
from faceswap_gan.errors import FaceswapError
from faceswap_gan.models.checkpoint import load_face_model
from faceswap_gan.render.pipeline import RenderOptions, render_video
from faceswap_gan.render.target import SwapTarget
from faceswap_gan.synthetic.footage import generate_sample_set
from faceswap_gan.video.remux import audio_packets, read_metadata


@pytest.fixture(scope="module")
def ws(tiny_workspace) -> Path:
    """The session's tiny model (its own copy) and the portrait clip, clip.mp4."""
    write_portrait_clip(tiny_workspace / "clip.mp4")
    return tiny_workspace


@pytest.fixture(scope="module")
def model(ws):
    """Without its speaker gate: these tests are about the video (every face is a speaker,
    as with --all-faces); which faces the gate lets through is tests/test_gate.py's."""
    loaded = load_face_model(ws / "models" / "default", CPU)
    assert loaded.gate is not None  # `faceswap train` fitted one
    loaded.gate = None
    return loaded


@pytest.fixture(scope="module")
def rendered(ws, model):
    out = ws / "out" / "clip.speaker_b.mp4"
    summary = render_video(ws / "clip.mp4", out, model, load_pipeline("tiny"),
                           SwapTarget(to="speaker_b"), CPU, RenderOptions(model_name="default"))
    return out, summary


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.slow
def test_output_keeps_frames_rate_duration_audio(ws, rendered):
    out, summary = rendered
    src = ws / "clip.mp4"
    assert summary.frames == CLIP_FRAMES and summary.faces_swapped >= CLIP_FRAMES - 2
    assert summary.cuts == 1 and summary.has_audio and not summary.passthrough
    with av.open(str(out)) as o, av.open(str(src)) as i:
        vo, vi = o.streams.video[0], i.streams.video[0]
        assert (vo.width, vo.height) == (vi.width, vi.height)
        assert vo.average_rate == vi.average_rate == CLIP_FPS
        assert abs(float(vo.duration * vo.time_base) - float(vi.duration * vi.time_base)) < 1e-6
    assert len(_decode(out)) == CLIP_FRAMES
    assert audio_packets(out) == audio_packets(src) != []


def _frame_times(path: Path) -> tuple[list[Fraction], Fraction]:
    """Every frame's presentation time and the video stream's duration, exactly (seconds)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        times = [Fraction(f.pts) * f.time_base for f in c.decode(stream)]
        return times, Fraction(stream.duration) * stream.time_base


@pytest.mark.slow
def test_variable_frame_rate_kept_exactly(ws, model, tmp_path):
    """A clip with gaps of 20-100 ms between frames: every output frame shows at its source
    frame's time, exactly, and the video lasts exactly as long (so the copied audio stays in
    sync)."""
    src = tmp_path / "vfr.mp4"
    written = write_vfr_clip(src, frames=30)
    source_times, source_duration = _frame_times(src)
    assert source_times == written  # the clip really is VFR, as written
    out = tmp_path / "vfr.swapped.mp4"
    summary = render_video(src, out, model, load_pipeline("tiny"), SwapTarget(swap=True), CPU,
                           RenderOptions())
    assert summary.frames == 30 and summary.faces_swapped >= 28
    times, duration = _frame_times(out)
    assert times == source_times
    assert duration == source_duration


@pytest.mark.slow
def test_metadata_marks_the_video_synthetic(rendered):
    meta = read_metadata(rendered[0])
    assert meta["synthetic"] == "true"
    assert "SYNTHETIC" in meta["comment"] and meta["faceswap_gan_model"] == "default"
    assert meta["faceswap_gan_target"] == "speaker_b"


@pytest.mark.slow
def test_only_the_face_changes(ws, rendered, model, tmp_path):
    """Outside the faces' boxes the frames equal the input within codec error; inside they differ.

    The codec error is measured: the same frames re-encoded unchanged with the same settings.
    """
    from faceswap_gan.faces.track import FaceTracker
    from faceswap_gan.render.pipeline import extract_config_for
    from faceswap_gan.video.reader import VideoReader
    from faceswap_gan.video.remux import SwapVideoWriter

    src, out = _decode(ws / "clip.mp4"), _decode(rendered[0])
    with SwapVideoWriter(tmp_path / "plain.mp4", *CLIP_SIZE, CLIP_FPS) as plain:
        for image in src:
            plain.write(image)
    reencoded = _decode(tmp_path / "plain.mp4")
    codec_err = []
    extract = extract_config_for(model, load_pipeline("tiny"))
    outside_err, inside_err = [], []
    with FaceTracker(extract, CLIP_FPS) as tracker, VideoReader(ws / "clip.mp4") as reader:
        for frame, a, b, c in zip(reader, src, out, reencoded):
            faces = tracker.update(frame)
            assert len(faces) == 1
            x0, y0, x1, y1 = faces[0].box
            pad = 0.25 * (x1 - x0)
            near = np.zeros(a.shape[:2], bool)
            near[int(max(y0 - pad, 0)):int(y1 + pad), int(max(x0 - pad, 0)):int(x1 + pad)] = True
            diff = np.abs(a.astype(int) - b.astype(int)).max(axis=2)
            outside_err.append(diff[~near].mean())
            codec_err.append(np.abs(a.astype(int) - c.astype(int)).max(axis=2)[~near].mean())
            inner = diff[int(y0 + 0.4 * (y1 - y0)):int(y1 - 0.3 * (y1 - y0)),
                         int(x0 + 0.3 * (x1 - x0)):int(x1 - 0.3 * (x1 - x0))]
            inside_err.append(inner.mean())
    assert np.mean(outside_err) < 1.1 * np.mean(codec_err) + 0.1  # re-encode noise only
    assert max(outside_err) < 1.25 * max(codec_err) + 0.2
    assert min(inside_err) > 8.0  # the face itself was replaced


@pytest.mark.slow
def test_partial_preview_watermark(ws, model, tmp_path):
    out = tmp_path / "part.mp4"
    opts = RenderOptions(start=0.4, max_frames=10, preview=True, watermark=True)
    summary = render_video(ws / "clip.mp4", out, model, load_pipeline("tiny"),
                           SwapTarget(to="speaker_a"), CPU, opts)
    frames = _decode(out)
    assert summary.frames == len(frames) == 10
    assert frames[0].shape == (180, 640, 3)
    left, right = frames[0][:, :320], frames[0][:, 320:]
    source = _decode(ws / "clip.mp4")
    src = source[10]
    # The left half is the original frame 10 (0.4 s in), unswapped, up to re-encode noise.
    errors = [float(np.abs(left.astype(int) - source[i].astype(int)).mean()) for i in (9, 10, 11)]
    assert errors[1] < 4.0 and errors[1] < min(errors[0], errors[2])
    from faceswap_gan.render.watermark import add_watermark

    marked = add_watermark(src.copy())
    label = np.any(marked != src, axis=2)  # the band and text the watermark draws
    assert label.sum() > 300
    err_marked = np.abs(right[label].astype(int) - marked[label].astype(int)).mean()
    err_plain = np.abs(right[label].astype(int) - src[label].astype(int)).mean()
    assert err_marked < 6 and err_plain > 4 * err_marked
    with av.open(str(out)) as c:
        times = [float(p.pts * p.time_base) for p in c.demux(c.streams.audio[0]) if p.size]
    assert min(times) > -0.1 and max(times) < 10 / CLIP_FPS
    assert set(audio_packets(out)) <= set(audio_packets(ws / "clip.mp4"))


@pytest.mark.slow
def test_interrupt_leaves_nothing(ws, model, tmp_path):
    out = tmp_path / "stopped.mp4"

    def stop(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_video(ws / "clip.mp4", out, model, load_pipeline("tiny"),
                     SwapTarget(to="speaker_b"), CPU, RenderOptions(), progress=stop)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_swap_needs_speakers_from_d_or_assign(ws, model, tmp_path):
    """--swap on the tiny model: every face is swapped to the speaker D does not see in it."""
    out = tmp_path / "swapped.mp4"
    summary = render_video(ws / "clip.mp4", out, model, load_pipeline("tiny"),
                           SwapTarget(swap=True), CPU, RenderOptions(max_frames=6))
    assert summary.faces_swapped == 6 and set(summary.track_speakers.values()) <= {"speaker_a", "speaker_b"}
    out2 = tmp_path / "assigned.mp4"
    summary = render_video(ws / "clip.mp4", out2, model, load_pipeline("tiny"),
                           SwapTarget(only="speaker_b", assign={"left": "speaker_a", "right": "speaker_b"}),
                           CPU, RenderOptions(max_frames=6))
    # The face is left of centre in the first shot: it is speaker_a, so --only speaker_b skips it.
    assert summary.faces_seen == 6 and summary.faces_swapped in (0, 6)


def _wait_for_temporary(out: Path, timeout: float = 120) -> Path:
    """The temporary file a running writer writes beside ``out`` (``.<stem>.XXXXXXXX.mp4``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(out.parent.glob(f".{out.stem}.*{out.suffix}"))
        if found:
            return found[0]
        time.sleep(0.005)
    raise AssertionError(f"nothing started writing {out}")


@pytest.mark.slow
def test_second_run_on_one_output_fails_and_sigterm_cleans_up(ws, model, tmp_path, capsys):
    """Two renders to one output at once: the second fails with a clear message (neither used
    --force); SIGTERM stops the first like Ctrl-C: temporary file removed, exit 143."""
    out = tmp_path / "busy.mp4"
    seen: dict = {}

    def second_run_then_sigterm() -> None:
        _wait_for_temporary(out)  # the first run is writing
        try:
            render_video(ws / "clip.mp4", out, model, load_pipeline("tiny"),
                         SwapTarget(to="speaker_a"), CPU, RenderOptions())
        except FaceswapError as exc:
            seen["error"] = str(exc)
        os.kill(os.getpid(), signal.SIGTERM)

    late: list = []  # a SIGTERM after the command returned must not stop the tests
    previous = signal.signal(signal.SIGTERM, lambda *args: late.append(args))
    try:
        other = threading.Thread(target=second_run_then_sigterm, daemon=True)
        other.start()
        code, text = run_cli(["render", str(ws / "clip.mp4"), "--to", "speaker_b", "-o", str(out),
                              "--workspace", str(ws), "--pipeline", "tiny"], capsys)
        other.join(timeout=60)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen["error"] == (f"{out} is being written by another faceswap run (pid {os.getpid()}); "
                             "wait for it to finish or choose another output")
    assert code == 143 and "terminated" in text and not late, text
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file, no lock


_KILLED_WRITER = """
import os, signal, sys
import numpy as np
from faceswap_gan.video.remux import SwapVideoWriter
writer = SwapVideoWriter(sys.argv[1], 320, 180, 25)
writer.write(np.zeros((180, 320, 3), np.uint8))
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_next_run_removes_what_a_killed_render_left(ws, model, tmp_path):
    """kill -9 in the middle of writing leaves the temporary file (and the lock file); the next
    render to that output removes them, and its output has the usual mode (0666 less umask)."""
    out = tmp_path / "killed.mp4"
    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(out)], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".killed.*.mp4"))) == 1  # what kill -9 leaves behind
    umask = os.umask(0o022)
    try:
        summary = render_video(ws / "clip.mp4", out, model, load_pipeline("tiny"),
                               SwapTarget(to="speaker_b"), CPU, RenderOptions(max_frames=4))
    finally:
        os.umask(umask)
    assert summary.frames == 4
    assert [p.name for p in tmp_path.iterdir()] == ["killed.mp4"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


@pytest.mark.slow
def test_cli_default_name_force_and_errors(ws, capsys):
    clip = ws / "clip.mp4"
    base = ["render", str(clip), "--workspace", str(ws), "--pipeline", "tiny", "--frames", "3"]
    code, text = run_cli(base + ["--to", "speaker_b"], capsys)
    assert code == 0, text
    assert (ws / "clip.speaker_b.mp4").is_file() and "faces swapped" in text
    rates = [float(r) for r in re.findall(r"([\d.]+) frames/s", text)]
    assert rates and max(rates) < 1000, text  # no "30000000.0 frames/s" at the start
    code, text = run_cli(base + ["--to", "speaker_b"], capsys)
    assert code == 1 and "exists; use --force" in text
    assert run_cli(base + ["--to", "speaker_b", "--force"], capsys)[0] == 0
    code, text = run_cli(base + ["--to", "nobody"], capsys)
    assert code == 1 and "unknown speaker 'nobody'" in text and "speaker_a, speaker_b" in text
    code, text = run_cli(base + ["--to", "speaker_a", "--model", str(ws / "nope")], capsys)
    assert code == 1 and "no model" in text
    code, text = run_cli(["render", str(ws / "missing.mp4"), "--to", "speaker_a",
                       "--workspace", str(ws)], capsys)
    assert code == 1 and "file not found" in text
    (ws / "notvideo.mp4").write_text("hello")
    code, text = run_cli(["render", str(ws / "notvideo.mp4"), "--to", "speaker_a", "--workspace",
                       str(ws), "--pipeline", "tiny"], capsys)
    assert code == 1 and "error: " in text and "not a video" in text and "Traceback" not in text
    code, text = run_cli(base + ["--swap", "--to", "speaker_a"], capsys)
    assert code == 1 and "--swap cannot be combined" in text
    code, text = run_cli(base, capsys)
    assert code == 1 and "--to SPEAKER, --swap or --only" in text
    assert not list(ws.glob(".clip*"))  # no temporary files left behind


def test_no_model_anywhere(tmp_path, capsys, monkeypatch):
    from faceswap_gan.models import locate
    from faceswap_gan.models.locate import locate_model
    from faceswap_gan.workspace import resolve_workspace

    with pytest.raises(FaceswapError, match="no model: train one"):
        locate_model(resolve_workspace(tmp_path / "empty"), None, sample_model=tmp_path / "none")
    assert locate.SAMPLE_MODEL.name == "sample_model.safetensors"


@pytest.mark.slow
def test_video_without_faces_passes_through(ws, model, tmp_path):
    src = write_portrait_clip(tmp_path / "blank.mp4", frames=8, blank=True)
    out = tmp_path / "blank.out.mp4"
    summary = render_video(src, out, model, load_pipeline("tiny"), SwapTarget(to="speaker_a"),
                           CPU, RenderOptions())
    assert summary.passthrough and summary.faces_seen == 0
    with av.open(str(out)) as o, av.open(str(src)) as i:
        assert [bytes(p) for p in o.demux(video=0) if p.size] == \
               [bytes(p) for p in i.demux(video=0) if p.size]
    assert audio_packets(out) == audio_packets(src)


@pytest.mark.slow
def test_odd_frame_size_kept(ws, model, tmp_path):
    """A 321x181 input (4:4:4, as libx264 takes odd sides) comes out 321x181."""
    from faceswap_gan.video.remux import SwapVideoWriter

    src = tmp_path / "odd.mp4"
    face = portraits()["speaker_a"]
    with SwapVideoWriter(src, 321, 181, CLIP_FPS) as w:
        for i in range(4):
            w.write(portrait_frame(face, (321, 181), shift=i))
    out = tmp_path / "odd.out.mp4"
    summary = render_video(src, out, model, load_pipeline("tiny"), SwapTarget(to="speaker_b"),
                           CPU, RenderOptions())
    assert not summary.has_audio and summary.faces_swapped == 4
    frames = _decode(out)
    assert len(frames) == 4 and frames[0].shape == (181, 321, 3)


@pytest.mark.slow
def test_swap_sends_each_shot_to_the_other_speaker(tmp_path):
    """On the sample debate clip, each shot's face is recognised as its speaker (D's class head
    over the track) and swapped to the other one; how much the result looks like the target
    is the model's quality, which `faceswap eval` measures."""
    sample = generate_sample_set(tmp_path / "s", seconds=2, debate_seconds=10, size=CLIP_SIZE,
                                 fps=15, layout="cuts", seed=3)
    model = load_face_model(SAMPLE_MODEL, CPU)
    out = tmp_path / "debate.swapped.mp4"
    summary = render_video(sample.debate, out, model, load_pipeline("debate"),
                           SwapTarget(swap=True), CPU, RenderOptions())
    record = json.loads(Path(sample.record).read_text())
    shots = record["shots"]
    assert len(shots) >= 2 and {s["speaker"] for s in shots} == set(model.speakers)
    assert summary.cuts == len(shots) - 1
    assert summary.faces_swapped == summary.faces_seen >= 0.95 * record["frame_count"]
    # Tracks restart at every cut, so in id order they follow the shots.
    found = [summary.track_speakers[t] for t in sorted(summary.track_speakers)]
    assert found == [s["speaker"] for s in shots], (found, shots)
