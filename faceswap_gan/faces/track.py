"""Follow faces through a video: stable track ids, detection only when needed, cuts reset tracks.

Per frame: (1) compare the frame's colour histogram with the previous one; a large distance
is a shot cut and ends every track. (2) Each live track gets a new mesh on a crop around its
last landmarks (MediaPipe's video mode keeps the previous landmarks, so this is cheap). A
track whose mesh fails is lost. (3) Full-frame detection runs after a cut, when a track was
lost, when there are no tracks, and otherwise every ``detect_every`` frames; detections that
no track covers start a track (or revive a track lost a few frames ago, keeping its id).
(4) Each track's landmarks are smoothed over time with a One Euro filter.

``track_stream`` runs the tracker over a whole stream; with ``mesh_every`` > 1 (render) the
frames between meshed ones take landmarks interpolated between their neighbours' meshes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from faceswap_gan.config import ExtractConfig
from faceswap_gan.faces.detect import FaceDetector, MeshFitter, landmark_box
from faceswap_gan.faces.smooth import OneEuroFilter
from faceswap_gan.faces.types import FaceDetection, TrackedFace
from faceswap_gan.video.frames import VideoFrame

HIST_SIZE = (64, 36)  # frames are shrunk to this before the cut histogram
HIST_BINS = [18, 8, 8]  # hue, saturation, value


@dataclass
class _Track:
    track_id: int
    raw: np.ndarray  # (478, 3) last unsmoothed landmarks
    box: np.ndarray  # (4,) landmark box of ``raw``
    score: float
    smoother: OneEuroFilter
    last_seen: int  # frame index


def _overlap(inner: np.ndarray, outer: np.ndarray) -> float:
    """Fraction of box ``inner``'s area that lies inside box ``outer``."""
    x0, y0 = max(inner[0], outer[0]), max(inner[1], outer[1])
    x1, y1 = min(inner[2], outer[2]), min(inner[3], outer[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = max(1e-6, (inner[2] - inner[0]) * (inner[3] - inner[1]))
    return float(inter / area)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def frame_histogram(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, HIST_SIZE, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, HIST_BINS, [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist).astype(np.float32)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance: 0 identical, 1 nothing in common."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


class FaceTracker:
    """``update(frame)`` -> the faces in that frame, each with a stable ``track_id``.

    ``last_frame_was_cut`` says whether that frame started a new shot (tracks were reset);
    ``last_raw_landmarks`` maps track id -> the unsmoothed landmarks of the last frame.
    ``first_track_id`` lets a resumed run continue numbering after the ids already used.
    """

    def __init__(self, config: ExtractConfig, fps: float, first_track_id: int = 0) -> None:
        self.config = config
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.detector = FaceDetector(config.min_detection_score, config.detector_model)
        self.mesh = MeshFitter(max_tracked=max(2, 2 * config.max_faces))
        self.tracks: list[_Track] = []
        self._lost: list[_Track] = []
        self._next_id = int(first_track_id)
        self._prev_hist: np.ndarray | None = None
        self._had_frame = False
        self._since_detect = 0
        self._lost_last_frame = False
        self.last_frame_was_cut = False
        self.last_cut_distance = 0.0
        self.last_raw_landmarks: dict[int, np.ndarray] = {}
        self.detections_run = 0

    # ---- public -----------------------------------------------------------------------

    def update(self, frame: VideoFrame, new_shot: bool = False) -> list[TrackedFace]:
        """Track faces into ``frame``. ``new_shot=True`` forces a cut (e.g. unrelated stills)."""
        image = frame.image
        hist = frame_histogram(image)
        dist = histogram_distance(self._prev_hist, hist) if self._prev_hist is not None else 0.0
        self._prev_hist = hist
        self.last_cut_distance = dist
        cut = bool(new_shot) or (self._had_frame and dist > self.config.cut_threshold)
        self.last_frame_was_cut = cut
        self._had_frame = True
        if cut:
            self.reset_tracks()

        lost_now = self._follow(image, frame.index)
        need_detect = (
            cut
            or not self.tracks
            or lost_now
            or self._lost_last_frame
            or self._since_detect + 1 >= max(1, self.config.detect_every)
        )
        self._lost_last_frame = lost_now
        if need_detect:
            self._detect(image, frame.index)
            self._since_detect = 0
        else:
            self._since_detect += 1
        self._drop_duplicates()
        return self._emit(frame)

    def can_skip(self, frame: VideoFrame) -> bool:
        """Whether ``frame`` may take its faces from its neighbours (``interpolate_faces``)
        instead of a mesh of its own: tracks are live, no detection is due, and it starts no
        new shot. A True answer counts the frame as seen (the next frame's cut reference)."""
        if not self.tracks or self._lost_last_frame \
                or self._since_detect + 1 >= max(1, self.config.detect_every):
            return False
        hist = frame_histogram(frame.image)
        if self._prev_hist is None or histogram_distance(self._prev_hist, hist) > self.config.cut_threshold:
            return False  # update() measures it again and resets the tracks
        self._prev_hist = hist
        return True

    def reset_tracks(self) -> None:
        """End every track (a shot cut): new faces get new ids."""
        for track in self.tracks + self._lost:
            self.mesh.forget(track.track_id)
        self.tracks, self._lost = [], []

    @property
    def next_track_id(self) -> int:
        return self._next_id

    def close(self) -> None:
        self.mesh.close()
        self.detector.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- stages -----------------------------------------------------------------------

    def _follow(self, image: np.ndarray, index: int) -> bool:
        """New mesh for each live track; returns True when a track was lost."""
        alive, lost_any = [], False
        for track in self.tracks:
            lm = self.mesh.fit(image, track.box, key=track.track_id)
            if lm is None or not self._plausible(lm, image.shape):
                self.mesh.forget(track.track_id)
                self._lost.append(track)
                lost_any = True
                continue
            track.raw, track.box, track.last_seen = lm, landmark_box(lm), index
            alive.append(track)
        self.tracks = alive
        self._lost = [t for t in self._lost if index - t.last_seen <= self.config.max_lost_frames]
        return lost_any

    def _detect(self, image: np.ndarray, index: int) -> None:
        self.detections_run += 1
        detections = self.detector.detect(image)
        for det in detections:
            if any(_overlap(det.box, t.box) > 0.5 for t in self.tracks):
                # An existing track covers it: refresh its score.
                best = max(self.tracks, key=lambda t: _overlap(det.box, t.box))
                best.score = det.score
                continue
            if len(self.tracks) >= self.config.max_faces:
                break
            self._start_track(image, det, index)

    def _start_track(self, image: np.ndarray, det: FaceDetection, index: int) -> None:
        revived = None
        for old in self._lost:
            if _overlap(det.box, old.box) > 0.3:
                revived = old
                break
        if revived is not None:
            self._lost.remove(revived)
            track_id = revived.track_id
        else:
            track_id = self._next_id
        lm = self.mesh.fit(image, det, key=track_id)
        if lm is None or not self._plausible(lm, image.shape):
            self.mesh.forget(track_id)
            if revived is not None:
                self._lost.append(revived)
            return
        if revived is None:
            self._next_id += 1
        smoother = OneEuroFilter(
            self.config.one_euro_min_cutoff, self.config.one_euro_beta, self.config.one_euro_d_cutoff
        )
        self.tracks.append(
            _Track(track_id, lm, landmark_box(lm), det.score, smoother, last_seen=index)
        )

    def _drop_duplicates(self) -> None:
        """Two tracks on one face (a detection beside a drifting mesh): keep the older one."""
        keep: list[_Track] = []
        for track in sorted(self.tracks, key=lambda t: t.track_id):
            if any(_iou(track.box, k.box) > 0.5 for k in keep):
                self.mesh.forget(track.track_id)
                continue
            keep.append(track)
        self.tracks = keep

    @staticmethod
    def _plausible(lm: np.ndarray, shape: tuple[int, ...]) -> bool:
        """Reject meshes that are degenerate or mostly outside the frame."""
        box = landmark_box(lm)
        w, h = box[2] - box[0], box[3] - box[1]
        if w < 4 or h < 4:
            return False
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return bool(0 <= cx < shape[1] and 0 <= cy < shape[0])

    def _emit(self, frame: VideoFrame) -> list[TrackedFace]:
        faces = []
        self.last_raw_landmarks = {}
        for track in sorted(self.tracks, key=lambda t: t.track_id):
            smooth = track.smoother(track.raw, frame.timestamp).astype(np.float32)
            self.last_raw_landmarks[track.track_id] = track.raw
            faces.append(
                TrackedFace(
                    frame_index=frame.index,
                    timestamp=frame.timestamp,
                    track_id=track.track_id,
                    box=landmark_box(smooth),
                    score=track.score,
                    landmarks=smooth,
                )
            )
        return faces


def interpolate_faces(frame: VideoFrame, before: list[TrackedFace],
                      after: list[TrackedFace]) -> list[TrackedFace]:
    """The faces of a frame between two tracked ones, landmarks interpolated in time.

    A track in both gets the blend of its two meshes; one lost at the later frame keeps its
    last mesh; one that starts at the later frame is left out (it may not be there yet)."""
    later = {f.track_id: f for f in after}
    faces = []
    for b in before:
        a = later.get(b.track_id)
        landmarks = b.landmarks
        if a is not None:
            span = a.timestamp - b.timestamp
            w = (frame.timestamp - b.timestamp) / span if span > 0 else 0.5
            landmarks = (b.landmarks + np.float32(w) * (a.landmarks - b.landmarks)).astype(np.float32)
        faces.append(TrackedFace(
            frame_index=frame.index, timestamp=frame.timestamp, track_id=b.track_id,
            box=landmark_box(landmarks), score=b.score, landmarks=landmarks, speaker=b.speaker,
        ))
    return faces


def track_stream(frames: Iterable[VideoFrame], tracker: FaceTracker,
                 mesh_every: int = 1) -> Iterator[tuple[VideoFrame, list[TrackedFace], bool]]:
    """(frame, faces, cut) for every frame, in order, meshing only every ``mesh_every``-th.

    Up to ``mesh_every - 1`` frames in a row wait for the next meshed frame and take their
    landmarks interpolated between the two (``FaceTracker.can_skip`` says which may: never a
    cut, a frame due a detection, or one after a lost track). Render's look-ahead makes the
    wait free; extract meshes every frame."""
    held: list[VideoFrame] = []
    before: list[TrackedFace] = []
    for frame in frames:
        if len(held) < mesh_every - 1 and before and tracker.can_skip(frame):
            held.append(frame)
            continue
        faces = tracker.update(frame)
        cut = tracker.last_frame_was_cut
        for waiting in held:
            yield waiting, interpolate_faces(waiting, before, faces), False
        held = []
        yield frame, faces, cut
        before = faces
    for frame in held:  # the stream ended before the next mesh: mesh these
        yield frame, tracker.update(frame), tracker.last_frame_was_cut
