"""The speaker gate: is this face one of the model's speakers, and which, or nobody's?

A face embedding of aligned crops (the crops extract writes and render aligns), and per
speaker the centroid of that speaker's embeddings and their spread (the median distance of
their own crops to it). A face's score for a speaker is its distance to the centroid over
the spread; a face is "unknown" when its best score is above the gate's threshold.

Embeddings, best first (``EMBEDDINGS``):

- ``dlib``: dlib's pretrained 128-d face-recognition ResNet (``evaluation/judge.py``, the one
  home of that model), on the crop enlarged to 256 px with the face oval as its box. Only
  where dlib and face-recognition-models are installed (``faceswap_gan[judge]``).
- ``identity``: the pooled penultimate features of eval's identity classifier
  (``evaluation/identity.py``) trained on the speakers' crops when the gate is fitted; its
  weights are saved in the gate. Chosen over the trained D's trunk features, which told
  Reagan from Obama and Lieu far worse (``benchmarks/gate.py``; docs/DESIGN.md).
- ``appearance``: the cheap Lab feature (``faces/assign.py``); extract's fallback (it has
  no speakers' crops to train on before it has grouped them).

A gate fits dlib's embedding when it can and always the identity one, so a model fitted on a
machine with dlib still gates on one without. The threshold of each embedding is
calibrated on held-out crops (the last 20% of each speaker, in file = time order) and on
faces that are nobody's: each speaker's crops scored against the other speakers (an impostor
is as much "not this one" as a stranger) and ``workspace/unknown/`` crops (what extract
set aside as nobody's). Decisions are per track: scores averaged over the track's frames.

Files: ``gate.safetensors`` (centroids and spreads per embedding, ``identity_net.*``) and
``gate.json`` (format, speakers, crop size and padding, thresholds, calibration numbers),
beside the model's step folders; an exported inference
file carries the same tensors under ``gate.`` and the JSON under the header key
``faceswap_gan_gate``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from faceswap_gan.errors import FaceswapError

GATE_FORMAT = "faceswap_gan.gate"
GATE_VERSION = 1
GATE_WEIGHTS = "gate.safetensors"
GATE_META = "gate.json"
HEADER_KEY = "faceswap_gan_gate"  # the gate's JSON inside an exported inference file
UNKNOWN = "unknown"  # extract's group of faces that are nobody's (workspace/unknown/)

EMBEDDINGS = ("dlib", "identity")  # a gate's, best first
IDENTITY_PREFIX = "identity_net."
HELDOUT_FRACTION = 0.2
MAX_CROPS = 300  # per speaker: evenly spread over the speaker's crops (time order kept)
MAX_UNKNOWN = 300
POSITIVE_MARGIN = 2.0  # the threshold is at most this times the held-out crops' 99th percentile
TRACK_FRAMES = 12  # frames of a track that decide it (render's look-ahead)
# Of those, every 3rd is embedded: neighbouring frames are near-duplicates, and dlib's
# embedding costs about 120 ms a crop on a CPU (the whole decision: 4 crops, not 12).
TRACK_STRIDE = 3
TRACK_EMBEDDINGS = len(range(0, TRACK_FRAMES, TRACK_STRIDE))
# A track whose first crops are already far from the threshold is decided on them (one dlib
# call instead of four): nearest speaker within EARLY_ACCEPT x threshold and every other
# speaker beyond the threshold, or every speaker beyond EARLY_REJECT x threshold. Both lie
# outside the calibration's gap (held-out speakers' 99th percentile about 0.7 x threshold,
# strangers' and impostors' 1st percentile about 1.4 x).
EARLY_ACCEPT = 0.6
EARLY_REJECT = 1.6
DLIB_SIZE = 256  # crops are enlarged to this before dlib's 5-point predictor and ResNet
# The face oval's extent in eye units (faces/align.py): the box dlib is given in a crop.
_OVAL_X = (-1.12, 1.12)
_OVAL_Y = (-0.77, 1.75)

Progress = Callable[[str], None]


class CropEmbedder(Protocol):
    kind: str

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB aligned crops -> (N, D) float32 embeddings."""
        ...


