from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from faceswap_gan.video.writer import VideoWriter, as_frame_rate


def _gradient_frame(i: int, width: int, height: int) -> np.ndarray:
    """Smooth, moving content that H.264 at CRF 18 keeps within a few levels."""
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    r = 255 * (0.5 + 0.5 * np.sin(2 * np.pi * (x + i / 20)))
    g = 255 * y * np.ones_like(x)
    b = 128 + 0 * x * y
    return np.stack(np.broadcast_arrays(r, g, b), axis=-1).astype(np.uint8)


def _decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(f.pts * stream.time_base, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    return frames


def test_odd_size_round_trip_with_exact_timestamps(tmp_path):
    path = tmp_path / "clip.mp4"
    width, height, fps = 161, 91, 30
    with VideoWriter(path, width, height, fps) as writer:
        assert writer.encoded_size == (162, 92)
        for i in range(24):
            writer.write(_gradient_frame(i, width, height))
    frames = _decode(path)
    assert len(frames) == 24
    assert [t for t, _ in frames] == [Fraction(i, 30) for i in range(24)]
    for i, (_, image) in enumerate(frames):
        assert image.shape == (92, 162, 3)
        diff = np.abs(image[:height, :width].astype(int) - _gradient_frame(i, width, height).astype(int))
        assert diff.mean() < 3.0
        # The padding repeats the last column and row.
        assert np.abs(image[:height, width].astype(int) - image[:height, width - 1].astype(int)).mean() < 3.0


def test_ntsc_rate_and_timestamps(tmp_path):
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, 64, 48, 29.97) as writer:
        for i in range(10):
            writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    assert as_frame_rate(29.97) == Fraction(30000, 1001)
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)
    assert [t for t, _ in _decode(path)] == [i * Fraction(1001, 30000) for i in range(10)]


def test_audio_track_and_metadata_survive(tmp_path):
    path = tmp_path / "talk.mp4"
    rate = 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate * 2) / rate)).astype(np.float32)
    metadata = {"comment": "made by a test", "faceswap_seed": "7"}
    with VideoWriter(path, 96, 64, 25, audio_rate=rate, metadata=metadata) as writer:
        for i in range(50):
            writer.write(_gradient_frame(i, 96, 64))
        writer.write_audio(tone[:5000])  # in pieces that are not codec-frame multiples
        writer.write_audio(tone[5000:])
    with av.open(str(path)) as container:
        assert container.metadata["comment"] == "made by a test"
        assert container.metadata["faceswap_seed"] == "7"
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert audio.sample_rate == rate
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio)])
    assert abs(len(samples) - len(tone)) < 3 * 1024  # encoder priming and the padded last frame
    window = samples[2048:2048 + rate]
    peak_hz = np.argmax(np.abs(np.fft.rfft(window))) * rate / len(window)
    assert abs(peak_hz - 440) < 3
    assert 0.25 < np.abs(samples).max() < 0.75


def test_exception_leaves_nothing_behind(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path, 64, 64, 30) as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_bad_frames_and_missing_audio_are_refused(tmp_path):
    path = tmp_path / "x.mp4"
    with VideoWriter(path, 64, 48, 30) as writer:
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((64, 48, 3), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((48, 64, 3), np.float32))
        with pytest.raises(ValueError, match="audio_rate"):
            writer.write_audio(np.zeros(100, np.float32))
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert len(_decode(path)) == 1
