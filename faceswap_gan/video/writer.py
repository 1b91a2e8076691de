"""H.264 + AAC MP4 writing through PyAV, atomically: nothing appears at the path until close.

Frames are RGB uint8 (H, W, 3) of exactly the size given to the writer. libx264 with
yuv420p needs even sides: with ``odd_sizes="pad"`` (the default) an odd width or height is
padded by one pixel (the last column/row repeated), so the file is ``encoded_size``; with
``"exact"`` an odd-sized video is encoded 4:4:4 at its exact size instead (what render
uses, since its output must match the input). Frame ``i`` gets the presentation time
``i / fps`` exactly (the stream's time base is ``1 / fps``), unless ``write`` is given the
frame's own timestamp: then, with the source's ``time_base``, each frame keeps its source
presentation time and duration exactly (variable frame rates too). ``video/remux.py``
builds the render writer on this class, adding the input's audio packets copied unchanged.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from faceswap_gan.fileio import atomic_path, writing

# Float rates that mean the NTSC fractions; anything else is taken as written.
_NTSC_RATES = (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001))


def as_frame_rate(fps: Fraction | float) -> Fraction:
    """A float/int/Fraction frame rate as an exact Fraction (29.97 -> 30000/1001)."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        value = float(fps)
        rate = next((r for r in _NTSC_RATES if abs(float(r) - value) < 1e-3), None)
        if rate is None:
            rate = Fraction(value).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {fps!r}")
    return rate


