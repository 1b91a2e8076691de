"""The eval driver: stream source, swapped and truth videos in step and score every face.

Frames are read one at a time from all three videos (memory stays flat whatever the
length); per face only a handful of numbers is kept. Faces are found afresh on the swapped
and the truth frames with the same detector and mesh, matched by position (the truth is the
same performance, so a face is where the truth has it), then scored with the pure functions
in ``metrics``. Temporal measures follow each face along a shot and restart at every cut.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.evaluation import metrics as M
from faceswap_gan.evaluation.identity import IdentityClassifier, identity_crop
from faceswap_gan.evaluation.landmarks import FaceMeshes
from faceswap_gan.evaluation.truth import TruthRecord
from faceswap_gan.faces.track import frame_histogram, histogram_distance
from faceswap_gan.video.reader import VideoReader

OUTSIDE_DILATE = 0.6  # face region grown by this many inter-ocular distances for "outside"
STRIP_FRAMES = 4
STRIP_HEIGHT = 160


@dataclass
class FaceScore:
    """One truth face in one frame and how the swapped frame did on it."""

    frame: int
    speaker: str  # the target: who the truth shows here
    found: bool  # the swapped frame has a face at this place
    truth_ok: bool = True  # the classifier names the target on the truth face itself
    identity_ok: bool = False
    predicted: str = ""
    yaw_err: float = math.nan
    pitch_err: float = math.nan
    roll_err: float = math.nan
    mouth_err: float = math.nan
    eye_err: float = math.nan
    ssim: float = math.nan
    psnr: float = math.nan


@dataclass
class _Track:
    """One face followed along a shot: the last frames' landmarks and face-region means."""

    speaker: str
    centre: np.ndarray
    last_frame: int
    truth_lms: list[np.ndarray] = field(default_factory=list)
    swap_lms: list[np.ndarray] = field(default_factory=list)
    truth_mean: float = math.nan
    swap_mean: float = math.nan


@dataclass
class StabilitySums:
    """Running sums for the temporal measures (per speaker and overall)."""

    truth_jitter: float = 0.0
    swap_jitter: float = 0.0
    jitter_n: int = 0
    truth_flicker: float = 0.0
    swap_flicker: float = 0.0
    flicker_n: int = 0

    def jitter_ratio(self) -> float:
        if self.jitter_n == 0:
            return math.nan
        return M.stability_ratio(self.swap_jitter / self.jitter_n, self.truth_jitter / self.jitter_n)

    def flicker_ratio(self) -> float:
        if self.flicker_n == 0:
            return math.nan
        return M.stability_ratio(
            self.swap_flicker / self.flicker_n, self.truth_flicker / self.flicker_n, floor=0.05
        )


@dataclass
class EvalResult:
    """Everything a report needs: per-face scores, stability sums, the strip frames."""

    clip: Path
    truth: Path
    rendered: Path
    frames: int
    cuts: list[int]
    faces: list[FaceScore]
    stability: dict[str, StabilitySums]  # per speaker
    outside_diff: list[float]  # per frame
    strip: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]  # (frame, source, swapped, truth)
    classifier_accuracy: float = math.nan


