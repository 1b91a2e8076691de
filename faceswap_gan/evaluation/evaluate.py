"""The eval driver: stream the source, the swapped video and (when there is one) the truth in
step and score every face.

Frames are read one at a time from every video (memory stays flat whatever the length); per
face only a handful of numbers is kept. Faces are found afresh on each frame with the same
detector and mesh, matched by position, then scored with the pure functions in ``metrics``.

The *reference* each swapped face is compared with is the truth face at its place (the same
performance with the identities exchanged), or, without a truth (real footage), the source
face itself: pose, expression and stability must follow the source, only identity changes.
Each face's target speaker comes from the sample record or the classifier's verdict on the
truth face; without a truth it is ``target``, else the other of the two speakers, whoever the
classifier finds in the source face (majority over the face's track, never frame by frame).
Temporal measures follow each face along a shot and restart at every cut.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.evaluation import metrics as M
from faceswap_gan.evaluation.identity import IdentityClassifier, identity_crop
from faceswap_gan.evaluation.judge import EmbeddingJudge, nearer_target
from faceswap_gan.evaluation.landmarks import FaceMeshes
from faceswap_gan.evaluation.truth import TruthRecord
from faceswap_gan.faces.track import frame_histogram, histogram_distance
from faceswap_gan.render.mask import face_mask as swap_face_mask
from faceswap_gan.video.reader import VideoReader

OUTSIDE_DILATE = 0.6  # face region grown by this many inter-ocular distances for "outside"
STRIP_FRAMES = 4
STRIP_HEIGHT = 160
SHARPNESS_FLOOR = 1.0  # Laplacian energy (grey levels squared) below which a face counts as flat
# Sharpness is measured with the face at this eye distance (larger faces are shrunk first):
# detail at the face's own scale, not the sensor noise and codec grain of single pixels,
# which a pasted face lacks even when it is as sharp as the source.
SHARPNESS_IOD = 40.0


@dataclass
class FaceScore:
    """One reference face (the truth's, or the source's without a truth) in one frame and
    how the swapped frame did on it."""

    frame: int
    speaker: str  # the target: who the face should be after the swap
    found: bool  # the swapped frame has a face at this place
    track: int = -1  # the face along its shot (see _Track)
    source_speaker: str = ""  # who the source face is: the classifier's majority over the track
    source_pred: str = ""  # the classifier on this frame's source face ("" = no source face)
    truth_ok: bool | None = None  # the classifier names the target on the truth face (None: no truth)
    identity_ok: bool = False
    predicted: str = ""  # the classifier on the swapped face
    yaw_err: float = math.nan
    pitch_err: float = math.nan
    roll_err: float = math.nan
    mouth_err: float = math.nan
    eye_err: float = math.nan
    mouth_floor: float = math.nan  # |mouth(source) - mouth(truth)|: what no swap at all scores
    ref_mouth: float = math.nan  # mouth opening of the reference face and of the swapped face:
    swap_mouth: float = math.nan  # report.mouth_correlation follows one with the other over time
    ssim: float = math.nan  # against the truth only
    psnr: float = math.nan
    sharpness: float = math.nan  # inner-face Laplacian energy, swapped / source
    grid: float = math.nan  # periodic (grid, checkerboard) share of that detail, swapped / source
    embedded: bool = False  # the pretrained embedding looked at this frame
    emb_dists: dict[str, float] = field(default_factory=dict)  # swapped face to each speaker's mean
    emb_ok: bool | None = None  # nearer the target's mean than the source's (None: not embedded)
    # Temporal terms of this face (nan where the track is too short): reference and swapped.
    ref_jitter: float = math.nan
    swap_jitter: float = math.nan
    ref_flicker: float = math.nan
    swap_flicker: float = math.nan


@dataclass
class _Track:
    """One face followed along a shot: the last frames' landmarks and face-region means."""

    id: int
    centre: np.ndarray
    last_frame: int
    ref_lms: list[np.ndarray] = field(default_factory=list)
    swap_lms: list[np.ndarray] = field(default_factory=list)
    ref_mean: float = math.nan
    swap_mean: float = math.nan