def face_box_in_crop(size: int, padding: float) -> np.ndarray:
    """(2, 2) corners of the face oval in an aligned crop of this size and padding, pixels."""
    from faceswap_gan.faces.align import template_eye_centers

    eyes = template_eye_centers(size, padding)
    scale = float(eyes[1, 0] - eyes[0, 0])
    origin = eyes.mean(axis=0)
    return np.array([[_OVAL_X[0], _OVAL_Y[0]], [_OVAL_X[1], _OVAL_Y[1]]]) * scale + origin


class DlibEmbedder:
    """dlib's face-recognition embedding of aligned crops (judge.FaceEmbedder on each)."""

    kind = "dlib"

    def __init__(self, padding: float, face_embedder: Any | None = None) -> None:
        if face_embedder is None:
            from faceswap_gan.evaluation.judge import load_embedder

            face_embedder, reason = load_embedder()
            if face_embedder is None:
                raise FaceswapError(f"the dlib embedding is not available: {reason}")
        self._embedder = face_embedder
        self._box = face_box_in_crop(DLIB_SIZE, padding)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        out = np.zeros((len(crops), 128), np.float32)
        for i, crop in enumerate(crops):
            big = cv2.resize(np.ascontiguousarray(crop), (DLIB_SIZE, DLIB_SIZE),
                             interpolation=cv2.INTER_CUBIC)
            out[i] = self._embedder.embed(big, self._box)
        return out


class IdentityEmbedder:
    """Eval's identity classifier, trained on the speakers' crops: its pooled features."""

    kind = "identity"

    def __init__(self, classifier: Any, padding: float) -> None:
        self.classifier = classifier
        self.padding = padding

    @classmethod
    def fit(cls, crops: Mapping[str, np.ndarray], padding: float, seed: int = 0
            ) -> IdentityEmbedder:
        import torch

        from faceswap_gan.evaluation.identity import (
            identity_crops_from_aligned,
            train_identity_classifier,
        )

        cut = {name: list(identity_crops_from_aligned(c, padding)) for name, c in crops.items()}
        return cls(train_identity_classifier(cut, torch.device("cpu"), seed=seed), padding)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        from faceswap_gan.evaluation.identity import identity_crops_from_aligned

        return self.classifier.embed(list(identity_crops_from_aligned(crops, self.padding)))

    def tensors(self) -> dict[str, np.ndarray]:
        return {IDENTITY_PREFIX + k: v.detach().cpu().contiguous().numpy()
                for k, v in self.classifier.net.state_dict().items()}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Any], speakers: list[str], padding: float,
                     where: Path) -> IdentityEmbedder:
        import torch

        from faceswap_gan.evaluation.identity import IdentityClassifier, IdentityNet

        net = IdentityNet(len(speakers))
        own = {k[len(IDENTITY_PREFIX):]: torch.as_tensor(np.asarray(v))
               for k, v in tensors.items() if k.startswith(IDENTITY_PREFIX)}
        try:
            net.load_state_dict(own)
        except RuntimeError:
            raise FaceswapError(f"corrupt speaker gate at {where}: its identity network "
                                "does not load") from None
        net.eval()
        return cls(IdentityClassifier(net, list(speakers), float("nan"), torch.device("cpu")),
                   padding)


class AppearanceEmbedder:
    """``faces.assign.appearance_feature``: Lab at 24 px, lightness standardised."""

    kind = "appearance"

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        from faceswap_gan.faces.assign import appearance_feature

        if len(crops) == 0:
            return np.zeros((0, 1), np.float32)
        return np.stack([appearance_feature(c) for c in crops]).astype(np.float32)


def dlib_unavailable() -> str | None:
    """Why the dlib embedding cannot run here (a few words), or None when it can."""
    from faceswap_gan.evaluation.judge import judge_unavailable

    return judge_unavailable()


# ---- per-speaker statistics and the threshold ---------------------------------------------

@dataclass
class GateModel:
    """One embedding's per-speaker centroids and spreads, and its calibrated threshold."""

    kind: str
    centroids: np.ndarray  # (n_speakers, D) float32
    spreads: np.ndarray  # (n_speakers,) float32
    threshold: float
    calibration: dict[str, Any] = field(default_factory=dict)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, n_speakers): distance to each speaker's centroid over that speaker's spread."""
        e = np.asarray(embeddings, np.float32)
        d = np.linalg.norm(e[:, None, :] - self.centroids[None], axis=2)
        return d / self.spreads[None]


def _spread_out(items: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` items evenly spaced over the list (order kept)."""
    if len(items) <= limit:
        return items
    return items[np.linspace(0, len(items) - 1, limit).round().astype(int)]


