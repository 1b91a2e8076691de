"""Decode a video with PyAV in a background thread, or read a folder of images, as VideoFrames.

Frames come out in display orientation (rotation metadata applied) as RGB uint8, each with
its own presentation timestamp, so variable-frame-rate footage keeps its timing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.video.frames import VideoFrame
from faceswap_gan.video.threads import BackgroundIterator

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _rotate(image: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate to display orientation. PyAV reports the display matrix angle counter-clockwise."""
    d = degrees % 360
    if d == 0:
        return image
    if d == 90:
        return np.ascontiguousarray(np.rot90(image, 1))
    if d == 180:
        return np.ascontiguousarray(image[::-1, ::-1])
    if d == 270:
        return np.ascontiguousarray(np.rot90(image, -1))
    raise FaceswapError(f"unsupported rotation {degrees} degrees (only multiples of 90)")


class VideoReader:
    """Iterate a video's frames, decoded in a background thread with a bounded queue.

    ``start`` seeks to that many seconds (frames before it are dropped, so the first frame
    is the first one at or after ``start``); ``max_frames`` stops early. Use it as a context
    manager so the thread and the container are released even when the caller stops early.
    """

    def __init__(
        self,
        path: str | Path,
        start: float = 0.0,
        max_frames: int | None = None,
        queue_size: int = 8,
    ) -> None:
        self.path = Path(path)
        self.start = float(start)
        self.max_frames = max_frames
        self._queue_size = queue_size
        self._decoder: BackgroundIterator | None = None
        self._iterated = False

        if not self.path.exists():
            raise FaceswapError(f"file not found: {self.path}")
        if self.path.is_dir():
            raise FaceswapError(f"{self.path} is a folder, not a video")
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
            raise FaceswapError(
                f"{self.path} is not a video (or it is corrupt or truncated)"
            ) from None
        if not self._container.streams.video:
            self._container.close()
            raise FaceswapError(f"{self.path} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame + slice threads inside FFmpeg
        cc = self._stream.codec_context
        self._coded_size = (int(cc.width or 0), int(cc.height or 0))
        if self._coded_size[0] <= 0 or self._coded_size[1] <= 0:
            self._container.close()
            raise FaceswapError(f"{self.path}: the video stream has no picture size (corrupt?)")
        # Decode the first frame now: it carries the rotation (display matrix) and proves the
        # stream is decodable before any output is opened.
        self._frames = self._decode_frames()
        try:
            self._first = next(self._frames, None)
        except FaceswapError:
            self._container.close()
            raise
        if self._first is None:
            length = self.duration
            self._container.close()
            if self.start > 0 and length is not None and self.start >= length:
                raise FaceswapError(f"{self.path} is {length:.2f} s long: nothing from {self.start:g} s "
                                    "(--start) on")
            raise FaceswapError(f"{self.path}: no decodable video frames (corrupt or truncated video)")
        self.rotation = int(round(getattr(self._first[0], "rotation", 0) or 0)) % 360

    # ---- properties -------------------------------------------------------------------

    @property
    def width(self) -> int:
        w, h = self._coded_size
        return h if self.rotation in (90, 270) else w

    @property
    def height(self) -> int:
        w, h = self._coded_size
        return w if self.rotation in (90, 270) else h

    @property
    def fps(self) -> Fraction:
        """Average frame rate (variable-rate footage: use each frame's timestamp instead)."""
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        return Fraction(rate) if rate else Fraction(25, 1)

    @property
    def time_base(self) -> Fraction:
        """The video stream's time base: frame timestamps are whole multiples of it."""
        return Fraction(self._stream.time_base or Fraction(1, 1))

    @property
    def duration(self) -> float | None:
        """Seconds, from the stream or the container; None when neither knows."""
        if self._stream.duration is not None and self._stream.time_base is not None:
            return float(self._stream.duration * self._stream.time_base)
        if self._container.duration is not None:
            return self._container.duration / av.time_base
        return None

    @property
    def declared_frames(self) -> int | None:
        """The number of frames the container declares (MP4 does), None when it does not."""
        return int(self._stream.frames) if self._stream.frames else None

    @property
    def frame_count(self) -> int | None:
        """Frames the container declares, else an estimate from duration and rate; None if unknown."""
        n = self.declared_frames or 0
        if n <= 0 and self.duration:
            n = int(round(self.duration * float(self.fps)))
        if n <= 0:
            return None
        if self.max_frames is not None:
            n = min(n, self.max_frames)
        return n

    # ---- decoding ---------------------------------------------------------------------

    def _decode_frames(self) -> Iterator[tuple[av.VideoFrame, float]]:
        """(frame, timestamp) in decode order from ``start`` on; FFmpeg errors -> FaceswapError."""
        stream = self._stream
        time_base = stream.time_base or Fraction(1, 1)
        t0 = float(stream.start_time * time_base) if stream.start_time is not None else 0.0
        if self.start > 0:
            target = int((self.start + t0) / time_base)
            try:
                self._container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                raise FaceswapError(f"{self.path}: cannot seek to {self.start:.2f} s") from None
        decoded = 0
        last_t = None
        packets = self._container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError:
                raise FaceswapError(
                    f"{self.path}: corrupt or truncated video at frame {decoded}"
                ) from None
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                raise FaceswapError(
                    f"{self.path}: corrupt or truncated video at frame {decoded}"
                ) from None
            for frame in frames:
                if frame.pts is not None:
                    t = float(frame.pts * time_base) - t0
                elif last_t is not None:
                    t = last_t + 1.0 / float(self.fps)
                else:
                    t = 0.0
                if self.start > 0 and t + 1e-6 < self.start:
                    continue
                last_t = t
                decoded += 1
                yield frame, t

    def _to_video_frame(self, index: int, frame: av.VideoFrame, t: float) -> VideoFrame:
        image = frame.to_ndarray(format="rgb24")
        ticks = getattr(frame, "duration", None)  # PyAV >= 14
        duration = float(ticks * self.time_base) if ticks else None
        return VideoFrame(index=index, timestamp=t, image=_rotate(image, self.rotation),
                          duration=duration)

    def _video_frames(self) -> Iterator[VideoFrame]:
        """Runs on the decode thread: converted frames until the end, ``max_frames`` or an error
        (any decoder surprise becomes a FaceswapError, reported in the consumer)."""
        try:
            index = 0
            pending = [self._first] if self._first is not None else []
            self._first = None

            def source() -> Iterator[tuple[av.VideoFrame, float]]:
                yield from pending
                yield from self._frames

            for frame, t in source():
                if self.max_frames is not None and index >= self.max_frames:
                    return
                yield self._to_video_frame(index, frame, t)
                index += 1
            # The stream ended by itself: a file cut short after its index (MP4 with the
            # index first) just stops early, so compare with the frames it declares.
            declared = self.declared_frames or 0
            if self.start == 0 and declared > 0 and index < declared - max(2, declared // 50):
                raise FaceswapError(
                    f"{self.path}: corrupt or truncated video at frame {index} "
                    f"(it declares {declared} frames)"
                )
        except FaceswapError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder surprise is reported, not lost
            raise FaceswapError(f"{self.path}: cannot decode video ({exc})") from None

    def __iter__(self) -> Iterator[VideoFrame]:
        if self._iterated:
            raise RuntimeError("a VideoReader can be iterated once; open a new one")
        self._iterated = True
        self._decoder = BackgroundIterator(self._video_frames(), self._queue_size, "video-decode")
        yield from self._decoder

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - closing twice or after an error is harmless
            pass

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """One image file as RGB uint8 (EXIF orientation applied); FaceswapError if unreadable."""
    path = Path(path)
    if path.is_dir():
        raise FaceswapError(f"{path} is a folder, not an image")
    if not path.is_file():
        raise FaceswapError(f"file not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise FaceswapError(f"{path} is not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FaceswapError(f"folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def iter_images(folder: str | Path, start_index: int = 0) -> Iterator[VideoFrame]:
    """The images of a folder as frames (sorted by name; timestamp = index in seconds).

    Unreadable images are skipped with a logged warning (a photo collection often holds a
    stray broken file; one should not stop the whole run). The frame index is the position
    in the sorted list, skipped files included, so indices stay stable across runs and
    ``list_images(folder)[frame.index]`` names the file a frame came from.
    """
    paths = list_images(folder)
    if not paths:
        raise FaceswapError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    for index, path in enumerate(paths):
        if index < start_index:
            continue
        try:
            image = read_image(path)
        except FaceswapError as exc:
            log.warning("skipping %s", exc)
            continue
        yield VideoFrame(index=index, timestamp=float(index), image=image)
