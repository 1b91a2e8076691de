"""The optional second judge of identity: a pretrained face-recognition embedding.

dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, a 128-d
embedding in which one person's faces lie within about 0.6 of each other) with dlib's
5-point shape predictor (``shape_predictor_5_face_landmarks.dat``) to align each face. Both
files ship inside the ``face-recognition-models`` package and are public domain per their
author (github.com/davisking/dlib-models README; the package's LICENSE file is CC0 1.0).
dlib's 68-point predictor, which ships beside them, is never used: its training data's
licence excludes commercial use.

Nothing is trained: each speaker is the mean embedding of some of their real crops, and a
swapped face counts as its target when it lies nearer the target's mean than the source
speaker's. Both packages are optional (``pip install 'faceswap_gan[judge]'``); without them
eval says so in one line and goes on with the classifier alone.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"
PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
MODEL_NAME = "dlib_face_recognition_resnet_model_v1"
INSTALL_HINT = "pip install 'faceswap_gan[judge]'"


def model_files() -> tuple[Path, Path] | None:
    """(5-point predictor, ResNet) inside the installed face_recognition_models package.

    Found with ``importlib.util.find_spec``, without importing the package (its
    ``__init__`` imports ``pkg_resources``, which newer setuptools no longer ship).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root) / "models"
        predictor, resnet = folder / PREDICTOR_FILE, folder / RESNET_FILE
        if predictor.is_file() and resnet.is_file():
            return predictor, resnet
    return None


def judge_unavailable() -> str | None:
    """Why the embedding cannot run here, in a few words; None when it can."""
    if importlib.util.find_spec("dlib") is None:
        return f"dlib is not installed ({INSTALL_HINT})"
    if model_files() is None:
        return f"face-recognition-models is not installed ({INSTALL_HINT})"
    return None


class FaceEmbedder:
    """dlib's 128-d face embedding of the face whose MediaPipe mesh is given.

    The mesh's bounding box stands in for dlib's detector box; the 5-point predictor
    finds the eye corners and nose base inside it, and dlib cuts its own aligned chip.
    """

    def __init__(self) -> None:
        import dlib

        files = model_files()
        if files is None:
            raise RuntimeError(f"face-recognition-models is not installed ({INSTALL_HINT})")
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(files[0]))
        self._net = dlib.face_recognition_model_v1(str(files[1]))

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(128,) float64 embedding of the face in RGB uint8 ``image`` at ``landmarks``."""
        pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        rect = self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))
        image = np.ascontiguousarray(image, dtype=np.uint8)
        shape = self._predictor(image, rect)
        return np.asarray(self._net.compute_face_descriptor(image, shape), dtype=np.float64)


def load_embedder() -> tuple[FaceEmbedder | None, str | None]:
    """(embedder, None), or (None, a one-line reason) when dlib or its models cannot load."""
    reason = judge_unavailable()
    if reason is not None:
        return None, reason
    try:
        return FaceEmbedder(), None
    except (ImportError, RuntimeError, OSError) as exc:  # a broken install or damaged file
        return None, f"cannot load dlib's models ({str(exc).splitlines()[0] if str(exc) else exc!r})"


@dataclass
class SpeakerMeans:
    """Collects real faces of each speaker (``add``, every ``every``-th face, at most ``limit``
    per speaker) and averages their embeddings; plugs into ``crops.speaker_crops(on_face=)``."""

    embedder: FaceEmbedder
    every: int = 4
    limit: int = 30
    _seen: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _embeddings: dict[str, list[np.ndarray]] = field(default_factory=dict, init=False, repr=False)

    def add(self, speaker: str, image: np.ndarray, landmarks: np.ndarray) -> None:
        seen = self._seen.get(speaker, 0)
        self._seen[speaker] = seen + 1
        kept = self._embeddings.setdefault(speaker, [])
        if seen % self.every == 0 and len(kept) < self.limit:
            kept.append(self.embedder.embed(image, landmarks))

    def judge(self) -> EmbeddingJudge:
        means = {name: np.mean(items, axis=0) for name, items in self._embeddings.items() if items}
        counts = {name: len(items) for name, items in self._embeddings.items()}
        return EmbeddingJudge(self.embedder, means, counts)


@dataclass
class EmbeddingJudge:
    """Each speaker's mean embedding; ``distances`` places a face among them."""

    embedder: Any  # FaceEmbedder (anything with embed(image, landmarks))
    means: Mapping[str, np.ndarray]
    counts: Mapping[str, int] = field(default_factory=dict)  # real faces behind each mean

    def distances(self, image: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
        """Euclidean distance of the face's embedding to each speaker's mean."""
        emb = self.embedder.embed(image, landmarks)
        return {name: float(np.linalg.norm(emb - mean)) for name, mean in self.means.items()}


def nearer_target(dists: Mapping[str, float], target: str, source: str) -> bool:
    """True when the face lies nearer ``target``'s mean than ``source``'s (or, when the two
    are one speaker or the source is unknown, nearer the target than anyone else)."""
    if target not in dists:
        return False
    if source and source != target and source in dists:
        return dists[target] < dists[source]
    return dists[target] <= min(dists.values())