@dataclass
class StabilitySums:
    """Running sums for the temporal measures (per speaker and overall)."""

    ref_jitter: float = 0.0
    swap_jitter: float = 0.0
    jitter_n: int = 0
    ref_flicker: float = 0.0
    swap_flicker: float = 0.0
    flicker_n: int = 0

    def add(self, face: FaceScore) -> None:
        if not math.isnan(face.ref_jitter):
            self.ref_jitter += face.ref_jitter
            self.swap_jitter += face.swap_jitter
            self.jitter_n += 1
        if not math.isnan(face.ref_flicker):
            self.ref_flicker += face.ref_flicker
            self.swap_flicker += face.swap_flicker
            self.flicker_n += 1

    def jitter_ratio(self) -> float:
        if self.jitter_n == 0:
            return math.nan
        return M.stability_ratio(self.swap_jitter / self.jitter_n, self.ref_jitter / self.jitter_n)

    def flicker_ratio(self) -> float:
        if self.flicker_n == 0:
            return math.nan
        return M.stability_ratio(
            self.swap_flicker / self.flicker_n, self.ref_flicker / self.flicker_n, floor=0.05
        )


@dataclass
class EvalResult:
    """Everything a report needs: per-face scores, stability sums, the strip frames."""

    clip: Path
    truth: Path | None  # None: scored against the source
    rendered: Path
    frames: int
    cuts: list[int]
    faces: list[FaceScore]
    stability: dict[str, StabilitySums]  # per target speaker
    outside_diff: list[float]  # per frame
    # (frame, source, swapped, truth or None) thumbnails
    strip: list[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]]
    classifier_accuracy: float = math.nan
    target: str | None = None  # without a truth: the speaker every face should become
    judge_every: int = 0  # the pretrained embedding ran on every n-th frame (0: not at all)

    @property
    def reference(self) -> str:
        """What the swap was compared with: "truth" or "source"."""
        return "truth" if self.truth is not None else "source"


def evaluate_videos(
    clip: Path,
    truth: Path | None,
    rendered: Path,
    classifier: IdentityClassifier,
    record: TruthRecord | None = None,
    max_faces: int = 4,
    cut_threshold: float = 0.45,
    progress: Callable[[int, int | None], None] | None = None,
    target: str | None = None,
    judge: EmbeddingJudge | None = None,
    judge_every: int = 3,
) -> EvalResult:
    """Score ``rendered`` (the swap of ``clip``) frame by frame against ``truth``, or, when
    ``truth`` is None, against ``clip`` itself.

    ``record`` (the sample generator's JSON for the clip) names the target speaker of each
    face and the shot cuts; without it the classifier names the truth face and cuts are
    found from the reference frames' colour histograms, as extract finds them (same
    histogram, ``cut_threshold`` = the pipeline's extract.cut_threshold). Without a truth
    every face's target is ``target``, or with two speakers the one it is not. ``judge``
    (the pretrained embedding) scores the swapped faces of every ``judge_every``-th frame.
    """
    if truth is None:
        if target is None and len(classifier.speakers) != 2:
            raise FaceswapError(
                f"the identity classifier knows {len(classifier.speakers)} speakers, so 'the other "
                "speaker' is ambiguous: pass --target NAME (the speaker every face should become)"
            )
        if target is not None and target not in classifier.speakers:
            raise FaceswapError(f"--target {target}: the identity classifier only knows "
                                f"{', '.join(classifier.speakers)}")
    paths = [clip, rendered] + ([truth] if truth is not None else [])
    readers = [VideoReader(p) for p in paths]
    try:
        sizes = {(r.width, r.height) for r in readers}
        if len(sizes) != 1:
            raise FaceswapError(
                "clip, rendered video and truth must have the same frame size; got "
                + ", ".join(f"{r.path.name} {r.width}x{r.height}" for r in readers)
            )
        declared = [r.declared_frames for r in readers]
        if None not in declared and len(set(declared)) > 1:  # before scoring a single frame
            raise FaceswapError(
                "clip, rendered video and truth must have the same frames; they have "
                + ", ".join(f"{r.path.name} {n}" for r, n in zip(readers, declared))
            )
        total = readers[-1].frame_count
        with FaceMeshes(max_faces) as meshes:
            state = _Run(classifier, record, meshes, _strip_indices(total), cut_threshold,
                         judge, max(1, judge_every))
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
                state.step(frames[0].image, frames[1].image,
                           frames[2].image if truth is not None else None)
                if progress is not None:
                    progress(state.index, total)
    finally:
        for r in readers:
            r.close()
    has_truth = truth is not None
    stability = _resolve(state.faces, classifier.speakers, has_truth, target)
    return EvalResult(
        clip=Path(clip), truth=Path(truth) if has_truth else None, rendered=Path(rendered),
        frames=state.index, cuts=state.cuts, faces=state.faces, stability=stability,
        outside_diff=state.outside, strip=state.strip,
        classifier_accuracy=classifier.heldout_accuracy, target=target,
        judge_every=max(1, judge_every) if judge is not None else 0,
    )


