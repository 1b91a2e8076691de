"""An H.264 MP4 writer that carries the input's audio across untouched, and a plain stream copy.

``SwapVideoWriter`` encodes the rendered frames with libx264 and muxes the input file's
audio packets into the same output as they are (stream copy: the bytes are identical, no
re-encode, no generation loss), interleaved with the video as it is written so memory
stays flat. Audio and video keep their timing relative to each other: both are shifted by
the time of the first rendered frame, so a render from ``--start`` is still in sync.

Written atomically: the file appears at ``path`` only when ``close`` succeeds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from faceswap_gan.fileio import atomic_path
from faceswap_gan.video.writer import as_frame_rate

# Audio is muxed this far ahead of the video written so far (the muxer interleaves exactly).
_AUDIO_LEAD_S = 0.5
_MUX_OPTIONS = {"movflags": "+faststart+use_metadata_tags"}


class SwapVideoWriter:
    """Encode RGB frames to H.264 and copy ``audio_source``'s audio packets beside them.

    ``start``/``end`` (seconds, in the source's clock) choose the audio that goes with the
    frames: packets from ``start`` up to ``end`` (None: to the end of the stream). Frame
    timestamps given to ``write`` are in the same clock; both streams are shifted by
    ``start`` so the output starts at 0.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: Fraction | float,
        crf: int = 18,
        preset: str = "veryfast",
        audio_source: str | os.PathLike | None = None,
        start: float = 0.0,
        end: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        self.fps = as_frame_rate(fps)
        self.start, self.end = float(start), end
        self.frames_written = 0
        self.audio_packets_written = 0
        self._last_pts = -1
        self._closed = False
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self._source: av.container.InputContainer | None = None
        self._audio_in = None
        self._audio_out = None
        self._audio_packets: Iterator[av.Packet] | None = None
        self._pending_audio: av.Packet | None = None
        try:
            self._container = av.open(str(self._tmp), mode="w", format="mp4", options=_MUX_OPTIONS)
            for key, value in (metadata or {}).items():
                self._container.metadata[str(key)] = str(value)
            video = self._container.add_stream("libx264", rate=self.fps)
            video.width, video.height = self.width, self.height
            # libx264 refuses odd sides in 4:2:0; 4:4:4 keeps the exact input size instead.
            video.pix_fmt = "yuv420p" if self.width % 2 == 0 and self.height % 2 == 0 else "yuv444p"
            video.time_base = Fraction(1, 1) / self.fps
            video.codec_context.time_base = video.time_base
            self._time_base = video.time_base  # the muxer may change the stream's later
            video.options = {"crf": str(int(crf)), "preset": preset}
            self._video = video
            if audio_source is not None:
                self._open_audio(Path(audio_source))
        except BaseException:
            self._abort()
            raise

    @property
    def has_audio(self) -> bool:
        return self._audio_out is not None

    def _open_audio(self, source: Path) -> None:
        self._source = av.open(str(source))
        if not self._source.streams.audio:
            self._source.close()
            self._source = None
            return
        self._audio_in = self._source.streams.audio[0]
        self._audio_out = self._container.add_stream_from_template(self._audio_in)
        self._audio_packets = self._source.demux(self._audio_in)

    def write(self, image: np.ndarray, timestamp: float | None = None) -> None:
        """Encode one RGB uint8 (height, width, 3) frame shown at ``timestamp`` seconds."""
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 ({self.height}, {self.width}, 3), got {image.dtype} {image.shape}"
            )
        if timestamp is None:
            pts = self._last_pts + 1
        else:
            # Keep the source's timing (variable frame rates too), never two frames at one pts.
            pts = max(round((timestamp - self.start) * self.fps), self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = pts
        frame.time_base = self._time_base
        for packet in self._video.encode(frame):
            self._mux_video(packet)
        self.frames_written += 1

    def _mux_video(self, packet: av.Packet) -> None:
        if packet.pts is not None:
            self._mux_audio_until(float(packet.pts * packet.time_base) + _AUDIO_LEAD_S)
        self._container.mux(packet)

    def _mux_audio_until(self, until: float | None) -> None:
        """Copy source audio packets up to output time ``until`` (None: all that remain)."""
        if self._audio_packets is None:
            return
        tb = self._audio_in.time_base
        shift = round(self.start / tb)
        while True:
            packet = self._pending_audio
            self._pending_audio = None
            if packet is None:
                packet = next(self._audio_packets, None)
                if packet is None:
                    self._audio_packets = None
                    return
            if packet.pts is None or packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            t = float(packet.pts * tb)
            if self.start > 0 and t < self.start - 1e-6:
                continue  # before a partial render (from 0, priming packets stay)
            if self.end is not None and t >= self.end - 1e-6:
                self._audio_packets = None
                return
            if until is not None and t - self.start > until:
                self._pending_audio = packet
                return
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self._audio_out
            packet.time_base = tb
            self._container.mux(packet)
            self.audio_packets_written += 1

    def close(self) -> None:
        """Flush the encoder and the remaining audio, finish the file, move it to ``path``."""
        if self._closed:
            return
        try:
            for packet in self._video.encode(None):
                self._mux_video(packet)
            self._mux_audio_until(None)
            self._container.close()
            if self._source is not None:
                self._source.close()
        except BaseException:
            self._abort()
            raise
        self._closed = True
        self._stack.close()

    def _abort(self) -> None:
        self._closed = True
        for container in (getattr(self, "_container", None), self._source):
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()
        with contextlib.suppress(RuntimeError):
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> SwapVideoWriter:
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


def copy_streams(source: str | os.PathLike, dest: str | os.PathLike,
                 metadata: dict[str, str] | None = None) -> None:
    """Copy the video and audio streams of ``source`` into ``dest`` unchanged (no re-encode)."""
    # (no parenthesised multi-item `with`: the code must stay valid on Python 3.9)
    with atomic_path(dest) as tmp, av.open(str(source)) as src, \
            av.open(str(tmp), mode="w", format="mp4", options=_MUX_OPTIONS) as out:
        for key, value in {**dict(src.metadata), **(metadata or {})}.items():
            out.metadata[key] = value
        streams = [s for s in src.streams if s.type in ("video", "audio")]
        mapping = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in src.demux(streams):
            if packet.dts is None and packet.size == 0:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux(packet)


def audio_packets(path: str | os.PathLike) -> list[bytes]:
    """The payload of every audio packet of a file's first audio stream (empty if none)."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The container-level metadata tags of a media file."""
    with av.open(str(path)) as container:
        return dict(container.metadata)