class VideoWriter:
    """Encode RGB frames (and optionally a mono audio track) into an MP4.

    Use as a context manager; an exception inside the ``with`` leaves nothing at ``path``::

        with VideoWriter("out.mp4", 640, 360, 30, audio_rate=16000) as writer:
            for frame in frames:
                writer.write(frame)
            writer.write_audio(track)  # float32 mono in [-1, 1], any time, any length
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: Fraction | float,
        crf: int = 18,
        preset: str = "veryfast",
        audio_rate: int | None = None,
        metadata: dict[str, str] | None = None,
        odd_sizes: str = "pad",
        start: float = 0.0,
        time_base: Fraction | None = None,
        overwrite: bool = True,
        locked: bool = False,
    ) -> None:
        if odd_sizes not in ("pad", "exact"):
            raise ValueError(f"odd_sizes must be 'pad' or 'exact', got {odd_sizes!r}")
        if width < 2 or height < 2:
            raise ValueError(f"video size must be at least 2x2, got {width}x{height}")
        self.path = Path(path)
        self.width = int(width)
        self.height = int(height)
        self.fps = as_frame_rate(fps)
        odd = self.width % 2 == 1 or self.height % 2 == 1
        # yuv420p subsamples chroma 2x2, so libx264 wants even sides: pad by one pixel, or keep
        # the size and encode 4:4:4.
        if odd_sizes == "pad":
            self.encoded_size = (self.width + self.width % 2, self.height + self.height % 2)
        else:
            self.encoded_size = (self.width, self.height)
        pix_fmt = "yuv444p" if odd and odd_sizes == "exact" else "yuv420p"
        self.start = float(start)  # seconds subtracted from the timestamps given to write()
        self.audio_rate = audio_rate
        self.frames_written = 0
        self._last_pts = -1
        self._durations: dict[int, int] = {}  # pts -> duration of frames still in the encoder
        self.audio_samples_written = 0
        self._closed = False

        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(
            atomic_path(self.path, overwrite=overwrite, locked=locked))
        try:
            # use_metadata_tags keeps arbitrary keys; faststart puts the index first for players.
            # FFmpeg's errors name the temporary file; ours (``writing``) name the output.
            with writing(self.path):
                self._container = av.open(
                    str(self._tmp), mode="w", format="mp4",
                    options={"movflags": "+faststart+use_metadata_tags"},
                )
            for key, value in (metadata or {}).items():
                self._container.metadata[str(key)] = str(value)
            self._video = self._container.add_stream("libx264", rate=self.fps)
            self._video.width, self._video.height = self.encoded_size
            self._video.pix_fmt = pix_fmt
            # Frames carry their own copy: the muxer rewrites the stream's time base once the
            # header is written (mp4 picks its own timescale), and packets are rescaled to it.
            # A source's time base (render) keeps its timestamps exact; else one tick a frame.
            self._frame_time_base = Fraction(time_base) if time_base else Fraction(1, 1) / self.fps
            self._ticks_per_frame = max(1, round(1 / (self.fps * self._frame_time_base)))
            self._video.time_base = self._frame_time_base
            self._video.codec_context.time_base = self._frame_time_base
            self._video.options = {"crf": str(int(crf)), "preset": preset}
            self._audio = None
            self._audio_buffer = np.zeros(0, dtype=np.float32)
            if audio_rate is not None:
                self._audio = self._container.add_stream("aac", rate=int(audio_rate), layout="mono")
                self._audio_time_base = Fraction(1, int(audio_rate))
                self._audio.time_base = self._audio_time_base
                self._audio.bit_rate = 96_000
        except BaseException:
            self._abort()
            raise

    # -- video ---------------------------------------------------------------------------

    def write(self, image: np.ndarray, timestamp: float | None = None,
              duration: float | None = None) -> None:
        """Encode one RGB uint8 frame of shape (height, width, 3), shown at ``timestamp``
        seconds (minus ``start``) when given, else one frame after the last; ``duration``
        (seconds) is how long it shows (what the last frame adds to the video's length)."""
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 ({self.height}, {self.width}, 3), "
                f"got {image.dtype} {image.shape}"
            )
        pad_w = self.encoded_size[0] - self.width
        pad_h = self.encoded_size[1] - self.height
        if pad_w or pad_h:
            image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        tb = self._frame_time_base
        if timestamp is None:
            pts = self._last_pts + self._ticks_per_frame if self._last_pts >= 0 else 0
        else:
            # The source's own pts in its own time base (exact: the rounding only undoes the
            # float seconds); never two frames at one pts.
            pts = max(round((timestamp - self.start) / tb), self._last_pts + 1)
        self._last_pts = pts
        self._durations[pts] = max(1, round(duration / tb) if duration else self._ticks_per_frame)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = pts
        frame.time_base = tb
        with writing(self.path):
            self._encode_video(frame)
        self.frames_written += 1

    def _encode_video(self, frame: av.VideoFrame | None) -> None:
        """Encode (None: flush) and mux. Each packet gets its own frame's duration: the mp4
        muxer ends the track where a packet's pts plus duration ends, and the encoder, with
        B-frames reordering the frames, does not keep variable durations with their frames."""
        for packet in self._video.encode(frame):
            ticks = self._durations.pop(packet.pts, None) if packet.pts is not None else None
            if ticks is not None:
                packet.duration = ticks
            self._mux_video(packet)

    def _mux_video(self, packet: av.Packet) -> None:
        self._container.mux(packet)

    # -- audio ---------------------------------------------------------------------------

    def write_audio(self, samples: np.ndarray) -> None:
        """Append mono float samples in [-1, 1] (encoded in the codec's frame size)."""
        if self._audio is None:
            raise ValueError("this VideoWriter was opened without audio_rate")
        samples = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
        self._audio_buffer = np.concatenate([self._audio_buffer, samples])
        with writing(self.path):
            self._encode_audio(final=False)

    def _encode_audio(self, final: bool) -> None:
        frame_size = self._audio.codec_context.frame_size or 1024
        buffer = self._audio_buffer
        start = 0
        while len(buffer) - start >= frame_size or (final and start < len(buffer)):
            chunk = buffer[start:start + frame_size]
            if len(chunk) < frame_size:
                # The AAC encoder wants whole frames; pad the last one with silence.
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = int(self.audio_rate)
            frame.pts = self.audio_samples_written
            frame.time_base = self._audio_time_base
            for packet in self._audio.encode(frame):
                self._container.mux(packet)
            self.audio_samples_written += frame_size
            start += frame_size
        self._audio_buffer = buffer[start:]

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Flush the encoders, finish the file and move it to ``path``."""
        if self._closed:
            return
        try:
            with writing(self.path):
                self._encode_video(None)
                self._finish_audio()
                self._container.close()
        except BaseException:
            self._abort()
            raise
        self._closed = True
        self._stack.close()  # renames the temporary file onto path

    def _finish_audio(self) -> None:
        """Encode what is left of the audio track (subclasses copy theirs instead)."""
        if self._audio is not None:
            self._encode_audio(final=True)
            for packet in self._audio.encode(None):
                self._container.mux(packet)

    def _abort(self) -> None:
        """Drop everything written so far; nothing is left at path or beside it."""
        self._closed = True
        try:  # a signal during the close must not skip the removal
            with contextlib.suppress(Exception):
                self._container.close()
        finally:
            with contextlib.suppress(RuntimeError):
                self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> VideoWriter:  # noqa: PYI034 (typing.Self needs 3.11; no typing_extensions dep)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()
