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

import av

from faceswap_gan.fileio import atomic_path
from faceswap_gan.video.writer import VideoWriter

# Audio is muxed this far ahead of the video written so far (the muxer interleaves exactly).
_AUDIO_LEAD_S = 0.5
_MUX_OPTIONS = {"movflags": "+faststart+use_metadata_tags"}


class SwapVideoWriter(VideoWriter):
    """Encode RGB frames to H.264 and copy ``audio_source``'s audio packets beside them.

    ``start``/``end`` (seconds, in the source's clock) choose the audio that goes with the
    frames: packets from ``start`` up to ``end`` (None: to the end of the stream). Frame
    timestamps given to ``write`` are in the same clock; both streams are shifted by
    ``start`` so the output starts at 0. With ``time_base`` (the source video stream's), every
    frame keeps its source pts and duration exactly. Odd frame sizes are kept exactly (4:4:4).
    ``overwrite``/``locked``: as ``fileio.atomic_path``.
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
        time_base: Fraction | None = None,
        overwrite: bool = True,
        locked: bool = False,
    ) -> None:
        # Set before the base class opens the file: its error path calls our _abort.
        self.end = end
        self.audio_packets_written = 0
        self._source: av.container.InputContainer | None = None
        self._audio_in = None
        self._audio_out = None
        self._audio_packets: Iterator[av.Packet] | None = None
        self._pending_audio: av.Packet | None = None
        super().__init__(path, width, height, fps, crf=crf, preset=preset, metadata=metadata,
                         odd_sizes="exact", start=start, time_base=time_base,
                         overwrite=overwrite, locked=locked)
        try:
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

    def _finish_audio(self) -> None:
        self._mux_audio_until(None)
        if self._source is not None:
            self._source.close()
            self._source = None

    def _abort(self) -> None:
        try:
            if self._source is not None:
                with contextlib.suppress(Exception):
                    self._source.close()
                self._source = None
        finally:
            super()._abort()


def copy_streams(source: str | os.PathLike, dest: str | os.PathLike,
                 metadata: dict[str, str] | None = None, overwrite: bool = True,
                 locked: bool = False) -> None:
    """Copy the video and audio streams of ``source`` into ``dest`` unchanged (no re-encode).

    ``overwrite``/``locked``: as ``fileio.atomic_path``."""
    # (no parenthesised multi-item `with`: the code must stay valid on Python 3.9)
    with atomic_path(dest, overwrite=overwrite, locked=locked) as tmp, av.open(str(source)) as src, \
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