def _split(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fit part, held-out tail): the tail keeps near-duplicate neighbouring frames out."""
    n_test = max(1, round(len(items) * HELDOUT_FRACTION))
    return items[:-n_test], items[-n_test:]


def track_means(scores: np.ndarray, frames: int = TRACK_EMBEDDINGS) -> np.ndarray:
    """Mean score of consecutive runs of ``frames`` rows: what a track decision sees."""
    n = len(scores) // frames
    if n == 0:
        return scores.mean(axis=0, keepdims=True) if len(scores) else scores
    return scores[: n * frames].reshape(n, frames, *scores.shape[1:]).mean(axis=1)


def calibrate_threshold(positives: np.ndarray, negatives: np.ndarray) -> tuple[float, dict]:
    """A threshold on normalised distance that accepts ``positives`` and rejects ``negatives``.

    With a gap between the 99th percentile of positives and the 1st of negatives, its
    geometric middle, but no more than ``POSITIVE_MARGIN`` times that percentile of positives
    (an embedding trained to tell the speakers apart puts them much further apart than it puts
    a stranger from either, so impostors alone would set it too high); otherwise the value with the fewest errors (false rejects plus false
    accepts, each as a rate), the middle of the range of such values."""
    pos, neg = np.sort(np.asarray(positives, float)), np.sort(np.asarray(negatives, float))
    hi = float(np.quantile(pos, 0.99))
    if len(neg) == 0:
        return POSITIVE_MARGIN * hi, {"method": "positives only"}
    lo = float(np.quantile(neg, 0.01))
    if lo > hi:
        tau, method = min(float(np.sqrt(hi * lo)), POSITIVE_MARGIN * hi), "gap"
    else:
        cands = np.unique(np.concatenate([pos, neg]))
        frr = 1.0 - np.searchsorted(pos, cands, side="right") / len(pos)
        far = np.searchsorted(neg, cands, side="right") / len(neg)
        cost = frr + far
        best = np.flatnonzero(cost <= cost.min() + 1e-12)
        a, b = cands[best[0]], cands[best[-1]]
        nxt = cands[min(best[-1] + 1, len(cands) - 1)]
        tau, method = float(0.5 * (a + max(b, nxt))), "fewest errors"
    return tau, {"method": method, "positives_p99": hi, "negatives_p01": lo}


def fit_gate_model(
    kind: str,
    embedded: Mapping[str, np.ndarray],
    unknown: np.ndarray | None,
) -> GateModel:
    """Fit centroids on each speaker's first 80%, calibrate on the held-out 20% and negatives.

    ``embedded``: speaker -> (N, D) embeddings in time order, in label order; ``unknown``:
    embeddings of faces that are nobody's (may be None or empty)."""
    names = list(embedded)
    centroids, spreads, held = [], [], []
    for name in names:
        items = np.asarray(embedded[name], np.float32)
        if len(items) < 5:
            raise FaceswapError(f"too few crops of '{name}' to fit the speaker gate ({len(items)}, need 5)")
        fit, test = _split(items)
        c = fit.mean(axis=0)
        spread = float(np.median(np.linalg.norm(fit - c, axis=1)))
        centroids.append(c)
        spreads.append(max(spread, 1e-6))
        held.append(test)
    model = GateModel(kind, np.stack(centroids).astype(np.float32),
                      np.array(spreads, np.float32), 0.0)
    positives, impostors = [], []
    for k, test in enumerate(held):
        s = model.scores(test)
        positives.append(s[:, k])
        for j, other in enumerate(held):
            if j != k:
                impostors.append(model.scores(other)[:, k])
    pos = np.concatenate(positives)
    neg_parts = list(impostors)
    unknown_scores = None
    if unknown is not None and len(unknown):
        unknown_scores = model.scores(np.asarray(unknown, np.float32)).min(axis=1)
        neg_parts.append(unknown_scores)
    neg = np.concatenate(neg_parts)
    tau, info = calibrate_threshold(pos, neg)
    model.threshold = tau
    info.update(
        heldout_crops=int(len(pos)), negative_crops=int(len(neg)),
        unknown_crops=0 if unknown_scores is None else int(len(unknown_scores)),
        heldout_accepted=float((pos <= tau).mean()),
        impostors_rejected=float((np.concatenate(impostors) > tau).mean()),
        unknown_rejected=None if unknown_scores is None else float((unknown_scores > tau).mean()),
        heldout_track_accepted=float(np.mean([
            (track_means(s[:, None])[:, 0] <= tau).mean() for s in positives])),
    )
    model.calibration = info
    return model


