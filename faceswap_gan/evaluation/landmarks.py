"""Face meshes for evaluation: every face in a frame as (478, 3) landmarks in pixels.

Eval re-detects faces on the swapped and the truth video with the same stages the extract
step uses (faceswap_gan/faces/detect.py: FaceDetector boxes, MeshFitter meshes), so errors
on the two are comparable. Each frame is meshed independently (no tracking state), so the
jitter measured later is the footage's own, not the tracker's.
"""

from __future__ import annotations

import numpy as np

from faceswap_gan.faces.detect import FaceDetector, MeshFitter


class FaceMeshes:
    """Call with an RGB frame; returns up to ``max_faces`` meshes, left to right.

    Close it (or use ``with``) to free the MediaPipe graphs.
    """

    def __init__(self, max_faces: int = 4, min_score: float = 0.5):
        self.max_faces = max_faces
        self._detector = FaceDetector(min_score=min_score)
        self._fitter = MeshFitter()

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        faces: list[np.ndarray] = []
        for detection in self._detector.detect(image)[: self.max_faces]:
            mesh = self._fitter.fit(image, detection)
            if mesh is not None and not _duplicate(mesh, faces):
                faces.append(mesh)
        faces.sort(key=lambda p: float(p[:, 0].mean()))
        return faces

    def close(self) -> None:
        self._detector.close()
        self._fitter.close()

    def __enter__(self) -> FaceMeshes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _duplicate(mesh: np.ndarray, others: list[np.ndarray]) -> bool:
    """True when ``mesh`` is a face already found (two detector boxes on one face)."""
    centre = mesh[:, :2].mean(axis=0)
    size = float(np.ptp(mesh[:, 0]))
    return any(np.linalg.norm(o[:, :2].mean(axis=0) - centre) < 0.3 * size for o in others)