def evaluate_videos(
    clip: Path,
    truth: Path,
    rendered: Path,
    classifier: IdentityClassifier,
    record: TruthRecord | None = None,
    max_faces: int = 4,
    cut_threshold: float = 0.45,
    progress: Callable[[int, int | None], None] | None = None,
) -> EvalResult:
    """Score ``rendered`` (the swap of ``clip``) against ``truth`` frame by frame.

    ``record`` (the sample generator's JSON for the clip) names the target speaker of each
    face and the shot cuts; without it the classifier names the truth face and cuts are
    found from the truth frames' colour histograms, as extract finds them (same histogram,
    ``cut_threshold`` = the pipeline's extract.cut_threshold).
    """
    readers = [VideoReader(p) for p in (clip, rendered, truth)]
    try:
        sizes = {(r.width, r.height) for r in readers}
        if len(sizes) != 1:
            raise FaceswapError(
                "clip, rendered video and truth must have the same frame size; got "
                + ", ".join(f"{r.path.name} {r.width}x{r.height}" for r in readers)
            )
        total = readers[2].frame_count
        strip_at = _strip_indices(total)
        with FaceMeshes(max_faces) as swap_meshes, FaceMeshes(max_faces) as truth_meshes:
            state = _Run(classifier, record, swap_meshes, truth_meshes, strip_at, cut_threshold)
            iters = [iter(r) for r in readers]
            while True:
                frames = [next(it, None) for it in iters]
                if all(f is None for f in frames):
                    break
                if any(f is None for f in frames):
                    names = [r.path.name for r, f in zip(readers, frames) if f is None]
                    raise FaceswapError(
                        f"{', '.join(names)} ended at frame {state.index}, before the others: "
                        "clip, rendered video and truth must have the same frames"
                    )
                state.step(frames[0].image, frames[1].image, frames[2].image)
                if progress is not None:
                    progress(state.index, total)
    finally:
        for r in readers:
            r.close()
    return EvalResult(
        clip=Path(clip), truth=Path(truth), rendered=Path(rendered), frames=state.index,
        cuts=state.cuts, faces=state.faces, stability=state.stability,
        outside_diff=state.outside, strip=state.strip,
        classifier_accuracy=classifier.heldout_accuracy,
    )


class _Run:
    """Per-frame scoring state of one evaluate_videos call."""

    def __init__(
        self,
        classifier: IdentityClassifier,
        record: TruthRecord | None,
        swap_meshes: FaceMeshes,
        truth_meshes: FaceMeshes,
        strip_at: set[int],
        cut_threshold: float,
    ):
        self.classifier = classifier
        self.cut_threshold = cut_threshold
        self.record = record
        self.swap_meshes = swap_meshes
        self.truth_meshes = truth_meshes
        self.strip_at = strip_at
        self.index = 0
        self.faces: list[FaceScore] = []
        self.stability: dict[str, StabilitySums] = {}
        self.outside: list[float] = []
        self.strip: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.cuts: list[int] = []
        self.tracks: list[_Track] = []
        self.prev_hist: np.ndarray | None = None

    def step(self, source: np.ndarray, swapped: np.ndarray, truth: np.ndarray) -> None:
        i = self.index
        if self._is_cut(i, truth):
            self.cuts.append(i)
            self.tracks = []  # temporal measures never straddle a cut
        truth_faces = self.truth_meshes(truth)
        swap_faces = self.swap_meshes(swapped)

        region = np.zeros(truth.shape[:2], dtype=bool)
        pairs: list[tuple[np.ndarray, np.ndarray | None]] = []
        for t_lm in truth_faces:
            region |= M.face_mask(t_lm, truth.shape, dilate=OUTSIDE_DILATE)
            pairs.append((t_lm, _nearest(t_lm, swap_faces)))
        if self.record is not None:
            # Faces the mesh missed in the truth still belong to the face region.
            for box in self.record.boxes_at(i):
                region |= _box_mask(box, truth.shape, grow=1.4)
        # Swapped faces the truth lacks (a face pasted in the wrong place) count as outside.
        self.outside.append(M.outside_change(swapped, source, region))

        crops_t = [identity_crop(truth, t) for t, _ in pairs]
        crops_s = [identity_crop(swapped, s) for _, s in pairs if s is not None]
        predicted = iter(self.classifier.predict(crops_s))
        # The truth faces are classified too: how often that names the target shows how far
        # the classifier can be trusted on this footage.
        truth_pred = self.classifier.predict(crops_t)

        live: list[_Track] = []
        for k, (t_lm, s_lm) in enumerate(pairs):
            speaker = self._target(i, t_lm, truth_pred[k])
            score = FaceScore(frame=i, speaker=speaker, found=s_lm is not None,
                              truth_ok=truth_pred[k] == speaker)
            if s_lm is not None:
                score.predicted = next(predicted)
                score.identity_ok = score.predicted == speaker
                score.yaw_err, score.pitch_err, score.roll_err = M.pose_error(s_lm, t_lm)
                score.mouth_err = abs(M.mouth_opening(s_lm) - M.mouth_opening(t_lm))
                score.eye_err = abs(M.eye_opening(s_lm) - M.eye_opening(t_lm))
                mask = M.face_mask(t_lm, truth.shape)
                score.ssim = M.region_ssim(swapped, truth, mask)
                score.psnr = M.region_psnr(swapped, truth, mask)
                live.append(self._follow(i, speaker, t_lm, s_lm, swapped, truth, mask))
            self.faces.append(score)
        self.tracks = live

        if i in self.strip_at:
            self.strip.append((i, _thumb(source), _thumb(swapped), _thumb(truth)))
        self.index += 1

    def _target(self, frame: int, truth_lm: np.ndarray, predicted: str) -> str:
        """Who the truth shows here: the record's word, else the classifier's on the truth."""
        if self.record is not None:
            name = self.record.speaker_at(frame, truth_lm[:, :2].mean(axis=0))
            if name is not None:
                return name
        return predicted

    def _follow(
        self, frame: int, speaker: str, t_lm: np.ndarray, s_lm: np.ndarray,
        swapped: np.ndarray, truth: np.ndarray, mask: np.ndarray,
    ) -> _Track:
        """Continue (or start) this face's track and add its temporal terms to the sums."""
        centre = t_lm[:, :2].mean(axis=0)
        reach = 0.5 * max(M.interocular(t_lm), 1.0)
        track = next(
            (t for t in self.tracks
             if t.last_frame == frame - 1 and np.linalg.norm(t.centre - centre) < reach * 2),
            None,
        )
        if track is None:
            track = _Track(speaker=speaker, centre=centre, last_frame=frame)
        else:
            self.tracks.remove(track)  # one face per track per frame
        sums = self.stability.setdefault(speaker, StabilitySums())
        track.truth_lms = (track.truth_lms + [t_lm])[-3:]
        track.swap_lms = (track.swap_lms + [s_lm])[-3:]
        if len(track.truth_lms) == 3:
            sums.truth_jitter += M.landmark_jitter(track.truth_lms)
            sums.swap_jitter += M.landmark_jitter(track.swap_lms)
            sums.jitter_n += 1
        # Both means over the truth's face region, so only the pixels' change is compared.
        t_mean, s_mean = M.region_mean(truth, mask), M.region_mean(swapped, mask)
        if not math.isnan(track.truth_mean):
            sums.truth_flicker += abs(t_mean - track.truth_mean)
            sums.swap_flicker += abs(s_mean - track.swap_mean)
            sums.flicker_n += 1
        track.truth_mean, track.swap_mean = t_mean, s_mean
        track.centre, track.last_frame = centre, frame
        return track

    def _is_cut(self, frame: int, truth: np.ndarray) -> bool:
        if self.record is not None and self.record.has_shots:
            return frame > 0 and frame in self.record.cut_frames
        hist = frame_histogram(truth)
        prev, self.prev_hist = self.prev_hist, hist
        return prev is not None and histogram_distance(prev, hist) > self.cut_threshold


