"""MediaPipe face detection (boxes) and face mesh (478 landmarks), in frame pixel coordinates.

The mesh runs on a square crop around each face rather than on the whole frame: MediaPipe's
mesh graph looks for faces with its short-range detector, which misses faces smaller than
about a fifth of the frame, and a crop per face is what lets several faces per frame each get
a mesh. Everything here is bundled with the mediapipe wheel; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Union

import cv2
import numpy as np

from faceswap_gan.errors import FaceswapError
from faceswap_gan.faces.types import FaceDetection

MESH_INPUT = 256  # side the face crop is resampled to before the mesh sees it
DETECTION_CROP_SCALE = 2.2  # crop side / detector box side (the detector's box is tight)
LANDMARK_CROP_SCALE = 1.6  # crop side / landmark box side when following a track


def _mediapipe() -> Any:
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - mediapipe is a hard dependency
        raise FaceswapError(f"mediapipe is not installed ({exc})") from None
    return mp


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Silence file descriptor 2 while MediaPipe starts a graph.

    Its C++ side (absl logging, not configurable from Python) prints a dozen INFO/WARNING
    lines each time a graph starts and on its first frame, which would bury our progress
    output. Set FACESWAP_NATIVE_LOGS=1 to see them.
    """
    if os.environ.get("FACESWAP_NATIVE_LOGS") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _start_graph(factory: Any, warmup_side: int) -> Any:
    """Build a MediaPipe solution quietly and run it once on a blank frame (its first frame logs too)."""
    with quiet_native_logs():
        graph = factory()
        graph.process(np.zeros((warmup_side, warmup_side, 3), dtype=np.uint8))
    return graph


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    return image if image.flags["C_CONTIGUOUS"] else np.ascontiguousarray(image)


class FaceDetector:
    """MediaPipe face detection on whole frames; boxes and keypoints in pixels.

    ``model="full"`` (the full-range model) finds faces down to ~1/15 of the frame width and
    is the default; ``"short"`` is faster but needs faces that fill a good part of the frame.
    """

    def __init__(self, min_score: float = 0.5, model: str = "full") -> None:
        if model not in ("full", "short"):
            raise FaceswapError(f"unknown face detector model '{model}' (use full or short)")
        mp = _mediapipe()
        self._detector = _start_graph(
            lambda: mp.solutions.face_detection.FaceDetection(
                model_selection=1 if model == "full" else 0, min_detection_confidence=min_score
            ),
            warmup_side=128,
        )

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in an RGB image, best score first."""
        image = _check_image(image)
        h, w = image.shape[:2]
        result = self._detector.process(image)
        faces: list[FaceDetection] = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            x0, y0 = rel.xmin * w, rel.ymin * h
            box = np.array([x0, y0, x0 + rel.width * w, y0 + rel.height * h], dtype=np.float32)
            kps = np.array(
                [[k.x * w, k.y * h] for k in det.location_data.relative_keypoints], dtype=np.float32
            )
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            faces.append(FaceDetection(box=box, score=float(det.score[0]), keypoints=kps))
        faces.sort(key=lambda f: -f.score)
        return faces

    def close(self) -> None:
        self._detector.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


BoxLike = Union[FaceDetection, np.ndarray, "tuple[float, float, float, float]"]


def crop_square(box: BoxLike) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the crop the mesh runs on for a detection or a box.

    A FaceDetection's box is tight around the features, so it gets a wider margin than a
    plain box, which is taken to be a landmark box (forehead to chin, cheek to cheek).
    """
    if isinstance(box, FaceDetection):
        b, scale = np.asarray(box.box, dtype=np.float64), DETECTION_CROP_SCALE
    else:
        b, scale = np.asarray(box, dtype=np.float64), LANDMARK_CROP_SCALE
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    side = max(b[2] - b[0], b[3] - b[1]) * scale
    return float(cx), float(cy), float(max(side, 8.0))


class MeshFitter:
    """MediaPipe face mesh with iris refinement (478 points), fitted on a crop around a face.

    ``fit(image, box)`` returns (478, 3) float32 landmarks in frame pixels (z in pixels too,
    smaller = nearer) or None when no face is found in the crop. Passing ``key`` (a track id)
    keeps one MediaPipe graph in video mode per key, so consecutive frames of a track reuse
    the previous landmarks instead of re-detecting inside the crop (about twice as fast);
    ``forget(key)`` drops it when the track ends. Without a key every call is independent.
    """

    def __init__(self, max_tracked: int = 8) -> None:
        self._mp = _mediapipe()
        self._static: Any = None
        self._tracked: dict[int, Any] = {}
        self._graphs_with_faces: set[int] = set()
        self.max_tracked = max_tracked

    def _graph(self, key: int | None) -> Any:
        fm = self._mp.solutions.face_mesh
        if key is None:
            if self._static is None:
                self._static = _start_graph(
                    lambda: fm.FaceMesh(
                        static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                        min_detection_confidence=0.5,
                    ),
                    warmup_side=MESH_INPUT,
                )
            return self._static
        graph = self._tracked.get(key)
        if graph is None:
            if len(self._tracked) >= self.max_tracked:
                self.forget(next(iter(self._tracked)))
            graph = _start_graph(
                lambda: fm.FaceMesh(
                    static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                    min_detection_confidence=0.5, min_tracking_confidence=0.5,
                ),
                warmup_side=MESH_INPUT,
            )
            self._tracked[key] = graph
        return graph

    def fit(self, image: np.ndarray, box: BoxLike, key: int | None = None) -> np.ndarray | None:
        image = _check_image(image)
        cx, cy, side = crop_square(box)
        scale = MESH_INPUT / side
        # frame -> crop: scale about the crop's corner; the border is replicated so a face at
        # the frame's edge still looks like a face to the mesh.
        m = np.array(
            [[scale, 0.0, MESH_INPUT / 2 - scale * cx], [0.0, scale, MESH_INPUT / 2 - scale * cy]]
        )
        crop = cv2.warpAffine(
            image, m, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        graph = self._graph(key)
        # A graph's first face logs once more (landmark projection); keep that quiet too.
        first_face = id(graph) not in self._graphs_with_faces
        with quiet_native_logs() if first_face else contextlib.nullcontext():
            result = graph.process(crop)
        if not result.multi_face_landmarks:
            return None
        self._graphs_with_faces.add(id(graph))
        pts = np.array(
            [(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float32
        )
        if pts.shape[0] != 478:
            return None
        out = np.empty_like(pts)
        out[:, 0] = (pts[:, 0] * MESH_INPUT - m[0, 2]) / scale
        out[:, 1] = (pts[:, 1] * MESH_INPUT - m[1, 2]) / scale
        out[:, 2] = pts[:, 2] * MESH_INPUT / scale
        return out

    def forget(self, key: int) -> None:
        graph = self._tracked.pop(key, None)
        if graph is not None:
            self._graphs_with_faces.discard(id(graph))
            graph.close()

    def close(self) -> None:
        for key in list(self._tracked):
            self.forget(key)
        if self._static is not None:
            self._static.close()
            self._static = None

    def __enter__(self) -> MeshFitter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 around the landmarks' x and y."""
    xy = landmarks[:, :2]
    return np.concatenate([xy.min(axis=0), xy.max(axis=0)]).astype(np.float32)