# ---- per-track decisions -------------------------------------------------------------------

@dataclass
class TrackVerdict:
    speaker: int | None  # nearest speaker's label (None: no frames seen)
    known: bool  # one of the model's speakers
    score: float  # mean normalised distance to that speaker over the track's frames


def early_verdict(model: GateModel, scores: np.ndarray) -> TrackVerdict | None:
    """The decision from a track's first frames when they leave no doubt, else None."""
    if len(scores) == 0:
        return None
    mean = np.asarray(scores, float).mean(axis=0)
    order = np.argsort(mean)
    best = float(mean[order[0]])
    others_out = len(mean) == 1 or float(mean[order[1]]) > model.threshold
    if best <= EARLY_ACCEPT * model.threshold and others_out:
        return TrackVerdict(int(order[0]), True, best)
    if best >= EARLY_REJECT * model.threshold:
        return TrackVerdict(int(order[0]), False, best)
    return None


def verdict(model: GateModel, scores: np.ndarray) -> TrackVerdict:
    """The decision for a track from its frames' scores (frames, n_speakers)."""
    if len(scores) == 0:
        return TrackVerdict(None, False, float("inf"))
    mean = np.asarray(scores, float).mean(axis=0)
    best = int(np.argmin(mean))
    return TrackVerdict(best, bool(mean[best] <= model.threshold), float(mean[best]))


# ---- the gate: every embedding fitted, saved and loaded with the model ---------------------

@dataclass
class SpeakerGate:
    speakers: list[str]
    size: int
    padding: float
    models: dict[str, GateModel]
    identity: IdentityEmbedder | None = None  # the identity embedding's trained network
    meta: dict[str, Any] = field(default_factory=dict)

    def usable(self) -> GateModel:
        """The best embedding that runs here (dlib when installed, else the identity one)."""
        for kind in EMBEDDINGS:
            if kind not in self.models:
                continue
            if kind == "dlib" and dlib_unavailable() is not None:
                continue
            if kind == "identity" and self.identity is None:
                continue
            return self.models[kind]
        raise FaceswapError("the speaker gate has no embedding that can run here "
                            f"(dlib: {dlib_unavailable() or 'installed'})")

    def embedder(self, kind: str) -> CropEmbedder:
        if kind == "identity":
            if self.identity is None:
                raise FaceswapError("the speaker gate has no identity network")
            return self.identity
        return make_embedder(kind, self.padding)

    def to_tensors(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for kind, m in self.models.items():
            out[f"{kind}.centroids"] = np.ascontiguousarray(m.centroids, np.float32)
            out[f"{kind}.spreads"] = np.ascontiguousarray(m.spreads, np.float32)
        if self.identity is not None:
            out.update(self.identity.tensors())
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": GATE_FORMAT,
            "version": GATE_VERSION,
            "speakers": list(self.speakers),
            "size": int(self.size),
            "padding": float(self.padding),
            "embeddings": {k: {"threshold": m.threshold, "calibration": m.calibration}
                           for k, m in self.models.items()},
            **{k: v for k, v in self.meta.items() if k not in ("format", "version")},
        }

    @classmethod
    def from_parts(cls, meta: Any, tensors: Mapping[str, Any], where: Path) -> SpeakerGate:
        if not isinstance(meta, dict) or meta.get("format") != GATE_FORMAT:
            raise FaceswapError(f"corrupt speaker gate at {where}: not a faceswap_gan gate")
        if int(meta.get("version", 0)) > GATE_VERSION:
            raise FaceswapError(f"the speaker gate at {where} has format version "
                                f"{meta.get('version')}; upgrade faceswap_gan")
        models = {}
        try:
            for kind, info in meta["embeddings"].items():
                models[kind] = GateModel(
                    kind, np.asarray(tensors[f"{kind}.centroids"], np.float32),
                    np.asarray(tensors[f"{kind}.spreads"], np.float32),
                    float(info["threshold"]), dict(info.get("calibration") or {}))
            speakers, padding = list(meta["speakers"]), float(meta["padding"])
            extra = {k: v for k, v in meta.items()
                     if k not in ("speakers", "size", "padding", "embeddings")}
            size = int(meta["size"])
        except (KeyError, TypeError, ValueError):
            raise FaceswapError(f"corrupt speaker gate at {where}") from None
        identity = None
        if any(k.startswith(IDENTITY_PREFIX) for k in tensors):
            identity = IdentityEmbedder.from_tensors(tensors, speakers, padding, where)
        return cls(speakers, size, padding, models, identity, extra)