class _Run:
    """Per-frame scoring state of one evaluate_videos call."""

    def __init__(
        self,
        classifier: IdentityClassifier,
        record: TruthRecord | None,
        meshes: FaceMeshes,
        strip_at: set[int],
        cut_threshold: float,
        judge: EmbeddingJudge | None,
        judge_every: int,
    ):
        self.classifier = classifier
        self.cut_threshold = cut_threshold
        self.record = record
        self.meshes = meshes
        self.strip_at = strip_at
        self.judge = judge
        self.judge_every = judge_every
        self.index = 0
        self.faces: list[FaceScore] = []
        self.outside: list[float] = []
        self.strip: list[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]] = []
        self.cuts: list[int] = []
        self.tracks: list[_Track] = []
        self.next_track = 0
        self.prev_hist: np.ndarray | None = None

    def step(self, source: np.ndarray, swapped: np.ndarray, truth: np.ndarray | None) -> None:
        i = self.index
        ref = truth if truth is not None else source
        if self._is_cut(i, ref):
            self.cuts.append(i)
            self.tracks = []  # temporal measures never straddle a cut
        ref_faces = self.meshes(ref)
        swap_faces = self.meshes(swapped)
        source_faces = self.meshes(source) if truth is not None else ref_faces

        region = np.zeros(ref.shape[:2], dtype=bool)
        # (reference face, source face at its place, swapped face at its place)
        pairs: list[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = []
        for r_lm in ref_faces:
            region |= M.face_mask(r_lm, ref.shape, dilate=OUTSIDE_DILATE)
            s_lm = r_lm if truth is None else _nearest(r_lm, source_faces)
            pairs.append((r_lm, s_lm, _nearest(r_lm, swap_faces)))
        if self.record is not None:
            # Faces the mesh missed in the truth still belong to the face region.
            for box in self.record.boxes_at(i):
                region |= _box_mask(box, ref.shape, grow=1.4)
        # Swapped faces the reference lacks (a face pasted in the wrong place) count as outside.
        self.outside.append(M.outside_change(swapped, source, region))

        source_pred = self._predict(source, [s for _, s, _ in pairs])
        swap_pred = self._predict(swapped, [w for _, _, w in pairs])
        # The truth faces are classified too: how often that names the target shows how far
        # the classifier can be trusted on this footage.
        truth_pred = self._predict(truth, [r for r, _, _ in pairs]) if truth is not None else []
        embed = self.judge is not None and i % self.judge_every == 0

        live: list[_Track] = []
        for k, (r_lm, s_lm, w_lm) in enumerate(pairs):
            if self._not_a_speaker(i, r_lm):
                continue  # left as they are by design: evaluation/others.py measures those
            track = self._track(i, r_lm, live)
            score = FaceScore(frame=i, speaker="", found=w_lm is not None, track=track.id,
                              source_pred=source_pred[k], predicted=swap_pred[k], embedded=embed)
            if truth is not None:
                score.speaker = self._target(i, r_lm, truth_pred[k])
                score.truth_ok = truth_pred[k] == score.speaker
                if s_lm is not None:
                    score.mouth_floor = abs(M.mouth_opening(s_lm) - M.mouth_opening(r_lm))
            oval = M.face_mask(r_lm, ref.shape)
            if w_lm is not None:
                score.yaw_err, score.pitch_err, score.roll_err = M.pose_error(w_lm, r_lm)
                score.ref_mouth, score.swap_mouth = M.mouth_opening(r_lm), M.mouth_opening(w_lm)
                score.mouth_err = abs(score.swap_mouth - score.ref_mouth)
                score.eye_err = abs(M.eye_opening(w_lm) - M.eye_opening(r_lm))
                if truth is not None:
                    score.ssim = M.region_ssim(swapped, truth, oval)
                    score.psnr = M.region_psnr(swapped, truth, oval)
                score.sharpness, score.grid = _detail_ratios(swapped, source,
                                                             s_lm if s_lm is not None else r_lm)
                if embed and self.judge is not None:
                    score.emb_dists = self.judge.distances(swapped, w_lm)
            self._temporal(track, score, r_lm, w_lm, ref, swapped, oval)
            self.faces.append(score)
        self.tracks = live

        if i in self.strip_at:
            self.strip.append((i, _thumb(source), _thumb(swapped),
                               _thumb(truth) if truth is not None else None))
        self.index += 1

    def _predict(self, image: np.ndarray, faces: Sequence[np.ndarray | None]) -> list[str]:
        """The classifier's speaker for each face ("" where there is none)."""
        names = iter(self.classifier.predict([identity_crop(image, f) for f in faces if f is not None]))
        return [next(names) if f is not None else "" for f in faces]

    def _not_a_speaker(self, frame: int, face_lm: np.ndarray) -> bool:
        """The record says this face is a moderator's or the audience's, not a speaker's."""
        if self.record is None:
            return False
        face = self.record.face_at(frame, face_lm[:, :2].mean(axis=0))
        return face is not None and face.role != "speaker"

    def _target(self, frame: int, truth_lm: np.ndarray, predicted: str) -> str:
        """Who the truth shows here: the record's word, else the classifier's on the truth."""
        if self.record is not None:
            name = self.record.speaker_at(frame, truth_lm[:, :2].mean(axis=0))
            if name is not None:
                return name
        return predicted

    def _track(self, frame: int, r_lm: np.ndarray, live: list[_Track]) -> _Track:
        """Continue the track of the face here on the previous frame, or start one."""
        centre = r_lm[:, :2].mean(axis=0)
        reach = max(M.interocular(r_lm), 1.0)
        track = next(
            (t for t in self.tracks
             if t.last_frame == frame - 1 and np.linalg.norm(t.centre - centre) < reach),
            None,
        )
        if track is None:
            track = _Track(id=self.next_track, centre=centre, last_frame=frame)
            self.next_track += 1
        else:
            self.tracks.remove(track)  # one face per track per frame
        track.centre, track.last_frame = centre, frame
        live.append(track)
        return track

    def _temporal(
        self, track: _Track, score: FaceScore, r_lm: np.ndarray, w_lm: np.ndarray | None,
        ref: np.ndarray, swapped: np.ndarray, oval: np.ndarray,
    ) -> None:
        """This face's jitter and flicker terms; a frame without a swapped face restarts them."""
        if w_lm is None:
            track.ref_lms, track.swap_lms = [], []
            track.ref_mean = track.swap_mean = math.nan
            return
        track.ref_lms = (track.ref_lms + [r_lm])[-3:]
        track.swap_lms = (track.swap_lms + [w_lm])[-3:]
        if len(track.ref_lms) == 3:
            score.ref_jitter = M.landmark_jitter(track.ref_lms)
            score.swap_jitter = M.landmark_jitter(track.swap_lms)
        # Both means over the reference's face oval, so only the pixels' change is compared.
        r_mean, s_mean = M.region_mean(ref, oval), M.region_mean(swapped, oval)
        if not math.isnan(track.ref_mean):
            score.ref_flicker = abs(r_mean - track.ref_mean)
            score.swap_flicker = abs(s_mean - track.swap_mean)
        track.ref_mean, track.swap_mean = r_mean, s_mean

    def _is_cut(self, frame: int, ref: np.ndarray) -> bool:
        if self.record is not None and self.record.has_shots:
            return frame > 0 and frame in self.record.cut_frames
        hist = frame_histogram(ref)
        prev, self.prev_hist = self.prev_hist, hist
        return prev is not None and histogram_distance(prev, hist) > self.cut_threshold


def _resolve(faces: list[FaceScore], speakers: Sequence[str], has_truth: bool,
             target: str | None) -> dict[str, StabilitySums]:
    """Name each face's source speaker (majority over its track) and, without a truth, its
    target; then score identity and sum the temporal terms per target speaker."""
    votes: dict[int, Counter[str]] = defaultdict(Counter)
    for face in faces:
        if face.source_pred:
            votes[face.track][face.source_pred] += 1
    stability: dict[str, StabilitySums] = {}
    for face in faces:
        counts = votes.get(face.track)
        face.source_speaker = counts.most_common(1)[0][0] if counts else ""
        if not has_truth:
            face.speaker = target or _other(face.source_speaker, speakers)
        face.identity_ok = face.found and face.predicted == face.speaker
        if face.embedded:
            face.emb_ok = face.found and nearer_target(face.emb_dists, face.speaker,
                                                       face.source_speaker)
        stability.setdefault(face.speaker, StabilitySums()).add(face)
    return stability


def _other(speaker: str, speakers: Sequence[str]) -> str:
    """The one of two speakers that ``speaker`` is not."""
    others = [s for s in speakers if s != speaker]
    return others[0] if len(others) == 1 else ""


def _detail_ratios(swapped: np.ndarray, source: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """(sharpness, grid): the swapped face's high-frequency energy over the source face's,
    and its periodic share over the source's (``metrics.periodic_energy``: above 1, part of
    the detail is a grid or checkerboard, not texture); both inside the source face's
    inner-face mask (render's blend mask: brows to chin, eroded), measured with the face
    shrunk to an eye distance of SHARPNESS_IOD when it is larger."""
    h, w = source.shape[:2]
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return math.nan, math.nan
    weights = swap_face_mask(pts - (x0, y0), (y1 - y0, x1 - x0))
    scale = min(1.0, SHARPNESS_IOD / max(M.interocular(pts), 1e-6))
    size = (max(3, round((x1 - x0) * scale)), max(3, round((y1 - y0) * scale)))

    def at_scale(image: np.ndarray) -> np.ndarray:
        return image if scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    weights = at_scale(weights.astype(np.float32))
    swapped_face, source_face = at_scale(swapped[y0:y1, x0:x1]), at_scale(source[y0:y1, x0:x1])
    out = M.high_frequency_energy(swapped_face, weights)
    base = M.high_frequency_energy(source_face, weights)
    grid = M.periodic_energy(swapped_face, weights) / M.periodic_energy(source_face, weights)
    return M.stability_ratio(out, base, floor=SHARPNESS_FLOOR), grid


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