def _nearest(face: np.ndarray, candidates: Sequence[np.ndarray]) -> np.ndarray | None:
    """The candidate whose centre is nearest, if within 0.75 inter-ocular distances; else None."""
    if not candidates:
        return None
    centre = face[:, :2].mean(axis=0)
    dists = [float(np.linalg.norm(c[:, :2].mean(axis=0) - centre)) for c in candidates]
    best = int(np.argmin(dists))
    return candidates[best] if dists[best] < 0.75 * M.interocular(face) else None


def _box_mask(box: np.ndarray, shape: tuple[int, ...], grow: float) -> np.ndarray:
    """Boolean mask of ``box`` (x0, y0, x1, y1) grown about its centre by ``grow``."""
    h, w = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * grow / 2, (y1 - y0) * grow / 2
    mask = np.zeros((h, w), dtype=bool)
    mask[max(0, int(cy - hh)):max(0, int(cy + hh) + 1), max(0, int(cx - hw)):max(0, int(cx + hw) + 1)] = True
    return mask


def _strip_indices(total: int | None) -> set[int]:
    if not total:
        return set(range(STRIP_FRAMES))
    return {int(round(x)) for x in np.linspace(0, total - 1, STRIP_FRAMES + 2)[1:-1]}


def _thumb(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = STRIP_HEIGHT / h
    return cv2.resize(image, (max(1, round(w * scale)), STRIP_HEIGHT), interpolation=cv2.INTER_AREA)