def make_embedder(kind: str, padding: float) -> CropEmbedder:
    """An embedding that needs no training: ``dlib`` or ``appearance``."""
    if kind == "dlib":
        return DlibEmbedder(padding)
    if kind == "appearance":
        return AppearanceEmbedder()
    raise FaceswapError(f"the '{kind}' embedding is trained with the gate (fit_gate)")


def fit_gate(
    crops: Mapping[str, np.ndarray],
    size: int,
    padding: float,
    unknown: np.ndarray | None = None,
    kinds: Sequence[str] | None = None,
    progress: Progress | None = None,
    seed: int = 0,
) -> SpeakerGate:
    """Fit every embedding in ``kinds`` (default: dlib's when installed, and the identity
    one) on each speaker's crops (label order, each in time order) and ``unknown`` crops
    (faces that are nobody's). The identity network learns from each speaker's first 80%
    only, the part the centroids come from."""
    if kinds is None:
        kinds = [k for k in EMBEDDINGS if k != "dlib" or dlib_unavailable() is None]
    models: dict[str, GateModel] = {}
    identity = None
    for kind in kinds:
        if progress is not None:
            progress(f"speaker gate: {kind} embedding of the speakers' crops")
        if kind == "identity":
            identity = IdentityEmbedder.fit({n: _split(np.asarray(c))[0] for n, c in crops.items()},
                                            padding, seed=seed)
            embed: CropEmbedder = identity
        else:
            embed = make_embedder(kind, padding)
        embedded = {name: embed(np.asarray(c)) for name, c in crops.items()}
        neg = embed(np.asarray(unknown)) if unknown is not None and len(unknown) else None
        models[kind] = fit_gate_model(kind, embedded, neg)
    return SpeakerGate(list(crops), int(size), float(padding), models, identity)


# ---- files ---------------------------------------------------------------------------------

def save_gate(gate: SpeakerGate, model_dir: Path) -> Path:
    """gate.safetensors + gate.json in ``model_dir`` (each written atomically)."""
    import torch
    from safetensors.torch import save_file

    from faceswap_gan.fileio import atomic_path, write_json_atomic

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: torch.from_numpy(v) for k, v in gate.to_tensors().items()}
    with atomic_path(model_dir / GATE_WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"format": GATE_FORMAT})
    write_json_atomic(model_dir / GATE_META, gate.to_json())
    return model_dir / GATE_META


def load_gate(model_dir: Path) -> SpeakerGate | None:
    """The gate saved in ``model_dir``, or None when it has none."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    model_dir = Path(model_dir)
    meta_path, weights = model_dir / GATE_META, model_dir / GATE_WEIGHTS
    if not (meta_path.is_file() and weights.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        tensors = load_file(str(weights))
    except (OSError, ValueError, SafetensorError):
        raise FaceswapError(f"corrupt speaker gate in {model_dir}; delete {GATE_META} and "
                            f"{GATE_WEIGHTS} to fit it again") from None
    return SpeakerGate.from_parts(meta, tensors, model_dir)


def read_crops(folder: Path, size: int, limit: int) -> np.ndarray:
    """Up to ``limit`` crops of a folder, evenly spread over its sorted (time-ordered) PNGs."""
    from faceswap_gan.training.data import read_crop
    from faceswap_gan.video.reader import list_images

    paths = np.array(list_images(folder), dtype=object) if Path(folder).is_dir() else np.array([])
    chosen = _spread_out(paths, limit)
    if len(chosen) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([read_crop(Path(p), size) for p in chosen])


def build_gate(workspace: Any, model: Any, model_dir: Path | None = None,
               progress: Progress | None = None) -> SpeakerGate:
    """Fit the gate of a loaded model from the workspace's crops of its speakers and the
    workspace's unknown faces; saved into ``model_dir`` when given."""
    size = int(model.size)
    padding = model.padding
    crops = {}
    for name in model.speakers:
        crops[name] = read_crops(workspace.speaker_faces_dir(name), size, MAX_CROPS)
        if len(crops[name]) < 5:
            raise FaceswapError(f"cannot fit the speaker gate: too few crops of '{name}' in "
                                f"{workspace.speaker_faces_dir(name)}")
    unknown = read_crops(workspace.unknown_dir, size, MAX_UNKNOWN)
    gate = fit_gate(crops, size, padding, unknown=unknown, progress=progress)
    if model_dir is not None:
        save_gate(gate, model_dir)
    return gate


def model_folder(path: Path) -> Path | None:
    """The model folder of a model path (a model folder or one of its step folders); None
    for an exported inference file."""
    path = Path(path)
    if path.is_file():
        return None
    if path.name in ("step1", "step2", "step3") and not (path / "step1").exists():
        return path.parent
    return path


def ensure_gate(workspace: Any, model_path: Path, model: Any,
                progress: Progress | None = None) -> str | None:
    """Give ``model`` a usable gate: its own, or one fitted now from the workspace's crops and
    saved in its model folder. Returns a one-line notice for the user, or None when the
    model's own gate is used. Without crops to fit one (an exported file, another machine),
    the model stays without a gate: every face is then taken for a speaker."""
    if model.gate is not None:
        try:
            model.gate.usable()
            return None
        except FaceswapError:
            pass  # a damaged or partial gate: fit it again
    folder = model_folder(model_path)
    missing = [s for s in model.speakers
               if len(read_crops(workspace.speaker_faces_dir(s), int(model.size), 5)) < 5]
    if folder is None or missing:
        where = f"{model_path} has no speaker gate" if model.gate is None else \
            f"the speaker gate of {model_path} cannot run here"
        why = "" if folder is None else f" and the workspace has no crops of {', '.join(missing)}"
        model.gate = None
        return (f"{where}{why}: every face is taken for a trained speaker "
                "(as with --all-faces)")
    model.gate = build_gate(workspace, model, folder, progress)
    kind = model.gate.usable().kind
    return f"fitted the speaker gate ({kind}) from {workspace.faces_dir} into {folder}"


def refit_gate(workspace: Any, model_dir: Path, progress: Progress | None = None) -> str:
    """Fit and save the gate of the model in ``model_dir`` (what `faceswap train` does at
    its end); returns a one-line summary. FaceswapError when it cannot be fitted."""
    import torch

    from faceswap_gan.models.checkpoint import load_face_model

    model = load_face_model(Path(model_dir), torch.device("cpu"), need_encoder=False)
    gate = build_gate(workspace, model, Path(model_dir), progress)
    used = gate.usable()
    cal = used.calibration
    return (f"speaker gate ({used.kind}) saved in {model_dir}: threshold {used.threshold:.2f}, "
            f"held-out crops accepted {cal.get('heldout_accepted', float('nan')):.1%}, "
            f"other speakers' crops rejected {cal.get('impostors_rejected', float('nan')):.1%}"
            + (f", unknown faces rejected {cal['unknown_rejected']:.1%}"
               if cal.get("unknown_rejected") is not None else ""))


# Distances between two tracks' mean embeddings below which they are one person (extract's
# grouping): dlib's 0.6 for single faces, less for means of several; for the appearance
# feature, between the same person's tracks in different shots and different people's
# (measured on the sample portraits and ../shared/real: benchmarks/gate.py, docs).
# Measured: one person's tracks <= 0.31 (dlib) / 20.6 (appearance) apart, two people's >= 0.57
# / 25.6; the thresholds sit between.
SAME_PERSON = {"dlib": 0.45, "appearance": 23.0}


def identity_embedder(padding: float) -> CropEmbedder:
    """The embedding extract groups tracks by: dlib's where installed, else appearance."""
    return DlibEmbedder(padding) if dlib_unavailable() is None else AppearanceEmbedder()
